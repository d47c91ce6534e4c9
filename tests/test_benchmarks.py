"""Smoke test: ``python -m benchmarks`` runs end to end and prints the expected table.

No timing assertions (this machine is shared and noisy): only that every expected row is
there, that nothing failed, and that each ratio to the raw baseline is a positive number.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

import websocket  # noqa: F401  (the peers are test dependencies: fail, never skip, without them)
import websockets  # noqa: F401

from benchmarks.scenarios import node_available

from .conftest import need

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--repeat", "1", "--duration", "0.05", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _rows(output: str) -> dict:
    rows = {}
    for line in output.splitlines():
        match = re.match(r"^(\d+ [\w .,]+?)\s{2,}(\S+(?: \S+)?)\s{2,}(.*)$", line)
        if match:
            rows[(match.group(1), match.group(2))] = match.group(3)
    return rows


def _ratio(rest: str) -> float:
    # median, unit, spread, ratio: the ratio is the fourth column after the library.
    return float(rest.split()[3])


def test_client_rtt_and_masking_table() -> None:
    out = _run("--scenario", "client-rtt", "--scenario", "masking")
    assert "scenario" in out and "vs raw" in out
    rows = _rows(out)
    for lib in ("raw", "wsclient", "websocket-client", "websockets"):
        assert ("1 client rtt 32 B", lib) in rows, out
        assert ("7 masking 1 MiB", lib) in rows, out
        assert ("7 masking 16 MiB", lib) in rows, out
    for key, rest in rows.items():
        assert "failed" not in rest, (key, rest)
        assert _ratio(rest) > 0, (key, rest)
    assert _ratio(rows[("1 client rtt 32 B", "raw")]) == 1.0
    assert all("cpu µs/op" in rows[("1 client rtt 32 B", lib)] for lib in ("raw", "wsclient")), out
    node = os.environ.get("CI") == "true" or node_available()
    assert f"Neutral server: {'Node' if node else 'websockets asyncio'}" in out, out


def test_server_rtt_table() -> None:
    out = _run("--scenario", "server-rtt")
    rows = _rows(out)
    # Node's ws is a test dependency in CI (tests/interop); elsewhere it is optional.
    node = os.environ.get("CI") == "true" or node_available()
    assert {lib for (scenario, lib) in rows if scenario == "3 server rtt 32 B"} == {
        "raw", "wsclient", "websockets", *(["node ws"] if node else [])
    }, out
    for lib in ("raw", "wsclient", "websockets"):
        assert "cpu µs/op" in rows[("3 server rtt 32 B", lib)], out
    for key, rest in rows.items():
        assert "failed" not in rest, (key, rest)
        assert _ratio(rest) > 0, (key, rest)


def test_rejects_unknown_scenario() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--scenario", "nope"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_deflate_table_notes_page_faults() -> None:
    out = _run("--scenario", "deflate")
    rows = _rows(out)
    for side in ("client", "server"):
        for lib in ("raw", "wsclient", "websockets"):
            rest = rows[(f"6 {side} deflate 1 MiB JSON", lib)]
            assert "failed" not in rest and _ratio(rest) > 0, (side, lib, rest)
            # Large messages: the minor page faults per echo explain much of the spread.
            assert re.search(r"page faults/op [\d.,]+", rest), (side, lib, rest)
    for lib in ("wsclient", "websockets"):
        assert float(rows[("6 server 200 idle deflate conns", lib)].split()[0]) > 0, out


def test_many_connection_scenarios_at_a_small_scale() -> None:
    # c10k, broadcast and load need Node's ws (a test dependency in CI, like tests/interop).
    need(node_available(), "node or the npm package ws is missing (run `npm ci --prefix tests/interop/node`)")
    out = _run("--scenario", "c10k", "--connections", "40", "--keepalive", "1",
               "--scenario", "broadcast", "--scenario", "load", "--clients", "20", timeout=240)
    rows = _rows(out)
    for lib in ("raw", "wsclient", "node ws"):
        for title in ("8 c10k 40 handshakes", "8 c10k 40 idle", "8 c10k 40 x 10 rt"):
            assert "failed" not in rows[(title, lib)], (title, lib, out)
        assert "lost 0.00" in rows[("8 c10k 40 x 10 rt", lib)], out
    # Every wsclient connection was pinged, none closed for a missed pong.
    idle = rows[("8 c10k 40 idle", "wsclient")]
    assert "pinged 40.0" in idle and "unpinged 0.00" in idle and "closed 0.00" in idle, idle
    for lib in ("raw", "wsclient", "websockets-asyncio"):
        rest = rows[("9 broadcast 1 KiB to 20", lib)]
        assert "failed" not in rest and _ratio(rest) > 0, (lib, rest)
        # No delivery lost to a reading client by wsclient. What the others lose is
        # reported, not asserted: the raw loop (the baseline) came 2 short in one no-poll
        # CI run, and websockets' asyncio broadcast() 1 of 143,363 in a CPython 3.10 run.
        if lib == "wsclient":
            assert "lost 0.00" in rest, (lib, rest)
    for lib in ("raw", "wsclient", "websockets", "node ws"):
        rest = rows[("10 load 20 clients rtt", lib)]
        assert "failed" not in rest and re.search(r"p99 µs [\d.,]+", rest), (lib, rest)


def _crowd(*args: str, timeout: float = 120) -> str:
    result = subprocess.run([sys.executable, "-m", "benchmarks.crowd", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_crowd_measurements_run_and_report_every_thread_and_connection() -> None:
    out = _crowd("threads", "50", "--switch-interval", "0.01")
    assert re.match(r"50 threads, switch interval 10 ms, 300 additions: 50 done in [\d.]+ s, user ", out), out
    need(node_available(), "node or the npm package ws is missing (run `npm ci --prefix tests/interop/node`)")
    out = _crowd("server", "30", "--runs", "1", "--gate", "5")
    assert re.match(r"opened 30 in [\d.]+ s, \d+ us/handshake \| (rtt [\d.]+ s, lost 0, \d+ us/rt \| ){3}"
                    r"closed 30/30 in [\d.]+ s, server CPU", out), out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the stacks are read from Linux's /proc/PID/smaps")
def test_the_stack_measurement_finds_every_connection_threads_stack() -> None:
    result = subprocess.run([sys.executable, "-m", "benchmarks.stacks", "40"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["raw", "wsclient"], result.stdout
    for line in lines:
        found = re.fullmatch(r"\w+: 40 idle connections, (\d+) thread stacks, ([\d.]+) KiB touched each", line)
        assert found, line
        # One stack per connection (wsclient adds its watcher), each at least a page.
        assert 40 <= int(found.group(1)) <= 42 and float(found.group(2)) >= 4.0, line


def test_the_instruction_count_is_per_operation_and_leaves_start_up_out() -> None:
    need(shutil.which("valgrind") is not None, "valgrind is missing (apt-get install valgrind)")
    result = subprocess.run([sys.executable, "-m", "benchmarks.instructions", "--op", "rtt", "--lib", "wsclient",
                             "--few", "20", "--many", "120"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    found = re.fullmatch(r"wsclient: ([\d,]+) instructions per 32-byte round trip \(20 and 120 operations\)\n",
                         result.stdout)
    assert found, result.stdout
    # Start-up (imports, ~100 million instructions) cancels out: what is left is a round
    # trip's worth, tens of thousands of instructions on every CPython this runs on.
    assert 5_000 < int(found.group(1).replace(",", "")) < 500_000, result.stdout
