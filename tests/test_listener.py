"""The server's Listener on loopback: refusing, stopping (clients answered at once) and resuming.

Stopping relies on Linux, where ``shutdown(SHUT_RD)`` on a listening socket stops it
listening. The server-level behaviour (shutdown(), serve_forever() again, SO_REUSEPORT
workers) is tested in test_server.py.
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Tuple

import pytest

from wsclient.listener import Listener

from .reliability.rawpeer import handshake_head


def queued_client(address: Tuple[str, int]) -> socket.socket:
    """A client the kernel accepted into the backlog, its request sent."""
    client = socket.create_connection(address, timeout=10)
    client.sendall(handshake_head())
    return client


def answer_of(client: socket.socket) -> bytes:
    """What the server answered before closing (a reset counts as nothing)."""
    with client:
        try:
            return client.recv(4096)
        except ConnectionResetError:
            return b""


def test_stop_answers_the_queued_clients_and_refuses_the_rest() -> None:
    listener = Listener(("127.0.0.1", 0), reuse_port=False, backlog=16, tls=False)
    try:
        queued = [queued_client(listener.address) for _ in range(3)]
        listener.stop()
        for client in queued:
            assert answer_of(client).startswith(b"HTTP/1.1 503 ")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(listener.address, timeout=10).close()
        assert listener.accept() is None
    finally:
        listener.close()


@pytest.mark.parametrize("explicit_port", [False, True])
def test_resume_listens_again_on_the_same_port_and_descriptor(explicit_port: bool) -> None:
    port = 0
    if explicit_port:  # A free port, named: bind() keeps it through the stop.
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
    listener = Listener(("127.0.0.1", port), reuse_port=False, backlog=16, tls=False)
    fileno = listener.socket.fileno()
    try:
        listener.stop()
        listener.resume()
        assert listener.socket.fileno() == fileno
        listener.resume()  # Listening already: nothing to do.
        with socket.create_connection(listener.address, timeout=10):
            listener.socket.settimeout(10)  # Wait for the client (the server polls instead).
            listener.socket.accept()[0].close()
    finally:
        listener.close()


def test_a_unix_listener_stops_resumes_and_closes(tmp_path) -> None:
    path = str(tmp_path / "ws.sock")
    listener = Listener(path, reuse_port=False, backlog=16, tls=False)
    fileno = listener.socket.fileno()
    try:
        client = socket.socket(socket.AF_UNIX)
        client.settimeout(10)
        client.connect(path)
        client.sendall(handshake_head())
        listener.stop()
        assert answer_of(client).startswith(b"HTTP/1.1 503 ")  # Its queue is answered too.
        with socket.socket(socket.AF_UNIX) as late, pytest.raises(ConnectionRefusedError):
            late.connect(path)
        listener.resume()
        assert listener.socket.fileno() == fileno
        with socket.socket(socket.AF_UNIX) as again:
            again.settimeout(10)
            again.connect(path)
            listener.socket.settimeout(10)
            listener.socket.accept()[0].close()
    finally:
        listener.close()
    assert not os.path.exists(path)


def test_a_tls_listener_refuses_without_an_http_answer() -> None:
    listener = Listener(("127.0.0.1", 0), reuse_port=False, backlog=16, tls=True)
    try:
        client = queued_client(listener.address)
        listener.socket.settimeout(10)
        sock, _ = listener.socket.accept()
        listener.refuse(sock, 503, "busy")  # A 503 would need a TLS handshake first.
        assert answer_of(client) == b""
    finally:
        listener.close()


def test_unix_sockets_take_no_reuse_port() -> None:
    with pytest.raises(ValueError, match="unix"):
        Listener("/nonexistent/ws.sock", reuse_port=True, backlog=16, tls=False)


# -- platforms without SO_REUSEPORT or AF_UNIX (Windows): a clear error naming the system ---


def test_no_unix_sockets_where_the_system_has_none(monkeypatch, tmp_path) -> None:
    monkeypatch.delattr(socket, "AF_UNIX")
    with pytest.raises(ValueError, match=rf"unix domain sockets are not available on this platform \({platform.system()}\)"):
        Listener(str(tmp_path / "s"), reuse_port=False, backlog=5, tls=False)
    assert not (tmp_path / "s").exists()


def test_a_client_gets_the_same_clear_error(monkeypatch, tmp_path) -> None:
    import wsclient

    monkeypatch.delattr(socket, "AF_UNIX")
    with pytest.raises(ValueError, match="unix domain sockets are not available"):
        wsclient.connect("ws://localhost/", unix_path=str(tmp_path / "s"))


def test_no_reuse_port_names_the_system(monkeypatch) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT", raising=False)
    with pytest.raises(ValueError, match=rf"SO_REUSEPORT.*\({platform.system()}\)"):
        Listener(("127.0.0.1", 0), reuse_port=True, backlog=5, tls=False)


def test_serve_workers_without_reuse_port_fails_before_starting_anything(monkeypatch) -> None:
    import threading

    from wsclient.workers import serve_workers

    monkeypatch.delattr(socket, "SO_REUSEPORT", raising=False)
    threads = set(threading.enumerate())
    with pytest.raises(ValueError, match=rf"SO_REUSEPORT.*\({platform.system()}\)"):
        serve_workers(print, workers=2)
    assert set(threading.enumerate()) == threads
