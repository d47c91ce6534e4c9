"""The background reader: one thread that keeps many connections alive while nobody reads.

A :class:`Watcher` owns one daemon thread and a selector. Connections register their
socket; when one becomes readable and no application thread is reading it, the watcher
reads what is there (without blocking) so that pings are answered, closing handshakes
complete and messages are queued while the application is busy. It also runs timers: the
keepalive pings and their deadlines.

When an application thread is already reading a connection (it holds the connection's read
lock inside ``recv()``), the watcher does not compete: it takes that connection out of the
selector (*detaches* it) and asks to be told when the reader lets go
(:meth:`Watcher.released`). Every :data:`BACKOFF` seconds it looks at the connections
whose reader let go since: one that nobody reads any more goes back into the selector; one
read again (a ``recv()`` loop) stays out, and its reader tells again the next time. So a
connection read in a loop costs the watcher one cheap check per :data:`BACKOFF`, however
many messages it gets, no message goes through a thread hand-off on that path (waking for
every message of a thousand busy connections, only to find each one being read, halved a
server's throughput), and a handler blocked in ``recv()`` for hours costs nothing at all
(10,000 of them cost 200,000 checks a second when every detached connection was looked at
each time).

Clients share one watcher per process (:func:`client_watcher`); each server has its own.
The thread starts with the first connection and ends :data:`LINGER` seconds after the last
one goes, so a script that opens connections one after another does not pay a thread start
for each; :meth:`Watcher.close` ends it at once (a server's ``server_close()``), with its
selector and wake-up descriptors. The selector and the wake-up come from
:mod:`wsclient.readiness`, so the watcher runs where ``poll()`` does not exist.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import math
import selectors
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Protocol as TypingProtocol, Tuple

from .readiness import WakeUp, open_selector, takes_live_registration

__all__ = ["Watcher", "Watched", "client_watcher", "BACKOFF", "LINGER", "CLOSE_TIMEOUT"]

logger = logging.getLogger(__name__)

#: How long the watcher leaves a connection alone after finding an application thread
#: reading it (seconds). Bounds how late a ping is answered once the application stops
#: reading, and how often the watcher wakes while it reads.
BACKOFF = 0.05

#: How long the thread stays after its last connection is gone (seconds), waiting for the
#: next one: a thread start, a socket pair and a selector per connection would otherwise
#: cost about a fifth of a short-lived connection's time. It is also the longest the
#: thread waits while it has connections, so that closing one never has to wake it.
LINGER = 1.0

#: The longest :meth:`Watcher.close` waits for the thread to end (seconds): it ends at its
#: next wake-up, which the close sends, unless a connection's hook is slow to return.
CLOSE_TIMEOUT = 5.0


class Watched(TypingProtocol):
    """What a connection offers the watcher."""

    def fileno(self) -> int: ...

    def on_readable(self) -> Optional[float]:
        """Read without blocking.

        Returns None when done; 0.0 to be read again on the next round (bytes may wait
        where the selector cannot see them); a positive delay when an application thread
        is reading the connection (the watcher then leaves it alone until that thread
        reports with :meth:`Watcher.released` and :meth:`is_busy` says it is free).
        """

    def is_busy(self) -> bool:
        """True while an application thread is reading the connection; that thread then
        calls :meth:`Watcher.released` when it lets go (at least once after this call)."""

    def on_timer(self, now: float) -> None:
        """Run due timers (and :meth:`Watcher.schedule` the next one itself)."""


class Watcher:
    """One thread reading and timing many connections.

    Args:
        name: the thread's name.
        linger: seconds the thread stays after its last connection, and the longest it
            waits while it has connections (:data:`LINGER`; tests make it long, so that
            nothing they check can pass by waiting for it).
    """

    def __init__(self, name: str = "wsclient-watcher", *, linger: float = LINGER) -> None:
        self.name = name
        self._linger = linger
        self._lock = threading.Lock()
        self._selector: Optional[selectors.BaseSelector] = None
        self._wakeup: Optional[WakeUp] = None
        self._thread: Optional[threading.Thread] = None
        self._closed = False  # close() was called: no thread starts again.
        self._watched: Dict[int, Any] = {}  # id(conn) -> conn
        self._fds: Dict[int, int] = {}  # id(conn) -> registered fd
        self._detached: Dict[int, Any] = {}  # id(conn) -> conn an application thread reads
        self._released: Dict[int, Any] = {}  # id(conn) -> conn whose reader let go since the last sweep
        self._sweeping = False  # A sweep of the released connections is scheduled.
        self._timers: List[Tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._idle_since: Optional[float] = None
        # When the thread's current wait ends (-inf: not waiting). A new
        # timer wakes the thread only if it is due before that: each wake-up costs two
        # system calls and a thread switch.
        self._sleep_until = -math.inf
        # epoll and kqueue take a registration made while the thread waits; select() and
        # poll() selectors only look at their set when the wait starts.
        self._live_registration = False

    @property
    def thread(self) -> Optional[threading.Thread]:
        """The running thread, if any."""
        return self._thread

    # -- called from any thread ------------------------------------------------------

    def add(self, conn: Any) -> None:
        """Start watching ``conn``: read it when readable, run its timers.

        After :meth:`close` this does nothing: the connection is still read by its
        application's calls, but nothing reads it in the background.

        Raises:
            OSError: ``errno.EMFILE``: the system's only selector (``select()``) cannot
                watch ``conn``'s descriptor; or the thread's descriptors cannot be made.
        """
        with self._lock:
            if self._closed:
                return
            self._ensure_running()
            self._watched[id(conn)] = conn
            try:
                self._register(conn, strict=True)
            except OSError:
                del self._watched[id(conn)]
                raise
            if not self._live_registration:
                self._wake()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """End the thread now and release its selector and wake-up descriptors.

        Connections still watched are forgotten (their sockets stay open: closing them is
        their owners' job), and :meth:`add` does nothing from now on. Idempotent; from the
        watcher's own thread it does not wait for itself.

        Args:
            timeout: the longest wait for the thread to end, in seconds.
        """
        with self._lock:
            self._closed = True
            thread = self._thread
            self._watched.clear()
            self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():  # pragma: no cover - a connection's hook hangs
                logger.warning("%s did not end within %.1f s of close()", self.name, timeout)

    def resume(self, conn: Any) -> None:
        """Watch ``conn``'s socket again after :meth:`pause`."""
        with self._lock:
            if id(conn) in self._watched:
                self._register(conn)
                if not self._live_registration:
                    self._wake()

    def pause(self, conn: Any) -> None:
        """Stop reading ``conn`` (its queue is full) until :meth:`resume`."""
        with self._lock:
            self._unregister(conn)
            self._detached.pop(id(conn), None)
            self._released.pop(id(conn), None)

    def released(self, conn: Any) -> None:
        """The application thread that was reading ``conn`` let go of it (called by that
        thread after :meth:`Watched.is_busy` said it was busy): look at it again within
        :data:`BACKOFF` seconds."""
        with self._lock:
            if id(conn) in self._watched:
                self._released[id(conn)] = conn

    def remove(self, conn: Any) -> None:
        """Forget ``conn``; call before its socket is closed."""
        with self._lock:
            self._unregister(conn)
            self._watched.pop(id(conn), None)
            self._detached.pop(id(conn), None)
            self._released.pop(id(conn), None)
            if len(self._timers) > 64 + 4 * len(self._watched):
                self._drop_dead_timers()
            if not self._watched:
                # The thread counts its linger from now. It is not woken for that: it never
                # waits longer than LINGER while it has connections (see _step), and a
                # wake-up per closed connection cost about a tenth of a short one's time.
                self._idle_since = time.monotonic()
            if not self._live_registration:
                self._wake()  # Rebuild the select()/poll() set.

    def schedule(self, conn: Any, when: float) -> None:
        """Call ``conn.on_timer`` at ``when`` (a ``time.monotonic()`` value)."""
        with self._lock:
            if id(conn) in self._watched:
                # A weak reference: a closed connection's timer (20 s of keepalive) must not
                # keep its memory alive; thousands of short connections would pile up.
                heapq.heappush(self._timers, (when, next(self._seq), weakref.ref(conn)))
                if when < self._sleep_until:
                    self._wake()

    # -- internals (hold self._lock) ------------------------------------------------

    def _ensure_running(self) -> None:
        if self._thread is not None:
            return
        self._selector = open_selector()
        self._live_registration = takes_live_registration(self._selector)
        try:
            self._wakeup = WakeUp()
            self._selector.register(self._wakeup.fileno(), selectors.EVENT_READ, None)
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        except BaseException:
            self._thread = None
            self._close_selector()
            raise

    def _register(self, conn: Any, *, strict: bool = False) -> None:
        """Put ``conn``'s socket in the selector; ``strict``: raise when the selector
        cannot take it (``errno.EMFILE``), rather than leave it unwatched silently."""
        assert self._selector is not None
        if id(conn) in self._fds:
            return
        try:
            fd = conn.fileno()
            self._selector.register(fd, selectors.EVENT_READ, conn)
        except OSError as exc:
            if strict and exc.errno == errno.EMFILE:
                raise
            return  # Closed meanwhile.
        except (KeyError, ValueError):
            return  # Closed meanwhile.
        self._fds[id(conn)] = fd

    def _unregister(self, conn: Any) -> None:
        fd = self._fds.pop(id(conn), None)
        if fd is None or self._selector is None:
            return
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def _drop_dead_timers(self) -> None:
        """Forget the timers of connections no longer watched: thousands of short
        connections would otherwise leave an entry each until its ping was due."""
        self._timers = [
            entry for entry in self._timers
            if not isinstance(entry[2], weakref.ref) or id(entry[2]()) in self._watched
        ]
        heapq.heapify(self._timers)

    def _wake(self) -> None:
        if self._wakeup is not None and threading.current_thread() is not self._thread:
            self._wakeup.wake()

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except Exception:  # pragma: no cover - a bug; do not die silently
            logger.exception("watcher thread failed")
        finally:
            self._shutdown()

    def _step(self) -> bool:
        """Wait for readiness or a timer; handle them. Return False when nothing is left."""
        with self._lock:
            now = time.monotonic()
            if self._closed:
                return False
            if not self._watched:
                if self._idle_since is None:
                    self._idle_since = now
                timeout = self._idle_since + self._linger - now
                if timeout <= 0:
                    return False
            else:
                self._idle_since = None
                timeout = self._linger  # So a removal need not wake us to start the linger.
            if self._timers:
                timeout = min(timeout, max(0.0, self._timers[0][0] - now))
            self._sleep_until = now + timeout
            selector = self._selector
        assert selector is not None
        ready = selector.select(timeout)
        self._sleep_until = -math.inf
        for key, _ in ready:
            conn = key.data
            if conn is None:
                self._drain_wakeups()
                continue
            self._read(conn)
        self._run_timers()
        return True

    def _read(self, conn: Any) -> None:
        try:
            backoff = conn.on_readable()
        except Exception:  # pragma: no cover - a bug in a connection must not kill others
            logger.exception("reading a connection failed")
            self.remove(conn)
            return
        if backoff is None:
            return
        with self._lock:
            self._unregister(conn)
            if id(conn) not in self._watched:
                return
            if backoff == 0:
                heapq.heappush(self._timers, (time.monotonic(), next(self._seq), _Resume(conn)))
                return
            self._detached[id(conn)] = conn
            if not self._sweeping:
                self._sweeping = True
                heapq.heappush(self._timers, (time.monotonic() + BACKOFF, next(self._seq), _SWEEP))

    def _sweep(self) -> None:
        """Put back the detached connections whose reader let go and that no application
        thread reads any more; the others stay out until their reader lets go again."""
        with self._lock:
            released, self._released = self._released, {}
            for key, conn in released.items():
                if key in self._detached and not conn.is_busy():
                    del self._detached[key]
                    self._register(conn)
            self._sweeping = bool(self._detached)
            if self._sweeping:
                heapq.heappush(self._timers, (time.monotonic() + BACKOFF, next(self._seq), _SWEEP))

    def _run_timers(self) -> None:
        now = time.monotonic()
        due: List[Any] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        for item in due:
            if item is _SWEEP:
                self._sweep()
                continue
            if isinstance(item, _Resume):
                self.resume(item.conn)
                continue
            item = item()
            if item is None or id(item) not in self._watched:
                continue
            try:
                item.on_timer(now)
            except Exception:  # pragma: no cover
                logger.exception("connection timer failed")

    def _drain_wakeups(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.drain()

    def _shutdown(self) -> None:
        with self._lock:
            if self._watched and not self._closed and threading.current_thread() is self._thread:
                # Something was added while we were leaving: hand over to a new thread.
                self._thread = None
                self._close_selector()
                self._fds.clear()
                self._ensure_running()
                for conn in self._watched.values():
                    self._register(conn)
                return
            self._thread = None
            self._timers.clear()
            self._fds.clear()
            self._detached.clear()
            self._released.clear()
            self._sweeping = False
            self._close_selector()

    def _close_selector(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self._wakeup is not None:
            self._wakeup.close()
            self._wakeup = None


class _Resume:
    """A timer entry: put a connection back into the selector."""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn


#: A timer entry: look at the detached connections.
_SWEEP = object()

_client_watcher: Optional[Watcher] = None
_client_watcher_lock = threading.Lock()


def client_watcher() -> Watcher:
    """The watcher shared by every client connection of this process."""
    global _client_watcher
    with _client_watcher_lock:
        if _client_watcher is None:
            _client_watcher = Watcher("wsclient-client-watcher")
        return _client_watcher
