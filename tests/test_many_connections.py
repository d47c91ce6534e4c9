"""Many idle connections with keepalive on one server: the C10K scenario's correctness, smaller.

A wsclient server holds 300 connections from one Node ``ws`` process (the benchmarks'
driver, benchmarks/node_driver.js), keepalive every 0.5 s: every connection is pinged and
answers (none is closed for a missed pong), one thread serves each, then 300 x 10 round
trips all complete, and every connection closes cleanly. No timing is asserted beyond
generous bounds: this is about nothing being lost, not about speed.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from typing import Iterator

import pytest

import wsclient
from benchmarks.scenarios import Peer, node_available, node_driver
from wsclient.server import DESCRIPTOR_MARGIN

from .conftest import need

N = 300
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _echo(ws: wsclient.WebSocket) -> None:
    for message in ws:
        ws.send(message)


@pytest.fixture
def server() -> Iterator[wsclient.WebSocketServer]:
    srv = wsclient.serve(_echo, "127.0.0.1", 0, compression=None, ping_interval=0.5, ping_timeout=10.0,
                         max_connections=None)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown(timeout=30)
        srv.server_close()
        thread.join(30)


@pytest.mark.slow
def test_300_idle_connections_keepalive_then_round_trips(server: wsclient.WebSocketServer) -> None:
    need(node_available(), "node or the npm package ws is missing (run `npm ci --prefix tests/interop/node`)")
    assert server.port is not None
    drv: Peer = node_driver(server.port)
    try:
        threads_before = threading.active_count()
        opened = drv.command(f"open {N} 50", 120)
        assert opened == {**opened, "opened": N, "failed": 0}
        deadline = time.monotonic() + 30
        while len(server.connections) < N and time.monotonic() < deadline:
            time.sleep(0.01)  # bounded poll of the condition under test
        assert len(server.connections) == N
        # One thread per connection (plus the watcher: no gate unless DIRECT is set), never more.
        assert threading.active_count() - threads_before <= N + 1

        pinged = drv.command("pings 30", 60)
        assert pinged["unpinged"] == 0 and pinged["closed"] == 0, pinged
        assert pinged["pinged"] == N

        rtt = drv.command("rtt 10 30", 120)
        assert rtt["done"] == N * 10 and rtt["lost"] == 0 and rtt["closed"] == 0, rtt
        # Keepalive went on through the round trips: still every connection open.
        assert len(server.connections) == N

        closed = drv.command("close 30", 60)
        assert closed["closed"] == closed["of"] == N, closed
        deadline = time.monotonic() + 30
        while server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.connections == []
    finally:
        drv.stop()


def _limit_after_serve(soft: int, max_connections: str) -> str:
    code = f"""
import resource, wsclient
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, hard))
srv = wsclient.serve(lambda ws: None, "127.0.0.1", 0, max_connections={max_connections})
srv.server_close()
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_serve_raises_the_descriptor_limit_to_fit_its_connections() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need(hard == resource.RLIM_INFINITY or hard >= 2048, f"the hard RLIMIT_NOFILE ({hard}) is below 2048")
    # No connection limit: up to the hard limit.
    new_soft, reported_hard = map(int, _limit_after_serve(256, "None").split())
    assert new_soft == reported_hard
    # A limit that needs more than the soft limit: that many plus the margin.
    new_soft, _ = map(int, _limit_after_serve(256, "1500").split())
    assert new_soft == 1500 + DESCRIPTOR_MARGIN
    # A limit that fits already: left alone (never lowered).
    new_soft, _ = map(int, _limit_after_serve(1024, "100").split())
    assert new_soft == 1024
