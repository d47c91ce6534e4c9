"""HAProxy (Debian's) in front of ``python -m wsclient serve --workers 2``: a smoke test, and
how ``timeout tunnel`` and keepalive pings meet. The ``defaults`` section is the one of
docs/deployment.rst, read from the page (``engines.haproxy_defaults``).

HAProxy in HTTP mode passes the upgrade through, adds its own ``X-Forwarded-For`` line
(``option forwardfor``), and holds the tunnel under ``timeout tunnel``. The workers log
each connection as ``[pid N] opened (peer) path client=...``, which shows that both worker
processes served clients through the one port HAProxy knows, and which client address
they believed.
"""

from __future__ import annotations

import os
import signal
import time
from typing import List, Set

import pytest

import wsclient

from .engines import PROXY_SOURCE, ServeProcess, gone, run_haproxy, wait_until

MAX_CLIENTS = 40
#: ``timeout tunnel`` in the keepalive test; pings every 0.3 s leave a wide margin.
IDLE_TIMEOUT_MS = 1500


def pids_in_log(server: ServeProcess, path: str) -> Set[int]:
    return {int(line[5:].split("]", 1)[0]) for line in server.errors
            if line.startswith("[pid ") and f" opened ('{PROXY_SOURCE}', " in line and f" {path} " in line}


def test_haproxy_in_front_of_two_workers(tmp_path) -> None:
    server = ServeProcess("--workers", "2", "--trusted-proxy", PROXY_SOURCE)
    clients: List[wsclient.WebSocket] = []
    try:
        pids = set(server.worker_pids)
        with run_haproxy(str(tmp_path), [server.port]) as port:
            for i in range(MAX_CLIENTS):
                ws = wsclient.connect(f"ws://127.0.0.1:{port}/smoke", proxy=None, timeout=10,
                                      headers={"X-Forwarded-For": "203.0.113.9"})
                clients.append(ws)
                ws.send(f"through haproxy {i}")
                assert ws.recv(timeout=10) == f"through haproxy {i}"
                wait_until(lambda: len([l for l in server.errors if " /smoke " in l]) == i + 1, 10, "the log line")
                if pids_in_log(server, "/smoke") == pids:
                    break
            assert pids_in_log(server, "/smoke") == pids
            lines = [line for line in server.errors if " /smoke " in line]
            # The forged entry is left of the one HAProxy added: the workers believe HAProxy's.
            assert all(line.endswith(" client=127.0.0.1") for line in lines), lines
            for ws in clients:
                ws.close()
                assert ws.close_code == 1000
        os.kill(server.process.pid, signal.SIGTERM)
        assert server.wait_exit() == 0
        wait_until(lambda: all(gone(pid) for pid in pids), 20, "the workers to exit")
    finally:
        for ws in clients:
            ws.close()
        server.stop()


@pytest.mark.parametrize("pinging", ["server", "client"])
def test_timeout_tunnel_cuts_silent_websockets_and_pings_keep_them(run_server, tmp_path, pinging) -> None:
    server = run_server(ping_interval=0.3 if pinging == "server" else None)
    with run_haproxy(str(tmp_path), [server.port], tunnel=f"{IDLE_TIMEOUT_MS}ms") as port:
        uri = f"ws://127.0.0.1:{port}/"
        opened = time.monotonic()
        silent = wsclient.connect(uri, proxy=None, timeout=10, ping_interval=None)
        kept = wsclient.connect(uri, proxy=None, timeout=10, ping_interval=0.3 if pinging == "client" else None)
        try:
            if pinging == "client":  # The server sends nothing: the silent one is cut.
                with pytest.raises(wsclient.ConnectionClosedError):
                    silent.recv(timeout=10)  # After the tunnel timeout.
                assert silent.close_code == 1006
            # Until three times the tunnel timeout: no message, no close (server pings keep both).
            remaining = max(0.0, opened + 3 * IDLE_TIMEOUT_MS / 1000 - time.monotonic())
            assert wsclient.wait([kept, silent] if pinging == "server" else [kept], timeout=remaining) == []
            kept.send("alive")
            assert kept.recv(timeout=10) == "alive"
        finally:
            silent.close()
            kept.close()
