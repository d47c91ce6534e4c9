"""connect() against real peers on loopback: the `websockets` server and our own."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

import wsclient

from .conftest import need, peer_echo


def test_round_trips_against_websockets(peer_echo_server):
    with wsclient.connect(peer_echo_server.uri, proxy=None) as ws:
        for message in ["", "hello", "é" * 1000, b"", b"\x00\xff" * 10, b"x" * (1 << 20)]:
            ws.send(message)
            assert ws.recv(timeout=10) == message
        assert ws.response.status == 101
        assert ws.request.path == "/"


@pytest.mark.parametrize("size", [0, 125, 126, 127, 128, 65535, 65536, 1 << 20, 16 * (1 << 20) - 64])
def test_sizes_against_websockets(run_peer, size):
    server = run_peer(peer_echo, max_size=None)
    with wsclient.connect(server.uri, proxy=None, max_size=None) as ws:
        payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
        ws.send(payload)
        assert ws.recv(timeout=30) == payload


def test_fragmented_send_is_one_message(peer_echo_server):
    with wsclient.connect(peer_echo_server.uri, proxy=None) as ws:
        ws.send(["frag", "ment", "ed"])
        assert ws.recv(timeout=5) == "fragmented"
        ws.send(iter([b"a", bytearray(b"b"), memoryview(b"c")]))
        assert ws.recv(timeout=5) == b"abc"


def test_path_query_and_headers_reach_the_server(run_peer):
    seen = {}

    def handler(conn):
        seen["path"] = conn.request.path
        seen["headers"] = conn.request.headers
        conn.send("ok")

    server = run_peer(handler)
    uri = server.uri + "a/b%20c?x=1&y=%2F"
    with wsclient.connect(uri, proxy=None, headers=[("X-Rep", "1"), ("X-Rep", "2")], origin="https://o.example",
                          user_agent="agent/1") as ws:
        assert ws.recv(timeout=5) == "ok"
    assert seen["path"] == "/a/b%20c?x=1&y=%2F"
    assert seen["headers"].get_all("X-Rep") == ["1", "2"]
    assert seen["headers"]["Origin"] == "https://o.example"
    assert seen["headers"]["User-Agent"] == "agent/1"


def test_user_agent_can_be_removed(run_peer):
    seen = {}

    def handler(conn):
        seen["ua"] = conn.request.headers.get("User-Agent")
        conn.send("ok")

    server = run_peer(handler)
    with wsclient.connect(server.uri, proxy=None, user_agent=None) as ws:
        ws.recv(timeout=5)
    assert seen["ua"] is None


def test_userinfo_becomes_basic_auth(run_peer):
    seen = {}

    def handler(conn):
        seen["auth"] = conn.request.headers["Authorization"]
        conn.send("ok")

    server = run_peer(handler)
    uri = server.uri.replace("ws://", "ws://al%40ice:s%3Acret@")
    with wsclient.connect(uri, proxy=None) as ws:
        ws.recv(timeout=5)
    import base64

    assert seen["auth"] == "Basic " + base64.b64encode(b"al@ice:s:cret").decode()


@pytest.mark.parametrize("uri, options", [
    ("ws://us%3Aer:pw@127.0.0.1:{port}/", {}),  # Basic auth cannot carry ':' in a user name.
    ("ws://127.0.0.1:{port}/", {"origin": "http://x\r\nEvil: 1"}),
])
def test_a_request_that_cannot_be_sent_is_refused_before_connecting(uri, options):
    # It used to be refused only after the TCP connection (or proxy tunnel) was open.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises((wsclient.InvalidURI, ValueError)):
            wsclient.connect(uri.format(port=listener.getsockname()[1]), proxy=None, **options)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # Nobody connected.


def test_subprotocol_negotiation(run_peer):
    server = run_peer(peer_echo, subprotocols=["chat", "superchat"])
    with wsclient.connect(server.uri, proxy=None, subprotocols=["superchat", "other"]) as ws:
        assert ws.subprotocol == "superchat"


def test_invalid_uri_raises_before_any_traffic():
    for uri in ["http://127.0.0.1/", "ws://127.0.0.1/#frag", "ws:///path", "ws://[::1/"]:
        with pytest.raises(wsclient.InvalidURI):
            wsclient.connect(uri, proxy=None)


@pytest.mark.parametrize("option", ["ssl_context", "proxy_ssl_context"])
def test_a_tls_context_of_another_type_is_refused_before_any_traffic(option, pki):
    # A CA file path where a context belongs: a TypeError that says so, no AttributeError
    # after a connection. (The dead port would give ConnectionRefusedError if it got that far.)
    with pytest.raises(TypeError, match=f"{option} must be an ssl.SSLContext"):
        wsclient.connect("wss://127.0.0.1:9/", proxy="https://127.0.0.1:9", **{option: pki.ca_file})


def test_refused_connection_passes_through():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        wsclient.connect(f"ws://127.0.0.1:{port}/", proxy=None, timeout=5)


def test_silent_server_times_out_the_opening():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            wsclient.connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", proxy=None, timeout=0.5)
        assert time.monotonic() - start < 3
    finally:
        listener.close()


def test_non_101_raises_invalid_status_with_body(run_server):
    server = run_server(process_request=lambda request: (401, [("WWW-Authenticate", "Bearer")], b"token please"))
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(server.uri, proxy=None)
    response = info.value.response
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.body == b"token please"


def test_redirects_are_followed(run_server, echo_server):
    target = echo_server.uri + "dest?q=1"
    server = run_server(process_request=lambda request: (302, [("Location", target)], b""))
    with wsclient.connect(server.uri, proxy=None) as ws:
        assert ws.request.path == "/dest?q=1"
        ws.send("after redirect")
        assert ws.recv(timeout=5) == "after redirect"


def test_redirect_loop_stops_at_the_limit(run_server):
    hits = []

    def loop(request):
        hits.append(1)
        return (307, [("Location", "/again")], b"")

    server = run_server(process_request=loop)
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(server.uri, proxy=None, max_redirects=3)
    assert info.value.response.status == 307
    assert len(hits) == 4


def test_redirect_to_another_host_drops_authorization(run_server):
    seen = {}

    def final(request):
        seen["auth"] = request.headers.get("Authorization")
        return None

    target = run_server(process_request=final)
    other_host = target.uri.replace("127.0.0.1", "localhost")
    first = run_server(process_request=lambda request: (301, [("Location", other_host)], b""))
    with wsclient.connect(first.uri, proxy=None, headers={"Authorization": "Bearer secret"}):
        pass
    assert seen["auth"] is None


def test_redirect_from_wss_to_ws_is_refused(run_server, pki, echo_server):
    server = run_server(
        ssl_context=pki.server_context(),
        process_request=lambda request: (302, [("Location", echo_server.uri)], b""),
    )
    with pytest.raises(wsclient.InvalidHandshake, match="wss"):
        wsclient.connect(server.uri, proxy=None, ssl_context=pki.client_context())


def test_wss_verified(run_peer, pki):
    server = run_peer(peer_echo, ssl=pki.server_context())
    with wsclient.connect(server.uri.replace("127.0.0.1", "localhost"), proxy=None,
                          ssl_context=pki.client_context()) as ws:
        ws.send("secure")
        assert ws.recv(timeout=5) == "secure"


def test_wss_untrusted_certificate_fails_verification(run_peer, pki):
    server = run_peer(peer_echo, ssl=pki.untrusted_server_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        wsclient.connect(server.uri, proxy=None, ssl_context=pki.client_context())


def test_wss_default_context_does_not_trust_a_private_ca(run_peer, pki):
    server = run_peer(peer_echo, ssl=pki.server_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        wsclient.connect(server.uri, proxy=None)


def test_ipv6_literal(run_server):
    try:
        server = run_server(host="::1")
    except OSError:
        server = None
    need(server is not None, "no IPv6 loopback on this machine")
    with wsclient.connect(f"ws://[::1]:{server.server.port}/", proxy=None) as ws:
        ws.send("v6")
        assert ws.recv(timeout=5) == "v6"
        assert ws.remote_address[0] == "::1"


def test_unix_socket(run_server, tmp_path):
    path = str(tmp_path / "ws.sock")
    run_server(unix_path=path)
    with wsclient.connect("ws://localhost/over-unix", unix_path=path) as ws:
        ws.send("unix")
        assert ws.recv(timeout=5) == "unix"


def test_existing_socket(echo_server):
    sock = socket.create_connection(("127.0.0.1", echo_server.server.port))
    with wsclient.connect(echo_server.uri, sock=sock) as ws:
        ws.send("given socket")
        assert ws.recv(timeout=5) == "given socket"
