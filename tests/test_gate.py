"""The gate: readers past ``direct`` park, and at most ``admit`` parked ones go at once."""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Dict, List, Optional, Tuple

import pytest

from wsclient import gate as gate_module
from wsclient.gate import Gate

from .conftest import needs_parking
from .reliability.rawpeer import calling, wait_until



class Parked:
    """A thread parking one socket of a pair in ``gate``, then, once let go, reading what
    is there and calling ``done()`` when the test says so (``finish``)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.peer, self.sock = socket.socketpair()
        self.turn: Optional[bool] = None  # What park() returned, once it has.
        self.read: Optional[bytes] = None
        self.finish = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.turn = self.gate.park(self.sock.fileno())
        if self.turn:
            try:
                self.read = self.sock.recv(100, socket.MSG_DONTWAIT)
                self.finish.wait(10)
            finally:
                self.gate.done()

    def close(self) -> None:
        self.finish.set()
        self.thread.join(10)
        self.peer.close()
        self.sock.close()


@pytest.fixture
def parked():
    made: List[Parked] = []

    def park(gate: Gate) -> Parked:
        before = gate.parked
        p = Parked(gate)
        made.append(p)
        wait_until(lambda: gate.parked == before + 1, 5, "the reader parks")
        return p

    yield park
    for p in made:
        p.close()


@pytest.fixture
def gates():
    made: List[Gate] = []

    def make(**limits: int) -> Gate:
        g = Gate(name="test-gate", **limits)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


def test_direct_readers_up_to_the_limit_then_parking():
    gate = Gate(direct=2)
    assert gate.enter() and gate.enter()
    assert not gate.enter()
    gate.leave()
    assert gate.enter()
    assert gate.thread is None  # No reader parked yet: no thread.


@needs_parking
def test_a_parked_reader_goes_when_its_socket_is_readable(gates, parked):
    gate = gates(direct=0)
    p = parked(gate)
    assert gate.thread is not None and gate.thread.is_alive()
    wait_until(lambda: calling(gate.thread, "select"), 5, "the gate waits")
    assert p.turn is None and gate.parked == 1  # Nothing to read: still parked.
    p.peer.send(b"hello")
    wait_until(lambda: p.turn is not None, 5, "the reader is let go")
    assert p.turn is True and p.read == b"hello"
    assert gate.parked == 0 and gate.waiting == 0


@needs_parking
def test_a_shutdown_lets_a_parked_reader_go(gates, parked):
    p = parked(gates(direct=0))
    p.sock.shutdown(socket.SHUT_RDWR)  # What Channel.shutdown() does to wake readers.
    wait_until(lambda: p.turn is not None, 5, "the reader is let go")
    assert p.turn is True and p.read == b""


@needs_parking
def test_at_most_admit_readers_go_at_once_the_rest_in_turn(gates, parked):
    gate = gates(direct=0, admit=2)
    readers = [parked(gate) for _ in range(6)]
    for p in readers:
        p.peer.send(b"x")

    def let_go() -> List[Parked]:
        return [p for p in readers if p.turn is not None]

    wait_until(lambda: len(let_go()) == 2 and gate.waiting == 4, 5, "two let go, four in line")
    first = let_go()
    first[0].finish.set()  # done(): its admission goes to the next reader in line.
    wait_until(lambda: len(let_go()) == 3 and gate.waiting == 3, 5, "the next one let go")
    for p in readers:
        p.finish.set()
    wait_until(lambda: len(let_go()) == 6 and gate.waiting == 0, 5, "every reader let go")
    assert all(p.turn is True and p.read == b"x" for p in readers)


@needs_parking
def test_close_lets_every_parked_reader_go_and_ends_the_thread(gates, parked):
    gate = gates(direct=0, admit=1)
    readable = [parked(gate) for _ in range(3)]
    idle = [parked(gate) for _ in range(2)]
    for p in readable:
        p.peer.send(b"x")
    wait_until(lambda: gate.waiting == 2 and any(p.turn for p in readable), 5, "one let go, two in line")
    waiting = [p for p in readable if p.turn is None] + idle
    assert len(waiting) == 4 and gate.parked == 2
    thread = gate.thread
    assert thread is not None
    gate.close()
    assert not thread.is_alive()
    wait_until(lambda: all(p.turn is False for p in waiting), 5, "every parked reader let go")
    # From now on readers wait in recv() themselves.
    assert gate.enter()
    assert gate.park(readable[0].sock.fileno()) is False


def test_where_the_selector_cannot_take_live_registrations_no_reader_parks(monkeypatch):
    monkeypatch.setattr(selectors, "DefaultSelector", selectors.SelectSelector)
    gate = Gate(direct=0)
    a, b = socket.socketpair()
    try:
        assert not gate.enter()
        assert gate.park(b.fileno()) is False  # At once: nothing would wake it.
        assert gate.thread is None
        assert gate.enter()  # Readers wait in recv() from now on.
    finally:
        a.close()
        b.close()
        gate.close()


@needs_parking
def test_a_descriptor_the_selector_refuses_is_not_parked(gates):
    gate = gates(direct=0)
    a, b = socket.socketpair()
    fd = b.fileno()
    a.close()
    b.close()
    assert gate.park(fd) is False  # A closed descriptor: the reader finds out in recv().


def test_the_defaults_are_read_when_a_gate_is_made(monkeypatch):
    assert gate_module.DIRECT is None  # Servers make no gate unless asked to.
    unlimited = Gate()
    assert all(unlimited.enter() for _ in range(10_000))
    monkeypatch.setattr(gate_module, "DIRECT", 1)
    gate = Gate()
    assert gate.enter()
    assert not gate.enter()
