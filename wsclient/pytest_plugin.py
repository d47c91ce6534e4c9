"""pytest fixtures for testing WebSocket code: loopback servers, clients, and a faulty server.

Registered through the ``pytest11`` entry point, so the fixtures are available wherever
wsclient is installed; the plugin defines fixtures only (no hooks), so it changes nothing
unless a test asks for one of them. Disable it with ``-p no:wsclient``.

Fixtures:

* ``ws_server(handler, **options)``: a :func:`wsclient.serve` server on 127.0.0.1, port 0,
  serving in a thread; returns a :class:`TestServer` (``.uri``, ``.port``, ``.server``);
  shut down at teardown.
* ``ws_echo_server``: a :class:`TestServer` echoing every message.
* ``ws_connect(uri, **options)``: :func:`wsclient.connect` (``proxy=None`` unless given);
  every connection is closed at teardown.
* ``ws_faulty_server(**faults)``: a :class:`FaultyServer`, an echo server that misbehaves
  on purpose (see :class:`Faults`).
* ``ws_replay_server(path, **options)``: a :class:`ReplayTestServer` playing the server's side
  of a recording made with ``python -m wsclient connect URI --record FILE`` (see
  :mod:`wsclient.replay`); ``.uri``, ``.stop()``. A client whose messages differ from the
  recording fails the test: ``.stop()`` raises :class:`wsclient.replay.ReplayMismatch` (an
  ``AssertionError``), and a mismatch not reported by then fails the test at teardown.

How faults are made: :class:`wsclient.WebSocket` always answers pings, validates what it
sends and frames messages its own way, so the public API cannot break the protocol. The
faulty server is therefore a small scripted peer: it runs the opening handshake with the
sans-I/O helpers of :mod:`wsclient.handshake` and :mod:`wsclient.http11`, parses frames with
:class:`wsclient.frames.FrameParser` and writes frames it builds with
:func:`wsclient.frames.serialize_frame` straight onto the socket; the TCP reset is
``SO_LINGER`` with a zero timeout followed by ``close()``. It offers no extensions.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import select
import socket
import struct
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Union

import pytest

from .client import connect
from .close import parse_close, serialize_close
from .connection import WebSocket
from .frames import FramePiece, FrameParser, Opcode, serialize_frame
from .handshake import accept_response, check_request
from .http11 import RequestParser
from .replay import ReplayMismatch, ReplayServer
from .server import WebSocketServer, serve

__all__ = ["TestServer", "Faults", "FaultyServer", "ReplayTestServer", "ws_server", "ws_echo_server", "ws_connect",
           "ws_faulty_server", "ws_replay_server"]

#: Seconds teardown waits for a server to stop.
DEFAULT_TEARDOWN_TIMEOUT = 10.0


def _echo(ws: WebSocket) -> None:
    for message in ws:
        ws.send(message)


class TestServer:
    """A :class:`wsclient.WebSocketServer` serving in a background thread.

    Args:
        handler: the connection handler.
        **options: options of :func:`wsclient.serve` (``host`` defaults to 127.0.0.1).
    """

    __test__ = False  # Not a test class, whatever pytest thinks of the name.

    def __init__(self, handler: Callable[[WebSocket], Any], **options: Any) -> None:
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        self.server: WebSocketServer = serve(handler, **options)
        self._thread = threading.Thread(target=self.server.serve_forever, name="ws-test-server", daemon=True)
        self._thread.start()
        # Serving (its selector open) before the test starts counting threads or fds.
        if not self.server.wait_serving(DEFAULT_TEARDOWN_TIMEOUT):
            raise RuntimeError("the test server did not start serving")

    @property
    def uri(self) -> str:
        """The ``ws://`` (or ``wss://``) URI of the server."""
        return self.server.uri

    @property
    def port(self) -> Optional[int]:
        """The bound port."""
        return self.server.port

    def stop(self, timeout: float = DEFAULT_TEARDOWN_TIMEOUT) -> None:
        """Shut down (open connections get 1001) and release the socket."""
        self.server.shutdown(timeout=timeout)
        self.server.server_close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the test server's thread did not stop")


@dataclasses.dataclass(frozen=True)
class Faults:
    """How :class:`FaultyServer` misbehaves; by default it is a plain echo server.

    Attributes:
        ignore_pings: never answer a ping (keepalive on the client must time out).
        delay: seconds to wait before answering each message (a close frame that arrives
            meanwhile is still answered at once, and ``stop()`` cuts the wait short).
        fragment_size: send each answer in frames of at most this many bytes.
        invalid_utf8: answer each text message with a text frame that is not UTF-8
            (the client must close with 1007, RFC 6455 section 8.1).
        close_code: close with this code (and ``close_reason``) once ``after`` messages
            were echoed.
        close_reason: the reason sent with ``close_code``.
        reset: reset the TCP connection (RST, no close frame) once ``after`` messages were
            echoed (the client sees 1006).
        after: messages echoed normally before ``close_code`` or ``reset`` strikes; 0
            strikes right after the opening handshake.
    """

    ignore_pings: bool = False
    delay: float = 0.0
    fragment_size: Optional[int] = None
    invalid_utf8: bool = False
    close_code: Optional[int] = None
    close_reason: str = ""
    reset: bool = False
    after: int = 0

    def __post_init__(self) -> None:
        if self.fragment_size is not None and self.fragment_size < 1:
            raise ValueError("fragment_size must be at least 1")
        if self.close_code is not None:
            serialize_close(self.close_code, self.close_reason)  # Validates both.


class FaultyServer:
    """An echo server on 127.0.0.1 that misbehaves as :class:`Faults` says.

    Args:
        faults: what to break.
        timeout: seconds any one read may wait before the connection is dropped.
    """

    def __init__(self, faults: Faults, *, timeout: float = 30.0) -> None:
        self.faults = faults
        self.timeout = timeout
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        self.uri = f"ws://127.0.0.1:{self.port}/"
        self._stopping = False
        self._stopped = threading.Event()
        self._threads: List[threading.Thread] = []
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        self._accepter = threading.Thread(target=self._accept_loop, name="ws-faulty-server", daemon=True)
        self._accepter.start()

    def stop(self, timeout: float = DEFAULT_TEARDOWN_TIMEOUT) -> None:
        """Stop accepting, drop every connection, join the threads.

        Raises:
            RuntimeError: a thread of the server did not stop within ``timeout`` seconds.
        """
        self._stopping = True
        self._stopped.set()
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.socket.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        threads = [self._accepter, *self._threads]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            raise RuntimeError(f"the faulty server's threads did not stop within {timeout} s: {alive}")

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), name="ws-faulty-conn", daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(self.timeout)
            leftover = self._handshake(conn)
            self._run(conn, leftover)
        except (OSError, ValueError):
            pass  # The client went away or broke the handshake: nothing to test here.
        finally:
            conn.close()

    def _handshake(self, conn: socket.socket) -> bytes:
        parser = RequestParser()
        request = None
        while request is None:
            request = parser.feed(conn.recv(65536))
        check_request(request)
        conn.sendall(accept_response(request).serialize())
        return parser.leftover

    def _run(self, conn: socket.socket, data: bytes) -> None:
        frames = FrameParser(expect_masked=True)
        echoed = 0
        opcode = 0
        parts: List[bytes] = []
        if self._strike(conn, echoed):
            return
        pending = collections.deque(frames.feed(data))
        while True:
            while pending:
                piece = pending.popleft()
                header = piece.header
                if header.opcode == Opcode.PING and not self.faults.ignore_pings:
                    conn.sendall(serialize_frame(Opcode.PONG, piece.data))
                elif header.opcode == Opcode.CLOSE:
                    _answer_close(conn, piece)
                    return
                elif header.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                    if header.opcode != Opcode.CONT and piece.first:
                        opcode, parts = header.opcode, []
                    parts.append(piece.data)
                    if piece.last and header.fin:
                        if self.faults.delay and not self._pause(conn, frames, pending):
                            return
                        self._answer(conn, opcode, b"".join(parts))
                        echoed += 1
                        if self._strike(conn, echoed):
                            return
            data = conn.recv(65536)
            if not data:
                return
            pending.extend(frames.feed(data))

    def _pause(self, conn: socket.socket, frames: FrameParser, pending: "collections.deque[FramePiece]") -> bool:
        """Wait ``faults.delay`` seconds before an answer; frames that arrive meanwhile go to
        ``pending``, but a close frame is answered at once. False when the connection ended
        (the close was answered, the client left, or :meth:`stop` was called)."""
        deadline = time.monotonic() + self.faults.delay
        while not self._stopped.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            # stop() shuts the socket down, which makes it readable: the wait ends at once.
            if select.select([conn], [], [], remaining)[0]:
                data = conn.recv(65536)
                if not data:
                    return False
                for piece in frames.feed(data):
                    if piece.header.opcode == Opcode.CLOSE:
                        _answer_close(conn, piece)
                        return False
                    pending.append(piece)
        return False

    def _strike(self, conn: socket.socket, echoed: int) -> bool:
        """Close or reset once ``after`` messages were echoed; True when done."""
        if echoed != self.faults.after:
            return False
        if self.faults.reset:
            # SO_LINGER on, timeout 0: close() sends RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return True
        if self.faults.close_code is not None:
            payload = serialize_close(self.faults.close_code, self.faults.close_reason)
            conn.sendall(serialize_frame(Opcode.CLOSE, payload))
            _drain_until_close(conn)
            return True
        return False

    def _answer(self, conn: socket.socket, opcode: int, payload: bytes) -> None:
        if self.faults.invalid_utf8 and opcode == Opcode.TEXT:
            payload = b"\xce\xba\xff\xfe invalid"  # 0xff never occurs in UTF-8.
        size = self.faults.fragment_size or max(len(payload), 1)
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        for index, chunk in enumerate(chunks):
            conn.sendall(serialize_frame(opcode if index == 0 else Opcode.CONT, chunk, fin=index == len(chunks) - 1))


def _answer_close(conn: socket.socket, piece: FramePiece) -> None:
    """Echo the client's close frame (its code and reason), as RFC 6455 section 5.5.1 asks."""
    code, reason = parse_close(piece.data) if piece.data else (1000, "")
    conn.sendall(serialize_frame(Opcode.CLOSE, serialize_close(code, reason)))


def _drain_until_close(conn: socket.socket) -> None:
    """After our close frame, read (bounded by the socket timeout) until the peer's close."""
    parser = FrameParser(expect_masked=True)
    while True:
        data = conn.recv(65536)
        if not data or any(p.header.opcode == Opcode.CLOSE for p in parser.feed(data)):
            return


@pytest.fixture
def ws_server() -> Iterator[Callable[..., TestServer]]:
    """Factory: ``ws_server(handler, **options)`` starts a :class:`TestServer` on loopback."""
    servers: List[TestServer] = []

    def start(handler: Callable[[WebSocket], Any] = _echo, **options: Any) -> TestServer:
        server = TestServer(handler, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def ws_echo_server(ws_server: Callable[..., TestServer]) -> TestServer:
    """A :class:`TestServer` that sends every message back."""
    return ws_server(_echo)


@pytest.fixture
def ws_connect() -> Iterator[Callable[..., WebSocket]]:
    """Factory: ``ws_connect(uri, **options)`` returns a connection closed at teardown."""
    connections: List[WebSocket] = []

    def open_connection(uri: str, **options: Any) -> WebSocket:
        options.setdefault("proxy", None)
        ws: WebSocket = connect(uri, **options)  # Any: the options may say reconnect=
        connections.append(ws)
        return ws

    yield open_connection
    for ws in connections:
        ws.close()


@pytest.fixture
def ws_faulty_server() -> Iterator[Callable[..., FaultyServer]]:
    """Factory: ``ws_faulty_server(**faults)`` starts a :class:`FaultyServer` (see :class:`Faults`)."""
    servers: List[FaultyServer] = []

    def start(**faults: Any) -> FaultyServer:
        server = FaultyServer(Faults(**faults))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class ReplayTestServer:
    """A :class:`wsclient.replay.ReplayServer` serving in a background thread, for a test.

    Args:
        path: the recording file.
        **options: options of :class:`wsclient.replay.ReplayServer` (``fast``, ``compare``,
            ``timeout``, and those of :func:`wsclient.serve`).
    """

    __test__ = False

    def __init__(self, path: Union[str, "os.PathLike[str]"], **options: Any) -> None:
        self.replay = ReplayServer(path, **options).start()
        self._reported = False

    @property
    def uri(self) -> str:
        """The ``ws://`` URI of the server."""
        return self.replay.uri

    @property
    def mismatches(self) -> List[ReplayMismatch]:
        """The mismatches seen so far."""
        return self.replay.mismatches

    def wait_finished(self, count: int = 1, timeout: Optional[float] = DEFAULT_TEARDOWN_TIMEOUT) -> bool:
        """Wait until ``count`` sessions have played to their end.

        Args:
            count: how many sessions.
            timeout: seconds.

        Returns:
            True when they have, False on timeout.
        """
        return self.replay.wait_finished(count, timeout)

    def stop(self, timeout: float = DEFAULT_TEARDOWN_TIMEOUT) -> None:
        """Stop serving and release the port; then fail on a mismatch.

        Raises:
            ReplayMismatch: a client's messages differed from the recording (the first
                mismatch; the others are listed in its message).
        """
        self.replay.stop(timeout)
        if self.replay.mismatches and not self._reported:
            self._reported = True
            first, *others = self.replay.mismatches
            if others:
                raise ReplayMismatch(first.session, first.line, first.expected,
                                     f"{first.got} (and {len(others)} more mismatches)")
            raise first


@pytest.fixture
def ws_replay_server() -> Iterator[Callable[..., ReplayTestServer]]:
    """Factory: ``ws_replay_server(path, **options)`` replays a recording (see :class:`ReplayTestServer`)."""
    servers: List[ReplayTestServer] = []

    def start(path: Union[str, "os.PathLike[str]"], **options: Any) -> ReplayTestServer:
        server = ReplayTestServer(path, **options)
        servers.append(server)
        return server

    yield start
    failures = []
    for server in servers:
        try:
            server.stop()
        except ReplayMismatch as exc:
            failures.append(str(exc))
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
