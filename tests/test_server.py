"""WebSocketServer and serve() on loopback, with our client and real peers as clients."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

import wsclient
from wsclient import gate as gate_module
from wsclient import server as server_module
from wsclient.close import serialize_close
from wsclient.frames import FrameParser, Opcode, serialize_frame

from .conftest import needs_parking
from .reliability.rawpeer import MASK, handshake_head, raw_client, status_of, tls_client_hello, wait_until


def test_echo_with_our_client_and_websockets_and_websocket_client(echo_server):
    from websocket import create_connection
    from websockets.sync.client import connect as websockets_connect

    with wsclient.connect(echo_server.uri) as ws:
        for message in ["text", b"binary", "", b"", b"x" * (16 * (1 << 20) - 100)]:
            ws.send(message)
            assert ws.recv(timeout=30) == message
    with websockets_connect(echo_server.uri, max_size=None) as peer:
        peer.send(["frag", "mented"])
        assert peer.recv(timeout=5) == "fragmented"
        peer.send(b"\x00" * 100000)
        assert peer.recv(timeout=5) == b"\x00" * 100000
    client = create_connection(echo_server.uri, timeout=5)
    try:
        client.send("websocket-client")
        assert client.recv() == "websocket-client"
    finally:
        client.close()


def test_websockets_asyncio_client(echo_server):
    import asyncio

    from websockets.asyncio.client import connect as async_connect

    async def talk():
        async with async_connect(echo_server.uri) as peer:
            await peer.send("asyncio")
            return await asyncio.wait_for(peer.recv(), 5)

    assert asyncio.run(talk()) == "asyncio"


def test_a_tls_context_of_another_type_is_refused(pki):
    with pytest.raises(TypeError, match="ssl_context must be an ssl.SSLContext"):
        wsclient.serve(lambda ws: None, "127.0.0.1", 0, ssl_context=pki.ca_file)


@pytest.mark.parametrize("option, value, error", [
    # Each was accepted before, and failed at the first client (or stopped serve_forever).
    ("max_size", 0, ValueError),
    ("max_size", "x", TypeError),
    ("ping_interval", "x", TypeError),
    ("handshake_timeout", "x", TypeError),
    ("handshake_timeout", 0, ValueError),
    ("max_connections", "x", TypeError),
    ("process_request", 5, TypeError),
    ("select_subprotocol", "chat", TypeError),
    ("origins", "http://a", TypeError),  # Would have been a list of characters.
    ("subprotocols", "chat", TypeError),
    ("subprotocols", ["chat", 1], TypeError),  # Accepted: the first client then failed.
    ("origins", ["http://a", 5], TypeError),
    ("reuse_port", "no", TypeError),  # Was taken as true: SO_REUSEPORT on.
])
def test_serve_checks_its_options_at_once(option, value, error):
    with pytest.raises(error, match=option):
        wsclient.serve(lambda ws: None, "127.0.0.1", 0, **{option: value})


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_port_out_of_range_is_a_value_error(port):
    with pytest.raises(ValueError, match="0-65535"):
        wsclient.serve(lambda ws: None, "127.0.0.1", port)


def test_broadcast_takes_connections_only():
    with pytest.raises(TypeError):
        wsclient.broadcast(["ws://127.0.0.1/"], "x")


def test_port_zero_and_server_address(run_server):
    server = run_server().server
    assert server.port > 0
    assert server.server_address == ("127.0.0.1", server.port)


def test_reuse_address_allows_a_restart_on_the_same_port(run_server):
    first = run_server()
    port = first.server.port
    with wsclient.connect(first.uri):
        pass
    first.stop()
    second = run_server(port=port)
    with wsclient.connect(second.uri) as ws:
        ws.send("again")
        assert ws.recv(timeout=5) == "again"


def test_handler_return_closes_with_1000_and_raise_with_1011(run_server, caplog):
    def returns(ws):
        ws.send("bye")

    def raises(ws):
        raise RuntimeError("handler bug")

    with wsclient.connect(run_server(returns).uri) as ws:
        assert ws.recv(timeout=5) == "bye"
        with pytest.raises(wsclient.ConnectionClosedOK):
            ws.recv(timeout=5)
        assert ws.close_code == 1000
    with wsclient.connect(run_server(raises).uri) as ws:
        with pytest.raises(wsclient.ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.code == 1011
    assert "handler bug" in caplog.text


def test_request_is_visible_to_the_handler(run_server):
    def report(ws):
        ws.send(ws.request.path + " " + (ws.request.headers["X-Test"] or ""))

    with wsclient.connect(run_server(report).uri + "room/1?x=y", headers={"X-Test": "seen"}) as ws:
        assert ws.recv(timeout=5) == "/room/1?x=y seen"


def test_subprotocols_in_server_preference_order(run_server):
    server = run_server(subprotocols=["v2", "v1"])
    with wsclient.connect(server.uri, subprotocols=["v1", "v2"]) as ws:
        assert ws.subprotocol == "v2"
    with wsclient.connect(server.uri) as ws:
        assert ws.subprotocol is None
    hooked = run_server(select_subprotocol=lambda request, offered: offered[-1])
    with wsclient.connect(hooked.uri, subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b"


def test_origins_allowlist(run_server):
    server = run_server(origins=["https://good.example", None])
    with wsclient.connect(server.uri, origin="https://good.example"):
        pass
    with wsclient.connect(server.uri):
        pass
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(server.uri, origin="https://evil.example")
    assert info.value.response.status == 403


def test_process_request_health_check_and_auth(run_server):
    def process(request):
        if request.path == "/health":
            return wsclient.Response(200, [("Content-Type", "text/plain")], b"ok")
        if request.headers["Authorization"] != "Bearer token":
            return 401, {"WWW-Authenticate": 'Bearer realm="x"'}, "no"
        return None

    server = run_server(process_request=process)
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=5) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(server.uri)
    assert info.value.response.status == 401
    assert info.value.response.headers["WWW-Authenticate"] == 'Bearer realm="x"'
    with wsclient.connect(server.uri, headers={"Authorization": "Bearer token"}) as ws:
        ws.send("in")
        assert ws.recv(timeout=5) == "in"


@pytest.mark.parametrize("hook", ["process_request", "select_subprotocol"])
def test_a_failing_hook_gets_500_and_a_logged_traceback(run_server, caplog, hook):
    def broken(*args):
        raise KeyError("bug in the hook")

    server = run_server(**{hook: broken})
    with caplog.at_level(logging.ERROR, logger="wsclient"):
        with pytest.raises(wsclient.InvalidStatus) as info:
            wsclient.connect(server.uri, subprotocols=["chat"])
    assert info.value.response.status == 500
    assert any("bug in the hook" in (r.exc_text or "") for r in caplog.records)
    if hook == "select_subprotocol":  # Only called when the client offers one.
        with wsclient.connect(server.uri) as ws:
            ws.send("still serving")
            assert ws.recv(timeout=5) == "still serving"


def test_plain_http_gets_426(run_server):
    server = run_server()
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 426")
    assert b"Sec-WebSocket-Version: 13" in answer


def test_max_connections_answers_503_at_once(run_server):
    server = run_server(max_connections=2)
    a = wsclient.connect(server.uri)
    b = wsclient.connect(server.uri)
    start = time.monotonic()
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(server.uri)
    assert info.value.response.status == 503
    assert time.monotonic() - start < 2
    a.close()
    b.close()


def test_handshake_timeout_drops_a_stalling_client(run_server):
    server = run_server(handshake_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # ...and never finishes.
        start = time.monotonic()
        assert raw.recv(4096) == b""
        assert time.monotonic() - start < 3
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and server.server._active:
        time.sleep(0.02)
    assert not server.server._active  # Its thread is free again (idle, or gone).


def test_a_tls_client_on_a_plain_port_is_closed_at_once(run_server, caplog):
    # A wss:// client on a ws:// port got an HTTP 400 it could not read as TLS (and a
    # ClientHello without an LF byte would have waited out handshake_timeout).
    server = run_server(handshake_timeout=10)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as raw:
        with pytest.raises(OSError):  # ssl.SSLError, or a reset
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")
    assert time.monotonic() - start < 3
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as raw:
        raw.sendall(tls_client_hello())
        try:
            answer = raw.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert answer == b"", "an HTTP answer to a TLS client"
    assert time.monotonic() - start < 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "TLS handshake" in r.getMessage()]
    assert len(warnings) == 2, [r.getMessage() for r in caplog.records]
    assert "plain ws:// port" in warnings[0].getMessage()


def test_bytes_that_cannot_start_a_request_get_400_at_once(run_server):
    server = run_server(handshake_timeout=10)
    for junk in [b"\x00\x01\x02\xff binary junk without a line end", b"GET /path with spaces"]:
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as raw:
            start = time.monotonic()
            raw.sendall(junk)
            answer = raw.recv(4096)
            assert answer.startswith(b"HTTP/1.1 400 "), answer
            assert time.monotonic() - start < 3
            assert raw.recv(4096) == b""  # And the connection is closed.


def test_a_request_that_trickles_in_is_not_refused(run_server):
    server = run_server(handshake_timeout=10)
    head = handshake_head("/slow")
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = 0  # "GE", "T", " ", "/", "slow", " ", "HTTP/", ... "\r", "\n", ...
        for end in [2, 3, 4, 5, 9, 10, 15, 18, 19, 20, 40, len(head)]:
            raw.sendall(head[sent:end])
            sent = end
            time.sleep(0.05)  # The behaviour under test: a slow client, each piece parsed alone.
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101 "), answer


def test_pings_answered_while_the_handler_is_busy(run_server):
    from websockets.sync.client import connect as websockets_connect

    def busy(ws):
        time.sleep(2)  # The behaviour under test: a handler that does not read for 2 s.
        ws.send("done")

    server = run_server(busy)
    with websockets_connect(server.uri, ping_interval=0.2, ping_timeout=0.3) as peer:
        assert peer.recv(timeout=5) == "done"


def test_shutdown_with_100_connections(run_server):
    server = run_server()
    clients = [wsclient.connect(server.uri) for _ in range(100)]
    for ws in clients:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
    threads_before = threading.active_count()
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 5
    for ws in clients:
        with pytest.raises(wsclient.ConnectionClosedOK):
            ws.recv(timeout=5)
        assert ws.close_code == 1001
        ws.close()
    assert not server.server._threads
    assert server.server.socket.fileno() == -1
    assert threading.active_count() < threads_before


@needs_parking
def test_handlers_past_the_gates_direct_readers_park_and_miss_nothing(run_server, monkeypatch):
    # With gate.DIRECT set, the handlers past it waiting for a message park in the server's
    # gate, which lets ADMIT of them go at a time (wsclient.gate): nothing may be lost,
    # reordered or left waiting, in messages, closing handshakes or the server's shutdown.
    monkeypatch.setattr(gate_module, "DIRECT", 2)
    monkeypatch.setattr(gate_module, "ADMIT", 1)
    server = run_server()
    clients = [wsclient.connect(server.uri, proxy=None) for _ in range(12)]

    def gate_threads():
        return [t for t in threading.enumerate() if t.name == "wsclient-server-gate"]

    try:
        wait_until(lambda: gate_threads(), 5, "handlers park in the gate")
        for turn in range(3):
            for i, ws in enumerate(clients):  # Every client at once: handlers wake together.
                ws.send(f"{i}-{turn}" * (1 + 100 * turn))
            for i, ws in enumerate(clients):
                assert ws.recv(timeout=5) == f"{i}-{turn}" * (1 + 100 * turn)
        for ws in clients[:6]:
            ws.close()
            assert ws.close_code == 1000  # The server answered the close frame.
        [gate_thread] = gate_threads()
        server.stop()  # Shutting down wakes the parked handlers of the other six.
        for ws in clients[6:]:
            with pytest.raises(wsclient.ConnectionClosedOK):
                ws.recv(timeout=5)
            assert ws.close_code == 1001
        assert not gate_thread.is_alive()
    finally:
        for ws in clients:
            ws.close()


def _serving(handler, **options):
    """A server running serve_forever() in a thread: (server, thread)."""
    server = wsclient.serve(handler, "127.0.0.1", 0, **options)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    return server, thread


def test_shutdown_cuts_a_handshake_short():
    # A client still sending its request (a slow link, or a slowloris) held shutdown()
    # until handshake_timeout, and a thread outlived server_close().
    server, thread = _serving(lambda ws: ws.recv(), handshake_timeout=30)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as half_open:
        half_open.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        ws = wsclient.connect(server.uri)
        wait_until(lambda: server._active == 2, what="the half-open request is being read")
        start = time.monotonic()
        server.shutdown()
        assert time.monotonic() - start < 2
        assert half_open.recv(100) == b""  # The end of the stream, at once.
        with pytest.raises(wsclient.ConnectionClosedOK):
            ws.recv(timeout=5)
        assert ws.close_code == 1001
        server.server_close()
        thread.join(5)
        assert not server._threads
        ws.close()


def test_a_handler_ended_by_another_connections_close_closes_its_own():
    # A relay whose upstream went away: the upstream's ConnectionClosed escaped the
    # handler, and this client's connection was left open (and out of shutdown()'s list).
    def relay(ws):
        ws.recv()
        raise wsclient.ConnectionClosedOK(1000, "the upstream closed")

    server, thread = _serving(relay)
    try:
        with wsclient.connect(server.uri) as ws:
            ws.send("hello")
            with pytest.raises(wsclient.ConnectionClosedError):
                ws.recv(timeout=5)
            assert ws.close_code == 1011
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_shutdown_with_no_time_limit():
    # shutdown(timeout=float("inf")) raised OverflowError before stopping anything.
    server, thread = _serving(lambda ws: ws.recv())
    ws = wsclient.connect(server.uri)
    server.shutdown(timeout=float("inf"))
    with pytest.raises(wsclient.ConnectionClosedOK):
        ws.recv(timeout=5)
    assert ws.close_code == 1001
    server.server_close()
    thread.join(5)
    assert not thread.is_alive()


@pytest.mark.parametrize("timeout", [None, float("inf")])
def test_shutdown_without_a_limit_waits_for_every_handler(monkeypatch, timeout):
    # README: None and infinity wait without limit. shutdown(None) waited the default
    # bound (10 s, shortened here) and returned with the handler still running.
    monkeypatch.setattr(wsclient.server, "DEFAULT_SHUTDOWN_TIMEOUT", 0.2)
    finished = threading.Event()

    def slow_to_finish(ws):
        with contextlib.suppress(wsclient.ConnectionClosed):
            ws.recv()
        time.sleep(1.0)  # The behaviour under test: cleaning up after the close, past the bound.
        finished.set()

    server, thread = _serving(slow_to_finish)
    ws = wsclient.connect(server.uri)
    ws.send("hello")  # The handler is running.
    server.shutdown(timeout=timeout)
    assert finished.is_set()
    assert ws.close_code == 1001
    server.server_close()
    thread.join(5)


def test_shutdown_from_a_handler_thread():
    stopped, servers = threading.Event(), []

    def stop_the_server(ws):
        if ws.recv(timeout=10) == "stop":
            servers[0].shutdown(timeout=5)  # Joined every thread, this one included: RuntimeError.
            stopped.set()

    server, thread = _serving(stop_the_server)
    servers.append(server)
    other = wsclient.connect(server.uri)
    stopper = wsclient.connect(server.uri)
    stopper.send("stop")
    with pytest.raises(wsclient.ConnectionClosedOK):
        other.recv(timeout=10)
    assert other.close_code == 1001
    thread.join(10)
    assert stopped.wait(10), "shutdown() from a handler did not return normally"
    server.server_close()
    stopper.close()
    other.close()


def test_stops_share_one_deadline():
    # Ctrl-C in serve_forever() closed connections with a bound of its own, and the
    # shutdown() of a ``with serve(...)`` block waited the whole bound again.
    release = threading.Event()

    def lingering(ws):
        try:
            ws.recv()
        finally:
            release.wait(10)  # Goes on after its connection closed.

    server, thread = _serving(lingering)
    ws = wsclient.connect(server.uri)
    start = time.monotonic()
    server.shutdown(timeout=1)
    first = time.monotonic() - start
    server.shutdown(timeout=5)
    both = time.monotonic() - start
    release.set()
    thread.join(5)
    server.server_close()
    ws.close()
    assert 0.9 < first < 2
    assert both < first + 0.5, f"the second stop waited {both - first:.1f} s more"


def test_a_slow_process_request_still_sends_its_answer():
    def slow_gate(request):
        # The behaviour under test: longer than handshake_timeout, which is for the
        # client's request.
        time.sleep(1.0)
        return None if request.path == "/" else (401, [], "no")

    server, thread = _serving(lambda ws: None, handshake_timeout=0.5, process_request=slow_gate)
    try:
        with pytest.raises(wsclient.InvalidStatus) as info:
            wsclient.connect(server.uri + "denied", timeout=10)
        assert info.value.response.status == 401
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_process_request_cannot_answer_with_an_interim_status(caplog):
    server, thread = _serving(lambda ws: None, process_request=lambda request: (101, [], ""))
    try:
        with pytest.raises(wsclient.InvalidStatus) as info:
            wsclient.connect(server.uri, timeout=10)
        assert info.value.response.status == 500
        assert "a final status is 200 or more" in caplog.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_serve_forever_again_after_shutdown():
    server, thread = _serving(lambda ws: ws.send(ws.recv()))
    server.shutdown()
    thread.join(5)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        assert server.wait_serving(5)  # Listening again (refused until then).
        with wsclient.connect(server.uri, timeout=5) as ws:
            ws.send("again")
            assert ws.recv(timeout=5) == "again"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_serving_again_after_shutdown_waits_without_spinning():
    # The wake-up byte of the first shutdown() stayed in the socket pair: served again,
    # the loop found it ready at every turn and kept a core busy doing nothing.
    server, thread = _serving(lambda ws: None)
    server.shutdown()
    thread.join(5)
    cpu = []

    def serve_and_measure() -> None:
        server.serve_forever()
        cpu.append(time.thread_time())  # The CPU time this thread used, all of it.

    thread = threading.Thread(target=serve_and_measure)
    thread.start()
    try:
        assert server.wait_serving(5)
        threading.Event().wait(1.0)  # The span measured: a second of serving, no client.
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert cpu and cpu[0] < 0.1, cpu


@pytest.mark.parametrize("poll_interval, error", [
    (0, ValueError), (-1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
    (None, TypeError), ("0.5", TypeError), (True, TypeError),
])
def test_serve_forever_checks_poll_interval(poll_interval, error):
    with wsclient.serve(lambda ws: None, "127.0.0.1", 0) as server:
        with pytest.raises(error, match="poll_interval"):
            server.serve_forever(poll_interval)
        assert not server.wait_serving(0)


# _thread.interrupt_main() marks SIGINT pending without interrupting a blocking system
# call: on Linux this is what Ctrl-C does to a process waiting in select() on Windows.
_INTERRUPTED_SERVER = """
import _thread, sys, threading, time
import wsclient

def handler(ws):
    for message in ws:
        ws.send(message)

server = wsclient.serve(handler, "127.0.0.1", 0)
closes = []

def client():
    assert server.wait_serving(10)
    with wsclient.connect(server.uri, timeout=10) as ws:
        ws.send("ready")
        assert ws.recv(timeout=10) == "ready"  # The handler runs: the server serves.
        print("interrupting", time.monotonic(), flush=True)
        _thread.interrupt_main()
        try:
            ws.recv(timeout=30)
        except wsclient.ConnectionClosed:
            closes.append(ws.close_code)

thread = threading.Thread(target=client)
thread.start()
try:
    server.serve_forever(*[float(arg) for arg in sys.argv[1:]])  # The default without one.
except KeyboardInterrupt:
    print("KeyboardInterrupt", time.monotonic(), flush=True)
thread.join(10)
server.shutdown()
server.server_close()
print("client saw close code", closes, flush=True)
"""


@pytest.mark.parametrize("poll_interval", [None, 0.1])
def test_a_pending_ctrl_c_stops_serve_forever_within_poll_interval(poll_interval):
    """Ctrl-C on Windows does not interrupt select(): the loop must wake by itself (every
    poll_interval, 0.5 s by default) for Python to raise KeyboardInterrupt; it then closes
    the connections with 1001 as a Ctrl-C anywhere does."""
    argv = [sys.executable, "-c", _INTERRUPTED_SERVER] + ([] if poll_interval is None else [str(poll_interval)])
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"serve_forever() never saw the pending Ctrl-C; output: {exc.stdout!r} {exc.stderr!r}")
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in lines] == ["interrupting", "KeyboardInterrupt", "client"], done.stdout
    waited = float(lines[1].split()[1]) - float(lines[0].split()[1])
    assert waited < (poll_interval or 0.5) + 2.0, waited  # One poll_interval, and the closing handshake.
    assert lines[2] == "client saw close code [1001]"


def test_a_client_connecting_during_shutdown_is_answered_at_once():
    # serve_forever() had stopped accepting while shutdown() waited for a handler that
    # ignores the close: a new client waited unanswered in the backlog until server_close().
    release, closing = threading.Event(), threading.Event()

    def stubborn(ws):
        with pytest.raises(wsclient.ConnectionClosed):
            ws.recv(timeout=10)
        closing.set()
        release.wait(10)  # Goes on for a while after its connection closed.

    server, thread = _serving(stubborn)
    stopper = threading.Thread(target=server.shutdown, kwargs={"timeout": 10})
    try:
        ws = wsclient.connect(server.uri, timeout=5)
        stopper.start()
        assert closing.wait(5)
        thread.join(5)  # serve_forever() has returned: nothing accepts any more.
        assert stopper.is_alive()  # shutdown() still waits for the handler.
        for _ in range(2):
            start = time.monotonic()
            with pytest.raises(OSError) as info:
                wsclient.connect(server.uri, timeout=5)
            assert time.monotonic() - start < 2, f"answered only after {time.monotonic() - start:.1f} s"
            refused = isinstance(info.value, ConnectionRefusedError)
            assert refused or getattr(getattr(info.value, "response", None), "status", None) == 503
        release.set()
        stopper.join(10)
        assert not stopper.is_alive()
        with pytest.raises(ConnectionRefusedError):  # After shutdown(), before server_close().
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
        ws.close()
    finally:
        release.set()
        if stopper.ident is not None:
            stopper.join(10)
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("tls", [False, True])
def test_clients_queued_when_shutdown_starts_are_answered(pki, tls):
    # serve_forever() never ran: the clients in the backlog waited until server_close().
    context = pki.server_context() if tls else None
    server = wsclient.serve(lambda ws: None, "127.0.0.1", 0, ssl_context=context)
    try:
        queued = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
        for sock in queued:
            sock.sendall(handshake_head())
        server.shutdown(timeout=5)
        for sock in queued:
            with sock:
                try:
                    answer = sock.recv(4096)
                except ConnectionResetError:
                    answer = b""
                # Plain: 503. TLS: a 503 needs a TLS handshake first, so the end of the stream.
                assert answer.startswith(b"HTTP/1.1 503 ") if not tls else answer == b""
    finally:
        server.server_close()


def test_after_shutdown_the_other_reuse_port_server_gets_every_client():
    # A worker shutting down took its share of new clients into a backlog nobody accepted.
    first, first_thread = _serving(lambda ws: ws.send("first"), reuse_port=True)
    second = wsclient.serve(lambda ws: ws.send("second"), "127.0.0.1", first.port, reuse_port=True)
    second_thread = threading.Thread(target=second.serve_forever)
    second_thread.start()
    try:
        first.shutdown()
        for _ in range(20):
            with wsclient.connect(first.uri, timeout=5) as ws:
                assert ws.recv(timeout=5) == "second"
    finally:
        for server, thread in [(first, first_thread), (second, second_thread)]:
            server.shutdown()
            server.server_close()
            thread.join(5)


def test_serve_forever_again_on_a_unix_socket_after_shutdown(tmp_path):
    path = str(tmp_path / "ws.sock")
    server = wsclient.serve(lambda ws: ws.send(ws.recv()), unix_path=path)
    fileno = server.fileno()
    thread = threading.Thread()
    try:
        for _ in range(2):
            thread = threading.Thread(target=server.serve_forever)
            thread.start()
            assert server.wait_serving(5)  # Listening again (refused until then).
            with wsclient.connect("ws://localhost/", unix_path=path, timeout=5) as ws:
                ws.send("again")
                assert ws.recv(timeout=5) == "again"
            server.shutdown()
            thread.join(5)
            with socket.socket(socket.AF_UNIX) as late:
                with pytest.raises(ConnectionRefusedError):
                    late.connect(path)
        assert server.fileno() == fileno
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("target, status", [
    ("*", 400), ("127.0.0.1:80", 400), ("chat", 400),
    ("/chat", 101), ("http://127.0.0.1/chat", 101),  # RFC 6455 4.2.1 allows both.
])
def test_request_target_forms(run_server, target, status):
    server = run_server(lambda ws: None)
    assert status_of(server.port, handshake_head(target)) == status


@pytest.mark.parametrize("body_header, status", [
    ("Content-Length: 5", 400), ("Transfer-Encoding: chunked", 400), ("Content-Length: 0", 101),
])
def test_a_handshake_with_a_body_is_refused(run_server, body_header, status):
    # The bytes after the head are frames: a body would be read as frames (then 1002).
    server = run_server(lambda ws: None)
    assert status_of(server.port, handshake_head(headers=(body_header,)) + b"hello") == status


_LOW_FD_SERVER = """
import resource, wsclient
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
server = wsclient.serve(lambda ws: ws.recv(), "127.0.0.1", 0)
print(server.port, flush=True)
server.serve_forever()
"""


def test_out_of_file_descriptors_a_client_gets_503_not_silence():
    # With fewer descriptors than max_connections, clients past the limit waited in the
    # backlog unanswered while the server logged an error 20 times a second.
    proc = subprocess.Popen([sys.executable, "-c", _LOW_FD_SERVER], stdout=subprocess.PIPE, text=True)
    socks = []
    try:
        port = int(proc.stdout.readline())
        head = handshake_head()
        statuses = []
        for _ in range(80):  # More than the server's 64 descriptors.
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(sock)
            sock.sendall(head)
            statuses.append(sock.recv(12)[9:12])  # "HTTP/1.1 101": a timeout fails the test
        assert statuses[0] == b"101" and statuses[-1] == b"503"
        assert set(statuses) == {b"101", b"503"}
    finally:
        for sock in socks:
            sock.close()
        proc.kill()
        proc.wait(10)


def test_no_thread_or_fd_left_after_server_close():
    threads_before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd"))
    server = wsclient.serve(lambda ws: ws.recv())
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    ws = wsclient.connect(server.uri)
    server.shutdown()
    server.server_close()
    thread.join(5)
    ws.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        threading.active_count() > threads_before or len(os.listdir("/proc/self/fd")) > fds_before
    ):
        time.sleep(0.02)
    assert threading.active_count() <= threads_before
    assert len(os.listdir("/proc/self/fd")) <= fds_before


def test_threads_one_per_connection_plus_a_constant(run_server):
    server = run_server(lambda ws: ws.recv())
    base = threading.active_count()
    clients = [wsclient.connect(server.uri, ping_interval=None) for _ in range(20)]
    wait_until(lambda: len(server.server.connections) == 20, what="20 handlers running")
    # 20 handler threads, plus at most the server's watcher and the clients' watcher.
    assert threading.active_count() - base <= 20 + 2
    for ws in clients:
        ws.close()


def test_broadcast_reaches_everyone_and_skips_a_stuck_client(run_server):
    server = run_server(lambda ws: ws.recv())
    readers = [wsclient.connect(server.uri) for _ in range(3)]
    # A client that never calls recv() and keeps at most 64 KiB queued: its socket
    # buffers fill up and the server's broadcast must skip it rather than wait.
    stuck = wsclient.connect(server.uri, max_queue=65536, compression=None)
    deadline = time.monotonic() + 5
    while len(server.server.connections) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(server.server.connections) == 4
    # The stuck client never reads; keep broadcasting until its buffers are full.
    skipped_any = False
    for i in range(400):
        skipped = wsclient.broadcast(server.server.connections, b"m" * 65536)
        if skipped:
            skipped_any = True
            break
        for ws in readers:
            assert ws.recv(timeout=5) == b"m" * 65536
    assert skipped_any
    stuck.close()
    for ws in readers:
        ws.close()


def test_broadcast_loses_nothing_when_every_client_talks_at_once(run_server):
    """5 chat clients send at the same moment, 20 rounds: broadcast() waits for the short
    writes other handlers make meanwhile, so every client gets all 100 messages."""
    skipped = []

    def chat(ws):
        for message in ws:
            skipped.extend(wsclient.broadcast(server.server.connections, message))

    server = run_server(chat)
    clients = [wsclient.connect(server.uri, ping_interval=None) for _ in range(5)]
    wait_until(lambda: len(server.server.connections) == 5, what="5 handlers running")
    rounds = 20
    start = threading.Barrier(5, timeout=10)

    def talk(index, ws):
        for round_ in range(rounds):
            start.wait()
            ws.send(f"{index}:{round_}")

    threads = [threading.Thread(target=talk, args=(i, ws)) for i, ws in enumerate(clients)]
    for thread in threads:
        thread.start()
    # Nobody reads while the clients talk (all of it fits in the socket buffers): the
    # handlers' broadcasts then collide as often as they can, which made the old
    # skip-on-contention broadcast() lose messages in every run rather than in some.
    for thread in threads:
        thread.join(10)
    for ws in clients:
        got = [ws.recv(timeout=10) for _ in range(5 * rounds)]
        # Each sender's messages arrive in the order sent, and none is missing.
        for index in range(5):
            assert [m for m in got if m.startswith(f"{index}:")] == [f"{index}:{r}" for r in range(rounds)]
    assert skipped == []
    for ws in clients:
        ws.close()


def test_a_stalled_reader_does_not_clog_a_broadcast_to_the_others(run_server):
    server = run_server(lambda ws: ws.recv())
    readers = [wsclient.connect(server.uri, compression=None) for _ in range(3)]
    stalled, _, _ = raw_client(server.uri)  # Completes the handshake, then never reads.
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    deadline = time.monotonic() + 5
    while len(server.server.connections) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    message = b"x" * 65536
    skipped = []
    for _ in range(200):  # Until the stalled peer's buffers are full and it is skipped.
        started = time.monotonic()
        skipped = wsclient.broadcast(server.server.connections, message)
        assert time.monotonic() - started < 1.0  # Never waits on the stalled peer.
        for ws in readers:
            assert ws.recv(timeout=5) == message
        if skipped:
            break
    assert len(skipped) == 1 and skipped[0].remote_address == stalled.getsockname()
    # The others still get everything while the stalled one stays skipped.
    for i in range(5):
        assert len(wsclient.broadcast(server.server.connections, f"after {i}")) == 1
        for ws in readers:
            assert ws.recv(timeout=5) == f"after {i}"
    stalled.close()
    for ws in readers:
        ws.close()


def test_wss_server(run_server, pki):
    server = run_server(ssl_context=pki.server_context())
    assert server.uri.startswith("wss://")
    with wsclient.connect(server.uri.replace("127.0.0.1", "localhost"), ssl_context=pki.client_context()) as ws:
        ws.send("tls")
        assert ws.recv(timeout=5) == "tls"
    # Plain ws:// to a TLS port: the handshake fails with an error, not a hang.
    with pytest.raises(OSError):
        wsclient.connect(server.uri.replace("wss://", "ws://"), timeout=2)


def test_a_connection_thread_serves_the_next_connection(run_server):
    seen = []

    def handler(ws):
        seen.append(threading.get_ident())
        ws.send("hi")

    server = run_server(handler)
    for _ in range(3):
        with wsclient.connect(server.uri) as ws:
            assert ws.recv(timeout=5) == "hi"
        deadline = time.monotonic() + 5  # Until the thread is idle again.
        while server.server._active and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(seen) == 3 and len(set(seen)) == 1


def test_idle_connection_threads_end_after_a_while(run_server, monkeypatch):
    monkeypatch.setattr(server_module, "IDLE_THREAD_TIMEOUT", 0.2)
    server = run_server(lambda ws: ws.send("hi"))
    clients = [wsclient.connect(server.uri) for _ in range(5)]
    for ws in clients:
        assert ws.recv(timeout=5) == "hi"
        ws.close()
    deadline = time.monotonic() + 5
    while server.server._threads and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.server._threads


def test_max_connections_counts_connections_not_idle_threads(run_server):
    server = run_server(lambda ws: ws.recv(), max_connections=2)
    for _ in range(3):
        pair = [wsclient.connect(server.uri) for _ in range(2)]
        with pytest.raises(wsclient.InvalidStatus) as info:
            wsclient.connect(server.uri)
        assert info.value.response.status == 503
        for ws in pair:
            ws.close()
        deadline = time.monotonic() + 5
        while server.server._active and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(server.server._threads) <= 2


def test_a_close_arriving_during_a_large_send_waits_for_the_frame(run_server):
    # The client's close arrives while the handler is still writing a message the client
    # is not reading yet: the server must finish that frame before its close frame and the
    # TCP close, however long the client takes (within close_timeout), never cut it short.
    big = os.urandom(32 * 1024 * 1024)
    server = run_server(lambda ws: ws.send(big), compression=None)
    sock, response, leftover = raw_client(server.uri)
    with sock:
        assert response.status == 101
        sock.settimeout(10)
        # The handler has begun writing the message (under load, a close sent at once
        # could arrive before its send() and there would be nothing to wait for).
        received = leftover or sock.recv(65536)
        assert received, "the server closed TCP before the message"
        sock.sendall(serialize_frame(Opcode.CLOSE, serialize_close(1000), mask_key=MASK))
        # The behaviour under test: a client that does not read for longer than the 1 s
        # the server used to give the writer.
        time.sleep(1.5)
        parser = FrameParser(expect_masked=False)
        pieces = list(parser.feed(received))
        while not pieces or not (pieces[-1].last and pieces[-1].header.opcode == Opcode.CLOSE):
            data = sock.recv(1 << 20)
            assert data, "the server closed TCP before its close frame"
            pieces += parser.feed(data)
        assert sock.recv(1) == b""  # Then the server closes TCP.
    message = b"".join(p.data for p in pieces if p.header.opcode == Opcode.BINARY)
    assert message == big


def test_default_compression_uses_small_windows_at_both_ends(run_server):
    server = run_server()  # compression="deflate": 12 window bits, memLevel 5 (deflate.py)
    message = '{"records": [' + ", ".join(f'{{"id": {i}, "name": "user{i % 97}"}}' for i in range(20000)) + "]}"
    from websockets.sync.client import connect as websockets_connect

    with wsclient.connect(server.uri) as ws:
        assert ws.request.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; client_max_window_bits=12"
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        )
        ws.send(message)
        assert ws.recv(timeout=10) == message
    with websockets_connect(server.uri) as peer:
        assert "server_max_window_bits=12" in peer.response.headers["Sec-WebSocket-Extensions"]
        peer.send(message)
        assert peer.recv(timeout=10) == message


# -- process_response and server_header -----------------------------------------------------------


def test_process_response_adds_a_cookie_to_the_101(run_server):
    seen = []

    def add_cookie(request, response):
        seen.append((request.path, int(response.status)))
        response.headers["Set-Cookie"] = "session=abc; HttpOnly"
        return None

    server = run_server(process_response=add_cookie)
    with wsclient.connect(server.uri + "room") as ws:
        assert ws.response.headers["Set-Cookie"] == "session=abc; HttpOnly"
        ws.send("still a WebSocket")
        assert ws.recv(timeout=5) == "still a WebSocket"
    assert seen == [("/room", 101)]


def test_process_response_may_replace_the_answer(run_server):
    def refuse_some(request, response):
        if request.path == "/closed":
            return wsclient.Response(403, [("X-Why", "closed")], b"closed today")
        return wsclient.Response(int(response.status), list(response.headers.items()) + [("X-Extra", "1")])

    server = run_server(process_response=refuse_some)
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(server.uri + "closed")
    assert info.value.response.status == 403
    assert info.value.response.headers["X-Why"] == "closed"
    assert info.value.response.body == b"closed today"
    with wsclient.connect(server.uri) as ws:
        assert ws.response.headers["X-Extra"] == "1"
        ws.send("ok")
        assert ws.recv(timeout=5) == "ok"


def test_process_response_sees_process_requests_answer(run_server):
    def health(request):
        return (200, [], "ok") if request.path == "/health" else None

    def stamp(request, response):
        response.headers["X-Stamp"] = str(int(response.status))

    server = run_server(process_request=health, process_response=stamp)
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=5) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"ok"):
            chunk = raw.recv(4096)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b"\r\nX-Stamp: 200\r\n" in answer


def test_process_response_may_not_break_the_handshake(run_server, caplog):
    def tamper(request, response):
        response.headers["Sec-WebSocket-Accept"] = "forged"

    server = run_server(process_response=tamper)
    with caplog.at_level(logging.ERROR, logger="wsclient"):
        with pytest.raises(wsclient.InvalidStatus) as info:
            wsclient.connect(server.uri)
    assert info.value.response.status == 500
    assert any("Sec-WebSocket-Accept" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.parametrize("server_header, expected", [
    ("default", "wsclient/"), ("my-server/1.0", "my-server/1.0"), (None, None)])
def test_server_header(run_server, server_header, expected):
    from websockets.sync.client import connect as websockets_connect

    options = {} if server_header == "default" else {"server_header": server_header}
    server = run_server(**options)
    with wsclient.connect(server.uri) as ws:
        value = ws.response.headers["Server"]
    with websockets_connect(server.uri) as peer:
        peer_value = peer.response.headers.get("Server")
    if expected is None:
        assert value is None and peer_value is None
    else:
        assert expected in value and expected in peer_value
    # A refusal decided by the server carries it too.
    refusing = run_server(origins=["https://allowed.example"], **options)
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(refusing.uri, origin="https://other.example")
    assert info.value.response.status == 403
    assert (info.value.response.headers["Server"] is None) == (expected is None)


@pytest.mark.parametrize("value, error", [(b"bytes", TypeError), ("", ValueError), ("a\r\nb", ValueError)])
def test_a_bad_server_header_is_refused_at_once(value, error):
    with pytest.raises(error):
        wsclient.serve(lambda ws: None, server_header=value)


def test_a_process_response_that_is_not_callable_is_refused_at_once():
    with pytest.raises(TypeError):
        wsclient.serve(lambda ws: None, process_response="nope")
