"""The watcher's side of a connection: what the background thread does for it.

A :class:`Background` belongs to one connection (:class:`~wsclient.duplex.Duplex`) and is
what the connection registers with its :class:`~wsclient.watcher.Watcher`: it implements
the watcher's :class:`~wsclient.watcher.Watched` hooks. When the socket is readable and no
application thread reads it, the watcher reads what is there without blocking
(:meth:`Background.on_readable`), so pings are answered and closing handshakes complete
while the application is busy; its timers send keepalive pings and enforce the pong and
closing deadlines (:meth:`Background.on_timer`). It owns the keepalive state: the pings
awaiting their pong and the deadlines.

It works on its connection only through the connection's named methods and attributes,
described by :class:`Host`.
"""

from __future__ import annotations

import threading
from typing import Any, List, Optional, Protocol as TypingProtocol, Tuple

from .channel import DEFAULT_READ_SIZE, Channel
from .close import CloseCode
from .inbox import Inbox, Message
from .options import ConnectionOptions
from .outbox import Outbox
from .protocol import Protocol
from .watcher import BACKOFF, Watcher

__all__ = ["Background", "Host"]

#: The most the watcher reads from one connection before it turns to the others.
_WATCHER_READ_LIMIT = 1 << 20
#: The most a read after a reset takes, past ``max_queue``: what a reset peer sent before
#: is all in the kernel's receive buffer (6 MiB at most by Linux's default tcp_rmem).
_READ_AFTER_RESET_LIMIT = 64 << 20


class Host(TypingProtocol):
    """What :class:`Background` uses of its connection."""

    proto: Protocol
    channel: Channel
    inbox: Inbox
    outbox: Outbox
    watcher: Watcher
    state_lock: threading.Lock
    read_lock: threading.Lock
    closed: bool

    def process(self, data: bytes, *, want: bool) -> Optional[Message]: ...

    def release_read(self) -> None: ...

    def release_failure(self) -> None: ...

    failure_due: Optional[float]

    def flush_control(self) -> None: ...

    def abort(self, cause: Optional[BaseException]) -> None: ...

    def fail(self, code: int, reason: str, *, wait: float, cause: Optional[BaseException] = None) -> None: ...


class Background:
    """Reading while nobody else does, keepalive pings and deadlines, for one connection.

    Args:
        host: the connection.
        options: its options (``ping_interval``, ``ping_timeout``).
    """

    def __init__(self, host: Host, options: ConnectionOptions) -> None:
        self._host = host
        self._ping_interval = options.ping_interval
        self._ping_timeout = options.ping_timeout
        # Pings awaiting their pong, oldest first (payloads may repeat: ping() twice), each
        # with the event ping() waits on; None for a keepalive ping, which nobody waits on
        # (an Event is a lock, a condition and a deque: 1.6 KiB per connection per ping,
        # 16 MB of churn every ping interval on a server with 10,000 connections).
        self._pings: List[Tuple[bytes, Optional[threading.Event]]] = []
        self._pong_deadline: Optional[float] = None
        self._next_ping: Optional[float] = None
        self._close_deadline: Optional[float] = None
        self._timer_at: Optional[float] = None
        #: Set by :meth:`is_busy`: the thread reading tells the watcher when it lets go
        #: (``Duplex.release_read``), and clears it.
        self.report_release = False

    def start(self, now: float) -> None:
        """Schedule the first keepalive ping (the connection has joined the watcher)."""
        if self._ping_interval is not None:
            self._next_ping = now + self._ping_interval
            self.schedule(self._next_ping)

    # -- the watcher's hooks -----------------------------------------------------------

    def fileno(self) -> int:
        """The connection's socket (-1 once closed)."""
        return self._host.channel.fileno()

    def on_readable(self) -> Optional[float]:
        """Called by the watcher when the socket is readable; never blocks."""
        host = self._host
        if not host.read_lock.acquire(False):
            # An application thread is reading: leave it alone until it lets go, or look
            # again at once if it let go before it could see that it should say so.
            return BACKOFF if self.is_busy() else 0.0
        try:
            more = self.read_available()
        finally:
            host.release_read()
        return 0.0 if more else None  # More may wait in TLS buffers the selector cannot see.

    def is_busy(self) -> bool:
        """True while another thread reads (or closes) the connection; that thread then
        tells the watcher when it lets go (:attr:`report_release`)."""
        # Set before looking: a reader letting go between the two either sees the flag
        # (and reports) or is seen gone here.
        self.report_release = True
        return self._host.read_lock.locked()

    def on_timer(self, now: float) -> None:
        """Keepalive and closing deadlines, run by the watcher thread."""
        if self._timer_at is not None and self._timer_at > now:
            return  # A stale entry; a later one is scheduled.
        self._timer_at = None
        later = self._run_timers(now)
        if later is not None:
            self.schedule(later)

    # -- reading -----------------------------------------------------------------------

    def read_available(self, *, bounded: bool = True) -> bool:
        """Read and process what the socket has now, without waiting (hold the read lock).

        Args:
            bounded: stop at :data:`_WATCHER_READ_LIMIT` bytes or a full inbox. False
                ignores ``max_queue`` and reads up to :data:`_READ_AFTER_RESET_LIMIT`: the
                connection is about to be cut, and what is left unread would be lost.

        Returns:
            True if it stopped at the byte limit with the connection open.
        """
        host = self._host
        inbox = host.inbox
        total = 0
        limit = _WATCHER_READ_LIMIT if bounded else _READ_AFTER_RESET_LIMIT
        while not host.closed and total < limit:
            if bounded and inbox.full:
                # Under the lock pop() resumes under, checked again: a recv() taking
                # messages meanwhile would otherwise find nothing paused to resume.
                with host.state_lock:
                    if inbox.full:
                        inbox.paused = True
                        host.watcher.pause(self)
                        return False
            data = host.channel.recv_nowait(inbox.room(DEFAULT_READ_SIZE) if bounded else DEFAULT_READ_SIZE)
            if data is None:
                return False
            total += len(data)
            host.process(data, want=False)
            if not data:
                # The end of the stream. If a sender holds the socket, the transport
                # closes when it lets go. Reading on would only see the end again, and
                # an ended stream is always readable: stop watching it until then.
                host.watcher.pause(self)
                return False
        return not host.closed

    # -- timers ------------------------------------------------------------------------

    def schedule(self, when: float) -> None:
        """Have the watcher call :meth:`on_timer` at ``when`` (keeps one entry)."""
        if self._timer_at is None or when < self._timer_at:
            self._timer_at = when
            self._host.watcher.schedule(self, when)

    def close_by(self, deadline: float) -> None:
        """Cut the transport at ``deadline`` (a ``time.monotonic()`` value) unless it
        closes before; an earlier bound set already stays."""
        if self._close_deadline is None or deadline < self._close_deadline:
            self._close_deadline = deadline
        self.schedule(self._close_deadline)

    def _run_timers(self, now: float) -> Optional[float]:
        host = self._host
        if host.closed:
            return None
        if host.failure_due is not None and now >= host.failure_due and host.proto.pending_failure is not None:
            host.release_failure()  # The application did not come back for it in time.
            if host.closed:
                return None
        if self._close_deadline is not None and now >= self._close_deadline:
            host.abort(TimeoutError("the closing handshake did not finish in time"))
            return None
        if self._pong_deadline is not None and now >= self._pong_deadline and not host.inbox.paused:
            host.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout", wait=0.0)
            return None
        if self._next_ping is not None and now >= self._next_ping and self._ping_interval:
            self._send_keepalive(now, self._ping_interval)
        if host.channel.unsent:
            host.flush_control()
            if host.closed:
                return None
        times = [t for t in (self._next_ping, self._pong_deadline, self._close_deadline) if t]
        if host.channel.unsent:
            times.append(now + BACKOFF)
        return min(times) if times else None

    def _send_keepalive(self, now: float, interval: float) -> None:
        host = self._host
        self._next_ping = now + interval
        payload = int(now * 1e6).to_bytes(8, "big")
        with host.state_lock:
            if host.proto.close_sent is not None:
                return
            self._pings.append((payload, None))
            host.outbox.queue(host.proto.send_ping(payload))
            if self._ping_timeout is not None and self._pong_deadline is None:
                self._pong_deadline = now + self._ping_timeout
        host.flush_control()

    # -- pings -------------------------------------------------------------------------

    def expect_pong(self, payload: bytes, event: threading.Event) -> None:
        """Set ``event`` when the pong for ``payload`` (or a later ping) arrives (hold the
        state lock)."""
        self._pings.append((payload, event))

    def ack_pings(self, data: bytes) -> None:
        """A pong acknowledges its ping and every earlier one (hold the state lock)."""
        for index, (payload, _) in enumerate(self._pings):
            if payload == data:
                acked, self._pings = self._pings[: index + 1], self._pings[index + 1 :]
                for _, event in acked:
                    if event is not None:
                        event.set()
                break
        if not self._pings:
            self._pong_deadline = None
