"""The watcher's side of a connection: what the background thread does for it.

:class:`Background` is the part of :class:`~wsclient.duplex.Duplex` that the watcher
thread (:mod:`wsclient.watcher`) drives, kept apart from the reading and writing an
application thread does: it implements the watcher's :class:`~wsclient.watcher.Watched`
hooks. When the socket is readable and no application thread reads it, the watcher reads
what is there without blocking (:meth:`Background._watcher_read`), so pings are answered
and closing handshakes complete while the application is busy; its timers send keepalive
pings and enforce the pong and closing deadlines (:meth:`Background._watcher_timer`).

It is a mixin: the locks, the queue, the channel and the protocol it works on are
:class:`~wsclient.duplex.Duplex`'s (declared below for readers and type checkers), and so
are the methods it calls to process bytes, write control frames and close.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from .channel import DEFAULT_READ_SIZE, Channel
from .close import CloseCode
from .protocol import Protocol
from .watcher import BACKOFF, Watcher

__all__ = ["Background"]

#: The most the watcher reads from one connection before it turns to the others.
_WATCHER_READ_LIMIT = 1 << 20
#: The most a read after a reset takes, past ``max_queue``: what a reset peer sent before
#: is all in the kernel's receive buffer (6 MiB at most by Linux's default tcp_rmem).
_READ_AFTER_RESET_LIMIT = 64 << 20


class Background:
    """Reading while nobody else does, keepalive pings and deadlines (mixed into Duplex)."""

    # Duplex's state, as this side uses it.
    ping_interval: Optional[float]
    ping_timeout: Optional[float]
    max_queue: Optional[int]
    _proto: Protocol
    _channel: Channel
    _watcher: Watcher
    _state_lock: threading.Lock
    _read_lock: threading.Lock
    _closed: bool
    _paused: bool
    _queued: int
    _ctrl_pending: List[bytes]
    _pings: List[Tuple[bytes, threading.Event]]
    _pong_deadline: Optional[float]
    _next_ping: Optional[float]
    _close_deadline: Optional[float]
    _timer_at: Optional[float]

    if TYPE_CHECKING:  # Duplex's methods, as this side calls them.

        def _process(self, data: bytes, *, want: bool) -> Any: ...

        def _release_read(self) -> None: ...

        def _flush_control(self) -> None: ...

        def _abort(self, cause: Optional[BaseException]) -> None: ...

        def _fail(self, code: int, reason: str, *, wait: float, cause: Optional[BaseException] = None) -> None: ...

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
