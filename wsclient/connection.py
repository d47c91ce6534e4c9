"""WebSocket: a blocking connection object, the public face of one connection.

:class:`WebSocket` serves both ends: :func:`wsclient.connect` returns one and a server
handler gets one. Its methods (``send``, ``recv``, ``ping``, ``close``...) may be called
from any thread; how those threads share the socket (the locks, the background reader,
the closing handshake) is the :class:`~wsclient.duplex.Duplex` it holds. Also here:
:func:`wait` on several connections, and the small internal API the server, the opening,
:func:`~wsclient.broadcast` and :func:`wait` use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator, List, Optional, Protocol as TypingProtocol, Tuple, Type, TypeVar, Union, runtime_checkable

from .close import CloseCode, serialize_close
from .duplex import Duplex, remaining
from .exceptions import ConnectionClosed, ConnectionClosedOK
from .gate import Gate
from .http11 import Request, Response
from .inbox import Message
from .options import DEFAULT_MAX_QUEUE, ConnectionOptions, check_seconds
from .protocol import PreparedMessage, Protocol
from .sockio import deadline_after
from .watcher import Watcher

__all__ = ["WebSocket", "DEFAULT_MAX_QUEUE", "Message", "Waitable", "wait"]


class WebSocket:
    """An open WebSocket connection, client or server side.

    Not built by applications: :func:`wsclient.connect` returns one, and a server handler
    gets one. Every method may be called from any thread. Usable as a context manager
    (``close()`` on exit) and as an iterator over incoming messages (ends on a normal
    close).

    Args:
        sock: the connected socket, after the opening handshake.
        protocol: the connection's state machine.
        request, response: the opening handshake's.
        subprotocol: the negotiated subprotocol, or None.
        watcher: the background reader that watches this connection.
        options: the connection's options.
        initial_data: bytes read past the handshake, processed first.
        preamble: bytes to write before any frame (a server's 101 response, sent by
            :meth:`flush`).
        gate: the server's gate (:mod:`wsclient.gate`), which bounds how many of its
            readers wake at once; None (clients): every reader waits on its own socket.

    Attributes:
        request: the opening handshake's request (``.path``, ``.headers``).
        response: the opening handshake's response (``.status``, ``.headers``).
        subprotocol: the negotiated subprotocol, or None.
        client_address: server side, the client's IP address as text: the socket peer, or
            taken from ``X-Forwarded-For`` when the server trusts the proxy it came
            through (``trusted_proxies=``); None on a unix socket or on the client side.
        options: the connection's options; ``ping_interval``, ``ping_timeout`` and
            ``max_queue`` are also attributes of their own.
    """

    def __init__(
        self,
        sock: Any,
        protocol: Protocol,
        *,
        request: Request,
        response: Response,
        subprotocol: Optional[str] = None,
        watcher: Watcher,
        options: ConnectionOptions = ConnectionOptions(),
        initial_data: bytes = b"",
        preamble: bytes = b"",
        gate: Optional[Gate] = None,
    ) -> None:
        self.request = request
        self.response = response
        self.subprotocol = subprotocol
        self.client_address: Optional[str] = None
        self.options = options
        self.ping_interval = options.ping_interval
        self.ping_timeout = options.ping_timeout
        self.max_queue = options.max_queue
        try:
            self._local_address = sock.getsockname()
            self._remote_address = sock.getpeername()
        except OSError:
            self._local_address = self._remote_address = None
        self._duplex = duplex = Duplex(
            sock, protocol, watcher=watcher, options=options, initial_data=initial_data, preamble=preamble,
            gate=gate,
        )
        self._receive = duplex.receive  # Bound once: recv() is the hot path.
        self._send = duplex.send

    @property
    def close_timeout(self) -> Optional[float]:
        """How long :meth:`close` waits for the closing handshake, in seconds (None: no
        bound); settable, e.g. to close quickly on Ctrl-C."""
        return self._duplex.close_timeout

    @close_timeout.setter
    def close_timeout(self, value: Optional[float]) -> None:
        check_seconds("close_timeout", value)
        self._duplex.close_timeout = value

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
        return self._duplex.closed

    @property
    def close_code(self) -> Optional[int]:
        """The close code once closed (the peer's; else this end's; 1006 if none), else None."""
        return self._duplex.proto.close_code if self._duplex.closed else None

    @property
    def close_reason(self) -> Optional[str]:
        """The close reason that goes with :attr:`close_code`, once closed; else None."""
        return self._duplex.proto.close_reason if self._duplex.closed else None

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed). Prefer :func:`wsclient.wait`."""
        return self._duplex.channel.fileno()

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
        side = self._duplex.proto.side.value
        state = "closed" if self._duplex.closed else "open"
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
        return self._receive(None if timeout is None else deadline_after(timeout))

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
        return receive_until(self.recv, predicate, timeout, skipped)

    def drain(self) -> List[Message]:
        """Return every message already received, without waiting; [] if none.

        Stops quietly at the close: the next :meth:`recv` raises ``ConnectionClosed``.
        """
        return drain_messages(self.recv, (TimeoutError, ConnectionClosed))

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
                message = memoryview(message)  # type: ignore[arg-type]  # any other buffer: TypeError if not
            except TypeError:
                if isinstance(message, Iterable) and not isinstance(message, Mapping):
                    self._duplex.send_fragments(iter(message), deadline, compress)
                    return
                raise TypeError(
                    f"a message is str, bytes-like or an iterable of them, not {type(message).__name__}"
                ) from None
        self._send(message, deadline, compress)

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
        return self._duplex.ping(_control_payload(data))

    def pong(self, data: Union[str, bytes] = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat).

        Raises:
            TypeError: a payload that is neither ``str`` nor bytes-like.
            ValueError: a payload over 125 bytes.
            ConnectionClosed: the connection is closed or closing.
        """
        self._duplex.pong(_control_payload(data))

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection: the closing handshake, bounded by ``close_timeout``.

        Idempotent and callable from any thread; a thread blocked in ``recv()`` wakes and
        raises :class:`~wsclient.ConnectionClosedOK` (after the messages already received).
        When it returns, the socket is closed (or will be as soon as a fragmented send in
        another thread gives the line back). Both ends wait for the other's end of the
        stream after the close frames: a server ends its own first (RFC 6455 section
        7.1.1), so that what it sent last is not lost to a reset.

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
        self._duplex.close(code, reason)

    # -- the package's internal API: the server, the opening, broadcast() and wait() ----
    # Not for applications; named and documented so no module reaches into another's
    # underscore names.

    def flush(self) -> None:
        """Write what is queued for the peer (a server's 101 response, control frames)
        if no other thread is writing; never blocks. The server calls it once it has
        registered a new connection, so the client sees the 101 only then."""
        self._duplex.flush_control()

    def start_close(self, code: int, reason: str, deadline: Optional[float]) -> None:
        """Send a close frame without waiting for the answer (``shutdown()`` starts every
        connection's close at once, then waits for all); the transport is cut if the frame
        cannot leave before ``deadline`` (a ``time.monotonic()`` value, or None)."""
        self._duplex.start_close(code, reason, deadline)

    def wait_closed(self, deadline: Optional[float]) -> None:
        """Read (or wait for the reading thread) until the transport is closed or the
        ``time.monotonic()`` deadline passes."""
        self._duplex.wait_closed(deadline)

    def abort(self, cause: Optional[BaseException] = None) -> None:
        """Close the transport now, without a closing handshake (idempotent); every
        waiting thread wakes. ``cause`` becomes the ``__cause__`` of later errors."""
        self._duplex.abort(cause)

    def send_nowait(self, message: Union[Message, PreparedMessage]) -> bool:
        """Send ``message`` without waiting (for :func:`wsclient.broadcast`); False if the
        connection cannot take it now (closed, or its peer is not reading). A
        ``wsclient.protocol.PreparedMessage`` is encoded (and framed) once for every
        connection it is sent on."""
        if not isinstance(message, PreparedMessage):
            message = PreparedMessage(message)
        return self._duplex.send_nowait(message)

    @property
    def ready(self) -> bool:
        """True when :meth:`recv` would not block: a message is queued or the connection
        has closed (for :func:`wsclient.wait`)."""
        duplex = self._duplex
        return bool(duplex.inbox.messages) or duplex.closed

    def add_ready_event(self, event: threading.Event) -> None:
        """Set ``event`` whenever a message is queued or the connection closes, until
        :meth:`discard_ready_event` (for :func:`wsclient.wait`)."""
        with self._duplex.state_lock:
            self._duplex.inbox.add_event(event)

    def discard_ready_event(self, event: threading.Event) -> None:
        """Stop setting ``event`` (see :meth:`add_ready_event`)."""
        with self._duplex.state_lock:
            self._duplex.inbox.discard_event(event)


def receive_until(
    recv: Callable[[Optional[float]], Message],
    predicate: Callable[[Message], bool],
    timeout: Optional[float],
    skipped: Optional[List[Message]],
) -> Message:
    """``recv_until()`` for any connection: call ``recv(seconds)`` until a message matches
    ``predicate``, within ``timeout`` in all; the others go to ``skipped`` if given.

    Raises:
        TimeoutError, ConnectionClosed: as ``recv``.
    """
    deadline = deadline_after(timeout)
    while True:
        message = recv(remaining(deadline, None))
        if predicate(message):
            return message
        if skipped is not None:
            skipped.append(message)


def drain_messages(recv: Callable[[float], Message], stop: Tuple[Type[BaseException], ...]) -> List[Message]:
    """``drain()`` for any connection: ``recv(0)`` until it raises one of ``stop``."""
    messages: List[Message] = []
    while True:
        try:
            messages.append(recv(0))
        except stop:
            return messages


def _control_payload(data: Any) -> bytes:
    """A ping or pong payload as bytes: ``str`` as UTF-8, or any bytes-like object."""
    if isinstance(data, str):
        return data.encode("utf-8")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise TypeError(f"a ping or pong payload is str or bytes-like, not {type(data).__name__}") from None


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


@runtime_checkable
class Waitable(TypingProtocol):
    """What :func:`wait` needs of a connection (:class:`WebSocket` and
    :class:`~wsclient.ReconnectingWebSocket` offer it)."""

    @property
    def ready(self) -> bool:
        """True when ``recv()`` would not block."""

    def add_ready_event(self, event: threading.Event) -> None:
        """Set ``event`` whenever the connection may have become ready."""

    def discard_ready_event(self, event: threading.Event) -> None:
        """Stop setting ``event``."""


W = TypeVar("W", bound=Waitable)


def wait(connections: Iterable[W], timeout: Optional[float] = None) -> List[W]:
    """Return the connections that have a message ready or have closed.

    In the style of :func:`multiprocessing.connection.wait`: blocks until at least one of
    ``connections`` is ready, or ``timeout`` seconds pass (then returns an empty list).

    Args:
        connections: the connections to watch (:class:`WebSocket` or
            :class:`~wsclient.ReconnectingWebSocket`).
        timeout: seconds; None waits without limit.

    Returns:
        The ready connections, in the order given.

    Raises:
        TypeError: something other than a connection among ``connections``, or a
            ``timeout`` that is not a number.
        ValueError: a ``timeout`` that is NaN.
    """
    conns = list(connections)
    for conn in conns:
        if not isinstance(conn, Waitable):
            raise TypeError(f"wait() takes WebSocket connections, not {type(conn).__name__}")
    deadline = deadline_after(timeout)
    event = threading.Event()
    for conn in conns:
        conn.add_ready_event(event)
    try:
        while True:
            ready = [c for c in conns if c.ready]
            if ready:
                return ready
            left = remaining(deadline, None)
            if left is not None and left <= 0:
                return []
            event.wait(left)
            event.clear()
    finally:
        for conn in conns:
            conn.discard_ready_event(event)
