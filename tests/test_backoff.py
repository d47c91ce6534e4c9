"""Backoff: the delays, the attempt limit, Retry-After, the healthy reset and the retry
policy, checked exactly with injected randomness and clocks (nothing sleeps here)."""

from __future__ import annotations

import email.utils
import ssl

import pytest

import wsclient
from wsclient.backoff import RETRY_CLOSE_CODES, Attempts, parse_retry_after, should_retry


class Clock:
    """A clock the test moves by hand (time itself is injected, not patched)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def status_error(status: int, **headers: str) -> wsclient.InvalidStatus:
    return wsclient.InvalidStatus(wsclient.Response(status, [(k.replace("_", "-"), v) for k, v in headers.items()]))


# -- delays -------------------------------------------------------------------------------


def test_ceiling_grows_exponentially_up_to_the_maximum() -> None:
    backoff = wsclient.Backoff(initial=0.5, factor=3.0, maximum=10.0)
    assert [backoff.ceiling(n) for n in range(5)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert backoff.ceiling(10_000) == 10.0  # no OverflowError


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    low = wsclient.Backoff(initial=2.0, random=lambda: 0.0)
    high = wsclient.Backoff(initial=2.0, random=lambda: 0.999)
    half = wsclient.Backoff(initial=2.0, random=lambda: 0.5)
    assert low.delay(0) == 0.0
    assert high.delay(0) == pytest.approx(1.998)
    assert half.delay(2) == pytest.approx(4.0)  # ceiling 8


def test_partial_and_no_jitter() -> None:
    assert wsclient.Backoff(initial=1.0, jitter=0.0, random=lambda: 0.7).delay(1) == 2.0
    # jitter=0.25: 75 % fixed, 25 % random
    assert wsclient.Backoff(initial=4.0, jitter=0.25, random=lambda: 0.5).delay(0) == pytest.approx(3.5)


def test_default_jitter_is_random_and_within_bounds() -> None:
    backoff = wsclient.Backoff(initial=1.0)
    delays = [backoff.delay(3) for _ in range(200)]
    assert all(0 <= d < 8.0 for d in delays)
    assert len(set(delays)) > 150


def test_retry_after_sets_a_floor() -> None:
    backoff = wsclient.Backoff(initial=1.0, random=lambda: 0.5)
    assert backoff.delay(0, retry_after=7.0) == 7.0
    assert backoff.delay(4, retry_after=1.0) == 8.0  # the backoff is already longer


# -- attempts ----------------------------------------------------------------------------


def test_attempts_first_is_immediate_then_exponential() -> None:
    attempts = wsclient.Backoff(initial=1.0, jitter=0.0).start()
    assert isinstance(attempts, Attempts)
    error = ConnectionRefusedError()
    assert attempts.next_delay() == 0.0
    assert [attempts.next_delay(error) for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert attempts.count == 5


def test_attempt_limit_counts_every_attempt() -> None:
    attempts = wsclient.Backoff(initial=0.1, jitter=0.0, max_attempts=3).start()
    error = ConnectionRefusedError()
    assert attempts.next_delay() == 0.0
    assert attempts.next_delay(error) == 0.1
    assert attempts.next_delay(error) == 0.2
    assert attempts.next_delay(error) is None  # three attempts failed: give up
    assert attempts.next_delay(error) is None


def test_healthy_connection_resets_delays_and_limit() -> None:
    clock = Clock()
    backoff = wsclient.Backoff(initial=1.0, jitter=0.0, max_attempts=3, healthy_after=5.0, clock=clock)
    attempts = backoff.start()
    error = ConnectionResetError()
    attempts.next_delay()
    attempts.next_delay(error)
    attempts.next_delay(error)  # third attempt succeeds
    attempts.opened()
    clock.now += 5.0
    assert attempts.closed() is True
    assert attempts.count == 0
    # Start afresh: the first redial waits the first delay, and three more attempts are allowed.
    assert [attempts.next_delay(error) for _ in range(4)] == [1.0, 2.0, 4.0, None]


def test_short_lived_connection_counts_as_a_failed_attempt() -> None:
    clock = Clock()
    backoff = wsclient.Backoff(initial=1.0, jitter=0.0, max_attempts=3, healthy_after=5.0, clock=clock)
    attempts = backoff.start()
    drop = wsclient.ConnectionClosedError(1011, "")
    assert attempts.next_delay() == 0.0
    attempts.opened()
    clock.now += 4.9
    assert attempts.closed() is False
    assert attempts.next_delay(drop) == 1.0
    attempts.opened()
    assert attempts.closed() is False
    assert attempts.next_delay(drop) == 2.0
    attempts.opened()
    assert attempts.closed() is False
    assert attempts.next_delay(drop) is None  # a server that accepts and drops at once


def test_retry_after_of_503_and_429_is_honoured_but_not_of_others() -> None:
    attempts = wsclient.Backoff(initial=1.0, jitter=0.0).start()
    attempts.next_delay()
    assert attempts.next_delay(status_error(503, Retry_After="30")) == 30.0
    assert attempts.next_delay(status_error(429, Retry_After="5")) == 5.0  # ceiling 2, floor 5
    assert attempts.next_delay(status_error(500, Retry_After="30")) == 4.0  # not a 429/503
    assert attempts.next_delay(status_error(503)) == 8.0  # no header


def test_retry_after_http_date_uses_the_wall_clock() -> None:
    now = 1_800_000_000.0
    backoff = wsclient.Backoff(initial=1.0, jitter=0.0, wall_clock=lambda: now)
    attempts = backoff.start()
    attempts.next_delay()
    date = email.utils.formatdate(now + 42, usegmt=True)
    assert attempts.next_delay(status_error(503, Retry_After=date)) == pytest.approx(42.0)


@pytest.mark.parametrize("value, expected", [
    ("120", 120.0),
    (" 0 ", 0.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
    ("soon", None),
    ("-5", None),
    ("1.5", None),
    ("", None),
    (None, None),
])
def test_parse_retry_after(value: object, expected: object) -> None:
    assert parse_retry_after(value, now=1_800_000_000.0) == expected  # type: ignore[arg-type]


def test_parse_retry_after_date_in_the_future() -> None:
    date = "Thu, 01 Jan 2037 00:01:00 GMT"
    assert parse_retry_after(date, now=2114380800.0) == 60.0


# -- the policy --------------------------------------------------------------------------


@pytest.mark.parametrize("status, retried", [
    (500, True), (502, True), (503, True), (504, True), (408, True), (429, True),
    (400, False), (401, False), (403, False), (404, False), (410, False), (426, False), (200, False),
])
def test_policy_on_http_statuses(status: int, retried: bool) -> None:
    assert should_retry(status_error(status)) is retried


@pytest.mark.parametrize("code", sorted(RETRY_CLOSE_CODES))
def test_policy_retries_transient_close_codes(code: int) -> None:
    cls = wsclient.ConnectionClosedOK if code in (1000, 1001, 1005) else wsclient.ConnectionClosedError
    assert should_retry(cls(code, "")) is True


@pytest.mark.parametrize("code", [1002, 1003, 1007, 1008, 1009, 1010, 3000, 3003, 4000, 4401, 4999])
def test_policy_stops_on_final_close_codes(code: int) -> None:
    assert should_retry(wsclient.ConnectionClosedError(code, "")) is False


@pytest.mark.parametrize("error, retried", [
    (ConnectionRefusedError(), True),
    (ConnectionResetError(), True),
    (TimeoutError(), True),
    (OSError("network unreachable"), True),
    (wsclient.InvalidHTTP("connection closed without a response"), True),
    (wsclient.ProxyError("proxy unreachable"), True),
    (wsclient.ProxyError("bad gateway", status=502), True),
    (wsclient.ProxyError("proxy authentication required", status=407), False),
    (wsclient.ProxyError("too many tunnels", status=429), True),
    (wsclient.ProxyError("forbidden", status=403), False),
    (ssl.SSLCertVerificationError("certificate verify failed"), False),
    (wsclient.InvalidURI("not a URI"), False),
    (wsclient.InvalidHeader("Sec-WebSocket-Accept", "wrong"), False),
    (wsclient.NegotiationError("no subprotocol"), False),
    (TypeError("a bug"), False),
    (KeyError("a bug"), False),
])
def test_policy_on_other_errors(error: BaseException, retried: bool) -> None:
    assert should_retry(error) is retried


def test_retry_policy_is_overridable() -> None:
    backoff = wsclient.Backoff(retry=lambda error: isinstance(error, wsclient.ConnectionClosed) and error.code == 4000)
    assert backoff.retry(wsclient.ConnectionClosedError(4000, "")) is True
    assert wsclient.Backoff().retry is should_retry


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error", [
    ({"initial": -1}, ValueError),
    ({"initial": float("nan")}, ValueError),
    ({"initial": "1"}, TypeError),
    ({"factor": 0.5}, ValueError),
    ({"maximum": float("inf")}, ValueError),
    ({"jitter": 1.5}, ValueError),
    ({"jitter": -0.1}, ValueError),
    ({"max_attempts": 0}, ValueError),
    ({"max_attempts": 2.0}, TypeError),
    ({"max_attempts": True}, TypeError),
    ({"healthy_after": -1}, ValueError),
    ({"retry": "yes"}, TypeError),
    ({"random": 0.5}, TypeError),
])
def test_bad_arguments_are_refused_at_once(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        wsclient.Backoff(**kwargs)


def test_backoff_is_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        wsclient.Backoff(1.0)  # type: ignore[misc]
    backoff = wsclient.Backoff()
    with pytest.raises(AttributeError):
        backoff.initial = 2.0  # type: ignore[misc]
    assert backoff == wsclient.Backoff()
    assert "initial=1.0" in repr(backoff)
