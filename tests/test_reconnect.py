"""Reconnecting clients against real servers on loopback: connect(reconnect=...),
ReconnectingWebSocket and reconnect().

Servers are wsclient's own (``serve``, restarted on the same port), a `websockets` server
for a TCP reset, and a server process killed with SIGKILL. Backoff delays are small and
injected; every wait is on an event, a queue or a bounded poll of the condition under test.
"""

from __future__ import annotations

import inspect
import logging
import os
import queue
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

import wsclient

from .conftest import RunningServer

FAST = wsclient.Backoff(initial=0.01, maximum=0.05)
#: For tests where a broken policy would retry forever: it fails on a count instead.
LIMITED = wsclient.Backoff(initial=0.01, maximum=0.05, max_attempts=5)
TIMEOUT = 10.0


def echo(ws: wsclient.WebSocket) -> None:
    for message in ws:
        ws.send(message)


class LogWatch(logging.Handler):
    """Collects the reconnecting module's log lines; wait_for() a line containing text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.seen: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.put(record.getMessage())

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no log line with {text!r}; saw {self.seen}") from None
            self.seen.append(line)
            if text in line:
                return line


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    logger = logging.getLogger("wsclient.reconnecting")
    watch = LogWatch()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(level)


@pytest.fixture
def servers() -> Iterator[Callable[..., RunningServer]]:
    """Start wsclient servers (``port=`` to restart on a port); stopped at teardown."""
    started: List[RunningServer] = []

    def start(handler: Callable[[wsclient.WebSocket], Any] = echo, **options: Any) -> RunningServer:
        server = RunningServer(handler, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.server.socket.fileno() != -1:
            server.stop()


@pytest.fixture
def clients() -> Iterator[List[Any]]:
    """Reconnecting clients to close at teardown."""
    made: List[Any] = []
    yield made
    for client in made:
        client.close()


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """A bounded poll of the condition under test."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def free_port() -> int:
    """A port nothing listens on (bound and released: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the basics ---------------------------------------------------------------------------


def test_reconnect_returns_a_reconnecting_websocket_with_the_websocket_face(servers, clients) -> None:
    server = servers()
    ws = wsclient.connect(server.uri, proxy=None, reconnect=True)
    clients.append(ws)
    assert isinstance(ws, wsclient.ReconnectingWebSocket)
    ws.send("hello")
    assert ws.recv(timeout=TIMEOUT) == "hello"
    ws.send(b"\x00\x01")
    assert ws.recv(timeout=TIMEOUT) == b"\x00\x01"
    ws.send(["frag", "ments"])
    assert ws.recv(timeout=TIMEOUT) == "fragments"
    ws.send('{"a": 1}')
    assert ws.recv_json(timeout=TIMEOUT) == {"a": 1}
    for text in ("x", "y", "z"):
        ws.send(text)
    assert ws.recv_until(lambda m: m == "z", timeout=TIMEOUT, skipped=(skipped := [])) == "z"
    assert skipped == ["x", "y"]
    assert ws.ping().wait(TIMEOUT)
    ws.pong(b"beat")
    ws.send("d1")
    ws.send("d2")
    drained: List[Any] = []
    wait_until(lambda: bool(drained.extend(ws.drain())) or len(drained) >= 2)  # never blocks
    assert drained == ["d1", "d2"]
    assert ws.drain() == []
    assert ws.connection is not None and ws.connection.remote_address == ws.remote_address
    assert ws.request.path == "/"
    assert int(ws.response.status) == 101
    assert ws.subprotocol is None
    assert ws.remote_address[1] == server.port
    assert ws.local_address[0] == "127.0.0.1"
    assert ws.reconnects == 0 and ws.last_error is None
    assert not ws.closed and ws.close_code is None
    with ws:
        pass
    assert ws.closed and ws.close_code == 1000
    with pytest.raises(wsclient.ConnectionClosedOK):
        ws.send("after close")
    with pytest.raises(wsclient.ConnectionClosedOK):
        ws.recv(timeout=TIMEOUT)
    assert list(ws) == []


def test_options_are_checked_at_once(servers) -> None:
    server = servers()
    dial = lambda: wsclient.connect(server.uri, proxy=None)  # noqa: E731
    with pytest.raises(TypeError, match="max_buffer"):
        wsclient.ReconnectingWebSocket(dial, FAST, max_buffer="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_buffer"):
        wsclient.ReconnectingWebSocket(dial, FAST, max_buffer=0)
    with pytest.raises(TypeError, match="backoff"):
        wsclient.ReconnectingWebSocket(dial, True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reconnect"):
        wsclient.connect(server.uri, reconnect="yes")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="on_connect"):
        wsclient.connect(server.uri, on_connect=print)
    with pytest.raises(TypeError, match=r"reconnect\(\) got an unexpected keyword argument 'time_out'"):
        wsclient.reconnect(server.uri, time_out=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="on_connect"):
        wsclient.reconnect(server.uri, on_connect=print)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="backoff"):
        wsclient.reconnect(server.uri, backoff=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_size"):  # a bad value is final: raised, not retried
        wsclient.connect(server.uri, reconnect=FAST, max_size=-1)
    with pytest.raises(wsclient.InvalidURI):
        wsclient.connect("http://example.com/", reconnect=FAST)


def test_reconnect_takes_the_options_of_connect() -> None:
    # Listed one by one (typed, and checked by Python itself): none may be missing.
    connect_options = set(inspect.signature(wsclient.connect).parameters) - {"reconnect", "on_connect", "sock"}
    assert set(inspect.signature(wsclient.reconnect).parameters) == connect_options | {"backoff"}
    defaults = {name: p.default for name, p in inspect.signature(wsclient.connect).parameters.items()}
    for name, parameter in inspect.signature(wsclient.reconnect).parameters.items():
        if name in connect_options and name != "uri":
            assert parameter.default == defaults[name], name


# -- drops --------------------------------------------------------------------------------


def test_server_shut_down_and_restarted_on_the_same_port(servers, clients, logs) -> None:
    server = servers()
    port = server.port
    ws = wsclient.connect(server.uri, proxy=None, reconnect=FAST)
    clients.append(ws)
    ws.send("before")
    assert ws.recv(timeout=TIMEOUT) == "before"
    server.stop()  # 1001 going away
    assert "1001" in logs.wait_for("connection dropped")
    # The port refuses connections until the new server listens.
    logs.wait_for("failed: ConnectionRefusedError")
    assert isinstance(ws.last_error, ConnectionRefusedError)
    servers(port=port)
    logs.wait_for("reconnected")
    ws.send("after")
    assert ws.recv(timeout=TIMEOUT) == "after"
    assert ws.reconnects == 1


SERVER_PROCESS = """
import sys, wsclient
def echo(ws):
    for message in ws:
        ws.send(message)
server = wsclient.serve(echo, "127.0.0.1", int(sys.argv[1]))
print(server.port, flush=True)
server.serve_forever()
"""


class ServerProcess:
    """A wsclient echo server in another process, which the test kills with SIGKILL."""

    def __init__(self, port: int = 0) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        self.process = subprocess.Popen([sys.executable, "-c", SERVER_PROCESS, str(port)],
                                        stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(TIMEOUT)
        assert self.process.stdout is not None
        self.process.stdout.close()


def test_server_process_killed_and_restarted_on_the_same_port(clients, logs) -> None:
    first = ServerProcess()
    second: Optional[ServerProcess] = None
    try:
        ws = wsclient.connect(f"ws://127.0.0.1:{first.port}/", proxy=None, reconnect=FAST)
        clients.append(ws)
        ws.send("one")
        assert ws.recv(timeout=TIMEOUT) == "one"
        first.kill()  # No close frame: the kernel ends the TCP connection.
        logs.wait_for("connection dropped")
        ws.send("two")  # queued while the port refuses connections
        logs.wait_for("failed: ConnectionRefusedError")
        second = ServerProcess(first.port)
        assert ws.recv(timeout=TIMEOUT) == "two"
        assert ws.reconnects == 1
        assert ws.last_error is not None
        dropped = [line for line in logs.seen if "connection dropped" in line]
        assert "1006" in dropped[0]  # abnormal closure: no close frame
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_tcp_reset_mid_stream_keeps_what_was_received(clients, logs) -> None:
    # A raw peer on one port: the first connection gets m1, m2 and a ping; once the pong
    # shows the client read them (in order: they are in its queue, unread by the
    # application), a TCP reset. The second gets a welcome, then an echo.
    from .reliability.rawpeer import client_frames, reset
    from wsclient.frames import Frame, Opcode
    from wsclient.handshake import accept_response, check_request
    from wsclient.http11 import RequestParser

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    uri = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
    errors: List[BaseException] = []

    def accept() -> socket.socket:
        sock, _ = listener.accept()
        sock.settimeout(TIMEOUT)
        parser, request = RequestParser(), None
        while request is None:
            request = parser.feed(sock.recv(65536))
        check_request(request)
        sock.sendall(accept_response(request).serialize())
        return sock

    def peer() -> None:
        try:
            first = accept()
            first.sendall(Frame(Opcode.TEXT, b"m1").serialize() + Frame(Opcode.TEXT, b"m2").serialize()
                          + Frame(Opcode.PING, b"after m2").serialize())
            assert [f.opcode for f in client_frames(first, 1)] == [Opcode.PONG]
            reset(first)
            second = accept()
            second.sendall(Frame(Opcode.TEXT, b"welcome 2").serialize())
            [echo] = client_frames(second, 1)
            second.sendall(Frame(Opcode.TEXT, echo.payload).serialize())
            client_frames(second, until_close=True)
            second.close()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    opened: List[wsclient.WebSocket] = []
    ws = wsclient.connect(uri, proxy=None, reconnect=FAST, on_connect=opened.append, compression=None)
    clients.append(ws)
    logs.wait_for("connection dropped")
    assert ws.recv(timeout=TIMEOUT) == "m1"  # received before the reset, returned after it
    assert ws.recv(timeout=TIMEOUT) == "m2"
    assert ws.recv(timeout=TIMEOUT) == "welcome 2"
    ws.send("still here")
    assert ws.recv(timeout=TIMEOUT) == "still here"
    assert ws.last_error is not None and ws.last_error.code == 1006  # type: ignore[attr-defined]
    first = opened[0]
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        first.recv(timeout=0)
    assert isinstance(info.value.__cause__, ConnectionResetError)
    ws.close()
    thread.join(TIMEOUT)
    listener.close()
    assert not errors, errors


def test_1012_service_restart_is_retried(servers, clients) -> None:
    count = []

    def handler(ws: wsclient.WebSocket) -> None:
        count.append(ws)
        if len(count) == 1:
            ws.send("first")
            ws.close(1012, "restarting")
            return
        echo(ws)

    server = servers(handler)
    ws = wsclient.connect(server.uri, proxy=None, reconnect=FAST)
    clients.append(ws)
    assert ws.recv(timeout=TIMEOUT) == "first"
    # Not sooner: a message sent while the server's close frame is on its way is
    # discarded by the server (the documented loss of a message handed to a dying
    # connection).
    wait_until(lambda: ws.reconnects == 1)
    ws.send("again")
    assert ws.recv(timeout=TIMEOUT) == "again"
    assert ws.reconnects == 1
    assert isinstance(ws.last_error, wsclient.ConnectionClosedError)
    assert (ws.last_error.code, ws.last_error.reason) == (1012, "restarting")


def test_final_close_code_ends_it_after_the_messages(servers, clients) -> None:
    def handler(ws: wsclient.WebSocket) -> None:
        ws.send("you are banned")
        ws.close(4003, "banned")

    server = servers(handler)
    ws = wsclient.connect(server.uri, proxy=None, reconnect=LIMITED)
    clients.append(ws)
    assert ws.recv(timeout=TIMEOUT) == "you are banned"
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=TIMEOUT)
    assert (info.value.code, info.value.reason) == (4003, "banned")
    assert ws.closed and ws.close_code == 4003 and ws.close_reason == "banned"
    assert ws.reconnects == 0
    with pytest.raises(wsclient.ConnectionClosedError):
        ws.send("more")


def test_custom_policy_retries_an_application_code(servers, clients) -> None:
    count = []

    def handler(ws: wsclient.WebSocket) -> None:
        count.append(ws)
        if len(count) < 3:
            ws.close(4000, "come back")
            return
        echo(ws)

    def retry(error: BaseException) -> bool:
        return (isinstance(error, wsclient.ConnectionClosed) and error.code == 4000) or wsclient.backoff.should_retry(error)

    server = servers(handler)
    ws = wsclient.connect(server.uri, proxy=None, reconnect=wsclient.Backoff(initial=0.01, retry=retry))
    clients.append(ws)
    # Sent before, "through" could go to a connection the server is closing (and be lost
    # there, as documented): wait for the connection that stays.
    wait_until(lambda: ws.reconnects == 2)
    ws.send("through")
    assert ws.recv(timeout=TIMEOUT) == "through"
    assert ws.reconnects == 2


# -- opening errors ----------------------------------------------------------------------


def test_503_with_retry_after_is_honoured(servers, clients) -> None:
    seen: List[float] = []

    def process_request(request: wsclient.Request) -> Any:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return 503, {"Retry-After": "1"}, b"busy"
        return None

    server = servers(process_request=process_request)
    ws = wsclient.connect(server.uri, proxy=None, reconnect=wsclient.Backoff(initial=0.01))
    clients.append(ws)
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.99  # Retry-After: 1, not the backoff's 10 ms
    assert isinstance(ws.last_error, wsclient.InvalidStatus) and ws.last_error.status == 503
    ws.send("in")
    assert ws.recv(timeout=TIMEOUT) == "in"


def test_403_is_not_retried(servers) -> None:
    seen = []

    def process_request(request: wsclient.Request) -> Any:
        seen.append(request)
        return 403, {}, b"go away"

    server = servers(process_request=process_request)
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(server.uri, proxy=None, reconnect=LIMITED)
    assert info.value.status == 403 and info.value.response.body == b"go away"
    assert len(seen) == 1


def test_403_on_a_reconnection_ends_it(servers, clients) -> None:
    seen = []

    def process_request(request: wsclient.Request) -> Any:
        seen.append(request)
        return (403, {}, b"token revoked") if len(seen) > 1 else None

    def handler(ws: wsclient.WebSocket) -> None:
        ws.send("hi")
        ws.close(1001, "bye")

    server = servers(handler, process_request=process_request)
    ws = wsclient.connect(server.uri, proxy=None, reconnect=LIMITED)
    clients.append(ws)
    assert ws.recv(timeout=TIMEOUT) == "hi"
    with pytest.raises(wsclient.InvalidStatus) as info:
        ws.recv(timeout=TIMEOUT)
    assert info.value.status == 403
    assert len(seen) == 2
    assert ws.closed and ws.close_code == 1006
    with pytest.raises(wsclient.InvalidStatus):
        ws.send("x")


def test_attempt_limit_against_a_closed_port(logs) -> None:
    port = free_port()
    attempts = []

    def uri() -> str:
        attempts.append(time.monotonic())
        return f"ws://127.0.0.1:{port}/"

    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        wsclient.connect(uri, proxy=None, reconnect=wsclient.Backoff(initial=0.01, max_attempts=3))
    assert len(attempts) == 3
    assert time.monotonic() - started < 5
    logs.wait_for("giving up after 3 attempts")


def test_iterator_form_yields_a_connection_per_drop(servers) -> None:
    count = []

    def handler(ws: wsclient.WebSocket) -> None:
        count.append(ws)
        ws.send(f"connection {len(count)}")
        if len(count) < 3:
            ws.close(1012)
            return
        ws.close(1008, "policy")

    server = servers(handler)
    got = []
    tokens = iter(range(1, 100))
    iterator = wsclient.reconnect(server.uri, backoff=LIMITED, proxy=None,
                                  headers=lambda: [("Authorization", f"Bearer {next(tokens)}")])
    assert count == []  # nothing happens before the first next()
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        for ws in iterator:
            assert isinstance(ws, wsclient.WebSocket)
            try:
                for message in ws:
                    got.append(message)
            except wsclient.ConnectionClosed:
                continue
    assert info.value.code == 1008
    assert got == ["connection 1", "connection 2", "connection 3"]
    assert [ws.request.headers["Authorization"] for ws in count] == ["Bearer 1", "Bearer 2", "Bearer 3"]


def test_iterator_form_stops_on_403_and_break_ends_it(servers) -> None:
    seen = []

    def process_request(request: wsclient.Request) -> Any:
        seen.append(request)
        return (403, {}, b"no") if len(seen) > 1 else None

    server = servers(process_request=process_request)
    iterator = wsclient.reconnect(server.uri, backoff=LIMITED, proxy=None)
    ws = next(iterator)
    ws.send("x")
    assert ws.recv(timeout=TIMEOUT) == "x"
    with pytest.raises(wsclient.InvalidStatus):
        next(iterator)  # closes the first connection (1000), then gets 403
    assert ws.closed and ws.close_code == 1000
    assert len(seen) == 2


def test_healthy_connections_reset_the_attempt_limit(servers, clients) -> None:
    count = []

    def handler(ws: wsclient.WebSocket) -> None:
        count.append(ws)
        ws.send(f"n{len(count)}")
        ws.close(1012)

    server = servers(handler)
    # Every connection counts as healthy (healthy_after=0): one attempt per drop is enough.
    ws = wsclient.connect(server.uri, proxy=None,
                          reconnect=wsclient.Backoff(initial=0.01, max_attempts=1, healthy_after=0.0))
    clients.append(ws)
    assert [ws.recv(timeout=TIMEOUT) for _ in range(3)] == ["n1", "n2", "n3"]
    # None counts as healthy: the drop of the first is one failed attempt too many.
    flaky = wsclient.connect(server.uri, proxy=None,
                             reconnect=wsclient.Backoff(initial=0.01, max_attempts=1, healthy_after=1000.0))
    clients.append(flaky)
    assert flaky.recv(timeout=TIMEOUT).startswith("n")
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        flaky.recv(timeout=TIMEOUT)
    assert info.value.code == 1012 and flaky.reconnects == 0


def test_logs_never_show_the_password(servers, clients, logs) -> None:
    def handler(ws: wsclient.WebSocket) -> None:
        ws.close(1012)

    server = servers(handler)
    uri = f"ws://user:s3cret@127.0.0.1:{server.port}/"
    ws = wsclient.connect(uri, proxy=None, reconnect=wsclient.Backoff(initial=0.01, max_attempts=3))
    clients.append(ws)
    with pytest.raises(wsclient.ConnectionClosedError):
        ws.recv(timeout=TIMEOUT)
    logs.wait_for("giving up")
    assert logs.seen and not [line for line in logs.seen if "s3cret" in line]
    assert "s3cret" not in repr(ws)


# -- sends, on_connect, headers -------------------------------------------------------


def test_sends_during_an_outage_are_delivered_in_order_after_on_connect(servers, clients, logs) -> None:
    received: "queue.Queue[Tuple[int, str]]" = queue.Queue()
    connections = []

    def handler(ws: wsclient.WebSocket) -> None:
        connections.append(ws)
        number = len(connections)
        for message in ws:
            received.put((number, message))

    server = servers(handler)
    port = server.port
    subscribed = []

    def on_connect(ws: wsclient.WebSocket) -> None:
        subscribed.append(ws)
        ws.send(f"subscribe {len(subscribed)}")

    ws = wsclient.connect(server.uri, proxy=None, reconnect=FAST, on_connect=on_connect)
    clients.append(ws)
    assert received.get(timeout=TIMEOUT) == (1, "subscribe 1")
    server.stop()
    logs.wait_for("connection dropped")
    for i in range(50):
        ws.send(f"m{i}")  # queued: returns at once
    assert ws.connection is None
    with pytest.raises(wsclient.ConnectionClosedError):
        ws.ping()  # nothing to ping while reconnecting
    # What could never be sent fails the send() now, not the reconnection later.
    with pytest.raises(UnicodeEncodeError):
        ws.send("\udc00")
    with pytest.raises(TypeError):
        ws.send(["text", b"bytes"])
    with pytest.raises(TypeError):
        ws.send({"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0)
    servers(handler, port=port)
    got = [received.get(timeout=TIMEOUT) for _ in range(51)]
    assert got == [(2, "subscribe 2")] + [(2, f"m{i}") for i in range(50)]
    assert len(subscribed) == 2


def test_send_buffer_is_bounded_in_bytes(servers, logs) -> None:
    server = servers()
    port = server.port

    def dial() -> wsclient.WebSocket:
        return wsclient.connect(f"ws://127.0.0.1:{port}/", proxy=None)

    ws = wsclient.ReconnectingWebSocket(dial, FAST, max_buffer=100)
    try:
        server.stop()
        logs.wait_for("connection dropped")
        ws.send(b"a" * 60)
        ws.send("é" * 20)  # 40 bytes of UTF-8: 100 in all
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="buffer"):
            ws.send(b"b", timeout=0.2)
        assert 0.15 < time.monotonic() - started < 5
        blocked: "queue.Queue[object]" = queue.Queue()

        def send_waiting() -> None:
            try:
                ws.send(b"c", timeout=TIMEOUT)
                blocked.put("sent")
            except Exception as exc:  # pragma: no cover - reported below
                blocked.put(exc)

        thread = threading.Thread(target=send_waiting)
        thread.start()
        servers(port=port)  # the buffer drains into the new connection: the waiter goes on
        assert blocked.get(timeout=TIMEOUT) == "sent"
        thread.join(TIMEOUT)
        assert ws.recv(timeout=TIMEOUT) == b"a" * 60
        assert ws.recv(timeout=TIMEOUT) == "é" * 20
        assert ws.recv(timeout=TIMEOUT) == b"c"
    finally:
        ws.close()


def test_on_connect_runs_once_per_connection(servers, clients) -> None:
    count = []

    def handler(ws: wsclient.WebSocket) -> None:
        count.append(ws)
        message = ws.recv()
        ws.send(f"{message} on {len(count)}")
        if len(count) <= 3:
            ws.close(1012)
            return
        echo(ws)

    server = servers(handler)
    calls: List[wsclient.WebSocket] = []
    ws = wsclient.connect(server.uri, proxy=None, reconnect=FAST, on_connect=lambda c: (calls.append(c), c.send("hello")))
    clients.append(ws)
    assert [ws.recv(timeout=TIMEOUT) for _ in range(4)] == [f"hello on {n}" for n in (1, 2, 3, 4)]
    assert ws.reconnects == 3
    assert len(calls) == 4 == len(count)
    assert len({id(c) for c in calls}) == 4


def test_on_connect_failing_with_a_bug_is_final(servers) -> None:
    server = servers()

    def on_connect(ws: wsclient.WebSocket) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        wsclient.connect(server.uri, proxy=None, reconnect=LIMITED, on_connect=on_connect)


def test_headers_callable_gives_a_fresh_token_per_attempt(servers, clients) -> None:
    tokens = iter(range(1, 100))
    seen: List[Optional[str]] = []

    def process_request(request: wsclient.Request) -> Any:
        seen.append(request.headers["Authorization"])
        if len(seen) == 2:
            return 503, {}, b""  # a failed attempt gets its own token too
        return None

    def handler(ws: wsclient.WebSocket) -> None:
        ws.send(ws.request.headers["Authorization"])
        if len(seen) == 1:
            ws.close(1001)
            return
        echo(ws)

    server = servers(handler, process_request=process_request)
    ws = wsclient.connect(server.uri, proxy=None, reconnect=FAST,
                          headers=lambda: {"Authorization": f"Bearer {next(tokens)}"})
    clients.append(ws)
    assert ws.recv(timeout=TIMEOUT) == "Bearer 1"
    assert ws.recv(timeout=TIMEOUT) == "Bearer 3"
    assert seen == ["Bearer 1", "Bearer 2", "Bearer 3"]


# -- closing, wait() ---------------------------------------------------------------------


def test_close_during_a_backoff_wait_returns_at_once(servers, logs) -> None:
    server = servers()
    before = set(threading.enumerate())
    ws = wsclient.connect(server.uri, proxy=None, reconnect=wsclient.Backoff(initial=30.0, jitter=0.0))
    [reconnecting] = [t for t in set(threading.enumerate()) - before if t.name == "wsclient-reconnect"]
    woke: "queue.Queue[object]" = queue.Queue()

    def receive() -> None:
        try:
            woke.put(ws.recv())
        except Exception as exc:
            woke.put(exc)

    thread = threading.Thread(target=receive)
    thread.start()
    server.stop()
    logs.wait_for("in 30.000 s")  # the reconnecting thread now waits 30 s
    started = time.monotonic()
    ws.close()
    assert time.monotonic() - started < 0.5
    error = woke.get(timeout=TIMEOUT)
    assert isinstance(error, wsclient.ConnectionClosedOK)
    thread.join(TIMEOUT)
    assert ws.closed and ws.close_code == 1000
    reconnecting.join(1.0)  # the backoff wait itself ended, not only close()
    assert not reconnecting.is_alive()
    ws.close()  # idempotent


def test_close_from_another_thread_wakes_a_waiting_send(servers, logs) -> None:
    server = servers()
    port = server.port
    ws = wsclient.ReconnectingWebSocket(lambda: wsclient.connect(f"ws://127.0.0.1:{port}/", proxy=None),
                                        wsclient.Backoff(initial=30.0), max_buffer=10)
    server.stop()
    logs.wait_for("connection dropped")
    ws.send(b"0123456789")
    result: "queue.Queue[object]" = queue.Queue()

    def send() -> None:
        try:
            ws.send(b"more")
        except Exception as exc:
            result.put(exc)

    thread = threading.Thread(target=send)
    thread.start()
    wait_until(lambda: thread.is_alive())
    threading.Timer(0.05, ws.close).start()
    assert isinstance(result.get(timeout=TIMEOUT), wsclient.ConnectionClosedOK)
    thread.join(TIMEOUT)


def test_wait_works_across_a_reconnection(servers, clients, logs) -> None:
    count = []

    def handler(ws: wsclient.WebSocket) -> None:
        count.append(ws)
        if len(count) == 1:
            ws.close(1012)
            return
        ws.send("after the restart")
        echo(ws)

    server = servers(handler)
    ws = wsclient.connect(server.uri, proxy=None, reconnect=FAST)
    clients.append(ws)
    # Dropped at once (1012): wait() wakes when the next connection's greeting is in.
    assert wsclient.wait([ws], timeout=TIMEOUT) == [ws]
    assert ws.recv(timeout=0) == "after the restart"
    plain = wsclient.connect(server.uri, proxy=None)
    clients.append(plain)
    assert plain.recv(timeout=TIMEOUT) == "after the restart"
    assert wsclient.wait([ws], timeout=0.05) == []
    ws.send("ping me")
    assert wsclient.wait([ws, plain], timeout=TIMEOUT) in ([ws], [ws, plain])
    assert ws.recv(timeout=0) == "ping me"
    ws.close()
    assert wsclient.wait([ws], timeout=TIMEOUT) == [ws]  # closed: recv() would not block


# -- no thundering herd ---------------------------------------------------------------------


def test_200_clients_come_back_spread_over_the_backoff_window(servers, clients) -> None:
    clients_count, window = 200, 2.0
    arrivals: List[float] = []
    lock = threading.Lock()
    restarted = threading.Event()

    def process_request(request: wsclient.Request) -> Any:
        if restarted.is_set():
            with lock:
                arrivals.append(time.monotonic())
        return None

    def handler(ws: wsclient.WebSocket) -> None:
        for _ in ws:
            pass

    server = servers(handler, process_request=process_request)
    port = server.port
    backoff = wsclient.Backoff(initial=window, maximum=window)
    for _ in range(clients_count):
        clients.append(wsclient.connect(server.uri, proxy=None, reconnect=backoff, ping_interval=None))
    restarted.set()
    stopping = time.monotonic()
    server.stop(timeout=30)  # 1001 to every client at once
    servers(handler, port=port, process_request=process_request)
    wait_until(lambda: sum(c.reconnects for c in clients) == clients_count, timeout=60)
    offsets = sorted(t - stopping for t in arrivals)
    # Slices of a tenth of the window, from the first arrival (a loaded machine may take a
    # while to close 200 connections: the drops, and so the arrivals, start later).
    slices = [0] * (int((offsets[-1] - offsets[0]) / (window / 10)) + 1)
    for offset in offsets:
        slices[int((offset - offsets[0]) / (window / 10))] += 1
    quartiles = statistics.quantiles(offsets, n=4)
    report = (f"{clients_count} reconnects after a restart, window {window} s: first {offsets[0]:.3f} s, "
              f"quartiles {', '.join(f'{q:.3f}' for q in quartiles)}, last {offsets[-1]:.3f} s; "
              f"per {window / 10:.1f} s: {slices}")
    print("\n" + report)
    assert len(offsets) >= clients_count, report
    # Full jitter spreads them uniformly over the window (a tenth of them per tenth of it):
    # no burst (with room for a stalled machine)...
    assert max(slices) <= clients_count * 0.3, report
    # ...and the middle half of the clients spans a good part of the window.
    assert quartiles[2] - quartiles[0] >= window * 0.3, report
