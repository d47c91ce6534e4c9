"""WebSocket: a blocking connection object, the public face of one connection.

:class:`WebSocket` serves both ends: :func:`wsclient.connect` returns one and a server
handler gets one. Its methods (``send``, ``recv``, ``ping``, ``close``...) may be called
from any thread; how those threads share the socket (the locks, the background reader,
the closing handshake) is :mod:`wsclient.duplex`. Also here: :func:`wait` on several
connections, and the checks of the options every connection takes.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator, List, Optional, Union

from .close import CloseCode, serialize_close
from .duplex import _NOTHING, DEFAULT_MAX_QUEUE, Duplex, Message, _remaining
from .exceptions import ConnectionClosed, ConnectionClosedOK
from .protocol import COMPRESSED_SLICE
from .sockio import check_number, deadline_after

__all__ = ["WebSocket", "DEFAULT_MAX_QUEUE", "Message", "wait"]


class WebSocket(Duplex):
    """An open WebSocket connection, client or server side.

    Not built directly: :func:`wsclient.connect` returns one, and a server handler gets one.
    Every method may be called from any thread. Usable as a context manager (``close()`` on
    exit) and as an iterator over incoming messages (ends on a normal close).

    Attributes:
        request: the opening handshake's request (``.path``, ``.headers``).
        response: the opening handshake's response (``.status``, ``.headers``).
        subprotocol: the negotiated subprotocol, or None.
        client_address: server side, the client's IP address as text: the socket peer, or
            taken from ``X-Forwarded-For`` when the server trusts the proxy it came
            through (``trusted_proxies=``); None on a unix socket or on the client side.
    """

    @property
    def local_address(self) -> Any:
        """The local socket address."""
        return self._local_address

    @property
    def remote_address(self) -> Any:
        """The peer's socket address."""
        return self._remote_address

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (no message can be sent or received any more)."""
        return self._closed

    @property
    def close_code(self) -> Optional[int]:
        """The close code once closed (the peer's; else this end's; 1006 if none), else None."""
        return self._close_status()[0] if self._closed else None

    @property
    def close_reason(self) -> Optional[str]:
        """The close reason that goes with :attr:`close_code`, once closed; else None."""
        return self._close_status()[1] if self._closed else None

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed). Prefer :func:`wsclient.wait`."""
        return self._channel.fileno()

    def __enter__(self) -> "WebSocket":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[Message]:
        """Yield messages until the connection closes normally; an abnormal close raises."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    def __repr__(self) -> str:
        side = self._proto.side.value
        state = "closed" if self._closed else "open"
        return f"<wsclient.WebSocket {side} {state} {self._remote_address!r}>"

    def recv(self, timeout: Optional[float] = None) -> Message:
        """Receive the next message.

        Args:
            timeout: seconds to wait; None waits as long as the connection is open; 0
                returns a message only if one is ready.

        Returns:
            ``str`` for a text message, ``bytes`` for a binary one.

        Raises:
            TimeoutError: no message within ``timeout``; the connection stays usable and
                the next ``recv()`` returns the message that arrives.
            ConnectionClosedOK: the connection closed normally (1000, 1001, or a close
                frame without a code, 1005) and every message received before was returned.
            ConnectionClosedError: it closed abnormally; ``__cause__`` is the
                :class:`~wsclient.ProtocolError` if the peer broke the protocol.
        """
        deadline = None if timeout is None else deadline_after(timeout)  # No call: the hot path.
        while True:
            if self._read_lock.acquire(False):
                try:
                    message = self._read(deadline, want=True)  # Queued messages first.
                finally:
                    self._release_read()
                if message is not _NOTHING:
                    return message
            else:
                with self._cond:
                    if not self._queue and not self._closed:
                        self._wait_for_reader(deadline)
            with self._state_lock:
                if self._queue:
                    return self._pop()
                if self._closed:
                    raise self._closed_error()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("no message received within the timeout")

    def recv_json(self, timeout: Optional[float] = None) -> Any:
        """Receive the next message and decode it as JSON.

        Raises:
            ValueError: the message is not valid JSON (``json.JSONDecodeError``).
            TimeoutError, ConnectionClosed: as :meth:`recv`.
        """
        return json.loads(self.recv(timeout))

    def recv_until(
        self,
        predicate: Callable[[Message], bool],
        timeout: Optional[float] = None,
        *,
        skipped: Optional[List[Message]] = None,
    ) -> Message:
        """Receive until a message matches ``predicate``; for test harnesses.

        Args:
            predicate: called with each message; the first for which it is true is returned.
            timeout: seconds for the whole wait; None waits as long as the connection is open.
            skipped: a list to which the non-matching messages are appended, in order (they
                are consumed either way; pass a list to keep or report them).

        Returns:
            The matching message.

        Raises:
            TimeoutError: nothing matched in time (``skipped`` holds what came instead).
            ConnectionClosed: as :meth:`recv`.
        """
        deadline = deadline_after(timeout)
        while True:
            message = self.recv(_remaining(deadline, None))
            if predicate(message):
                return message
            if skipped is not None:
                skipped.append(message)

    def drain(self) -> List[Message]:
        """Return every message already received, without waiting; [] if none.

        Stops quietly at the close: the next :meth:`recv` raises ``ConnectionClosed``.
        """
        messages: List[Message] = []
        while True:
            try:
                messages.append(self.recv(timeout=0))
            except (TimeoutError, ConnectionClosed):
                return messages

    def send(
        self,
        message: Union[str, bytes, bytearray, memoryview, Iterable[Any]],
        timeout: Optional[float] = None,
        *,
        compress: Optional[bool] = None,
    ) -> None:
        """Send a message.

        Args:
            message: ``str`` sends a text message, a bytes-like object (``array.array``
                and numpy arrays included) a binary one; any other iterable of ``str`` or of
                bytes-like objects sends one fragmented message, each item a frame (control
                frames may go out between them).
            timeout: seconds to wait for other senders and for a peer that stops reading.
                If it expires before any byte of the message was written, nothing was
                sent; if it expires part-way, the connection is aborted (the stream cannot
                be resumed mid-frame) and later calls raise ``ConnectionClosedError``.
            compress: with permessage-deflate negotiated, True or False forces compression
                on or off for this message; None compresses unless it is tiny. A large
                compressed message goes out in several frames (see
                :data:`~wsclient.protocol.COMPRESSED_SLICE`).

        Raises:
            TimeoutError: as above.
            ConnectionClosed: the connection is closed or closing.
            TypeError: a message of another type (a mapping, an int...).
            UnicodeEncodeError: a ``str`` that UTF-8 cannot carry (a lone surrogate).
            For an iterable, either error (and any error the iterable raises) on a piece
            after the first also fails the connection (1011): the message has begun and
            can never be finished.
        """
        deadline = None if timeout is None else deadline_after(timeout)
        if not isinstance(message, (str, bytes, bytearray, memoryview)):
            try:  # Any other bytes-like object (array.array, a numpy array) is one message.
                message = memoryview(message)  # type: ignore[arg-type]
            except TypeError:
                if isinstance(message, Iterable) and not isinstance(message, Mapping):
                    self._send_fragments(iter(message), deadline, compress)
                    return
                raise TypeError(
                    f"a message is str, bytes-like or an iterable of them, not {type(message).__name__}"
                ) from None
        if not self._message_lock.acquire(True, _remaining(deadline, -1)):
            raise TimeoutError("another thread kept sending past the timeout")
        try:
            proto = self._proto
            self._write_frame(
                deadline, lambda: proto.send_message(message, compress=compress, slice_size=COMPRESSED_SLICE)
            )
            while proto.message_pending:  # A large compressed message, a slice per frame.
                self._write_more(deadline, proto.send_rest)
        finally:
            self._message_lock.release()

    def ping(self, data: Union[str, bytes] = b"") -> threading.Event:
        """Send a ping.

        Args:
            data: up to 125 bytes of payload (``str`` is encoded as UTF-8), or any
                bytes-like object.

        Returns:
            An event set when the matching pong arrives (a pong also acknowledges every
            earlier ping).

        Raises:
            TypeError: a payload that is neither ``str`` nor bytes-like.
            ValueError: a payload over 125 bytes.
            ConnectionClosed: the connection is closed or closing.
        """
        payload = _control_payload(data)
        event = threading.Event()
        with self._state_lock:
            self._pings.append((payload, event))
        self._write_frame(None, lambda: self._proto.send_ping(payload))
        self._watcher.resume(self)  # Read the pong now, even if the watcher backed off.
        return event

    def pong(self, data: Union[str, bytes] = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat).

        Raises:
            TypeError: a payload that is neither ``str`` nor bytes-like.
            ValueError: a payload over 125 bytes.
            ConnectionClosed: the connection is closed or closing.
        """
        payload = _control_payload(data)
        self._write_frame(None, lambda: self._proto.send_pong(payload))

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection: the closing handshake, bounded by ``close_timeout``.

        Idempotent and callable from any thread; a thread blocked in ``recv()`` wakes and
        raises :class:`~wsclient.ConnectionClosedOK` (after the messages already received).
        When it returns, the socket is closed (or will be as soon as a fragmented send in
        another thread gives the line back).

        Args:
            code: the close code (1000 by default); 1005 (with no reason) sends a close
                frame without a code (RFC 6455 section 5.5.1).
            reason: a reason of at most 123 bytes of UTF-8.

        Raises:
            TypeError: a code that is not an int, or a reason that is not a str.
            ValueError: an invalid close code (1005 with a reason included) or a reason
                that is too long.
        """
        serialize_close(code, reason)  # Validate first, even when already closed.
        deadline = None if self.close_timeout is None else time.monotonic() + self.close_timeout
        if not self._closed:
            # Take the socket's read side first when it is free: the peer's answer is then
            # read here, not by the watcher thread and handed over (a GIL hand-off that
            # cost about a third of a short connection's close).
            reading = self._read_lock.acquire(False)
            if reading:  # Nor does the watcher wake for the answer only to find us reading.
                self._watcher.pause(self)
            try:
                self._start_close(code, reason, deadline)
                if reading:
                    self._read(deadline, want=False)
            finally:
                if reading:
                    self._release_read()
            self._wait_closed(deadline)
        self._abort(None)
        if not self._channel.closed:
            # Another thread is finishing a read or write; it closes the socket on its way
            # out (reads and writes fail fast after the shutdown in _abort).
            with self._cond:
                self._cond.wait_for(lambda: self._channel.closed, timeout=_remaining(deadline, 5.0) or 0.5)

    # -- the package's internal API: the server, the opening, broadcast() and wait() ----
    # Not for applications; named and documented so no module reaches into another's
    # underscore names.

    def flush(self) -> None:
        """Write what is queued for the peer (a server's 101 response, control frames)
        if no other thread is writing; never blocks. The server calls it once it has
        registered a new connection, so the client sees the 101 only then."""
        self._flush_control()

    def start_close(self, code: int, reason: str, deadline: Optional[float]) -> None:
        """Send a close frame without waiting for the answer (``shutdown()`` starts every
        connection's close at once, then waits for all); the transport is cut if the frame
        cannot leave before ``deadline`` (a ``time.monotonic()`` value, or None)."""
        self._start_close(code, reason, deadline)

    def wait_closed(self, deadline: Optional[float]) -> None:
        """Read (or wait for the reading thread) until the transport is closed or the
        ``time.monotonic()`` deadline passes."""
        self._wait_closed(deadline)

    def abort(self, cause: Optional[BaseException] = None) -> None:
        """Close the transport now, without a closing handshake (idempotent); every
        waiting thread wakes. ``cause`` becomes the ``__cause__`` of later errors."""
        self._abort(cause)

    def send_nowait(self, message: Message) -> bool:
        """Send ``message`` without waiting (for :func:`wsclient.broadcast`); False if the
        connection cannot take it now (closed, or its peer is not reading)."""
        return self._send_nowait(message)

    @property
    def ready(self) -> bool:
        """True when :meth:`recv` would not block: a message is queued or the connection
        has closed (for :func:`wsclient.wait`)."""
        return bool(self._queue) or self._closed

    def add_ready_event(self, event: threading.Event) -> None:
        """Set ``event`` whenever a message is queued or the connection closes, until
        :meth:`discard_ready_event` (for :func:`wsclient.wait`)."""
        with self._state_lock:
            self._ready.add(event)

    def discard_ready_event(self, event: threading.Event) -> None:
        """Stop setting ``event`` (see :meth:`add_ready_event`)."""
        with self._state_lock:
            self._ready.discard(event)

    # -- sending one message in several frames -----------------------------------------

    def _send_fragments(self, fragments: Iterator[Any], deadline: Optional[float], compress: Optional[bool]) -> None:
        """One message in several frames: the message lock is held throughout, the write
        lock only per frame, so control frames can go out between fragments."""
        if not self._message_lock.acquire(True, _remaining(deadline, -1)):
            raise TimeoutError("another thread kept sending past the timeout")
        try:
            # Each piece goes out as soon as the iterable yields it (streaming); an empty
            # final frame ends the message, as the end is only known after the last piece.
            first = next(fragments, _NOTHING)
            if first is _NOTHING:
                return
            empty = "" if isinstance(first, str) else b""
            # Until the first frame is out, a failure leaves nothing sent; after it, the
            # message can never be finished, and _write_more fails the connection.
            write = self._write_frame
            piece = first
            while piece is not _NOTHING:
                write(deadline, lambda: self._proto.send_fragment(piece, fin=False, compress=compress))
                write = self._write_more
                try:
                    piece = next(fragments, _NOTHING)
                except Exception as exc:
                    self._fail(CloseCode.INTERNAL_ERROR, "", wait=1.0, cause=exc)
                    raise
            self._write_more(deadline, lambda: self._proto.send_fragment(empty, fin=True, compress=compress))
        finally:
            self._message_lock.release()

    def _write_more(self, deadline: Optional[float], build: Callable[[], List[bytes]]) -> None:
        """:meth:`_write_frame` for a frame that continues a message already on the wire.

        The message can never be finished if this fails: a timeout aborts the connection
        (a frame may be half written), and a piece that cannot be framed (a ``str`` with a
        lone surrogate, a type unlike the first piece's) fails it with 1011.
        """
        try:
            self._write_frame(deadline, build)
        except TimeoutError as exc:
            self._abort(exc)
            raise
        except OSError:
            raise  # The connection has closed already.
        except Exception as exc:
            self._fail(CloseCode.INTERNAL_ERROR, "", wait=1.0, cause=exc)
            raise


def _control_payload(data: Any) -> bytes:
    """A ping or pong payload as bytes: ``str`` as UTF-8, or any bytes-like object."""
    if isinstance(data, str):
        return data.encode("utf-8")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise TypeError(f"a ping or pong payload is str or bytes-like, not {type(data).__name__}") from None


def check_options(
    *,
    max_size: Optional[int],
    max_queue: Optional[int],
    ping_interval: Optional[float],
    ping_timeout: Optional[float],
    close_timeout: Optional[float],
) -> None:
    """Check a connection's options where the caller passes them (``connect()``,
    ``serve()``), not when a background thread first uses them.

    Raises:
        TypeError: a number of seconds that is not an int or a float, a size that is not
            an int.
        ValueError: a size below 1, a ``ping_interval`` that is not positive, or a
            negative or infinite number of seconds. ``None`` passes.
    """
    check_count("max_size", max_size)
    check_count("max_queue", max_queue)
    check_seconds("ping_interval", ping_interval, positive=True)
    check_seconds("ping_timeout", ping_timeout)
    check_seconds("close_timeout", close_timeout)


def check_count(name: str, value: Optional[int]) -> None:
    """Check a size or a count: a positive int, or None.

    Raises:
        TypeError: not an int (a bool, a float, a str...).
        ValueError: an int below 1.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int or None, not {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int or None, not {value!r}")


def check_seconds(name: str, value: Optional[float], *, positive: bool = False) -> None:
    """Check a number of seconds: finite, at least 0 (above 0 with ``positive``), or None.

    Raises:
        TypeError, ValueError: as :func:`check_options`.
    """
    if value is None:
        return
    check_number(name, value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'above' if positive else 'at least'} 0 and finite, or None, not {value!r}")


def connections_only(connections: Iterable[Any], caller: str) -> List[WebSocket]:
    """``connections`` as a list, checked to hold only :class:`WebSocket` objects.

    Raises:
        TypeError: something else in it (a URI, a socket...).
    """
    conns = list(connections)
    for conn in conns:
        if not isinstance(conn, WebSocket):
            raise TypeError(f"{caller} takes WebSocket connections, not {type(conn).__name__}")
    return conns


def wait(connections: Iterable[WebSocket], timeout: Optional[float] = None) -> List[WebSocket]:
    """Return the connections that have a message ready or have closed.

    In the style of :func:`multiprocessing.connection.wait`: blocks until at least one of
    ``connections`` is ready, or ``timeout`` seconds pass (then returns an empty list).

    Args:
        connections: the connections to watch.
        timeout: seconds; None waits without limit.

    Returns:
        The ready connections, in the order given.

    Raises:
        TypeError: something other than a :class:`WebSocket` among ``connections``, or a
            ``timeout`` that is not a number.
        ValueError: a ``timeout`` that is NaN.
    """
    conns = connections_only(connections, "wait()")
    event = threading.Event()
    for conn in conns:
        conn.add_ready_event(event)
    try:
        deadline = deadline_after(timeout)
        while True:
            ready = [c for c in conns if c.ready]
            if ready:
                return ready
            remaining = _remaining(deadline, None)
            if remaining is not None and remaining <= 0:
                return []
            event.wait(remaining)
            event.clear()
    finally:
        for conn in conns:
            conn.discard_ready_event(event)
