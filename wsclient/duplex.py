"""Duplex: one WebSocket connection's socket, shared by the application's threads and the watcher.

:class:`Duplex` is the machinery under :class:`~wsclient.connection.WebSocket` (which
holds one and adds the public API). It composes the parts of one connection and
coordinates the threads that use them:

* the state machine, :class:`~wsclient.protocol.Protocol`, which owns the connection's
  state: what was sent and received, the close code and reason, whether sending is still
  allowed;
* the socket, :class:`~wsclient.channel.Channel` (non-blocking, with its polling, partial
  writes and TLS lock; every wait on it is bounded by the caller's deadline);
* the receiving part, :class:`~wsclient.inbox.Inbox` (queued messages, ``max_queue``,
  who to wake);
* the sending part, :class:`~wsclient.outbox.Outbox` (write and message locks, control
  frames waiting for the writer, close-after-write);
* the watcher's part, :class:`~wsclient.background.Background` (reading while nobody
  else does, keepalive, deadlines), registered with the
  :class:`~wsclient.watcher.Watcher`.

Threads and the socket meet here:

* Reading. Whoever holds :attr:`Duplex.read_lock` reads the socket: an application thread
  inside ``recv()`` (the fast path: it reads and parses the message itself, no thread
  hand-off), ``close()`` waiting for the peer's close frame, or the watcher thread when
  nobody else is reading. What the watcher reads waits in the inbox.
* Writing. Whoever holds the outbox's write lock writes (see :mod:`wsclient.outbox`).
* State. :attr:`Duplex.state_lock` guards the protocol, the inbox and the outbox's queue;
  it is only held for short, non-blocking work. Lock order: message lock, then write
  lock, then read lock, then the state lock; a thread holding a later one never waits
  for an earlier one (it may only try it without waiting).

Locks are taken with positional arguments (``acquire(False)``, ``acquire(True, timeout)``):
the keyword forms cost 80 to 170 ns more each, and a 32-byte round trip takes three.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator, List, Optional

from .background import Background
from .channel import Channel
from .close import CloseCode
from .exceptions import ConnectionClosed
from .gate import Gate
from .inbox import Inbox, Message
from .options import ConnectionOptions
from .outbox import Outbox
from .protocol import COMPRESSED_SLICE, Close, Pong, PreparedMessage, Protocol, Side
from .watcher import BACKOFF, Watcher

__all__ = ["Duplex", "BROADCAST_WAIT", "FAILURE_GRACE", "remaining"]

logger = logging.getLogger("wsclient")

#: How long a failed write waits for another reading thread before it reads what the peer
#: sent last (that thread normally lets go within microseconds: the reset wakes it too).
_READ_AFTER_RESET_WAIT = 0.5

#: How long :meth:`Duplex.send_nowait` (``broadcast()``) waits for another thread's write
#: to a peer that reads (seconds); a peer that does not read is skipped at once.
BROADCAST_WAIT = 0.5

#: How long a peer's protocol error may wait for the application (seconds). Messages
#: that arrived before the bad data are delivered first; the connection fails (1002,
#: 1007...) when the application asks for the message after them, so its answers to them
#: leave before the close frame (what the Autobahn testsuite calls strict), or at the
#: latest this long after the bad data arrived. Pings before it are answered at once.
FAILURE_GRACE = 1.0

#: The end of a fragmented message's iterable (``next(fragments, _END)``).
_END: Any = object()


class Duplex:
    """The socket and protocol of one connection, and the locks that share them.

    Args:
        sock: the connected socket (plain, TLS or TLS inside TLS), after the handshake.
        protocol: the connection's state machine.
        watcher: the background reader that watches this connection.
        options: the connection's options (``max_size`` is the protocol's to enforce).
        initial_data: bytes read past the handshake, processed first.
        preamble: bytes to write before any frame (a server's 101 response).
        gate: the server's :class:`~wsclient.gate.Gate` (see :class:`~wsclient.channel.Channel`).

    Attributes:
        proto, channel, inbox, outbox, background, watcher: the parts (see the module).
        state_lock, read_lock: see the module.
        closed: the transport is closed (or closing down): nothing more is read or written.
        close_timeout: the bound on the closing handshake (from the options; may be
            changed while the connection is open).
        abort_cause: why the transport ended, when it was not the peer's close.
    """

    def __init__(
        self,
        sock: Any,
        protocol: Protocol,
        *,
        watcher: Watcher,
        options: ConnectionOptions,
        initial_data: bytes = b"",
        preamble: bytes = b"",
        gate: Optional[Gate] = None,
    ) -> None:
        self.proto = protocol
        self.options = options
        self.close_timeout = options.close_timeout  # The CLI shortens it on Ctrl-C.
        self.watcher = watcher
        self.state_lock = threading.Lock()
        self.read_lock = threading.Lock()
        self.closed = False
        self.abort_cause: Optional[BaseException] = None
        self._read_waiters = 0  # Threads waiting for the read lock (under the condition).
        self._debug = logger.isEnabledFor(logging.DEBUG)
        # The preamble (a server's 101) goes out before any frame.
        self.channel = Channel(sock, unsent=preamble, gate=gate)
        self.inbox = Inbox(self.state_lock, options.max_queue)
        self._changed = self.inbox.changed
        self.outbox = Outbox(self.channel)
        self.background = Background(self, options)
        # A peer's protocol error waits until the application has taken (and could answer)
        # the messages before it: release_failure().
        protocol.defer_failures = True
        self.failure_due: Optional[float] = None
        # A server's end of the stream went out after its close frame; the socket is read
        # (and what comes discarded) until the peer's end, bounded by close_timeout.
        self.lingering = False
        # Watched before the first bytes are processed, so the timers they may set (a
        # deferred failure, a closing deadline) are kept; the watcher leaves the socket
        # alone meanwhile, as the read lock is taken (and is told when it is let go).
        self.read_lock.acquire()
        try:
            watcher.add(self.background)
            if initial_data:
                self.process(initial_data, want=False)
        finally:
            self.release_read()
        self.background.start(time.monotonic())

    # -- receiving ---------------------------------------------------------------------

    def receive(self, deadline: Optional[float]) -> Message:
        """The next message (``recv()``): read it here if no other thread reads, else
        wait for the reader to queue one.

        Raises:
            TimeoutError: the deadline passed; nothing is lost.
            ConnectionClosed: the connection closed and every message was returned.
        """
        while True:
            if self.read_lock.acquire(False):
                try:
                    message = self._read(deadline, want=True)  # Queued messages first.
                finally:
                    self.release_read()
                if message is not None:
                    return message
            else:
                with self._changed:
                    if not self.inbox.messages and not self.closed:
                        self._wait_for_reader(deadline)
            with self.state_lock:
                if self.inbox.messages:
                    return self._pop()
                if self.closed:
                    raise self.closed_error()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("no message received within the timeout")

    def _pop(self) -> Message:
        """Take the oldest queued message (hold the state lock)."""
        message, resume = self.inbox.pop()
        if resume:
            self.watcher.resume(self.background)
        return message

    def _read(self, deadline: Optional[float], *, want: bool) -> Optional[Message]:
        """Read the socket (hold the read lock) until the deadline or the close.

        With ``want``, return the first message that arrives (or was queued); without it,
        queue every message and only return at the deadline or the close. Returns None at
        the deadline or the close.
        """
        inbox = self.inbox
        while True:
            if (want and inbox.messages) or self.closed or self.proto.eof_received:
                with self.state_lock:
                    if want and inbox.messages:
                        return self._pop()
                    if self.closed:
                        return None
                    if self.proto.eof_received:
                        # The stream ended while a sender holds the socket: the transport
                        # closes when it lets go (or at close_timeout). Wait for that
                        # rather than read the end again.
                        self._changed.wait(remaining(deadline, None))
                        return None
            if self.proto.pending_failure is not None and not inbox.messages:
                # Every message before the peer's bad data was taken: fail now.
                self.release_failure()
                continue
            data = self.channel.recv(deadline)
            if data is None:
                return None
            message = self.process(data, want=want)
            if message is not None:
                return message

    def process(self, data: bytes, *, want: bool) -> Optional[Message]:
        """Feed received bytes to the protocol (hold the read lock); ``b""`` is the end
        of the stream.

        Returns:
            The first message if ``want`` and nothing is queued before it, else None;
            every other message is queued in the inbox.
        """
        first: Optional[Message] = None
        closing = False
        with self.state_lock:
            proto = self.proto
            inbox = self.inbox
            if data:
                events = proto.receive_data(data)
            else:
                events = []
                proto.release_failure()  # The stream ended: nothing is left to answer.
                proto.receive_eof()
                self.abort_cause = self.abort_cause or self.channel.error
                self._changed.notify_all()  # A failed write waits for this (_read_what_arrived).
            queued = False
            for event in events:
                cls = event.__class__
                if cls is str or cls is bytes:
                    if want and first is None and not inbox.messages:
                        first = event  # type: ignore[assignment]  # str or bytes: the class check above
                    else:
                        inbox.put(event)  # type: ignore[arg-type]  # str or bytes: the class check above
                        queued = True
                elif cls is Pong:
                    self.background.ack_pings(event.data)  # type: ignore[union-attr]  # a Pong: the class check above
                elif cls is Close and proto.side is Side.CLIENT:
                    closing = True  # The server should now close TCP; don't wait forever.
                if self._debug:
                    logger.debug("%s < %s", proto.side.value, _describe(event))
            control = proto.data_to_send()
            if control:
                self.outbox.queue(control)
            pending = self.outbox.control
            finished = proto.should_close_transport
            if queued:
                inbox.notify()
        if pending:
            self.flush_control()
        if proto.pending_failure is not None and self.failure_due is None:
            self.failure_due = time.monotonic() + FAILURE_GRACE
            self.background.schedule(self.failure_due)
        if finished:
            self._close_when_written()
        elif closing and self.close_timeout is not None:
            self.background.close_by(time.monotonic() + self.close_timeout)
        return first

    def release_failure(self) -> None:
        """Fail the connection for the peer's protocol error the protocol kept (see
        :data:`FAILURE_GRACE`): the close frame goes out, then the transport closes."""
        with self.state_lock:
            self.proto.release_failure()
            control = self.proto.data_to_send()
            if control:
                self.outbox.queue(control)
            finished = self.proto.should_close_transport
        if control:
            self.flush_control()
        if finished:
            self._close_when_written()

    def _wait_for_reader(self, deadline: Optional[float]) -> None:
        """Wait (hold the inbox's condition) until the thread reading gives the socket
        back, a message is queued or the connection closes."""
        self._read_waiters += 1
        try:
            # Checked after counting ourselves: a reader that released the lock before
            # seeing the count is seen here instead, so no wake-up is lost.
            if self.read_lock.locked():
                self._changed.wait(remaining(deadline, 1.0))
        finally:
            self._read_waiters -= 1

    def release_read(self) -> None:
        """Release the read lock, waking threads waiting for it; close the socket if the
        transport closed meanwhile."""
        self.read_lock.release()
        background = self.background
        if background.report_release:  # The watcher detached the socket while we read it.
            background.report_release = False
            self.watcher.released(background)
        if self._read_waiters:  # Most reads have nobody waiting: skip the condition.
            with self._changed:
                self._changed.notify_all()
        if self.closed:
            self._close_fd()

    # -- sending -----------------------------------------------------------------------

    def send(self, message: Any, deadline: Optional[float], compress: Optional[bool]) -> None:
        """Send one message (``str`` or bytes-like), sliced if large and compressed.

        Raises:
            TimeoutError: as :meth:`~wsclient.WebSocket.send`.
            ConnectionClosed: the connection is closed or closing.
        """
        message_lock = self.outbox.message_lock
        if not message_lock.acquire(True, -1 if deadline is None else remaining(deadline, -1)):
            raise TimeoutError("another thread kept sending past the timeout")
        try:
            proto = self.proto
            self._write_frame(
                deadline, lambda: proto.send_message(message, compress=compress, slice_size=COMPRESSED_SLICE)
            )
            while proto.message_pending:  # A large compressed message, a slice per frame.
                self._write_more(deadline, proto.send_rest)
        finally:
            message_lock.release()

    def send_fragments(self, fragments: Iterator[Any], deadline: Optional[float], compress: Optional[bool]) -> None:
        """One message in several frames: the message lock is held throughout, the write
        lock only per frame, so control frames can go out between fragments."""
        message_lock = self.outbox.message_lock
        if not message_lock.acquire(True, remaining(deadline, -1)):
            raise TimeoutError("another thread kept sending past the timeout")
        try:
            # Each piece goes out as soon as the iterable yields it (streaming); an empty
            # final frame ends the message, as the end is only known after the last piece.
            first = next(fragments, _END)
            if first is _END:
                return
            empty = "" if isinstance(first, str) else b""
            # Until the first frame is out, a failure leaves nothing sent; after it, the
            # message can never be finished, and _write_more fails the connection.
            write = self._write_frame
            piece = first
            proto = self.proto
            while piece is not _END:
                write(deadline, lambda: proto.send_fragment(piece, fin=False, compress=compress))
                write = self._write_more
                try:
                    piece = next(fragments, _END)
                except Exception as exc:
                    self.fail(CloseCode.INTERNAL_ERROR, "", wait=1.0, cause=exc)
                    raise
            self._write_more(deadline, lambda: proto.send_fragment(empty, fin=True, compress=compress))
        finally:
            message_lock.release()

    def ping(self, payload: bytes) -> threading.Event:
        """Send a ping; the event is set when its pong (or a later one) arrives."""
        event = threading.Event()
        with self.state_lock:
            self.background.expect_pong(payload, event)
        self._write_frame(None, lambda: self.proto.send_ping(payload))
        self.watcher.resume(self.background)  # Read the pong now, even if the watcher backed off.
        return event

    def pong(self, payload: bytes) -> None:
        """Send an unsolicited pong."""
        self._write_frame(None, lambda: self.proto.send_pong(payload))

    def _write_frame(self, deadline: Optional[float], build: Callable[[], List[bytes]]) -> None:
        """Under the write lock: write pending control frames, then what ``build()`` frames."""
        write_lock = self.outbox.write_lock
        if not write_lock.acquire(True, -1 if deadline is None else remaining(deadline, -1)):
            raise TimeoutError("the connection was busy writing past the timeout")
        try:
            if deadline is not None and not self._room_before(deadline):
                raise TimeoutError("the peer did not read in time; nothing of the message was sent")
            with self.state_lock:
                if self.closed or not self.proto.can_send:
                    raise self.closed_error()
                buffers = build()
                if self.outbox.control:
                    buffers = self.outbox.take() + buffers
            self._write_or_abort(buffers, deadline)
        finally:
            self._release_write()

    def _write_more(self, deadline: Optional[float], build: Callable[[], List[bytes]]) -> None:
        """:meth:`_write_frame` for a frame that continues a message already on the wire.

        The message can never be finished if this fails: a timeout aborts the connection
        (a frame may be half written), and a piece that cannot be framed (a ``str`` with a
        lone surrogate, a type unlike the first piece's) fails it with 1011.
        """
        try:
            self._write_frame(deadline, build)
        except TimeoutError as exc:
            self.abort(exc)
            raise
        except OSError:
            raise  # The connection has closed already.
        except Exception as exc:
            self.fail(CloseCode.INTERNAL_ERROR, "", wait=1.0, cause=exc)
            raise

    def _room_before(self, deadline: float) -> bool:
        """Whether the socket takes bytes before ``deadline`` (hold the write lock), once
        what earlier writes left unsent (whole frames) is out.

        A frame is built only when some of it can go at once: a send whose timeout expires
        while the peer does not read has then sent nothing (its message was never framed,
        so the compression context did not advance either), and the connection goes on.
        """
        if self.channel.unsent:
            self._write_or_abort([], deadline, abort_on_timeout=False)
        return self.channel.wait_writable(deadline)

    def _write_or_abort(self, buffers: List[bytes], deadline: Optional[float], *, abort_on_timeout: bool = True) -> None:
        try:
            self.channel.write(buffers, deadline)
        except TimeoutError as exc:
            if abort_on_timeout:
                self.abort(exc)
            raise
        except OSError as exc:
            self._read_what_arrived()
            self.abort(exc)
            raise self.closed_error() from exc
        if self._debug:
            logger.debug("%s > %d bytes", self.proto.side.value, sum(map(len, buffers)))

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
        while not self.read_lock.acquire(False):
            with self._changed:
                if self.proto.eof_received or time.monotonic() >= deadline:
                    return
                self._wait_for_reader(deadline)
        try:
            if not self.proto.eof_received:
                self.background.read_available(bounded=False)
        finally:
            self.release_read()

    def _write_now(self, buffers: List[bytes]) -> bool:
        """Write without waiting (hold the write lock): what the socket cannot take now
        stays in the channel's ``unsent`` for the watcher to finish. False if the
        connection failed."""
        try:
            self.channel.write(buffers, time.monotonic())
        except TimeoutError:
            self.background.schedule(time.monotonic() + BACKOFF)
        except OSError as exc:
            self.abort(exc)
            return False
        return True

    def flush_control(self) -> None:
        """Write queued control frames (and unsent bytes) now if nobody else is writing;
        never blocks. Closes the transport too, if it only waited for these."""
        outbox = self.outbox
        while outbox.write_lock.acquire(False):
            try:
                with self.state_lock:
                    frames = outbox.take()
                if not frames and not self.channel.unsent:
                    break
                self._write_now(frames)
            finally:
                outbox.write_lock.release()
                if self.closed:
                    self._close_fd()
            if not outbox.control:
                break
        self._close_if_written()

    def _release_write(self) -> None:
        self.outbox.write_lock.release()
        if self.closed:
            self._close_fd()
        elif self.outbox.control:
            self.flush_control()  # Closes the transport too, if it only waited for these.
        elif self.outbox.close_after_write:
            self._close_if_written()

    def send_nowait(self, message: PreparedMessage) -> bool:
        """Send for :func:`~wsclient.broadcast`: without waiting on a peer that does not
        read; False if the message was not sent (closed, or the peer is not reading).

        Another thread writing to a peer that reads (a handler's echo, another broadcast)
        holds the locks for a short write: wait for it, up to :data:`BROADCAST_WAIT`. A
        peer that stopped reading (the socket takes no byte now) is skipped at once. A
        message sent uncompressed is framed first (framing it changes nothing) and
        written if the socket takes any of it; a compressed one is framed only once the
        socket is known to take some of it, so a skipped message never advances the
        compression context. What does not fit stays in the channel's ``unsent`` and the
        watcher finishes it (one message at most: the next one is sent only once it is
        out).
        """
        outbox = self.outbox
        if self.closed:
            return False
        if not outbox.message_lock.acquire(False):
            if self.channel.stalled:
                return False  # The sender in progress waits on a peer that does not read.
            if not outbox.message_lock.acquire(True, BROADCAST_WAIT):
                return False
        try:
            if not outbox.write_lock.acquire(True, BROADCAST_WAIT):
                return False
            try:
                if self.channel.unsent and not self._finish_unsent():
                    return False
                with self.state_lock:
                    if self.closed or not self.proto.can_send:
                        return False
                    if not outbox.control and not self.proto.would_compress(len(message.payload)):
                        buffers = self.proto.send_prepared(message)
                    else:
                        buffers = None
                if buffers is not None:
                    return self._write_if_read(buffers)
                if not self.channel.wait_writable(time.monotonic()):
                    return False
                with self.state_lock:
                    if self.closed or not self.proto.can_send:
                        return False
                    buffers = outbox.take() + self.proto.send_prepared(message)
                return self._write_now(buffers)
            finally:
                self._release_write()
        finally:
            outbox.message_lock.release()

    def _write_if_read(self, buffers: List[bytes]) -> bool:
        """Write a message that may be skipped (hold the write lock): True if the socket
        took some of it (the rest is finished in the background), False if it took none
        or the connection failed."""
        try:
            return self.channel.write_nowait(buffers)
        except TimeoutError:
            self.background.schedule(time.monotonic() + BACKOFF)
            return True
        except OSError as exc:
            self.abort(exc)
            return False

    def _finish_unsent(self) -> bool:
        """Write what an earlier write left unsent, without waiting (hold the write lock);
        True once it is all out."""
        try:
            self.channel.write([], time.monotonic())
        except TimeoutError:
            return False
        except OSError as exc:
            self.abort(exc)
            return False
        return True

    # -- closing -----------------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """The closing handshake, bounded by ``close_timeout`` (see ``WebSocket.close()``)."""
        close_timeout = self.close_timeout
        deadline = None if close_timeout is None else time.monotonic() + close_timeout
        if not self.closed:
            # Take the socket's read side first when it is free: the peer's answer is then
            # read here, not by the watcher thread and handed over (a GIL hand-off that
            # cost about a third of a short connection's close).
            reading = self.read_lock.acquire(False)
            if reading:  # Nor does the watcher wake for the answer only to find us reading.
                self.watcher.pause(self.background)
            try:
                self.start_close(code, reason, deadline)
                if reading:
                    self._read(deadline, want=False)
            finally:
                if reading:
                    self.release_read()
            self.wait_closed(deadline)
        self.abort(None)
        if not self.channel.closed:
            # Another thread is finishing a read or write; it closes the socket on its way
            # out (reads and writes fail fast after the shutdown in abort()).
            with self._changed:
                self._changed.wait_for(lambda: self.channel.closed, timeout=remaining(deadline, 5.0) or 0.5)

    def start_close(self, code: int, reason: str, deadline: Optional[float]) -> None:
        """Send the close frame (once); abort if it cannot go out before ``deadline``.

        While another thread writes (a handler sending to a slow peer), the frame is queued
        for that thread to write at its next frame boundary, as the reader's pongs are, so
        ``shutdown()`` closes every connection at once rather than one after another.
        """
        write_lock = self.outbox.write_lock
        if not write_lock.acquire(False):
            with self.state_lock:
                self.outbox.queue(self.proto.send_close(code, reason))
            self.flush_control()  # in case the writer has just finished
            return
        try:
            with self.state_lock:
                frames = self.outbox.take() + self.proto.send_close(code, reason)
            self.channel.write(frames, deadline)
        except (OSError, TimeoutError) as exc:
            self.abort(exc)
        finally:
            self._release_write()

    def wait_closed(self, deadline: Optional[float]) -> None:
        """Read or wait until the transport is closed, or the deadline."""
        while not self.closed:
            if deadline is not None and time.monotonic() >= deadline:
                return
            if self.read_lock.acquire(False):
                try:
                    self._read(deadline, want=False)
                finally:
                    self.release_read()
            else:
                with self._changed:
                    if not self.closed:
                        self._wait_for_reader(deadline)

    def _close_when_written(self) -> None:
        """The closing handshake is over: close the transport once the close frame is out.

        Never waits (the watcher thread may be the caller). While another thread is
        writing a frame (a handler's large echo), the close frame waits behind it and that
        thread closes the transport when it lets go; cutting the socket under it would
        leave the peer a truncated frame. ``close_timeout`` bounds the wait.
        """
        self.outbox.close_after_write = True
        self.flush_control()  # Also closes the transport if nothing else is queued.
        close_timeout = self.close_timeout
        if not self.closed and close_timeout is not None:
            self.background.close_by(time.monotonic() + close_timeout)

    def _close_if_written(self) -> None:
        """Close the transport if it only waited for queued frames to go out."""
        outbox = self.outbox
        if outbox.close_after_write and not self.closed and not outbox.pending:
            if outbox.write_lock.acquire(False):  # No frame is half written.
                outbox.write_lock.release()
                if not self._linger():
                    self.abort(None)

    def _linger(self) -> bool:
        """A server, after a clean closing handshake: end the stream (FIN, after what is
        still queued) and read until the peer ends its own, instead of closing at once.

        A socket closed while the peer still sends (a ping after its close frame, as
        Autobahn's 7.1.6 does) is answered by the kernel with a reset, and the reset drops
        whatever this end had queued and the peer had not yet read: the end of a large
        echo and the close frame. The peer sees our end of the stream as the server's
        close (RFC 6455 section 7.1.1) and closes its side; ``close_timeout`` (set by
        :meth:`_close_when_written`) bounds the wait. Not over TLS (see
        :meth:`Channel.shutdown_write`). True while lingering.
        """
        proto = self.proto
        if proto.eof_received or proto.failed or proto.side is not Side.SERVER:
            return False
        if not self.lingering:
            self.lingering = self.channel.shutdown_write()
        return self.lingering

    def _finish_writes(self, limit: float) -> None:
        """Before closing the transport, write what is still queued (a close frame).

        Another thread may hold the write lock (a handler sending its echo): wait for it
        up to ``limit`` seconds rather than shut the socket under a close frame that never
        went out.
        """
        outbox = self.outbox
        if not outbox.pending:
            return
        if not outbox.write_lock.acquire(True, limit):
            return
        try:
            with self.state_lock:
                frames = outbox.take()
            self.channel.write(frames, time.monotonic() + limit)
        except (OSError, TimeoutError):
            pass
        finally:
            outbox.write_lock.release()

    def fail(self, code: int, reason: str, *, wait: float, cause: Optional[BaseException] = None) -> None:
        """Close with ``code`` without waiting for the peer's answer.

        Args:
            code, reason: what the close frame says.
            wait: how long the close frame may wait for another writer (0 in the watcher
                thread, which must never block).
            cause: the ``__cause__`` of later errors (default: a TimeoutError(reason)).
        """
        with self.state_lock:
            self.outbox.queue(self.proto.fail(code, reason))
        self._finish_writes(wait)
        self.abort(cause if cause is not None else TimeoutError(reason))

    def abort(self, cause: Optional[BaseException]) -> None:
        """Close the transport now (idempotent): wake every waiter, release the socket."""
        with self.state_lock:
            first = not self.closed
            if first:
                self.closed = True
                if cause is not None and self.abort_cause is None:
                    self.abort_cause = cause
                # The close frame is the last one written: if anything is still waiting
                # to go out, it has not (a pong after it, rarely, counts it unsent too).
                self.proto.transport_closed(close_unsent=self.outbox.pending)
                self.inbox.notify()
                if self._debug:
                    logger.debug("%s closed: %s", self.proto.side.value, self.proto.close_code)
        if first:
            self.channel.shutdown()  # Wakes threads polling the socket.
        self._close_fd()

    def _close_fd(self) -> None:
        """Close the socket once no thread reads or writes it."""
        if self.channel.closed or not self.read_lock.acquire(False):
            return
        try:
            write_lock = self.outbox.write_lock
            if not write_lock.acquire(False):
                return
            try:
                if not self.channel.closed:
                    self.watcher.remove(self.background)
                    self.channel.close()
                    with self._changed:
                        self._changed.notify_all()
            finally:
                write_lock.release()
        finally:
            self.read_lock.release()

    def closed_error(self) -> ConnectionClosed:
        """The error operations on the closed connection raise (see the protocol's)."""
        return self.proto.closed_error(self.abort_cause)


def remaining(deadline: Optional[float], default: Any) -> Any:
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
