"""Tests for wsclient.sockio: turning a caller's timeout into a deadline."""

from __future__ import annotations

import threading
import time

import pytest

from wsclient.sockio import deadline_after


def test_a_timeout_becomes_a_deadline_that_far_ahead():
    before = time.monotonic()
    deadline = deadline_after(2.5)
    assert before + 2.5 <= deadline <= time.monotonic() + 2.5


@pytest.mark.parametrize("timeout", [None, float("inf"), 1e300, threading.TIMEOUT_MAX])
def test_no_limit(timeout):
    # Infinity and numbers no lock can wait for used to raise OverflowError from recv().
    assert deadline_after(timeout) is None


def test_a_negative_timeout_means_now():
    # A timeout computed as `end - time.monotonic()` may dip below zero: poll, don't fail.
    assert deadline_after(-3) <= time.monotonic()


@pytest.mark.parametrize("timeout, error", [("5", TypeError), (True, TypeError), (b"1", TypeError),
                                            (float("nan"), ValueError)])
def test_what_is_not_a_number_of_seconds_is_refused(timeout, error):
    with pytest.raises(error, match="recv_timeout"):
        deadline_after(timeout, "recv_timeout")
