"""Duplex: one WebSocket connection's socket, shared by the application's threads and the watcher.

:class:`Duplex` is the machinery under :class:`~wsclient.connection.WebSocket` (which adds
the public API): the protocol object, the socket, the queue of received messages, and the
locks that let any thread read, write or close. It serves both ends. Threads and the
socket meet here:

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
The watcher's side of the connection (reading while nobody else does, keepalive pings,
deadlines) is the :class:`~wsclient.background.Background` mixin.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Set, Tuple, Union

from .background import Background
from .channel import Channel
from .close import CloseCode, known_close_code
from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from .options import DEFAULT_MAX_QUEUE, ConnectionOptions
from .protocol import OK_CLOSE_CODES, Close, Pong, Protocol, Side
from .watcher import BACKOFF, Watcher

__all__ = ["Duplex", "DEFAULT_MAX_QUEUE", "Message"]

logger = logging.getLogger("wsclient")

Message = Union[str, bytes]


#: How long a failed write waits for another reading thread before it reads what the peer
#: sent last (that thread normally lets go within microseconds: the reset wakes it too).
_READ_AFTER_RESET_WAIT = 0.5
_NOTHING: Any = object()


class Duplex(Background):
    """The socket and protocol of one connection, and the locks that share them.

    Args:
        sock: the connected socket (plain, TLS or TLS inside TLS), after the handshake.
        protocol: the connection's state machine.
        request, response, subprotocol: the opening handshake's, kept for the application
            (see :class:`~wsclient.connection.WebSocket`).
        watcher: the background reader that watches this connection.
        options: the connection's options (``max_size`` is the protocol's to enforce).
        initial_data: bytes read past the handshake, processed first.
        preamble: bytes to write before any frame (a server's 101 response).
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
        options: ConnectionOptions = ConnectionOptions(),
        initial_data: bytes = b"",
        preamble: bytes = b"",
    ) -> None:
        self.request = request
        self.response = response
        self.subprotocol = subprotocol
        self.client_address: Optional[str] = None
        self.options = options
        self.ping_interval = ping_interval = options.ping_interval
        self.ping_timeout = options.ping_timeout
        self.close_timeout = options.close_timeout
        self.max_queue = options.max_queue
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
            if deadline is not None and not self._room_before(deadline):
                raise TimeoutError("the peer did not read in time; nothing of the message was sent")
            with self._state_lock:
                if self._closed or self._proto.close_sent is not None or self._proto.eof_received:
                    raise self._closed_error()
                buffers = build()
                if self._ctrl_pending:
                    buffers = self._take_pending() + buffers
            self._write_or_abort(buffers, deadline)
        finally:
            self._release_write()

    def _room_before(self, deadline: float) -> bool:
        """Whether the socket takes bytes before ``deadline`` (hold ``_write_lock``), once
        what earlier writes left unsent (whole frames) is out.

        A frame is built only when some of it can go at once: a send whose timeout expires
        while the peer does not read has then sent nothing (its message was never framed,
        so the compression context did not advance either), and the connection goes on.
        """
        if self._channel.unsent:
            self._write_or_abort([], deadline, abort_on_timeout=False)
        return self._channel.wait_writable(deadline)

    def _write_or_abort(self, buffers: List[bytes], deadline: Optional[float], *, abort_on_timeout: bool = True) -> None:
        try:
            self._channel.write(buffers, deadline)
        except TimeoutError as exc:
            if abort_on_timeout:
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

    # -- closing -----------------------------------------------------------------------

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
