"""wsclient.readiness: waiting on sockets with poll() or select(), the wake-up, the limits;
and the whole package waiting only through it, so that it runs where poll() is missing.

Run with ``WSCLIENT_TEST_NO_POLL=1`` (as .ci/run does) the last tests here show a wss://
echo, a proxy, keepalive and ``wait()``/``close()`` from another thread working with
``select.poll`` absent; the suite's other tests then run the same way.
"""

from __future__ import annotations

import ast
import errno
import os
import pathlib
import select
import selectors
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator, List, Tuple

import pytest

import wsclient
from wsclient import readiness
from wsclient.readiness import READ, WRITE, PollWaiter, SelectWaiter, WakeUp

from .conftest import NO_POLL
from .proxies import run_echo_target, run_pproxy

PACKAGE = pathlib.Path(wsclient.__file__).parent

WAITERS = [SelectWaiter] + ([PollWaiter] if hasattr(select, "poll") else [])


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


# -- the mode the suite runs in ---------------------------------------------------------


def test_the_no_poll_mode_is_what_the_environment_asks() -> None:
    """WSCLIENT_TEST_NO_POLL=1 takes poll, epoll, kqueue and devpoll away; the package then
    waits with select() only (and with poll() otherwise, where the system has it)."""
    probe, peer = socket.socketpair()
    try:
        kind = type(readiness.waiter(probe, READ))
        with readiness.open_selector() as selector:
            selector_kind = type(selector)
    finally:
        probe.close()
        peer.close()
    if NO_POLL:
        for name in ("poll", "epoll", "kqueue", "devpoll"):
            assert not hasattr(select, name), name
        assert selectors.DefaultSelector is selectors.SelectSelector
        assert not readiness.has_poll()
        assert kind is SelectWaiter
        assert issubclass(selector_kind, selectors.SelectSelector)
    else:
        assert readiness.has_poll() == hasattr(select, "poll")
        assert kind is (PollWaiter if hasattr(select, "poll") else SelectWaiter)
        assert selector_kind is selectors.DefaultSelector


def test_processes_the_tests_start_wait_the_same_way() -> None:
    """The command line, the examples and Python peers run in child processes: they get
    the same mode (tests/no_poll/sitecustomize.py)."""
    code = "import select, selectors; print(hasattr(select, 'poll'), selectors.DefaultSelector.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    if NO_POLL:
        assert out.stdout.split() == ["False", "SelectSelector"]
    else:
        assert out.stdout.split()[0] == str(hasattr(select, "poll"))


def _names(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "select":
            yield node.lineno, f"select.{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.module in ("select", "selectors"):
            yield node.lineno, f"from {node.module} import ..."
        elif isinstance(node, ast.Name) and node.id.startswith(("POLL", "EPOLL")):
            yield node.lineno, node.id


@pytest.mark.parametrize("module", sorted(path.stem for path in PACKAGE.glob("*.py")))
def test_only_readiness_knows_poll(module: str) -> None:
    """No module but readiness calls select.poll/epoll/kqueue or names a POLL* constant, and
    none imports names from select or selectors (which would capture them at import)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    platform_specific = ("select.poll", "select.epoll", "select.kqueue", "select.devpoll")
    found = [
        f"line {line}: {name}" for line, name in _names(tree)
        if name.startswith(platform_specific + ("from ",)) or name.startswith(("POLL", "EPOLL"))
        or name.startswith("select.POLL") or name.startswith("select.EPOLL")
    ]
    if module == "readiness":
        # It may use them, but only inside functions: looked up when used, not at import.
        top_level = {node.lineno for stmt in tree.body if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef))
                     for node in ast.walk(stmt) if hasattr(node, "lineno")}
        found = [item for item in found if int(item.split()[1].rstrip(":")) in top_level]
    assert not found, found


# -- waiters -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", WAITERS)
def test_a_waiter_sees_readable_and_writable(kind, pair) -> None:
    a, b = pair
    reader, writer = kind(a, READ), kind(a, WRITE)
    assert writer.wait(time.monotonic() + 5)
    start = time.monotonic()
    assert not reader.wait(start + 0.05)
    assert time.monotonic() - start >= 0.04
    b.send(b"x")
    assert reader.wait(time.monotonic() + 5)
    assert reader.wait(None)  # Still readable: nothing was read.
    assert kind(a, READ | WRITE).wait(time.monotonic() + 5)


@pytest.mark.parametrize("kind", WAITERS)
def test_a_waiter_wakes_when_the_peer_writes_from_another_thread(kind, pair) -> None:
    a, b = pair
    reader = kind(a.fileno(), READ)
    sent = threading.Timer(0.05, b.send, (b"x",))
    sent.start()
    try:
        assert reader.wait(time.monotonic() + 10)
    finally:
        sent.join(5)
    assert a.recv(1) == b"x"


@pytest.mark.parametrize("kind", WAITERS)
def test_a_waiter_returns_at_once_after_shutdown(kind, pair) -> None:
    a, _ = pair
    reader = kind(a, READ)
    woken = threading.Event()

    def wait() -> None:
        if reader.wait(time.monotonic() + 30):
            woken.set()

    thread = threading.Thread(target=wait)
    thread.start()
    a.shutdown(socket.SHUT_RDWR)  # Before or during its wait: either way it returns.
    thread.join(5)
    assert woken.is_set()


@pytest.mark.parametrize("kind", WAITERS)
def test_a_waiter_on_a_closed_socket_returns_rather_than_raise(kind) -> None:
    a, b = socket.socketpair()
    reader = kind(a.fileno(), READ)
    a.close()
    b.close()
    assert reader.wait(time.monotonic() + 5)  # The caller's next read reports the error.


def test_a_waiter_rejects_an_unknown_event(pair) -> None:
    with pytest.raises(ValueError, match="event"):
        readiness.waiter(pair[0], 4)


@pytest.mark.parametrize("kind", WAITERS)
def test_a_deadline_in_the_past_is_a_check_without_waiting(kind, pair) -> None:
    a, b = pair
    assert not kind(a, READ).wait(time.monotonic() - 1)
    b.send(b"x")
    assert kind(a, READ).wait(time.monotonic() - 1)


def test_wait_ready_waits_once(pair) -> None:
    a, b = pair
    assert not readiness.wait_ready(a, READ, time.monotonic() + 0.01)
    b.send(b"x")
    assert readiness.wait_ready(a, READ, time.monotonic() + 5)


# -- select()'s limit ---------------------------------------------------------------------


@pytest.fixture
def high_fd(pair) -> Iterator[int]:
    """A socket's descriptor duplicated to a number select() cannot watch."""
    if sys.platform == "win32":
        pytest.skip("Windows limits select() by count, not descriptor number (tested below)")
    import resource

    target = readiness.SELECT_LIMIT + 10
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, target + 1), hard))
    try:
        fd = os.dup2(pair[0].fileno(), target)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_select_past_its_limit_is_a_clear_error(high_fd) -> None:
    with pytest.raises(OSError) as info:
        SelectWaiter(high_fd, READ)
    assert info.value.errno == errno.EMFILE
    assert f"descriptor {high_fd}" in str(info.value) and "1024" in str(info.value)


def test_the_best_waiter_past_selects_limit(high_fd, pair) -> None:
    """poll() has no such limit where it exists; without it, the clear error."""
    pair[1].send(b"x")
    if hasattr(select, "poll"):
        assert readiness.waiter(high_fd, READ).wait(time.monotonic() + 5)
    else:
        with pytest.raises(OSError, match="select"):
            readiness.waiter(high_fd, READ)


def test_the_select_selector_refuses_past_the_limit_clearly(high_fd, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "DefaultSelector", selectors.SelectSelector)
    with readiness.open_selector() as selector:
        with pytest.raises(OSError) as info:
            selector.register(high_fd, selectors.EVENT_READ)
        assert info.value.errno == errno.EMFILE
        assert selector.get_map() is not None and len(selector.get_map()) == 0


def test_the_select_selector_works_below_the_limit(pair, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "DefaultSelector", selectors.SelectSelector)
    a, b = pair
    with readiness.open_selector() as selector:
        selector.register(a, selectors.EVENT_READ, "a")
        b.send(b"x")
        assert [key.data for key, _ in selector.select(5)] == ["a"]


def test_a_connection_past_selects_limit_fails_clearly_without_poll(high_fd, monkeypatch) -> None:
    """What a user of a system without poll() sees past 1,024 descriptors: an OSError that
    says so, when the connection is made, not a ValueError from deep inside later."""
    from wsclient.channel import Channel

    monkeypatch.delattr(select, "poll", raising=False)
    sock = socket.socket(fileno=os.dup(high_fd))
    dup = os.dup2(sock.fileno(), high_fd + 1)
    sock.close()
    high = socket.socket(fileno=dup)
    try:
        with pytest.raises(OSError) as info:
            Channel(high)
        assert info.value.errno == errno.EMFILE
    finally:
        high.close()


# -- the wake-up ---------------------------------------------------------------------------


def test_a_wake_up_wakes_a_selector_and_drains() -> None:
    with WakeUp() as wakeup, readiness.open_selector() as selector:
        selector.register(wakeup.fileno(), selectors.EVENT_READ)
        assert selector.select(0) == []
        for _ in range(3):
            wakeup.wake()
        assert len(selector.select(5)) == 1
        wakeup.drain()
        assert selector.select(0) == []


SELECTORS = [
    getattr(selectors, name)
    for name in ("EpollSelector", "KqueueSelector", "DevpollSelector", "PollSelector", "SelectSelector")
    if hasattr(selectors, name)
]


@pytest.mark.parametrize("cls", SELECTORS, ids=lambda cls: cls.__name__)
def test_a_live_registration_is_claimed_only_where_a_waiting_thread_sees_it(cls, pair) -> None:
    """The watcher and the gate register sockets while their thread waits in select()
    and wake it only where this says False: where it says True, the wait must see them."""
    a, b = pair
    a.send(b"x")  # b is readable from the start.
    with cls() as selector, WakeUp() as wakeup:
        selector.register(wakeup.fileno(), selectors.EVENT_READ, "wakeup")
        waiting = threading.Event()
        seen: List[object] = []

        def wait() -> None:
            waiting.set()
            seen.extend(key.data for key, _ in selector.select(30))

        thread = threading.Thread(target=wait)
        thread.start()
        assert waiting.wait(5)
        selector.register(b, selectors.EVENT_READ, "b")
        if readiness.takes_live_registration(selector):
            thread.join(10)  # Woken by b alone.
            assert not thread.is_alive() and seen == ["b"]
        else:
            wakeup.wake()  # Nothing else would wake it before the 30 s are up.
            thread.join(10)
            assert not thread.is_alive()
            assert cls.__name__ in ("SelectSelector", "PollSelector", "DevpollSelector")


def test_a_wake_up_never_blocks_however_many_wakes() -> None:
    with WakeUp() as wakeup:
        start = time.monotonic()
        for _ in range(200_000):  # Far more than a socket buffer holds.
            wakeup.wake()
        assert time.monotonic() - start < 30
        wakeup.drain()


def test_a_closed_wake_up_is_quiet() -> None:
    wakeup = WakeUp()
    wakeup.close()
    wakeup.close()
    wakeup.wake()
    wakeup.drain()
    assert wakeup.fileno() == -1


# -- the package without poll() (run by .ci/run with WSCLIENT_TEST_NO_POLL=1) --------------


def _no_poll_mode() -> None:
    if NO_POLL:
        assert not hasattr(select, "poll")


def test_a_wss_echo(pki) -> None:
    _no_poll_mode()
    with run_echo_target(pki.server_context()) as target:
        with wsclient.connect(target.uri(), proxy=None, ssl_context=pki.client_context()) as ws:
            for size in (0, 1, 70_000, 1_000_000):  # A large one waits for writability.
                ws.send(b"x" * size)
                assert ws.recv(timeout=10) == b"x" * size


def test_a_connection_through_a_proxy(tmp_path, pki) -> None:
    _no_poll_mode()
    with run_echo_target(pki.server_context()) as target, run_pproxy(str(tmp_path)) as proxy:
        with wsclient.connect(target.uri(), proxy=proxy.url("http"), ssl_context=pki.client_context()) as ws:
            ws.send("through the proxy")
            assert ws.recv(timeout=10) == "through the proxy"
        deadline = time.monotonic() + 10  # pproxy logs each tunnel: this one went through it.
        while f":{target.port}" not in proxy.log("output.log"):
            assert time.monotonic() < deadline, "pproxy did not log the tunnel"
            time.sleep(0.05)


def test_keepalive_is_answered_while_the_application_does_not_read(run_peer) -> None:
    """The peer pings; the application is not in recv(): the watcher answers."""
    _no_poll_mode()
    answered: List[bool] = []
    done = threading.Event()

    def pinger(conn) -> None:  # type: ignore[no-untyped-def]
        for _ in range(3):
            answered.append(conn.ping().wait(5))
        done.set()
        conn.recv()

    server = run_peer(pinger)
    with wsclient.connect(server.uri, proxy=None, ping_interval=None) as ws:
        assert done.wait(20)
        assert answered == [True, True, True]
        ws.send("bye")


def test_wait_and_close_from_another_thread(echo_server) -> None:
    _no_poll_mode()
    with wsclient.connect(echo_server.uri, proxy=None) as a, wsclient.connect(echo_server.uri, proxy=None) as b:
        assert wsclient.wait([a, b], timeout=0.05) == []
        threading.Timer(0.05, b.send, ("hello",)).start()
        assert wsclient.wait([a, b], timeout=10) == [b]
        assert b.recv(timeout=5) == "hello"

        errors: List[BaseException] = []

        def read() -> None:
            try:
                a.recv()
            except BaseException as exc:  # noqa: BLE001 - what recv() raises is the point
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        closer = threading.Thread(target=a.close)
        closer.start()
        closer.join(10)
        reader.join(10)
        assert not closer.is_alive() and not reader.is_alive()
        assert a.closed
        assert len(errors) == 1 and isinstance(errors[0], wsclient.ConnectionClosed)
        assert wsclient.wait([a], timeout=0) == [a]  # A closed connection is ready.
