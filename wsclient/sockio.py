"""Blocking socket I/O under one deadline: write everything, read one HTTP head.

The opening handshakes (client and server) and the proxy's CONNECT exchange all send a
head and read one back before the connection switches to its non-blocking frame I/O. Each
step here is bounded by a ``time.monotonic()`` deadline shared by the whole opening.
Every public call that takes a ``timeout`` turns it into such a deadline with
:func:`deadline_after`, which also decides what an odd timeout means.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Optional, Protocol, TypeVar

__all__ = ["check_number", "deadline_after", "remaining", "send_all", "read_head"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

_READ_SIZE = 65536


class _Parser(Protocol[T_co]):  # pragma: no cover - a typing aid
    def feed(self, data: bytes) -> Optional[T_co]: ...


def check_number(name: str, value: Any) -> None:
    """Check that ``value`` is a number of seconds: an int or a float, not ``True``.

    Raises:
        TypeError: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")


def deadline_after(timeout: Optional[float], name: str = "timeout") -> Optional[float]:
    """The ``time.monotonic()`` deadline ``timeout`` seconds from now.

    Args:
        timeout: seconds; None, infinity or anything past what a lock can wait
            (``threading.TIMEOUT_MAX``, about 292 years) waits without limit; 0 or less
            means "only what is ready now" (a timeout computed as ``end - now`` may dip
            below zero).
        name: the argument's name, for the error message.

    Returns:
        The deadline, or None for no limit.

    Raises:
        TypeError: not an int or a float (``True`` included).
        ValueError: NaN.
    """
    if timeout is None:
        return None
    check_number(name, timeout)
    if math.isnan(timeout):
        raise ValueError(f"{name} must be a number of seconds or None, not nan")
    if timeout >= threading.TIMEOUT_MAX:
        return None
    return time.monotonic() + max(timeout, 0.0)


def remaining(deadline: Optional[float], what: str = "during the opening handshake") -> Optional[float]:
    """Seconds left until ``deadline``, or None without one.

    Args:
        deadline: a ``time.monotonic()`` value, or None.
        what: what was being done, for the error message ("timed out {what}").

    Raises:
        TimeoutError: the deadline has passed.
    """
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"timed out {what}")
    return left


def send_all(sock: Any, data: bytes, deadline: Optional[float]) -> None:
    """Write ``data`` entirely before ``deadline``.

    Raises:
        TimeoutError: the deadline passed.
        OSError: the connection failed.
    """
    sock.settimeout(remaining(deadline))
    try:
        sock.sendall(data)
    except TimeoutError:
        raise TimeoutError("timed out during the opening handshake") from None


def read_head(sock: Any, parser: "_Parser[T]", deadline: Optional[float]) -> T:
    """Read from ``sock`` into ``parser`` until it returns a value.

    Args:
        sock: a connected socket (or TLS socket) in blocking mode.
        parser: an :mod:`wsclient.http11` parser; what it leaves over stays in it.
        deadline: a ``time.monotonic()`` value, or None.

    Returns:
        What the parser returned.

    Raises:
        TimeoutError: the deadline passed.
        InvalidHTTP: the peer sent a malformed head, or closed before finishing it.
    """
    while True:
        sock.settimeout(remaining(deadline))
        try:
            data = sock.recv(_READ_SIZE)
        except TimeoutError:
            raise TimeoutError("timed out during the opening handshake") from None
        result = parser.feed(data)
        if result is not None:
            return result
        if not data:  # The parser raises at EOF unless the message is complete.
            raise ConnectionResetError("connection closed during the opening handshake")
