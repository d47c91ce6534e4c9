"""Several processes on one port: ``python -m wsclient serve --workers N`` and wsclient.workers.

Every supervisor runs as a real subprocess (its signal handlers need a main thread of its
own); the tests find which worker served a connection from the worker's own log line
(``[pid N] opened (peer) path``) or from a greeting the worker sends, and check that the
workers are gone once the supervisor has stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Dict, List

import pytest

import wsclient
from wsclient.__main__ import main as wsclient_main

from ..interop.peers import Peer
from .engines import ROOT, STOP_TIMEOUT, ServeProcess, gone, wait_until

#: Clients opened, at most, to see both of two workers (the kernel hashes each connection
#: to a worker: 40 connections all landing on one of two happens once in 2**39).
MAX_CLIENTS = 40


def spread(server: ServeProcess, pids: List[int]) -> Dict[int, List[wsclient.WebSocket]]:
    """Open clients until every worker has at least one; worker pid -> its clients."""
    by_pid: Dict[int, List[wsclient.WebSocket]] = {pid: [] for pid in pids}
    for i in range(MAX_CLIENTS):
        ws = wsclient.connect(server.uri, proxy=None, timeout=10)
        by_pid.setdefault(server.pid_for(ws.local_address[1]), []).append(ws)
        ws.send(f"hello {i}")
        assert ws.recv(timeout=10) == f"hello {i}"
        if all(by_pid[pid] for pid in pids):
            break
    assert set(by_pid) == set(pids), f"a connection was served by an unknown process: {set(by_pid)}"
    assert all(by_pid.values()), f"{MAX_CLIENTS} connections all reached one worker: {by_pid.keys()}"
    return by_pid


def assert_all_gone(pids: List[int]) -> None:
    wait_until(lambda: all(gone(pid) for pid in pids), STOP_TIMEOUT, f"workers {pids} to exit")


def test_two_workers_share_the_port_and_sigterm_stops_them_all() -> None:
    server = ServeProcess("--workers", "2")
    try:
        pids = server.worker_pids
        assert len(set(pids)) == 2 and server.process.pid not in pids
        by_pid = spread(server, pids)
        os.kill(server.process.pid, signal.SIGTERM)
        for clients in by_pid.values():
            for ws in clients:
                with pytest.raises(wsclient.ConnectionClosedOK):
                    ws.recv(timeout=STOP_TIMEOUT)
                assert ws.close_code == 1001
        assert server.wait_exit() == 0, server.describe()
        assert_all_gone(pids)
        assert "Traceback" not in "\n".join(server.errors)
    finally:
        server.stop()


def test_ctrl_c_reaching_the_whole_process_group_stops_once_and_cleanly() -> None:
    server = ServeProcess("--workers", "2")  # A session of its own: its group is the test's "terminal".
    try:
        pids = server.worker_pids
        with wsclient.connect(server.uri, proxy=None, timeout=10) as ws:
            ws.send("x")
            assert ws.recv(timeout=10) == "x"
            os.killpg(server.process.pid, signal.SIGINT)
            with pytest.raises(wsclient.ConnectionClosedOK):
                ws.recv(timeout=STOP_TIMEOUT)
        assert server.wait_exit() == 0, server.describe()
        assert_all_gone(pids)
        text = "\n".join(server.errors)
        assert text.count("stopping 2 workers") == 1
        assert "Traceback" not in text and "KeyboardInterrupt" not in text
    finally:
        server.stop()


def test_a_killed_worker_is_replaced_and_only_its_clients_see_1006() -> None:
    server = ServeProcess("--workers", "2")
    try:
        pids = server.worker_pids
        by_pid = spread(server, pids)
        victim, survivor = pids
        os.kill(victim, signal.SIGKILL)
        for ws in by_pid[victim]:
            with pytest.raises(wsclient.ConnectionClosedError):
                ws.recv(timeout=10)
            assert ws.close_code == 1006
        for ws in by_pid[survivor]:
            ws.send("still here")
            assert ws.recv(timeout=10) == "still here"
        assert server.wait_stderr(f"worker {victim} exited with -9; starting a replacement")
        line = server.wait_stderr(f" is ready, replacing {victim}", timeout=30)
        replacement = int(line.split("worker ", 1)[1].split()[0])
        # The replacement listens on the same port: new clients reach it or the survivor.
        seen = set()
        for i in range(MAX_CLIENTS):
            with wsclient.connect(server.uri, proxy=None, timeout=10) as ws:
                seen.add(server.pid_for(ws.local_address[1]))
                ws.send("again")
                assert ws.recv(timeout=10) == "again"
            if len(seen) == 2:
                break
        assert seen == {survivor, replacement}, (seen, survivor, replacement)
        for clients in by_pid.values():
            for ws in clients:
                ws.close()
        os.kill(server.process.pid, signal.SIGTERM)
        assert server.wait_exit() == 0, server.describe()
        assert_all_gone(list(seen))
    finally:
        server.stop()


def test_workers_serve_wss_with_a_context_each_builds(pki) -> None:
    # An SSLContext does not pickle: each worker loads the certificate itself.
    server = ServeProcess("--workers", "2", "--certfile", pki.cert_file, "--keyfile", pki.key_file)
    try:
        assert server.uri.startswith("wss://")
        pids = server.worker_pids
        seen = set()
        for i in range(MAX_CLIENTS):
            with wsclient.connect(f"wss://localhost:{server.port}/", proxy=None, timeout=10,
                                  ssl_context=pki.client_context()) as ws:
                seen.add(server.pid_for(ws.local_address[1]))
                ws.send(f"secret {i}")
                assert ws.recv(timeout=10) == f"secret {i}"
            if seen == set(pids):
                break
        assert seen == set(pids)
    finally:
        server.stop()


def test_workers_stop_on_their_own_when_the_supervisor_is_killed() -> None:
    server = ServeProcess("--workers", "2")
    try:
        pids = server.worker_pids
        with wsclient.connect(server.uri, proxy=None, timeout=10) as ws:
            os.kill(server.process.pid, signal.SIGKILL)
            with pytest.raises(wsclient.ConnectionClosedOK):
                ws.recv(timeout=STOP_TIMEOUT)
            assert ws.close_code == 1001
        assert_all_gone(pids)
    finally:
        server.stop()


def test_a_port_held_by_a_program_that_does_not_share_it_fails_with_status_1() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        peer = Peer([sys.executable, "-m", "wsclient", "serve", f"127.0.0.1:{port}", "--workers", "2"], cwd=ROOT)
        try:
            assert peer.process.wait(STOP_TIMEOUT) == 1
            peer.lines.put(None)
            assert any("cannot listen on 127.0.0.1" in line and "in use" in line
                       for line in peer.stderr if line), peer.describe()
        finally:
            peer.stop()


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "--workers must be at least 1"),
    (["--workers", "2", "--broadcast"], "--broadcast reaches the clients of one process only"),
    (["--trusted-proxy", "localhost"], "is not an IP address or network"),
])
def test_usage_errors(argv: List[str], message: str, capsys) -> None:
    assert wsclient_main(["serve", "127.0.0.1:0", *argv]) == 2
    assert message in capsys.readouterr().err


# -- the library: wsclient.workers --------------------------------------------------------


def apps(mode: str) -> Peer:
    return Peer([sys.executable, "-m", "tests.multiprocess.apps", mode], cwd=ROOT)


def test_serve_workers_greets_from_two_pids_and_stops_with_status_0() -> None:
    peer = apps("pids")
    try:
        words = peer.line().split()
        assert words[0] == "READY", words
        port, pids = int(words[1]), {int(pid) for pid in words[2:]}
        assert len(pids) == 2
        seen = set()
        for _ in range(MAX_CLIENTS):
            with wsclient.connect(f"ws://127.0.0.1:{port}/", proxy=None, timeout=10) as ws:
                seen.add(int(ws.recv(timeout=10)))
            if seen == pids:
                break
        assert seen == pids
        os.kill(peer.process.pid, signal.SIGTERM)
        assert peer.line() == "STATUS 0"
        assert peer.process.wait(STOP_TIMEOUT) == 0
        assert_all_gone(list(pids))
    finally:
        peer.stop()


@pytest.mark.parametrize("mode, reason", [
    ("failing", "failed to start: RuntimeError: no server today"),
    ("exiting", "exited with 3 before it was ready"),
    ("wrong_port", "failed to start: RuntimeError: the factory bound port"),
])
def test_a_worker_that_fails_to_start_stops_the_group_with_status_1(mode: str, reason: str) -> None:
    peer = apps(mode)
    try:
        assert peer.line() == "STATUS 1", peer.describe()
        assert peer.process.wait(STOP_TIMEOUT) == 1
        wait_until(lambda: any(reason in line for line in peer.stderr if line), 10, reason)
    finally:
        peer.stop()
