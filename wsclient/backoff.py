"""Backoff: when, and whether, to try a lost connection again.

:class:`Backoff` is the policy a reconnecting client follows (``connect(reconnect=...)``,
:func:`wsclient.reconnect`): exponential delays with jitter under a ceiling, an optional
limit on attempts, the ``Retry-After`` of a ``429`` or ``503`` answer (RFC 9110 section
10.2.3), a reset once a connection has lived long enough to count as healthy, and the
``retry`` callable that tells a failure worth retrying from a final one
(:func:`~wsclient.backoff.should_retry` by default). :class:`~wsclient.backoff.Attempts` is one client's count against that
policy. Nothing here sleeps or touches a socket: the clock and the randomness are
arguments, so the delays can be checked exactly.

The delay before retry ``n`` (0 for the first retry after a drop or a failure) is::

    ceiling = min(maximum, initial * factor ** n)
    delay = ceiling * (1 - jitter) + ceiling * jitter * random()

With the default ``jitter=1.0`` ("full jitter") the delay is uniform in
``[0, ceiling)``: clients that lose a server at the same instant come back spread over
the whole window instead of all at once.
"""

from __future__ import annotations

import email.utils
import math
import random as _random
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, FrozenSet, Optional

from .exceptions import ConnectionClosed, InvalidHandshake, InvalidHTTP, InvalidStatus, InvalidURI, ProxyError

__all__ = [
    "Backoff",
    "Attempts",
    "should_retry",
    "parse_retry_after",
    "RETRY_CLOSE_CODES",
    "RETRY_STATUSES",
    "DEFAULT_HEALTHY_AFTER",
]

#: Close codes after which a client reconnects by default: the peer went away or
#: restarts (1001, 1012), failed on its side (1011, 1014 bad gateway), asks to come back
#: later (1013), the connection broke (1006), or the peer ended it without a problem
#: (1000, 1005). A reconnecting client asked to stay connected: only its own ``close()``
#: ends it. Every other code is final: 1002, 1003, 1007, 1009, 1010 mean one end cannot
#: handle what the other sends (retrying repeats it), 1008 is a policy refusal, and
#: 3000-4999 are application codes (3000 "unauthorized", 3003 "forbidden", a server's
#: own "you are banned") whose meaning only the application knows: override ``retry``
#: to retry those it means as transient.
RETRY_CLOSE_CODES: FrozenSet[int] = frozenset({1000, 1001, 1005, 1006, 1011, 1012, 1013, 1014})

#: HTTP statuses of the opening handshake retried by default besides 5xx: 408 Request
#: Timeout and 429 Too Many Requests. Any other 4xx (401, 403, 404...) is final: the same
#: request gets the same answer; 3xx past ``max_redirects`` and 2xx (not a WebSocket
#: server) are final too.
RETRY_STATUSES: FrozenSet[int] = frozenset({408, 429})

#: Seconds a connection must stay open to count as healthy: its drop then starts the
#: backoff (and the attempt count) afresh.
DEFAULT_HEALTHY_AFTER = 10.0


def should_retry(error: BaseException) -> bool:
    """The default ``retry`` policy: is this failure worth another attempt?

    Retried: network errors (refused, reset, unreachable, DNS, any other ``OSError``),
    timeouts, a response cut short (``InvalidHTTP``: a server going down mid-handshake),
    HTTP 5xx, 408 and 429 (from the server or a proxy), a proxy failure without an HTTP
    status, and the close codes in :data:`~wsclient.backoff.RETRY_CLOSE_CODES`.

    Final: other HTTP statuses (401, 403, 404...), a certificate that fails verification
    (retrying cannot fix it), an invalid URI, a handshake the server got wrong (a missing
    header, an extension or subprotocol not offered), a proxy's 4xx (407), other close
    codes, and any exception that is not an ``OSError`` (a bug, such as a ``TypeError``
    from ``on_connect``).

    Args:
        error: the exception an attempt raised, or the :class:`~wsclient.ConnectionClosed`
            describing a drop.

    Returns:
        True to try again (after the backoff delay), False to give up and raise ``error``.
    """
    if isinstance(error, ConnectionClosed):
        return error.code in RETRY_CLOSE_CODES
    if isinstance(error, InvalidStatus):
        return error.status in RETRY_STATUSES or 500 <= error.status <= 599
    if isinstance(error, InvalidHTTP):
        return True
    if isinstance(error, (InvalidHandshake, InvalidURI, ssl.SSLCertVerificationError)):
        return False
    if isinstance(error, ProxyError):
        return error.status is None or error.status in RETRY_STATUSES or error.status >= 500
    return isinstance(error, OSError)  # TimeoutError is one.


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 section 10.2.3).

    Args:
        value: the header's value: a number of seconds or an HTTP date; None if absent.
        now: the current time, in seconds since the epoch (``time.time()``).

    Returns:
        The seconds to wait (0 for a date in the past), or None if the value is absent or
        is neither form.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are in GMT.
        return None
    return max(0.0, when.timestamp() - now)


def _retry_after(error: Optional[BaseException], now: float) -> Optional[float]:
    """The ``Retry-After`` of a 429 or 503 answer, else None."""
    if isinstance(error, InvalidStatus) and error.status in (429, 503):
        return parse_retry_after(error.response.headers.get("Retry-After"), now)
    return None


def _check_number(name: str, value: object, *, minimum: float, above: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < minimum or (above and value == minimum):
        relation = "above" if above else "at least"
        raise ValueError(f"{name} must be finite and {relation} {minimum}, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How a reconnecting client waits between attempts, and when it gives up.

    A frozen value: one may serve many clients (each counts its attempts in its own
    :class:`~wsclient.backoff.Attempts`). Pass it as ``connect(uri, reconnect=Backoff(...))`` or
    ``wsclient.reconnect(uri, backoff=Backoff(...))``; ``reconnect=True`` means
    ``Backoff()``.

    Args:
        initial: the ceiling of the first delay, in seconds (1.0).
        factor: how much the ceiling grows per failed attempt (2.0).
        maximum: the largest ceiling, in seconds (60.0).
        jitter: the random part of each delay, from 0.0 (none: always the ceiling) to 1.0
            (the default, "full jitter": uniform between 0 and the ceiling).
        max_attempts: attempts in a row that may fail before giving up, counted from the
            last healthy connection (a connection that drops before ``healthy_after``
            counts as a failed attempt); None (the default) tries without limit.
        healthy_after: seconds a connection must stay open for its drop to start the
            backoff afresh (:data:`~wsclient.backoff.DEFAULT_HEALTHY_AFTER`).
        retry: ``retry(error) -> bool``, whether a failure (an exception from an attempt,
            or the :class:`~wsclient.ConnectionClosed` of a drop) is worth another attempt;
            :func:`~wsclient.backoff.should_retry` by default.
        random: returns a float in ``[0, 1)`` for the jitter (``random.random``); pass your
            own for repeatable delays.
        clock: a monotonic clock in seconds (``time.monotonic``), for ``healthy_after``.
        wall_clock: seconds since the epoch (``time.time``), for ``Retry-After`` dates.

    Raises:
        TypeError: a number that is not an int or a float, a ``max_attempts`` that is not
            an int, a ``retry``, ``random`` or ``clock`` that is not callable.
        ValueError: a negative or infinite number of seconds, a ``factor`` below 1, a
            ``jitter`` outside ``[0, 1]``, a ``max_attempts`` below 1.
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 1.0
    max_attempts: Optional[int] = None
    healthy_after: float = DEFAULT_HEALTHY_AFTER
    retry: Callable[[BaseException], bool] = field(default=should_retry, compare=False)
    random: Callable[[], float] = field(default=_random.random, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    wall_clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_number("initial", self.initial, minimum=0.0)
        _check_number("factor", self.factor, minimum=1.0)
        _check_number("maximum", self.maximum, minimum=0.0)
        _check_number("jitter", self.jitter, minimum=0.0)
        if self.jitter > 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter!r}")
        _check_number("healthy_after", self.healthy_after, minimum=0.0)
        if self.max_attempts is not None:
            if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
                raise TypeError(f"max_attempts must be an int or None, not {type(self.max_attempts).__name__}")
            if self.max_attempts < 1:
                raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts!r}")
        for name in ("retry", "random", "clock", "wall_clock"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be callable")

    def ceiling(self, retry: int) -> float:
        """The largest delay before retry number ``retry`` (0 for the first).

        Args:
            retry: how many retries came before this one in the current run of failures.

        Returns:
            ``min(maximum, initial * factor ** retry)``.
        """
        if retry < 0:
            raise ValueError(f"retry must be at least 0, not {retry!r}")
        try:
            return min(self.maximum, self.initial * self.factor**retry)
        except OverflowError:
            return self.maximum

    def delay(self, retry: int, retry_after: Optional[float] = None) -> float:
        """The delay before retry number ``retry``, with its jitter drawn now.

        Args:
            retry: as for :meth:`ceiling`.
            retry_after: seconds the server asked for (``Retry-After``); the delay is
                never shorter.

        Returns:
            Seconds to wait.
        """
        ceiling = self.ceiling(retry)
        delay = ceiling * (1.0 - self.jitter) + ceiling * self.jitter * self.random()
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def start(self) -> "Attempts":
        """A fresh count of attempts against this policy, for one client."""
        return Attempts(self)


class Attempts:
    """One client's attempts against a :class:`Backoff`: what it must wait, and when it
    must give up.

    The caller reports each connection's life with :meth:`opened` and :meth:`closed` and
    asks :meth:`next_delay` before each attempt. Not thread-safe: one client's
    reconnecting thread owns it.

    Args:
        backoff: the policy.
    """

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        #: Attempts made since the last healthy connection (or since the start).
        self.count = 0
        self._retries = 0  # Delayed attempts in this run: the exponent of the next delay.
        self._opened_at: Optional[float] = None

    def next_delay(self, error: Optional[BaseException] = None) -> Optional[float]:
        """Count one more attempt and return how long to wait before making it.

        Args:
            error: why the previous attempt or connection ended (None for the very first
                attempt); the ``Retry-After`` of a 429 or 503 answer is honoured.

        Returns:
            Seconds to wait (0.0 before the very first attempt), or None when
            ``max_attempts`` attempts have failed in a row: give up.
        """
        backoff = self.backoff
        if backoff.max_attempts is not None and self.count >= backoff.max_attempts:
            return None
        self.count += 1
        if error is None and self.count == 1 and self._retries == 0:
            return 0.0
        delay = backoff.delay(self._retries, _retry_after(error, backoff.wall_clock()))
        self._retries += 1
        return delay

    def opened(self) -> None:
        """A connection opened: its life starts now."""
        self._opened_at = self.backoff.clock()

    def closed(self) -> bool:
        """The connection opened last has dropped.

        Returns:
            Whether it lived ``healthy_after`` seconds: then the count (and so the delay and
            the attempt limit) starts afresh.
        """
        healthy = self._opened_at is not None and self.backoff.clock() - self._opened_at >= self.backoff.healthy_after
        self._opened_at = None
        if healthy:
            self.count = self._retries = 0
        return healthy
