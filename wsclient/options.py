"""The options of one connection, as one frozen value checked once.

:class:`ConnectionOptions` holds what every connection takes, on both ends: the largest
message, the receive queue's bound, keepalive and the closing handshake's bound.
``connect()`` and ``serve()`` list these keywords explicitly (so a type checker sees a
misspelt one), build one value from them where the user passed them, and hand it whole
to each connection; nothing below re-checks or re-spells them. The checks of sizes and
numbers of seconds that other options share live here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from .protocol import DEFAULT_MAX_SIZE
from .sockio import check_number

__all__ = [
    "ConnectionOptions",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "DEFAULT_CLOSE_TIMEOUT",
    "check_count",
    "check_seconds",
]

#: Bytes of received messages kept for an application that is not calling ``recv()``,
#: before the connection stops reading from the peer: 16 MiB, one message of the default
#: ``max_size``, so a slow notebook user is not cut off by a peer's keepalive.
DEFAULT_MAX_QUEUE = 2**24

#: Seconds between keepalive pings.
DEFAULT_PING_INTERVAL = 20.0

#: Seconds to wait for a keepalive ping's pong before closing with 1011.
DEFAULT_PING_TIMEOUT = 20.0

#: Seconds ``close()`` waits for the closing handshake.
DEFAULT_CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True)
class ConnectionOptions:
    """Per-connection options, checked when the value is made.

    Args:
        max_size: the largest incoming message in bytes (after decompression); larger
            ones close the connection with 1009. None: unlimited.
        max_queue: bytes of received messages kept while the application is not calling
            ``recv()``; past it the connection stops reading. None: unlimited.
        ping_interval: seconds between keepalive pings; None: no keepalive.
        ping_timeout: seconds to wait for the pong before closing with 1011; None: wait
            without limit.
        close_timeout: how long ``close()`` waits for the closing handshake; None:
            without limit.

    Raises:
        TypeError: a number of seconds that is not an int or a float, a size that is not
            an int.
        ValueError: a size below 1, a ``ping_interval`` that is not positive, or a
            negative or infinite number of seconds.
    """

    max_size: Optional[int] = DEFAULT_MAX_SIZE
    max_queue: Optional[int] = DEFAULT_MAX_QUEUE
    ping_interval: Optional[float] = DEFAULT_PING_INTERVAL
    ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT
    close_timeout: Optional[float] = DEFAULT_CLOSE_TIMEOUT

    def __post_init__(self) -> None:
        check_count("max_size", self.max_size)
        check_count("max_queue", self.max_queue)
        check_seconds("ping_interval", self.ping_interval, positive=True)
        check_seconds("ping_timeout", self.ping_timeout)
        check_seconds("close_timeout", self.close_timeout)


def check_count(name: str, value: Any) -> None:
    """Check a size or a count: a positive int, or None.

    Raises:
        TypeError: not an int (a bool, a float, a str...).
        ValueError: an int below 1.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int or None, not {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int or None, not {value!r}")


def check_seconds(name: str, value: Any, *, positive: bool = False) -> None:
    """Check a number of seconds: finite, at least 0 (above 0 with ``positive``), or None.

    Raises:
        TypeError: not an int or a float (``True`` included).
        ValueError: NaN, infinite, negative, or 0 with ``positive``.
    """
    if value is None:
        return
    check_number(name, value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'above' if positive else 'at least'} 0 and finite, or None, not {value!r}")
