"""nginx (Debian's) in front of several wsclient servers: the recipe of docs/deployment.rst,
its ``map`` and ``location /`` directives read from the page (``engines.nginx_location``).

- 100 clients spread over two ``python -m wsclient serve`` processes; one process is
  killed: its clients see an abnormal close (1006), the others carry on, and the orphans
  reconnect through nginx to the survivor. nginx names the upstream it chose in a response
  header (``add_header X-Upstream $upstream_addr always``), so the test knows who is where.
- ``X-Forwarded-For`` reaches handlers as ``ws.client_address`` only on a server told to
  trust the proxy; a client's forged header does not fool it.
- ``proxy_read_timeout`` cuts a WebSocket that stays silent, and keepalive pings from
  either end keep it open.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Dict, List

import pytest

import wsclient

from .engines import PROXY_SOURCE, ServeProcess, run_nginx

CLIENTS = 100
MESSAGES = 3
#: The proxy's idle timeout in the keepalive test; pings every 0.3 s leave a wide margin.
IDLE_TIMEOUT_MS = 1500


def upstream_of(ws: wsclient.WebSocket) -> str:
    """The server nginx connected this client to (the last address it tried)."""
    chosen = ws.response.headers["X-Upstream"]
    assert chosen, "nginx did not say which upstream it chose"
    return chosen.split(",")[-1].strip()


def exchange(clients: List[wsclient.WebSocket], label: str) -> None:
    """Every client sends MESSAGES messages, then reads them back in order."""
    for i, ws in enumerate(clients):
        for n in range(MESSAGES):
            ws.send(f"{label} {i}.{n}")
    for i, ws in enumerate(clients):
        for n in range(MESSAGES):
            assert ws.recv(timeout=10) == f"{label} {i}.{n}"


def test_100_clients_over_two_processes_survive_the_loss_of_one(tmp_path) -> None:
    servers = [ServeProcess("--trusted-proxy", PROXY_SOURCE) for _ in range(2)]
    clients: List[wsclient.WebSocket] = []
    try:
        names = {f"127.0.0.1:{server.port}": server for server in servers}
        with run_nginx(str(tmp_path), {"wsclient": [server.port for server in servers]}) as port:
            by_server: Dict[str, List[wsclient.WebSocket]] = {name: [] for name in names}
            for _ in range(CLIENTS):
                ws = wsclient.connect(f"ws://127.0.0.1:{port}/", proxy=None, timeout=10)
                clients.append(ws)
                by_server[upstream_of(ws)].append(ws)
            victim_name, survivor_name = names
            assert min(len(c) for c in by_server.values()) >= CLIENTS // 4, {k: len(v) for k, v in by_server.items()}
            exchange(clients, "first")
            # Each server saw nginx as its peer, and the client behind it as client_address.
            for server in servers:
                line = server.wait_stderr("opened (")
                assert line.startswith(f"opened ('{PROXY_SOURCE}', ") and line.endswith(" / client=127.0.0.1"), line

            victim, survivor = names[victim_name], names[survivor_name]
            os.kill(victim.process.pid, signal.SIGKILL)
            for ws in by_server[victim_name]:
                with pytest.raises(wsclient.ConnectionClosedError):
                    ws.recv(timeout=10)
                assert ws.close_code == 1006
            exchange(by_server[survivor_name], "after the loss")

            reconnected = []
            for _ in by_server[victim_name]:
                ws = wsclient.connect(f"ws://127.0.0.1:{port}/", proxy=None, timeout=10)
                clients.append(ws)
                reconnected.append(ws)
                assert upstream_of(ws) == survivor_name
            exchange(reconnected, "reconnected")
            exchange(by_server[survivor_name], "still")
            for ws in clients:
                ws.close()
            assert survivor.process.poll() is None
    finally:
        for ws in clients:
            ws.close()
        for server in servers:
            server.stop()


def report(ws: wsclient.WebSocket) -> None:
    """Send back what the server knows of its client, then echo."""
    ws.send(json.dumps({"client": ws.client_address, "peer": ws.remote_address[0]}))
    for message in ws:
        ws.send(message)


def test_client_address_is_taken_from_a_trusted_proxy_only(run_server, tmp_path) -> None:
    trusting = run_server(report, trusted_proxies=[PROXY_SOURCE])
    ignoring = run_server(report)
    forged = {"X-Forwarded-For": "203.0.113.9"}
    upstreams = {"trusting": [trusting.port], "ignoring": [ignoring.port]}
    with run_nginx(str(tmp_path), upstreams, locations={"/trusting": "trusting", "/ignoring": "ignoring"}) as port:
        def seen(path: str, **options) -> dict:
            with wsclient.connect(f"ws://127.0.0.1:{port}{path}", proxy=None, timeout=10, **options) as ws:
                return json.loads(ws.recv(timeout=10))

        # nginx appends the address it saw (127.0.0.1) to the forged header: the server that
        # trusts nginx takes that right-most untrusted entry, not the forged one.
        assert seen("/trusting", headers=forged) == {"client": "127.0.0.1", "peer": PROXY_SOURCE}
        assert seen("/trusting") == {"client": "127.0.0.1", "peer": PROXY_SOURCE}
        assert seen("/ignoring", headers=forged) == {"client": PROXY_SOURCE, "peer": PROXY_SOURCE}
    # Straight to the trusting server, not through nginx: the header is the client's word only.
    with wsclient.connect(trusting.uri, proxy=None, timeout=10, headers=forged) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"client": "127.0.0.1", "peer": "127.0.0.1"}


def test_proxy_read_timeout_cuts_silent_websockets_and_pings_keep_them(run_server, tmp_path) -> None:
    quiet = run_server(ping_interval=None)
    pinging = run_server(ping_interval=0.3)
    upstreams = {"quiet": [quiet.port], "pinging": [pinging.port]}
    locations = {"/quiet": "quiet", "/pinging": "pinging"}
    with run_nginx(str(tmp_path), upstreams, locations=locations, timeout=f"{IDLE_TIMEOUT_MS}ms") as port:
        def open_(path: str, ping_interval) -> wsclient.WebSocket:
            return wsclient.connect(f"ws://127.0.0.1:{port}{path}", proxy=None, timeout=10,
                                    ping_interval=ping_interval)

        opened = time.monotonic()
        silent = open_("/quiet", None)
        client_pings = open_("/quiet", 0.3)
        server_pings = open_("/pinging", None)
        try:
            with pytest.raises(wsclient.ConnectionClosedError):
                silent.recv(timeout=10)  # After nginx's proxy_read_timeout.
            assert silent.close_code == 1006
            # Until three times the proxy's timeout: neither has a message or has closed.
            remaining = opened + 3 * IDLE_TIMEOUT_MS / 1000 - time.monotonic()
            assert wsclient.wait([client_pings, server_pings], timeout=max(0.0, remaining)) == []
            for ws in (client_pings, server_pings):
                ws.send("alive")
                assert ws.recv(timeout=10) == "alive"
        finally:
            for ws in (silent, client_pings, server_pings):
                ws.close()
