"""``serve(..., reuse_port=True)``: several servers on one port where the OS has SO_REUSEPORT,
a clear ValueError where it has not; the supervisor's port reservation."""

from __future__ import annotations

import errno
import socket
import threading
import types

import pytest

import wsclient
from wsclient.server import reuse_port_option
from wsclient.workers import reserve_port, run_workers

HAS_REUSE_PORT = hasattr(socket, "SO_REUSEPORT")


def test_the_option_where_the_platform_has_it() -> None:
    if HAS_REUSE_PORT:
        assert reuse_port_option() == socket.SO_REUSEPORT
    else:
        with pytest.raises(ValueError, match="SO_REUSEPORT"):
            reuse_port_option()


def test_a_platform_without_so_reuseport_gets_a_clear_value_error() -> None:
    # The branch Windows takes, checked through the attribute lookup itself.
    with pytest.raises(ValueError, match="needs SO_REUSEPORT, which this platform does not have"):
        reuse_port_option(types.SimpleNamespace(SO_REUSEADDR=2))


@pytest.mark.skipif(not HAS_REUSE_PORT, reason="this platform has no SO_REUSEPORT")
def test_two_servers_share_a_port_and_both_answer() -> None:
    def tell(name):
        return lambda ws: ws.send(name)

    first = wsclient.serve(tell("first"), "127.0.0.1", 0, reuse_port=True)
    second = wsclient.serve(tell("second"), "127.0.0.1", first.port, reuse_port=True)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (first, second)]
    for thread in threads:
        thread.start()
    try:
        seen = set()
        for _ in range(40):  # The kernel hashes each connection to one of the listeners.
            with wsclient.connect(first.uri, proxy=None, timeout=10) as ws:
                seen.add(ws.recv(timeout=10))
            if len(seen) == 2:
                break
        assert seen == {"first", "second"}
    finally:
        for server in (first, second):
            server.shutdown(timeout=5)
            server.server_close()
        for thread in threads:
            thread.join(5)


def test_without_reuse_port_the_second_bind_fails() -> None:
    with wsclient.serve(lambda ws: None, "127.0.0.1", 0) as first:
        with pytest.raises(OSError) as caught:
            wsclient.serve(lambda ws: None, "127.0.0.1", first.port, reuse_port=True)
        assert caught.value.errno == errno.EADDRINUSE
        first.server_close()


def test_reuse_port_on_a_unix_socket_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unix"):
        wsclient.serve(lambda ws: None, unix_path=str(tmp_path / "s"), reuse_port=True)


@pytest.mark.skipif(not HAS_REUSE_PORT, reason="this platform has no SO_REUSEPORT")
def test_a_reserved_port_admits_sharers_only_and_takes_no_connections() -> None:
    with reserve_port("127.0.0.1", 0) as reserved:
        port = reserved.getsockname()[1]
        with socket.socket() as plain:
            with pytest.raises(OSError):
                plain.bind(("127.0.0.1", port))
        with pytest.raises(ConnectionRefusedError):  # Bound, but nobody listens yet.
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        server = wsclient.serve(lambda ws: ws.send("served"), "127.0.0.1", port, reuse_port=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            for _ in range(20):  # Every connection goes to the listener, never the reservation.
                with wsclient.connect(server.uri, proxy=None, timeout=10) as ws:
                    assert ws.recv(timeout=10) == "served"
        finally:
            server.shutdown(timeout=5)
            server.server_close()
            thread.join(5)


def test_run_workers_refuses_no_workers_and_other_threads() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_workers(lambda host, port: None, workers=0)  # type: ignore[arg-type,return-value]
    errors = []

    def in_a_thread() -> None:
        try:
            run_workers(lambda host, port: None, workers=1)  # type: ignore[arg-type,return-value]
        except ValueError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(10)
    assert errors and "main thread" in errors[0]
