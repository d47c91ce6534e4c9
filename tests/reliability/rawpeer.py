"""Peers that speak raw bytes: a one-connection server and a client, for faults and abuse.

Both run the opening handshake with wsclient's sans-I/O helpers and then hand the plain
socket to a script, which writes whatever bytes it likes (half frames, unmasked frames,
resets). Everything binds or targets 127.0.0.1 and every read has a timeout.
"""

from __future__ import annotations

import fcntl
import socket
import ssl
import struct
import sys
import termios
import threading
import time
from typing import Any, Callable, List, Optional, Tuple, Union

from wsclient.frames import Frame, FrameParser, Opcode
from wsclient.handshake import ClientHandshake, accept_response, check_request
from wsclient.http11 import Request, RequestParser, Response, ResponseParser
from wsclient.uri import parse_uri

__all__ = ["RawServer", "wait_until", "unsent", "calling", "raw_client", "reset", "read_frames", "client_frames", "read_upload", "handshake_head",
           "status_of", "tls_client_hello", "MASK"]

#: The masking key of the frames raw clients write.
MASK = b"\x11\x22\x33\x44"

#: Seconds any raw read waits.
TIMEOUT = 10.0


def handshake_head(target: str = "/", *, extra: int = 0, size: int = 10, headers: Tuple[str, ...] = ()) -> bytes:
    """A valid handshake request head for ``target``, with ``headers`` (``"Name: value"``)
    and ``extra`` more header fields of ``size``-byte values."""
    lines = [f"GET {target} HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", *headers]
    lines += [f"X-{i}: {'v' * size}" for i in range(extra)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(port: int, request: bytes) -> int:
    """Send ``request`` to 127.0.0.1:``port`` from a fresh socket; the answer's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def tls_client_hello() -> bytes:
    """The first bytes a real TLS client (``ssl``'s default context) sends: its ClientHello."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        return outgoing.read()
    raise AssertionError("a TLS handshake finished without a server")

def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (RST) instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_frames(sock: socket.socket, *, expect_masked: bool, until: Callable[[List[Frame]], bool],
                timeout: float = TIMEOUT) -> List[Frame]:
    """Read whole frames until ``until(frames)`` is true, the peer closes, or ``timeout``."""
    parser = FrameParser(expect_masked=expect_masked)
    frames: List[Frame] = []
    parts: List[bytes] = []
    deadline = time.monotonic() + timeout
    while not until(frames):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"only {len(frames)} frames within {timeout} s")
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        for piece in parser.feed(data):
            parts.append(piece.data)
            if piece.last:
                h = piece.header
                frames.append(Frame(h.opcode, b"".join(parts), h.fin, h.rsv1))
                parts = []
    return frames


def client_frames(sock: socket.socket, count: int = 0, *, until_close: bool = False,
                  timeout: float = TIMEOUT) -> List[Frame]:
    """Read ``count`` whole frames from a client (masked), or with ``until_close`` every
    frame up to and including its close frame."""
    if until_close:
        return read_frames(sock, expect_masked=True, timeout=timeout,
                           until=lambda frames: any(f.opcode == Opcode.CLOSE for f in frames))
    return read_frames(sock, expect_masked=True, timeout=timeout, until=lambda frames: len(frames) >= count)


def read_upload(sock: socket.socket, count: int, *, slow_for: float = 0.0) -> int:
    """Read ``count`` bytes of the client's upload (fewer at its end) within :data:`TIMEOUT`;
    for the first ``slow_for`` seconds, slowly (64 KiB every 20 ms). Returns the count read."""
    got, start = 0, time.monotonic()
    while got < count and time.monotonic() < start + TIMEOUT:
        try:
            chunk = sock.recv(min(1 << 16, count - got))
        except OSError:
            break
        if not chunk:
            break
        got += len(chunk)
        if time.monotonic() < start + slow_for:
            time.sleep(0.02)  # The behaviour asked for: a peer that reads slowly.
    return got


class RawServer:
    """Accepts one connection, answers its handshake (101, or ``response`` if given), then
    runs ``script(sock)`` in a thread. :meth:`join` re-raises what the script raised.

    Args:
        script: what to do with the connected socket after the handshake.
        extensions: a ``Sec-WebSocket-Extensions`` value to accept with.
        response: what to answer the handshake with instead of a 101: bytes, or a function
            of the parsed request returning bytes.
    """

    def __init__(self, script: Callable[[socket.socket], None], *, extensions: Optional[str] = None,
                 response: Union[bytes, Callable[[Request], bytes], None] = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.uri = f"ws://127.0.0.1:{self.port}/"
        self.script = script
        self.extensions = extensions
        self.response = response
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="raw-server", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(TIMEOUT)
            sock, _ = self.listener.accept()
            sock.settimeout(TIMEOUT)
            parser = RequestParser()
            request = None
            while request is None:
                request = parser.feed(sock.recv(65536))
            if callable(self.response):
                sock.sendall(self.response(request))
            elif self.response is not None:
                sock.sendall(self.response)
            else:
                check_request(request)
                sock.sendall(accept_response(request, extensions=self.extensions).serialize())
            self.script(sock)
            if sock.fileno() != -1:
                sock.close()
        except BaseException as exc:  # surfaced by join()
            self.error = exc
        finally:
            self.done.set()

    def join(self, timeout: float = 2 * TIMEOUT) -> None:
        self.thread.join(timeout)
        self.listener.close()
        assert not self.thread.is_alive(), "the raw server's script did not finish"
        if self.error is not None:
            raise self.error


def raw_client(uri: str, *, headers: Optional[List[Tuple[str, str]]] = None,
               extensions: Optional[str] = None) -> Tuple[socket.socket, Response, bytes]:
    """Connect to ``uri`` and run the client handshake by hand.

    Returns:
        The socket, the server's response, and the bytes that followed the response.
    """
    parsed = parse_uri(uri)
    sock = socket.create_connection((parsed.host, parsed.port), timeout=TIMEOUT)
    handshake = ClientHandshake(parsed, headers=headers, extensions=extensions)
    sock.sendall(handshake.request.serialize())
    parser = ResponseParser()
    response = None
    while response is None:
        response = parser.feed(sock.recv(65536))
    return sock, response, parser.leftover


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` (every 5 ms) until it is true: the bounded wait tests use in
    place of a sleep. Fails the test if it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"still not true after {timeout} s: {what or condition}")
        time.sleep(0.005)


def unsent(sock: socket.socket) -> int:
    """Bytes written to ``sock`` that the other end has not yet acknowledged (Linux:
    ``TIOCOUTQ``): 0 once everything sent is in the peer's kernel, where a reset that
    follows no longer discards it."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])


def calling(thread: threading.Thread, name: str) -> bool:
    """True if ``thread`` is inside a function called ``name`` right now (a look at its
    stack): how a test knows that another thread has entered ``recv()``, say, and is
    waiting there, without sleeping."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False
