"""What the reliability tests found: each bug, kept as a plain test of its fix.

Each test names what found it: a fuzz target (``test_fuzz.py``) or the leak test
(``test_leaks.py``).
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

import wsclient
from wsclient.uri import parse_uri, resolve_redirect

from .rawpeer import wait_until


@pytest.mark.parametrize("port", ["9" * 5000, "1" * 4301, "123456789012345678901234567890"],
                         ids=["5000-digits", "4301-digits", "30-digits"])
def test_a_port_of_thousands_of_digits_is_an_invalid_uri(port: str) -> None:
    # Found by uri+redirect and response+client-handshake (a Location header): int() refuses
    # strings over 4300 digits with a plain ValueError, which escaped parse_uri.
    with pytest.raises(wsclient.InvalidURI, match="out of range"):
        parse_uri(f"ws://example.com:{port}/")
    with pytest.raises(wsclient.InvalidURI, match="out of range"):
        resolve_redirect(parse_uri("ws://example.com/"), f"ws://other.example:{port}/")


def test_ports_with_leading_zeroes_still_parse() -> None:
    assert parse_uri("ws://example.com:0000000000000000000008080/").port == 8080
    with pytest.raises(wsclient.InvalidURI, match="out of range"):
        parse_uri("ws://example.com:000/")


@pytest.mark.parametrize("uri", ["wss://us\udcffr:pw@example.com/", "ws://user:s3\udce3r3t@host/",
                                 "ws://\udccaser@host/"])
def test_a_lone_surrogate_in_the_userinfo_is_an_invalid_uri(uri: str) -> None:
    # Found by uri+redirect: parse_uri accepted it, then building the handshake's
    # Authorization header raised UnicodeEncodeError. Such strings come from os.environ or
    # sys.argv holding bytes that are not UTF-8 (surrogateescape).
    with pytest.raises(wsclient.InvalidURI, match="surrogate") as info:
        parse_uri(uri)
    assert "s3\udce3r3t" not in str(info.value)


@pytest.mark.parametrize("url", ["http://use\udcb0:secret@proxy.example:3128", "s\udcefck:secret@10.0.0.1:1080",
                                 "socks5://u:sec\udc93ret@[::1]:1080"])
def test_a_lone_surrogate_in_a_proxy_url_is_an_invalid_uri(url: str) -> None:
    # Found by proxy-url+no_proxy: parse_proxy_url accepted it, then str(proxy) (used in
    # log lines and ProxyError messages) and the CONNECT request's Proxy-Authorization
    # raised UnicodeEncodeError. os.environ gives such strings for bytes that are not UTF-8.
    from wsclient.proxy import parse_proxy_url

    with pytest.raises(wsclient.InvalidURI, match="surrogate") as info:
        parse_proxy_url(url)
    assert "secret" not in str(info.value) and "sec\udc93ret" not in str(info.value)


@pytest.mark.parametrize("text", ["socks5//user:hunter22@proxy:1080", "http:/user:hunter22@proxy:1080/x",
                                  "http://user:hunter22@proxy/path", "http://user:hun@ter22@proxy/x"])
def test_a_malformed_proxy_url_never_shows_its_password(text: str) -> None:
    # Found by proxy-url+no_proxy: with the ':' after the scheme missing (or one '/'), the
    # redaction found no userinfo and the InvalidURI message showed the password.
    from wsclient.proxy import parse_proxy_url

    with pytest.raises(wsclient.InvalidURI) as info:
        parse_proxy_url(text)
    assert "hunter22" not in str(info.value) and "ter22" not in str(info.value)
    assert "user:***@proxy" in str(info.value)


@pytest.mark.parametrize("text", ["ws:/user:hunter22@host/", "wss//user:hunter22@host/", "ws://u:hun@ter22@h:0/"])
def test_a_malformed_uri_never_shows_its_password(text: str) -> None:
    with pytest.raises(wsclient.InvalidURI) as info:
        parse_uri(text)
    assert "hunter22" not in str(info.value) and "ter22" not in str(info.value)


@pytest.mark.parametrize("length", ["9" * 5000, "1" * 19, "0" * 30 + "1" * 19],
                         ids=["5000-digits", "19-digits", "padded-19-digits"])
def test_an_absurd_content_length_is_invalid_http(length: str) -> None:
    # Found by response+client-handshake: a 401 or 302 whose Content-Length had over 4300
    # digits raised int()'s ValueError out of ResponseParser.feed.
    from wsclient.http11 import ResponseParser

    with pytest.raises(wsclient.InvalidHTTP, match="Content-Length"):
        ResponseParser().feed(f"HTTP/1.1 401 Unauthorized\r\nContent-Length: {length}\r\n\r\n".encode())


def test_a_large_but_possible_content_length_still_reads_up_to_max_body() -> None:
    from wsclient.http11 import ResponseParser

    parser = ResponseParser(max_body=4)
    response = parser.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 000999999999999999999\r\n\r\nbody!")
    assert response is not None and response.body == b"body" and response.body_truncated


@pytest.mark.parametrize("zone", ["e\u0250th0", "%C3%A9", "%2F", "%5D", "a%20b", "%25", ""])
def test_an_ipv6_zone_outside_rfc_6874_is_an_invalid_uri(zone: str) -> None:
    # Found by uri+redirect: a zone with a non-Latin-1 character was accepted, then the
    # Host header could not be built (ValueError); '/' or ']' broke the Host header.
    with pytest.raises(wsclient.InvalidURI, match="zone"):
        parse_uri(f"ws://[fe80::1%25{zone}]/")


def test_ipv6_zones_of_interface_names_still_parse() -> None:
    for zone in ("eth0", "en0", "1", "wlan-0.1_a~"):
        uri = parse_uri(f"ws://[fe80::1%25{zone}]:8080/")
        assert uri.host == f"fe80::1%{zone}"
        assert parse_uri(uri.uri) == uri


def test_a_closed_connection_is_freed_before_its_keepalive_timer_is_due(ws_echo_server) -> None:
    # Found by test_leaks: the watcher's timer heap held each connection until its next
    # keepalive ping was due (20 s), so 2,000 short connections kept 160 MiB alive.
    with wsclient.connect(ws_echo_server.uri, proxy=None, ping_interval=20.0) as ws:
        ws.send("x" * 70000)
        assert ws.recv(timeout=10) == "x" * 70000
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    assert ref() is None


def test_closed_connections_leave_no_timer_entries_behind(ws_echo_server) -> None:
    # Found by test_leaks (Python objects grew by 3 per cycle): each closed connection left
    # its keepalive timer entry in the watcher until the ping would have been due (20 s).
    def weakrefs() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if type(obj) is weakref.ref)

    before = weakrefs()
    for _ in range(300):
        with wsclient.connect(ws_echo_server.uri, proxy=None, compression=None) as ws:
            ws.send("x")
            assert ws.recv(timeout=10) == "x"
    del ws
    assert weakrefs() - before < 100


def test_send_between_the_peers_eof_and_the_abort_raises_connection_closed(ws_echo_server) -> None:
    # Found by test_faults (shutdown under load): a sender thread that ran between the
    # reader feeding the peer's EOF to the protocol and the connection marking itself
    # closed got the protocol's RuntimeError("cannot send on a closing or closed
    # connection") instead of ConnectionClosedError. The window is a few bytecodes wide,
    # so this test puts the connection in that state directly.
    ws = wsclient.connect(ws_echo_server.uri, proxy=None, ping_interval=None, close_timeout=0.5)
    with ws._duplex.state_lock:
        ws._duplex.proto.receive_eof()  # what the reader does first on EOF
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.send("late")
    assert info.value.code == 1006
    assert wsclient.broadcast([ws], "late") == [ws]  # skipped, not an exception
    ws.close()


def test_shutdown_sends_every_close_frame_at_once_to_slow_readers(ws_server) -> None:
    # Found by test_faults (shutdown under load took all of its 5 s): shutdown() waited for
    # each handler's current write to finish before sending that connection's close frame,
    # one connection after another; the first slow reader used up the whole bounded wait
    # and the others were cut without a close frame (1006 instead of 1001).
    def stream(ws: wsclient.WebSocket) -> None:
        while True:
            ws.send(b"x" * 2**18)

    server = ws_server(stream, compression=None)
    clients = [wsclient.connect(server.uri, proxy=None, compression=None, max_queue=1) for _ in range(12)]
    codes: list = []

    def read_slowly(ws: wsclient.WebSocket) -> None:
        try:
            while True:
                ws.recv(timeout=30)
                time.sleep(0.05)  # The behaviour under test: a slow reader.
        except wsclient.ConnectionClosed as exc:
            codes.append(exc.code)

    readers = [threading.Thread(target=read_slowly, args=(ws,)) for ws in clients]
    for thread in readers:
        thread.start()
    # Every handler has been seen blocked in send(), waiting for its slow reader.
    seen: set = set()

    def all_stalled() -> bool:
        seen.update(id(ws) for ws in server.server.connections if ws._duplex.channel.stalled)
        return len(seen) == len(clients)

    wait_until(all_stalled, what="every handler waits in send()")
    server.server.shutdown(timeout=2.0)
    for thread in readers:
        thread.join(60)
    assert codes == [1001] * len(clients)
