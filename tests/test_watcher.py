"""The watcher thread: reads ready sockets, runs timers, lingers briefly, then ends."""

from __future__ import annotations

import math
import os
import selectors
import socket
import sys
import threading
import time
from typing import List, Optional

import pytest

from wsclient.watcher import Watcher

from .reliability.rawpeer import calling, wait_until


class Endpoint:
    """One end of a socket pair, watched: records what the watcher reads and when timers fire."""

    def __init__(self, w: Watcher) -> None:
        self.sock, self.peer = socket.socketpair()
        self.sock.setblocking(False)
        self.watcher = w
        self.received: List[bytes] = []
        self.fired: List[float] = []
        self.got_data = threading.Event()
        self.timer_fired = threading.Event()
        self.read_calls = 0
        self.busy_checks = 0
        self.report_release = False  # is_busy() said busy: tell the watcher when no longer.
        self._busy = False

    @property
    def busy(self) -> bool:
        """Pretend an application thread is reading: ask for a back-off."""
        return self._busy

    @busy.setter
    def busy(self, value: bool) -> None:
        self._busy = value
        if not value and self.report_release:  # What Duplex.release_read() does.
            self.report_release = False
            self.watcher.released(self)

    def fileno(self) -> int:
        return self.sock.fileno()

    def on_readable(self) -> Optional[float]:
        self.read_calls += 1
        if self.is_busy():
            return 0.05
        try:
            self.received.append(self.sock.recv(4096))
        except BlockingIOError:
            return None
        self.got_data.set()
        return None

    def is_busy(self) -> bool:
        self.busy_checks += 1
        self.report_release = True
        return self._busy

    def on_timer(self, now: float) -> None:
        self.fired.append(now)
        self.timer_fired.set()

    def close(self) -> None:
        self.watcher.remove(self)
        self.sock.close()
        self.peer.close()


@pytest.fixture
def endpoint():
    w = Watcher("test-watcher")
    ep = Endpoint(w)
    w.add(ep)
    yield ep
    ep.close()


@pytest.fixture
def sleepy_endpoint():
    """As ``endpoint``, but its watcher waits up to 30 s when nothing wakes it: a test
    of a wake-up then fails if the wake-up is missing, instead of passing after LINGER."""
    w = Watcher("test-watcher", linger=30)
    ep = Endpoint(w)
    w.add(ep)
    yield ep
    ep.close()
    w.close()


def test_reads_a_socket_that_becomes_readable(endpoint):
    endpoint.peer.send(b"hello")
    assert endpoint.got_data.wait(5)
    assert endpoint.received == [b"hello"]


def test_a_timer_earlier_than_the_current_wait_wakes_the_thread(sleepy_endpoint):
    endpoint = sleepy_endpoint
    w = endpoint.watcher
    w.schedule(endpoint, time.monotonic() + 60)  # The thread now sleeps for 30 s...
    wait_until(lambda: calling(w.thread, "select"), 5, "the watcher waits in its selector")
    start = time.monotonic()
    w.schedule(endpoint, start + 0.05)  # ...and this must cut the sleep short.
    assert endpoint.timer_fired.wait(5)
    assert endpoint.fired[0] - start < 5


def test_a_busy_connection_is_read_again_after_its_back_off(endpoint):
    endpoint.busy = True
    endpoint.peer.send(b"x")
    wait_until(lambda: endpoint.read_calls >= 1, 5, "the watcher finds the connection busy")
    assert endpoint.read_calls == 1  # Left alone while "an application thread reads".
    assert endpoint.received == []
    endpoint.busy = False
    assert endpoint.got_data.wait(5)
    assert endpoint.received == [b"x"]


def test_a_connection_being_read_does_not_wake_the_watcher_for_each_message(endpoint):
    endpoint.busy = True
    for _ in range(50):  # 50 bursts over about half a second, none read by the watcher.
        endpoint.peer.send(b"m")
        time.sleep(0.01)  # The behaviour under test: messages that keep arriving while busy.
    wait_until(lambda: endpoint.read_calls >= 1, 5, "the watcher saw the connection readable")
    assert endpoint.read_calls <= 3
    endpoint.busy = False
    assert endpoint.got_data.wait(5)


#: The selectors this platform has (no PollSelector on Windows).
SELECTORS = [name for name in ("DefaultSelector", "PollSelector", "SelectSelector") if hasattr(selectors, name)]


@pytest.mark.parametrize("selector", SELECTORS)
def test_a_connection_added_from_another_thread_is_read_while_the_thread_waits(selector, monkeypatch):
    # Where the selector only reads its set when a wait starts (select(), poll()), add()
    # wakes the thread; epoll and kqueue see the new socket at once (so with epoll alone
    # the test passed without the wake-up: hence the other selectors).
    monkeypatch.setattr(selectors, "DefaultSelector", getattr(selectors, selector))
    w = Watcher("test-watcher", linger=30)
    first = Endpoint(w)
    w.add(first)
    # The thread now waits in its selector for up to 30 s.
    wait_until(lambda: calling(w.thread, "select"), 5, "the watcher waits in its selector")
    second = Endpoint(w)
    w.add(second)
    try:
        second.peer.send(b"late")
        assert second.got_data.wait(5)
    finally:
        first.close()
        second.close()
        w.close()


#: A short linger for the tests that wait it out.
SHORT_LINGER = 0.5


def waiting_since(thread: Optional[threading.Thread], since: float) -> bool:
    """True if the watcher ``thread`` waits in its selector in a round that began at or
    after ``since`` (a ``time.monotonic()`` value): it has woken since then, looked at what
    it has, and gone back to waiting (a look at its stack, as ``calling()`` does)."""
    frame = sys._current_frames().get(thread.ident if thread is not None else -1)
    selecting = False
    while frame is not None:
        if frame.f_code.co_name == "select":
            selecting = True
        elif frame.f_code.co_name == "_step":
            return selecting and frame.f_locals.get("now", -math.inf) >= since
        frame = frame.f_back
    return False


def test_the_thread_lingers_then_ends():
    w = Watcher("test-watcher", linger=SHORT_LINGER)
    endpoint = Endpoint(w)
    w.add(endpoint)
    thread = w.thread
    assert thread is not None and thread.is_alive()
    # A timer the connection leaves behind (a keepalive ping's) wakes the thread during
    # its linger, with no connection left: it must stay anyway.
    w.schedule(endpoint, time.monotonic() + SHORT_LINGER / 10)
    removed = time.monotonic()
    endpoint.close()
    # The behaviour under test is time itself: the thread is still there a fifth of its
    # linger after the last connection went (no event marks "it did not end").
    time.sleep(SHORT_LINGER / 5)
    assert thread.is_alive()  # Still there for the next connection...
    thread.join(SHORT_LINGER + 5)
    assert not thread.is_alive()  # ...and gone once nobody came,
    assert time.monotonic() - removed >= SHORT_LINGER  # not before its linger was over.
    assert w.thread is None


def test_a_connection_during_the_linger_reuses_the_thread(sleepy_endpoint):
    endpoint = sleepy_endpoint
    w = endpoint.watcher
    thread = w.thread
    due = time.monotonic() + 0.05
    w.schedule(endpoint, due)  # Left behind: wakes the thread once it has nothing left.
    endpoint.close()  # The 30 s linger starts now...
    # ...and the thread has woken with no connection, and waits out its linger.
    wait_until(lambda: waiting_since(thread, due), 5, "the watcher lingers in its selector")
    again = Endpoint(w)
    w.add(again)
    try:
        assert w.thread is thread
        again.peer.send(b"y")
        assert again.got_data.wait(5)
    finally:
        again.close()


# -- close(): nothing lingers -------------------------------------------------------------


def open_fds():
    """The process's open descriptors (Linux /proc, macOS /dev/fd); None where neither exists."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return set(os.listdir(folder))
    return None


def test_close_ends_the_thread_at_once_with_its_descriptors():
    fds = open_fds()
    w = Watcher("test-watcher-close", linger=30)
    ep = Endpoint(w)
    w.add(ep)
    thread = w.thread
    assert thread is not None and thread.is_alive()
    start = time.monotonic()
    w.close()
    assert time.monotonic() - start < 5  # Not the 30 s linger: woken and joined.
    assert not thread.is_alive() and w.thread is None
    ep.sock.close()
    ep.peer.close()
    if fds is not None:
        assert open_fds() == fds  # The selector and the wake-up pair are closed.
    w.close()  # Idempotent.


def test_after_close_nothing_starts_the_thread_again():
    w = Watcher("test-watcher-closed")
    w.close()
    ep = Endpoint(w)
    try:
        w.add(ep)
        w.resume(ep)
        w.schedule(ep, time.monotonic())
        assert w.thread is None
        ep.peer.send(b"x")
        assert not ep.got_data.wait(0.1)  # Not read in the background any more.
    finally:
        ep.close()


def test_server_close_leaves_no_thread_or_descriptor_of_the_server():
    """After shutdown() and server_close(), at once: no thread and no descriptor the server
    made is left (its watcher used to stay for LINGER with its selector and wake-up pair)."""
    import websocket  # websocket-client: a peer that starts no thread of its own

    from wsclient import serve

    def echo(ws):
        for message in ws:
            ws.send(message)

    threads = set(threading.enumerate())
    fds = open_fds()
    server = serve(echo)
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    try:
        client = websocket.create_connection(server.uri, timeout=10)
        client.send("hello")
        assert client.recv() == "hello"
        client.close()
    finally:
        server.shutdown()
        server.server_close()
        serving.join(5)
    assert set(threading.enumerate()) - threads == set()
    if fds is not None:
        assert open_fds() == fds


def test_a_connection_read_for_a_long_time_costs_the_watcher_no_checks(endpoint):
    """A handler blocked in recv() for hours: once detached, the watcher does not look at
    it again until its reader lets go (10,000 such handlers once cost 200,000 checks a
    second)."""
    from wsclient.watcher import BACKOFF

    endpoint.busy = True
    endpoint.peer.send(b"x")
    wait_until(lambda: endpoint.read_calls >= 1, 5, "the watcher finds the connection busy")
    assert endpoint.read_calls == 1 and endpoint.busy_checks == 1
    time.sleep(10 * BACKOFF)  # The behaviour under test: ten sweeps' worth of nothing.
    assert endpoint.busy_checks == 1
    endpoint.busy = False  # The reader lets go (and tells the watcher).
    assert endpoint.got_data.wait(5)
