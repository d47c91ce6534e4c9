"""WebSocket: a blocking connection object over a socket and a protocol state machine.

The same class serves both ends. Threads and the socket meet here:

* Reading. Whoever holds ``_read_lock`` reads the socket: an application thread inside
  ``recv()`` (the fast path: it reads and parses the message itself, no thread hand-off),
  ``close()`` waiting for the peer's close frame, or the watcher thread
  (:mod:`wsclient.watcher`) when nobody else is reading, so pings are answered and closes
  complete while the application is busy. What the watcher reads waits in a queue bounded
  in bytes (``max_queue``); when it is full the watcher stops reading and TCP pushes back on
  the peer. Nothing is ever dropped.
* Writing. Whoever holds ``_write_lock`` writes, one frame at a time, framing it under
  the same lock so frames reach the wire in the order they were framed (which
  permessage-deflate's shared window needs). A data message also holds ``_message_lock``
  from its first frame to its last, so messages never interleave, while control frames
  (which only take ``_write_lock``) may go out between the fragments of a large message.
  Control frames the reader must send (pongs, the close reply) are queued and written by
  the current lock holder at the next frame boundary, or directly by the reader if nobody
  is writing.
* State. ``_state_lock`` guards the protocol object and the queue; it is only held for
  short, non-blocking work.

Locks are taken with positional arguments (``acquire(False)``, ``acquire(True, timeout)``):
the keyword forms cost 80 to 170 ns more each, and a 32-byte round trip takes three.

The socket itself, non-blocking, with its polling, partial writes and TLS lock, is a
:class:`~wsclient.channel.Channel`; every wait on it is bounded by the caller's deadline.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Set, Tuple, Union

from .channel import DEFAULT_READ_SIZE, Channel
from .close import CloseCode, known_close_code, serialize_close
from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from .protocol import COMPRESSED_SLICE, OK_CLOSE_CODES, Close, Pong, Protocol, Side
from .sockio import check_number, deadline_after
from .watcher import BACKOFF, Watcher

__all__ = ["WebSocket", "DEFAULT_MAX_QUEUE", "Message"]

logger = logging.getLogger("wsclient")

Message = Union[str, bytes]

#: Bytes of received messages kept for an application that is not calling ``recv()``,
#: before the connection stops reading from the peer: 16 MiB, one message of the default
#: ``max_size``, so a slow notebook user is not cut off by a peer's keepalive.
DEFAULT_MAX_QUEUE = 2**24

_WATCHER_READ_LIMIT = 1 << 20
#: How long a failed write waits for another reading thread before it reads what the peer
#: sent last (that thread normally lets go within microseconds: the reset wakes it too).
_READ_AFTER_RESET_WAIT = 0.5
#: The most it then reads, past ``max_queue``: what a reset peer sent before is all in the
#: kernel's receive buffer (6 MiB at most by Linux's default tcp_rmem).
_READ_AFTER_RESET_LIMIT = 64 << 20
_NOTHING: Any = object()


class WebSocket:
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

    def __init__(
        self,
        sock: Any,
        protocol: Protocol,
        *,
        request: Any,
        response: Any,
        subprotocol: Optional[str] = None,
        watcher: Watcher,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        close_timeout: Optional[float] = 10.0,
        max_queue: Optional[int] = DEFAULT_MAX_QUEUE,
        initial_data: bytes = b"",
        preamble: bytes = b"",
    ) -> None:
        self.request = request
        self.response = response
        self.subprotocol = subprotocol
        self.client_address: Optional[str] = None
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.max_queue = max_queue
        self._proto = protocol
        self._watcher = watcher
        try:
            self._local_address = sock.getsockname()
            self._remote_address = sock.getpeername()
        except OSError:
            self._local_address = self._remote_address = None
        self._state_lock = threading.Lock()
        self._cond = threading.Condition(self._state_lock)
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._message_lock = threading.Lock()
        self._queue: Deque[Message] = collections.deque()
        self._queued = 0
        self._read_waiters = 0  # Threads waiting for the read lock (under _cond).
        self._paused = False
        self._ctrl_pending: List[bytes] = []
        self._closed = False  # The transport is closed (or closing down).
        self._abort_cause: Optional[BaseException] = None
        # Pings awaiting their pong, oldest first (payloads may repeat: ping() twice).
        self._pings: List[Tuple[bytes, threading.Event]] = []
        self._pong_deadline: Optional[float] = None
        self._next_ping: Optional[float] = None
        self._close_deadline: Optional[float] = None
        self._close_after_write = False  # Close the transport once queued frames are out.
        self._close_unsent = False  # The transport closed before our close frame was out.
        self._timer_at: Optional[float] = None
        self._ready: Set[threading.Event] = set()
        self._debug = logger.isEnabledFor(logging.DEBUG)
        # The preamble (a server's 101) goes out before any frame.
        self._channel = Channel(sock, unsent=preamble)
        if initial_data:
            with self._read_lock:
                self._process(initial_data, want=False)
        watcher.add(self)
        if ping_interval is not None:
            self._next_ping = time.monotonic() + ping_interval
            self._schedule(self._next_ping)

    # -- public API ------------------------------------------------------------------

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
            ConnectionClosedOK: the connection closed normally (1000, 1001) and every
                message received before was returned.
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
            code: the close code (1000 by default).
            reason: a reason of at most 123 bytes of UTF-8.

        Raises:
            TypeError: a code that is not an int, or a reason that is not a str.
            ValueError: an invalid close code or a reason that is too long.
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

    def _start_close(self, code: int, reason: str, deadline: Optional[float]) -> None:
        """Send the close frame (once); abort if it cannot go out before ``deadline``.

        While another thread writes (a handler sending to a slow peer), the frame is queued
        for that thread to write at its next frame boundary, as the reader's pongs are, so
        ``shutdown()`` closes every connection at once rather than one after another.
        """
        if not self._write_lock.acquire(False):
            with self._state_lock:
                self._ctrl_pending += self._proto.send_close(code, reason)
            self._flush_control()  # in case the writer has just finished
            return
        try:
            with self._state_lock:
                frames = self._take_pending() + self._proto.send_close(code, reason)
            self._channel.write(frames, deadline)
        except (OSError, TimeoutError) as exc:
            self._abort(exc)
        finally:
            self._release_write()

    def _send_nowait(self, message: Message) -> bool:
        """Send without waiting, for broadcast; False if the connection cannot take it now.

        The message is framed only once the socket is known to take some of it, so a
        skipped message never advances the compression context; what does not fit stays
        in the channel's ``unsent`` and the watcher finishes it.
        """
        if self._closed or not self._message_lock.acquire(False):
            return False
        if not self._write_lock.acquire(False):
            self._message_lock.release()
            return False
        try:
            if self._channel.unsent or not self._channel.wait_writable(time.monotonic()):
                return False
            with self._state_lock:
                if self._closed or self._proto.close_sent is not None or self._proto.eof_received:
                    return False
                buffers = self._take_pending() + self._proto.send_message(message)
            return self._write_now(buffers)
        finally:
            self._release_write()
            self._message_lock.release()

    # -- reading -----------------------------------------------------------------------

    def _pop(self) -> Message:
        """Take the oldest queued message (hold ``_state_lock``)."""
        message = self._queue.popleft()
        self._queued -= len(message)
        if self._paused and (self.max_queue is None or self._queued <= self.max_queue // 2):
            self._paused = False
            self._watcher.resume(self)
        return message

    def _read(self, deadline: Optional[float], *, want: bool) -> Message:
        """Read the socket (hold ``_read_lock``) until the deadline or the close.

        With ``want``, return the first message that arrives (or was queued); without it,
        queue every message and only return at the deadline or the close. Returns
        _NOTHING at the deadline or the close.
        """
        while True:
            if (want and self._queue) or self._closed or self._proto.eof_received:
                with self._state_lock:
                    if want and self._queue:
                        return self._pop()
                    if self._closed:
                        return _NOTHING
                    if self._proto.eof_received:
                        # The stream ended while a sender holds the socket: the transport
                        # closes when it lets go (or at close_timeout). Wait for that
                        # rather than read the end again.
                        self._cond.wait(_remaining(deadline, None))
                        return _NOTHING
            data = self._channel.recv(deadline)
            if data is None:
                return _NOTHING
            message = self._process(data, want=want)
            if message is not _NOTHING:
                return message

    def _process(self, data: bytes, *, want: bool) -> Message:
        """Feed received bytes to the protocol (hold ``_read_lock``).

        Returns the first message if ``want`` and nothing is queued before it, else
        _NOTHING; every other message is queued.
        """
        first: Any = _NOTHING
        with self._state_lock:
            proto = self._proto
            if data:
                events = proto.receive_data(data)
            else:
                events = []
                proto.receive_eof()
                self._abort_cause = self._abort_cause or self._channel.error
                self._cond.notify_all()  # A failed write waits for this (_read_what_arrived).
            queued = closing = False
            for event in events:
                cls = event.__class__
                if cls is str or cls is bytes:
                    if want and first is _NOTHING and not self._queue:
                        first = event
                    else:
                        self._queue.append(event)
                        self._queued += len(event)
                        queued = True
                elif cls is Pong:
                    self._ack_pings(event.data)  # type: ignore[union-attr]
                elif cls is Close and proto.side is Side.CLIENT and self.close_timeout is not None:
                    # The server should now close TCP; don't wait for it forever.
                    self._close_deadline = time.monotonic() + self.close_timeout
                    closing = True
                if self._debug:
                    logger.debug("%s < %s", proto.side.value, _describe(event))
            self._ctrl_pending += proto.data_to_send()
            pending = bool(self._ctrl_pending)
            finished = proto.should_close_transport
            if queued:
                self._notify_locked()
        if pending:
            self._flush_control()
        if finished:
            self._close_when_written()
        elif closing:
            self._schedule(self._close_deadline)  # type: ignore[arg-type]
        return first

    def _close_when_written(self) -> None:
        """The closing handshake is over: close the transport once the close frame is out.

        Never waits (the watcher thread may be the caller). While another thread is
        writing a frame (a handler's large echo), the close frame waits behind it and that
        thread closes the transport when it lets go; cutting the socket under it would
        leave the peer a truncated frame. ``close_timeout`` bounds the wait.
        """
        self._close_after_write = True
        self._flush_control()  # Also closes the transport if nothing else is queued.
        if not self._closed and self.close_timeout is not None:
            deadline = time.monotonic() + self.close_timeout
            if self._close_deadline is None or deadline < self._close_deadline:
                self._close_deadline = deadline
            self._schedule(self._close_deadline)

    def _close_if_written(self) -> None:
        """Close the transport if it only waited for queued frames to go out."""
        if self._close_after_write and not self._closed and not (self._ctrl_pending or self._channel.unsent):
            if self._write_lock.acquire(False):  # No frame is half written.
                self._write_lock.release()
                self._abort(None)

    def _finish_writes(self, limit: float) -> None:
        """Before closing the transport, write what is still queued (a close frame).

        Another thread may hold the write lock (a handler sending its echo): wait for it
        up to ``limit`` seconds rather than shut the socket under a close frame that never
        went out.
        """
        if not (self._ctrl_pending or self._channel.unsent):
            return
        if not self._write_lock.acquire(True, limit):
            return
        try:
            with self._state_lock:
                frames = self._take_pending()
            self._channel.write(frames, time.monotonic() + limit)
        except (OSError, TimeoutError):
            pass
        finally:
            self._write_lock.release()

    def _ack_pings(self, data: bytes) -> None:
        """A pong acknowledges its ping and every earlier one (hold ``_state_lock``)."""
        for index, (payload, _) in enumerate(self._pings):
            if payload == data:
                acked, self._pings = self._pings[: index + 1], self._pings[index + 1 :]
                for _, event in acked:
                    event.set()
                break
        if not self._pings:
            self._pong_deadline = None

    def _wait_closed(self, deadline: Optional[float]) -> None:
        """Read or wait until the transport is closed, or the deadline."""
        while not self._closed:
            if deadline is not None and time.monotonic() >= deadline:
                return
            if self._read_lock.acquire(False):
                try:
                    self._read(deadline, want=False)
                finally:
                    self._release_read()
            else:
                with self._cond:
                    if not self._closed:
                        self._wait_for_reader(deadline)

    def _wait_for_reader(self, deadline: Optional[float]) -> None:
        """Wait (hold ``_cond``) until the thread reading gives the socket back, a message
        is queued or the connection closes."""
        self._read_waiters += 1
        try:
            # Checked after counting ourselves: a reader that released the lock before
            # seeing the count is seen here instead, so no wake-up is lost.
            if self._read_lock.locked():
                self._cond.wait(_remaining(deadline, 1.0))
        finally:
            self._read_waiters -= 1

    def _release_read(self) -> None:
        self._read_lock.release()
        if self._read_waiters:  # Most reads have nobody waiting: skip the condition.
            with self._cond:
                self._cond.notify_all()
        if self._closed:
            self._close_fd()

    def _notify_locked(self) -> None:
        self._cond.notify_all()
        for event in self._ready:
            event.set()

    # -- the watcher's side ------------------------------------------------------------

    def _watcher_read(self) -> Optional[float]:
        """Called by the watcher when the socket is readable; never blocks."""
        if not self._read_lock.acquire(False):
            return BACKOFF  # An application thread is reading: leave it alone.
        try:
            more = self._read_available()
        finally:
            self._release_read()
        return 0.0 if more else None  # More may wait in TLS buffers poll() cannot see.

    def _read_available(self, *, bounded: bool = True) -> bool:
        """Read and process what the socket has now, without waiting (hold ``_read_lock``).

        Args:
            bounded: stop at :data:`_WATCHER_READ_LIMIT` bytes or ``max_queue``. False
                ignores ``max_queue`` and reads up to :data:`_READ_AFTER_RESET_LIMIT`: the
                connection is about to be cut, and what is left unread would be lost.

        Returns:
            True if it stopped at the byte limit with the connection open.
        """
        total = 0
        limit, max_queue = (_WATCHER_READ_LIMIT, self.max_queue) if bounded else (_READ_AFTER_RESET_LIMIT, None)
        while not self._closed and total < limit:
            if max_queue is not None and self._queued >= max_queue:
                # Under the lock _pop() resumes under, checked again: a recv() taking
                # messages meanwhile would otherwise find nothing paused to resume.
                with self._state_lock:
                    if self._queued >= max_queue:
                        self._paused = True
                        self._watcher.pause(self)
                        return False
            room = DEFAULT_READ_SIZE
            if max_queue is not None:
                room = max(4096, min(DEFAULT_READ_SIZE, max_queue - self._queued))
            data = self._channel.recv_nowait(room)
            if data is None:
                return False
            total += len(data)
            self._process(data, want=False)
            if not data:
                # The end of the stream. If a sender holds the socket, the transport
                # closes when it lets go. Reading on would only see the end again, and
                # an ended stream is always readable: stop watching it until then.
                self._watcher.pause(self)
                return False
        return not self._closed

    def _watcher_busy(self) -> bool:
        """True while another thread reads (or closes) the connection."""
        return self._read_lock.locked()

    def _schedule(self, when: float) -> None:
        """Have the watcher call :meth:`_watcher_timer` at ``when`` (keeps one entry)."""
        if self._timer_at is None or when < self._timer_at:
            self._timer_at = when
            self._watcher.schedule(self, when)

    def _watcher_timer(self, now: float) -> None:
        """Keepalive and closing deadlines, run by the watcher thread."""
        if self._timer_at is not None and self._timer_at > now:
            return  # A stale entry; a later one is scheduled.
        self._timer_at = None
        later = self._run_timers(now)
        if later is not None:
            self._schedule(later)

    def _run_timers(self, now: float) -> Optional[float]:
        if self._closed:
            return None
        if self._close_deadline is not None and now >= self._close_deadline:
            self._abort(TimeoutError("the closing handshake did not finish in time"))
            return None
        if self._pong_deadline is not None and now >= self._pong_deadline and not self._paused:
            self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout", wait=0.0)
            return None
        if self._next_ping is not None and now >= self._next_ping and self.ping_interval:
            self._send_keepalive(now)
        if self._channel.unsent:
            self._flush_control()
            if self._closed:
                return None
        times = [t for t in (self._next_ping, self._pong_deadline, self._close_deadline) if t]
        if self._channel.unsent:
            times.append(now + BACKOFF)
        return min(times) if times else None

    def _send_keepalive(self, now: float) -> None:
        assert self.ping_interval is not None
        self._next_ping = now + self.ping_interval
        payload = int(now * 1e6).to_bytes(8, "big")
        with self._state_lock:
            if self._proto.close_sent is not None:
                return
            self._pings.append((payload, threading.Event()))
            self._ctrl_pending += self._proto.send_ping(payload)
            if self.ping_timeout is not None and self._pong_deadline is None:
                self._pong_deadline = now + self.ping_timeout
        self._flush_control()

    def _fail(self, code: int, reason: str, *, wait: float, cause: Optional[BaseException] = None) -> None:
        """Close with ``code`` without waiting for the peer's answer.

        Args:
            code, reason: what the close frame says.
            wait: how long the close frame may wait for another writer (0 in the watcher
                thread, which must never block).
            cause: the ``__cause__`` of later errors (default: a TimeoutError(reason)).
        """
        with self._state_lock:
            self._ctrl_pending += self._proto.fail(code, reason)
        self._finish_writes(wait)
        self._abort(cause if cause is not None else TimeoutError(reason))

    # -- writing -----------------------------------------------------------------------

    def _take_pending(self) -> List[bytes]:
        """Control frames queued by the reader, to write first (hold ``_state_lock``)."""
        pending, self._ctrl_pending = self._ctrl_pending, []
        return pending

    def _write_frame(self, deadline: Optional[float], build: Callable[[], List[bytes]]) -> None:
        """Under the write lock: write pending control frames, then what ``build()`` frames."""
        if not self._write_lock.acquire(True, _remaining(deadline, -1)):
            raise TimeoutError("the connection was busy writing past the timeout")
        try:
            with self._state_lock:
                if self._closed or self._proto.close_sent is not None or self._proto.eof_received:
                    raise self._closed_error()
                buffers = build()
                if self._ctrl_pending:
                    buffers = self._take_pending() + buffers
            self._write_or_abort(buffers, deadline)
        finally:
            self._release_write()

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

    def _write_or_abort(self, buffers: List[bytes], deadline: Optional[float]) -> None:
        try:
            self._channel.write(buffers, deadline)
        except TimeoutError as exc:
            self._abort(exc)
            raise
        except OSError as exc:
            self._read_what_arrived()
            self._abort(exc)
            raise self._closed_error() from exc
        if self._debug:
            logger.debug("%s > %d bytes", self._proto.side.value, sum(map(len, buffers)))

    def _read_what_arrived(self) -> None:
        """A write failed (the peer reset the connection): take in what it sent before.

        A peer that refuses a message (1009) often closes with our bytes unread, which
        resets TCP; its close frame is still in our receive buffer, and it is what tells
        the application why. A thread already reading (the watcher, or ``recv()``) gets
        it from the same buffer: wait for it to let go, briefly, so the close is
        processed before the connection is marked closed. Once the stream has ended there
        is nothing left to read (and a ``recv()`` waiting for the close holds the lock).
        """
        deadline = time.monotonic() + _READ_AFTER_RESET_WAIT
        while not self._read_lock.acquire(False):
            with self._cond:
                if self._proto.eof_received or time.monotonic() >= deadline:
                    return
                self._wait_for_reader(deadline)
        try:
            if not self._proto.eof_received:
                self._read_available(bounded=False)
        finally:
            self._release_read()

    def _write_now(self, buffers: List[bytes]) -> bool:
        """Write without waiting (hold ``_write_lock``): what the socket cannot take now
        stays in the channel's ``unsent`` for the watcher to finish. False if the
        connection failed."""
        try:
            self._channel.write(buffers, time.monotonic())
        except TimeoutError:
            self._schedule(time.monotonic() + BACKOFF)
        except OSError as exc:
            self._abort(exc)
            return False
        return True

    def _flush_control(self) -> None:
        """Write queued control frames now if nobody else is writing; never blocks."""
        while self._write_lock.acquire(False):
            try:
                with self._state_lock:
                    frames = self._take_pending()
                if not frames and not self._channel.unsent:
                    break
                self._write_now(frames)
            finally:
                self._write_lock.release()
                if self._closed:
                    self._close_fd()
            if not self._ctrl_pending:
                break
        self._close_if_written()

    def _release_write(self) -> None:
        self._write_lock.release()
        if self._closed:
            self._close_fd()
        elif self._ctrl_pending:
            self._flush_control()  # Closes the transport too, if it only waited for these.
        elif self._close_after_write:
            self._close_if_written()

    # -- closing -----------------------------------------------------------------------

    def _abort(self, cause: Optional[BaseException]) -> None:
        """Close the transport now (idempotent): wake every waiter, release the socket."""
        with self._state_lock:
            first = not self._closed
            if first:
                self._closed = True
                if cause is not None and self._abort_cause is None:
                    self._abort_cause = cause
                # The close frame is the last one written: if anything is still waiting
                # to go out, it has not (a pong after it, rarely, counts it unsent too).
                self._close_unsent = self._proto.close_sent is not None and bool(
                    self._ctrl_pending or self._channel.unsent
                )
                if not self._proto.eof_received:
                    self._proto.receive_eof()
                self._notify_locked()
                if self._debug:
                    logger.debug("%s closed: %s", self._proto.side.value, self._proto.close_code)
        if first:
            self._channel.shutdown()  # Wakes threads polling the socket.
        self._close_fd()

    def _close_fd(self) -> None:
        """Close the socket once no thread reads or writes it."""
        if self._channel.closed or not self._read_lock.acquire(False):
            return
        try:
            if not self._write_lock.acquire(False):
                return
            try:
                if not self._channel.closed:
                    self._watcher.remove(self)
                    self._channel.close()
                    with self._cond:
                        self._cond.notify_all()
            finally:
                self._write_lock.release()
        finally:
            self._read_lock.release()

    def _close_status(self) -> Tuple[int, str]:
        """The close code and reason: the protocol's, unless this end's close frame never
        left (the transport was cut while it waited behind a stalled write) and none came
        back: then no close frame went either way, 1006 (RFC 6455 section 7.1.5)."""
        proto = self._proto
        if self._close_unsent and proto.close_rcvd is None and not proto.failed:
            return CloseCode.ABNORMAL_CLOSURE, ""
        return proto.close_code, proto.close_reason

    def _closed_error(self) -> ConnectionClosed:
        code, reason = self._close_status()
        cls = ConnectionClosedOK if code in OK_CLOSE_CODES and not self._proto.failed else ConnectionClosedError
        error = cls(known_close_code(code), reason)
        error.__cause__ = self._proto.error or self._abort_cause
        return error


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
        TypeError: a number of seconds that is not an int or a float.
        ValueError: a size that is not a positive int, a ``ping_interval`` that is not
            positive, or a negative or infinite number of seconds. ``None`` passes.
    """
    check_count("max_size", max_size)
    check_count("max_queue", max_queue)
    check_seconds("ping_interval", ping_interval, positive=True)
    check_seconds("ping_timeout", ping_timeout)
    check_seconds("close_timeout", close_timeout)


def check_count(name: str, value: Optional[int]) -> None:
    """Check a size or a count: a positive int, or None.

    Raises:
        ValueError: anything else.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
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


def _remaining(deadline: Optional[float], default: Any) -> Any:
    """Seconds left until ``deadline`` (never negative), or ``default`` without one."""
    if deadline is None:
        return default
    return max(0.0, deadline - time.monotonic())


def _describe(event: Any) -> str:
    """A short log line for an event; payloads truncated."""
    if isinstance(event, (str, bytes)):
        kind = "text" if isinstance(event, str) else "binary"
        shown = event[:40]
        return f"{kind} [{len(event)}] {shown!r}{'...' if len(event) > 40 else ''}"
    return repr(event)[:120]


def wait(connections: Iterable[WebSocket], timeout: Optional[float] = None) -> List[WebSocket]:
    """Return the connections that have a message ready or have closed.

    In the style of :func:`multiprocessing.connection.wait`: blocks until at least one of
    ``connections`` is ready, or ``timeout`` seconds pass (then returns an empty list).

    Args:
        connections: the connections to watch.
        timeout: seconds; None waits without limit.

    Returns:
        The ready connections, in the order given.
    """
    conns = connections_only(connections, "wait()")
    event = threading.Event()
    for conn in conns:
        with conn._state_lock:
            conn._ready.add(event)
    try:
        deadline = deadline_after(timeout)
        while True:
            ready = [c for c in conns if c._queue or c._closed]
            if ready:
                return ready
            remaining = _remaining(deadline, None)
            if remaining is not None and remaining <= 0:
                return []
            event.wait(remaining)
            event.clear()
    finally:
        for conn in conns:
            with conn._state_lock:
                conn._ready.discard(event)
