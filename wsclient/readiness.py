"""Readiness: waiting until a socket can be read or written, or until a wake-up.

This is the one place that knows how a system waits on sockets: no other module names
``select.poll`` or a ``POLL*`` constant, so the package runs where ``poll()`` does not exist
(Windows). (The server's accept loop uses a plain ``selectors.DefaultSelector``: its two
sockets, made first, are far below any limit.)

* :func:`waiter` gives a :class:`Waiter` for one socket and one direction, made once and
  reused (a channel's reading thread has one, its writing thread another). Where
  ``select.poll`` exists it waits in one ``poll()`` call (the per-message path of a
  connection: about 0.8 us against 1.3 us for a one-socket :mod:`selectors` selector on
  Linux); elsewhere in one ``select.select()``.
* :func:`wait_ready` waits once, for a socket that does not wait often (TLS inside TLS).
* :func:`open_selector` gives a :mod:`selectors` selector for many sockets (the watcher):
  epoll, kqueue, devpoll or poll where the system has one, else ``select()``.
* :func:`takes_live_registration` says whether such a selector sees a socket registered
  while another thread waits in it (epoll and kqueue do; ``select()`` and ``poll()`` wait
  on the set they were called with, so that thread must be woken to rebuild it).
* :class:`WakeUp` is a descriptor another thread makes readable, so that a thread waiting
  in a selector wakes at once: a connected socket pair, which every system has
  (``socket.socketpair()``; on Windows, two TCP sockets on loopback).

``select()`` misses one thing ``poll()`` sees: a socket whose sending side is shut down
while a thread waits to write to it (``poll()`` reports the hang-up whatever was asked;
``select()`` may not, as with Linux's unix sockets). A waiter says so in
:attr:`Waiter.sees_shutdown`; who must notice a shutdown while writing (the channel) then
waits in slices of :data:`SHUTDOWN_SLICE` seconds.

``select()`` cannot watch a descriptor numbered :data:`SELECT_LIMIT` (1,024) or above
(on Windows: more than :data:`SELECT_LIMIT` sockets at once); where it is the only choice,
going past it raises :class:`OSError` with ``errno.EMFILE`` and says so, rather than a
``ValueError`` from deep inside. Which mechanism exists is looked up when a waiter or
selector is made, not when this module is imported.
"""

from __future__ import annotations

import errno
import select
import selectors
import socket
import sys
import time
from typing import Any, Optional, Union

__all__ = [
    "READ", "WRITE", "MAX_WAIT", "SELECT_LIMIT", "SHUTDOWN_SLICE", "Waiter", "PollWaiter",
    "SelectWaiter", "waiter", "wait_ready", "open_selector", "takes_live_registration",
    "has_poll", "WakeUp",
]

#: Wait until the socket has bytes to read (or the end of the stream, or an error).
READ = selectors.EVENT_READ
#: Wait until the socket takes more bytes (or has failed).
WRITE = selectors.EVENT_WRITE

#: The longest single wait, in seconds (``poll()`` takes a C int of milliseconds: about
#: 24.8 days); a longer deadline is waited for in several waits.
MAX_WAIT = (2**31 - 1) / 1000

#: What ``select()`` can watch: descriptor numbers below this (``FD_SETSIZE`` of the C
#: library), or on Windows this many sockets (CPython's ``FD_SETSIZE`` there is 512).
SELECT_LIMIT = 512 if sys.platform == "win32" else 1024

#: How long a wait to write lasts, at most, before its owner looks whether the socket was
#: shut down, where the waiter does not see that itself (``select()``; seconds).
SHUTDOWN_SLICE = 0.05

_MAX_MS = 2**31 - 1

FileLike = Union[int, Any]  # A descriptor, or an object with fileno().


def has_poll() -> bool:
    """Whether this Python has ``select.poll`` (every Unix does; Windows does not)."""
    return hasattr(select, "poll")


def _fd(fileobj: FileLike) -> int:
    return fileobj if isinstance(fileobj, int) else int(fileobj.fileno())


def _check_select_limit(fd: int, count: int = 1) -> None:
    """Raise a clear error where ``select()`` cannot watch ``fd`` (or ``count`` sockets)."""
    if sys.platform == "win32":
        if count > SELECT_LIMIT:
            raise OSError(errno.EMFILE, f"select() watches at most {SELECT_LIMIT} sockets on this "
                                        f"system (it has no poll), and {count} were asked")
    elif fd >= SELECT_LIMIT:
        raise OSError(errno.EMFILE, f"select() cannot watch descriptor {fd}: its limit is "
                                    f"{SELECT_LIMIT} on this system, which has no poll")


class Waiter:
    """Waits for one socket to be ready in one direction; made by :func:`waiter`.

    Reusable, by one thread at a time.

    Attributes:
        fd: the descriptor waited on (it must stay the same for the waiter's life).
        event: :data:`READ`, :data:`WRITE`, or ``READ | WRITE`` (either).
        sees_shutdown: whether a wait to write returns when the socket is shut down
            meanwhile (by another thread): True for ``poll()``, False for ``select()``.
    """

    sees_shutdown = False

    def __init__(self, fileobj: FileLike, event: int) -> None:
        if event not in (READ, WRITE, READ | WRITE):
            raise ValueError(f"event must be READ, WRITE or READ | WRITE, not {event!r}")
        self.fd = _fd(fileobj)
        self.event = event

    def wait(self, deadline: Optional[float]) -> bool:  # pragma: no cover - abstract
        """Wait until ready, or until ``deadline``.

        Args:
            deadline: a ``time.monotonic()`` value; None waits without limit.

        Returns:
            True when ready (also when the socket has failed or been closed: the next
            read or write says how); False at the deadline.
        """
        raise NotImplementedError


class SelectWaiter(Waiter):
    """A :class:`Waiter` that waits in ``select.select()`` (every system has it).

    Raises:
        OSError: ``errno.EMFILE``, the descriptor is past :data:`SELECT_LIMIT`.
    """

    def __init__(self, fileobj: FileLike, event: int) -> None:
        super().__init__(fileobj, event)
        _check_select_limit(self.fd)
        self._reading = [self.fd] if event & READ else []
        self._writing = [self.fd] if event & WRITE else []

    def wait(self, deadline: Optional[float]) -> bool:
        """Wait until ready, or until ``deadline`` (see :meth:`Waiter.wait`)."""
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                readable, writable, _ = select.select(
                    self._reading, self._writing, [], None if timeout is None else min(timeout, MAX_WAIT))
            except (OSError, ValueError):  # Closed under us: the caller's I/O reports it.
                return True
            if readable or writable:
                return True
            if timeout is not None and timeout <= MAX_WAIT:
                return False


class PollWaiter(Waiter):
    """A :class:`Waiter` that waits in ``poll()`` (Unix): one system call, no descriptor limit."""

    sees_shutdown = True

    def __init__(self, fileobj: FileLike, event: int) -> None:
        super().__init__(fileobj, event)
        poller = select.poll()
        mask = (select.POLLIN if event & READ else 0) | (select.POLLOUT if event & WRITE else 0)
        poller.register(self.fd, mask)
        self._poll = poller.poll  # Bound once: this is the per-message path.

    def wait(self, deadline: Optional[float]) -> bool:
        """Wait until ready, or until ``deadline`` (see :meth:`Waiter.wait`)."""
        poll = self._poll
        while True:
            if deadline is None:
                ms = None
            else:
                ms = max(0, int((deadline - time.monotonic()) * 1000 + 0.999))
            try:
                ready = poll(None if ms is None else min(ms, _MAX_MS))
            except OSError:
                return True
            if ready or ms is None or ms <= _MAX_MS:
                return bool(ready)


def waiter(fileobj: FileLike, event: int) -> Waiter:
    """A reusable waiter for ``fileobj`` in one direction, by the best means this system has.

    Args:
        fileobj: a socket, or its descriptor.
        event: :data:`READ`, :data:`WRITE`, or ``READ | WRITE`` (either).

    Returns:
        A :class:`PollWaiter` where ``select.poll`` exists, else a :class:`SelectWaiter`.

    Raises:
        ValueError: ``event`` is none of those.
        OSError: ``errno.EMFILE``, only ``select()`` exists and the descriptor is past
            :data:`SELECT_LIMIT`.
    """
    if has_poll():
        return PollWaiter(fileobj, event)
    return SelectWaiter(fileobj, event)


def wait_ready(fileobj: FileLike, event: int, deadline: Optional[float]) -> bool:
    """Wait once for ``fileobj`` to be ready (see :meth:`Waiter.wait`).

    Args:
        fileobj: a socket, or its descriptor.
        event: :data:`READ`, :data:`WRITE`, or ``READ | WRITE`` (either).
        deadline: a ``time.monotonic()`` value; None waits without limit.

    Returns:
        True when ready; False at the deadline.

    Raises:
        OSError: ``errno.EMFILE``, as :func:`waiter`.
    """
    return waiter(fileobj, event).wait(deadline)


class _SelectSelector(selectors.SelectSelector):
    """``select()`` with a clear error past its limit instead of a ``ValueError`` later."""

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        _check_select_limit(_fd(fileobj), len(self.get_map()) + 1)
        return super().register(fileobj, events, data)


def open_selector() -> selectors.BaseSelector:
    """A new selector for many sockets: the system's best (``selectors.DefaultSelector``).

    Returns:
        The selector; where only ``select()`` exists, one whose ``register()`` raises
        ``OSError`` (``errno.EMFILE``) past :data:`SELECT_LIMIT`.
    """
    cls: "type[selectors.BaseSelector]" = selectors.DefaultSelector
    if cls is selectors.SelectSelector:
        return _SelectSelector()
    return cls()


# Selectors whose kernel object sees a registration made while another thread waits in it.
_LIVE_SELECTORS = ("EpollSelector", "KqueueSelector")


def takes_live_registration(selector: selectors.BaseSelector) -> bool:
    """Whether ``selector`` sees a socket registered while another thread waits in it.

    True for epoll and kqueue (the kernel keeps the set); False for ``select()``, ``poll()``
    and devpoll, which wait on the set they were called with: whoever registers must wake
    the waiting thread so that it calls again.
    """
    return type(selector).__name__ in _LIVE_SELECTORS


class WakeUp:
    """A descriptor that another thread makes readable, to wake a thread waiting on it.

    Register :meth:`fileno` (for reading) with the selector the waiting thread uses; any
    thread calls :meth:`wake`; the woken thread calls :meth:`drain`. Built on a connected
    socket pair (both ends non-blocking): ``os.pipe()`` cannot be selected on Windows.

    Raises:
        OSError: the pair cannot be made (out of descriptors).
    """

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        try:
            self._r.setblocking(False)
            self._w.setblocking(False)
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        """The end to wait on for reading (-1 once closed)."""
        return self._r.fileno()

    def wake(self) -> None:
        """Make :meth:`fileno` readable. Never blocks; does nothing once closed."""
        try:
            self._w.send(b"\0")
        except OSError:
            pass  # Already full of wake-ups (one is enough), or closed.

    def drain(self) -> None:
        """Read every pending wake-up, so that :meth:`fileno` is no longer readable."""
        try:
            while self._r.recv(4096):
                pass
        except OSError:
            pass  # Nothing more (BlockingIOError), or closed.

    def close(self) -> None:
        """Close both ends (idempotent)."""
        self._r.close()
        self._w.close()

    def __enter__(self) -> "WakeUp":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
