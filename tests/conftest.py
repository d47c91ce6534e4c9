"""Fixtures shared by the I/O tests: servers on loopback, real peers, a test PKI.

Every server binds 127.0.0.1 (or ::1, or a unix socket) on a free port, runs in a thread
that the fixture joins, and is shut down at teardown.
"""

from __future__ import annotations

import os
import pathlib
import selectors
import signal
import socket
import threading
from typing import Callable, Iterator

from .no_poll import sitecustomize as no_poll

#: ``WSCLIENT_TEST_NO_POLL=1`` runs the suite as on a system without ``poll()`` (Windows):
#: ``select.poll``, ``epoll``, ``kqueue`` and ``devpoll`` are removed and
#: ``selectors.DefaultSelector`` is the ``select()`` one (and ``signal.pthread_kill`` is
#: removed, as Windows has none), here and in every Python process
#: the tests start (tests/no_poll/sitecustomize.py). pytest's entry-point plugins (wsclient's
#: own) are imported before any conftest, so this cannot come before ``import wsclient``;
#: it comes before any test, and wsclient looks the mechanism up when a connection or
#: selector is made, never at import (tests/test_readiness.py checks both).
NO_POLL = no_poll.requested()
if NO_POLL:
    no_poll.remove_poll()
    no_poll.remove_thread_signals()
    _folder = str(pathlib.Path(no_poll.__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_folder, os.environ.get("PYTHONPATH")]))

# A shell starts a background job (``pytest &``, ``nohup``) with SIGINT ignored, and an
# ignored signal stays ignored in every process the tests start: the Ctrl-C tests' servers
# and clients would then never see their Ctrl-C. Handled here, it is back to the default
# in each child, where Python turns it into KeyboardInterrupt as it does for a user.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402

from wsclient.pytest_plugin import TestServer  # noqa: E402

from .pki import Pki, make_pki

IN_CI = os.environ.get("CI") == "true"

#: A server's readers park in its gate (wsclient.gate) only where the selector takes
#: registrations while it waits (epoll, kqueue) and reads can pass MSG_DONTWAIT: not on
#: Windows, nor with WSCLIENT_TEST_NO_POLL=1, where every reader waits in recv().
needs_parking = pytest.mark.skipif(
    selectors.DefaultSelector.__name__ not in ("EpollSelector", "KqueueSelector")
    or not hasattr(socket, "MSG_DONTWAIT"),
    reason="readers never park here (no epoll or kqueue, or no MSG_DONTWAIT)",
)


def need(condition: bool, reason: str) -> None:
    """Skip when a tool is missing on a developer's machine; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(str(tmp_path_factory.mktemp("pki")))


#: A wsclient server serving in a background thread: the plugin's own test server
#: (``.server``, ``.uri``, ``.port``, ``stop()``).
RunningServer = TestServer


@pytest.fixture
def run_server(ws_server) -> Callable[..., RunningServer]:
    """Start wsclient servers: ``run_server(handler=echo, **options)``; stopped at teardown."""
    return ws_server


@pytest.fixture
def echo_server(ws_echo_server) -> RunningServer:
    return ws_echo_server


class PeerServer:
    """A real `websockets` sync server in a thread."""

    def __init__(self, handler: Callable, **options) -> None:
        from websockets.sync.server import serve

        self.server = serve(handler, "127.0.0.1", 0, **options)
        self.port = self.server.socket.getsockname()[1]
        scheme = "wss" if options.get("ssl") else "ws"
        self.uri = f"{scheme}://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, name="peer-server")
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def peer_echo(ws) -> None:
    for message in ws:
        ws.send(message)


@pytest.fixture
def run_peer() -> Iterator[Callable[..., PeerServer]]:
    """Start `websockets` servers: ``run_peer(handler, **options)``."""
    servers = []

    def start(handler: Callable = peer_echo, **options) -> PeerServer:
        options.setdefault("max_size", None)
        server = PeerServer(handler, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def peer_echo_server(run_peer) -> PeerServer:
    return run_peer(peer_echo)


def pytest_report_header(config: pytest.Config) -> str:
    if NO_POLL:
        return "wsclient: WSCLIENT_TEST_NO_POLL=1, waiting as without poll(): select() only"
    return f"wsclient: waiting with {selectors.DefaultSelector.__name__} and poll()"
