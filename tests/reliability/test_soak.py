"""The soak in CI: clients echoing through a fault-injecting proxy (:mod:`.soak`).

Bounded: 40 clients x 60 messages of up to 256 KiB, a deadline well under a minute. The
long run (200 clients x 1,000 messages of up to 1 MiB) is
``python -m tests.reliability.soak`` (README, "Fuzzing and soak").
"""

from __future__ import annotations

import json

import pytest

from . import soak

pytestmark = pytest.mark.slow


def test_soak_through_a_faulty_proxy() -> None:
    result = soak.run(clients=40, messages=60, max_size=256 << 10, fault_rate=0.3,
                      clean_close_rate=0.15, timeout=45)
    figures = result.figures()
    print(json.dumps(figures))
    assert not result.problems(), "\n".join(result.problems()[:20])
    # The run did what it says: faults of every kind hit, clients finished, others dropped.
    assert all(figures["faults_injected"][kind] > 0 for kind in soak.FAULTS), figures
    assert figures["completed"] > 10 and figures["dropped_1006"] > 3, figures
    assert figures["clean_early_closes"] > 0, figures
    assert figures["messages_echoed"] > 1000, figures


def test_soak_detects_a_lost_message() -> None:
    """The check is honest: a relay that drops a frame's bytes is caught."""
    original = soak.FaultProxy._readable

    def lossy(self, pair, sock):  # drop a whole read from the server, once, on connection 1
        if sock is pair["server"] and pair["index"] == 1 and not pair.get("dropped"):
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return
            pair["dropped"] = bool(data)
            return
        original(self, pair, sock)

    soak.FaultProxy._readable = lossy
    try:
        result = soak.run(clients=3, messages=10, max_size=4096, fault_rate=0.0, clean_close_rate=0.0,
                          timeout=20)
    finally:
        soak.FaultProxy._readable = original
    assert result.problems(), result.figures()
