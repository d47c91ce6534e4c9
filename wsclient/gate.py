"""Gate: how many of a server's reading threads wake at once.

A thread waiting for its connection's next message blocks in ``recv()`` and costs nothing
until bytes arrive. But when thousands of clients send at once (a round of messages, or
every client closing), thousands of threads return from ``recv()`` together and all wait
for the GIL, and CPython's GIL is waited for in slices: each waiting thread wakes every
switch interval (5 ms) to ask for it. With a thousand or more waiting on one CPU those
wake-ups take the whole CPU, the thread holding the GIL hardly runs, and the work drains
slower than it comes: 3,000 clients closing at once took a server from 3 to 34 s, at
100 % CPU, most of it system time (the figures are in ``docs/performance.rst``).

A :class:`Gate` bounds the crowd. Up to ``direct`` threads wait in ``recv()`` itself, as
without a gate: a server with fewer idle readers than that never parks one and pays two
uncontended lock operations a read. Past that, a reader *parks*: it registers its socket
with the gate's selector and waits on a lock of its own, which costs no wake-ups. The
gate's thread, when a parked socket is readable, lets its reader go, but at most
``admit`` at a time: a reader holds one of those admissions from its release until it has
read (:meth:`Gate.done`), which hands the admission to the next reader in line. So at
most ``direct + admit`` readers come out of a wait together, however many connections
the server holds.

It has a price, measured in ``docs/performance.rst``: a parked reader's message costs a
hand-off through the gate's thread, which waits for the GIL among the handlers, and with
thousands of connections a server's CPU per round trip went up by half to double. So a server makes
a gate only when :data:`DIRECT` is set (``wsclient.gate.DIRECT = 128`` before creating
it): for servers that hold thousands of connections whose clients act at once.

Only where the selector takes registrations while it waits (epoll, kqueue); elsewhere
(``select()``, Windows) every reader waits in ``recv()`` as before. The gate's thread
starts with the first parked reader and ends with :meth:`Gate.close` (the server's
``server_close()``), which lets every parked reader go to wait in ``recv()`` itself.
"""

from __future__ import annotations

import collections
import logging
import selectors
import sys
import threading
from typing import Deque, Optional

from .readiness import WakeUp, open_selector, takes_live_registration

__all__ = ["Gate", "DIRECT", "ADMIT", "CLOSE_TIMEOUT"]

logger = logging.getLogger(__name__)

#: Readers that wait in ``recv()`` itself before the next ones park (per gate); None: no
#: limit, and a server makes no gate (the default: parking costs every parked message a
#: hand-off, see ``docs/performance.rst``). 128 kept 3,000 clients closing at once steady;
#: at 512 that stalled a server on one CPU again in one run of four.
DIRECT: Optional[int] = None

#: Parked readers let go at once, each until it has read. 16 kept 3,000 closing clients
#: and rounds of 3,000 messages steady; the gate's thread is one of the GIL's waiters too.
ADMIT = 16

#: The longest :meth:`Gate.close` waits for the gate's thread to end (seconds).
CLOSE_TIMEOUT = 5.0


class Gate:
    """Bound how many readers wake together: ``direct`` in ``recv()``, ``admit`` parked.

    Args:
        direct: readers that may wait in ``recv()`` at once (default :data:`DIRECT`; if
            that is None too, no limit).
        admit: parked readers let go at once (:data:`ADMIT`; at least 1).
        name: the gate thread's name.

    A reader asks :meth:`enter` first. True: it waits in ``recv()`` and calls :meth:`leave`
    after, whatever happened. False: it calls :meth:`park` with its socket's descriptor;
    when that says its turn has come, it reads without waiting and then calls
    :meth:`done`, whatever happened (and parks again if nothing was there).
    """

    def __init__(self, *, direct: Optional[int] = None, admit: Optional[int] = None,
                 name: str = "wsclient-gate") -> None:
        self.name = name
        limit = DIRECT if direct is None else direct
        self._direct_free = sys.maxsize if limit is None else limit
        self._admit_free = max(1, ADMIT if admit is None else admit)
        self._lock = threading.Lock()
        self._waiting: Deque[threading.Lock] = collections.deque()  # Readable, not yet let go.
        self._parked = 0  # Registered with the selector.
        self._selector: Optional[selectors.BaseSelector] = None
        self._wakeup: Optional[WakeUp] = None
        self._thread: Optional[threading.Thread] = None
        # No parking once closed, nor where the selector cannot take live registrations
        # (found out when the first reader would park).
        self._closed = False

    @property
    def thread(self) -> Optional[threading.Thread]:
        """The gate's thread, once a reader has parked."""
        return self._thread

    @property
    def parked(self) -> int:
        """Parked readers whose socket has nothing to read yet."""
        return self._parked

    @property
    def waiting(self) -> int:
        """Parked readers whose socket is readable, waiting in line for an admission."""
        return len(self._waiting)

    def enter(self) -> bool:
        """True: wait in ``recv()`` (then :meth:`leave`); False: :meth:`park` instead."""
        with self._lock:
            if self._direct_free > 0 or self._closed:
                self._direct_free -= 1
                return True
            return False

    def leave(self) -> None:
        """The wait in ``recv()`` that :meth:`enter` allowed is over."""
        with self._lock:
            self._direct_free += 1

    def park(self, fd: int) -> bool:
        """Wait until the socket ``fd`` is readable and this reader's turn has come.

        Returns:
            True: the reader's turn; it reads without waiting, then calls :meth:`done`.
            False, at once or when the gate closes: the gate cannot park it (closed, no
            live selector, the descriptor refused, no thread to be had); the reader
            waits in ``recv()`` instead, and does not call :meth:`done`.

        Either way the socket is no longer registered when this returns.
        """
        turn = threading.Lock()
        turn.acquire()
        with self._lock:
            if self._closed or not self._start():
                return False
            assert self._selector is not None
            try:
                self._selector.register(fd, selectors.EVENT_READ, turn)
            except (OSError, ValueError, KeyError) as exc:
                # Closed under the reader, or registered twice (a bug): do not park.
                logger.debug("%s: descriptor %d not parked: %r", self.name, fd, exc)
                return False
            self._parked += 1
        turn.acquire()
        return not self._closed  # Let go by close(): the selector is gone with the thread.

    def done(self) -> None:
        """A reader let go by the gate has read: the next one in line may go."""
        with self._lock:
            if self._closed:
                return
            if self._waiting:
                turn: Optional[threading.Lock] = self._waiting.popleft()
            else:
                self._admit_free += 1
                turn = None
        if turn is not None:
            turn.release()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Let every parked reader go (to wait in ``recv()``) and end the thread, with its
        descriptors. Idempotent.

        Args:
            timeout: the longest wait for the thread to end, in seconds.
        """
        with self._lock:
            self._closed = True
            thread = self._thread
            if self._wakeup is not None:
                self._wakeup.wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():  # pragma: no cover - the thread never blocks but in select()
                logger.warning("%s did not end within %.1f s of close()", self.name, timeout)

    # -- internals ---------------------------------------------------------------------

    def _start(self) -> bool:
        """Start the thread and its selector if not yet (hold the lock). False: cannot."""
        if self._thread is not None:
            return True
        selector = open_selector()
        if not takes_live_registration(selector):
            selector.close()
            self._closed = True  # Readers wait in recv() from now on.
            return False
        try:
            wakeup = WakeUp()
        except OSError:
            selector.close()
            return False
        thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._selector, self._wakeup, self._thread = selector, wakeup, thread
        try:
            selector.register(wakeup.fileno(), selectors.EVENT_READ, None)
            thread.start()
        except (OSError, RuntimeError) as exc:  # Out of descriptors or threads.
            logger.warning("%s could not start (%r): readers wait in recv()", self.name, exc)
            self._selector = self._wakeup = self._thread = None
            selector.close()
            wakeup.close()
            return False
        return True

    def _run(self) -> None:
        selector, wakeup = self._selector, self._wakeup
        assert selector is not None and wakeup is not None
        try:
            while self._step(selector, wakeup):
                pass
        except Exception:  # pragma: no cover - a bug; do not leave readers parked
            logger.exception("%s failed", self.name)
        finally:
            with self._lock:
                self._closed = True
                turns = [key.data for key in selector.get_map().values() if key.data is not None]
                turns.extend(self._waiting)
                self._waiting.clear()
                self._parked = 0
                selector.close()
                wakeup.close()
            for turn in turns:
                turn.release()

    def _step(self, selector: selectors.BaseSelector, wakeup: WakeUp) -> bool:
        """Let readable readers go, up to the admissions free. False once closed."""
        ready = selector.select()
        let_go = []
        with self._lock:
            if self._closed:
                return False
            for key, _ in ready:
                turn = key.data
                if turn is None:
                    wakeup.drain()
                    continue
                selector.unregister(key.fd)
                self._parked -= 1
                if self._admit_free > 0:
                    self._admit_free -= 1
                    let_go.append(turn)
                else:
                    self._waiting.append(turn)
        for turn in let_go:
            turn.release()
        return True
