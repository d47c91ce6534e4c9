"""Thousands of threads waking at once: the measurements behind ``wsclient.gate``.

``python -m benchmarks.crowd threads N [--switch-interval S] [--work K]``
    N threads blocked in ``recv()`` on socket pairs, one byte sent to each at once by
    another process, then each thread does K additions between each of 8 ``send()``
    calls. This process on the first CPU, the sender on the last. Prints how long until
    every thread was done, and the process's user and system time: the GIL's crowd
    without any WebSocket code.

``python -m benchmarks.crowd server N [--runs R] [--gate DIRECT]``
    A wsclient server (keepalive 20 s) and the Node driver, both on the first CPU (the
    c10k scenario of ``python -m benchmarks`` puts them on two): open N connections, three rounds of ``rtt 10 30`` (N clients x 10 round trips, all at
    once), then close them all (``close 30``); a new server each run. Prints the server's
    CPU per handshake and per round trip, and how long closing took. ``--gate``: the
    server sets ``wsclient.gate.DIRECT`` to that first.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from typing import List, Optional

from . import scenarios
from .scenarios import BULK, PING_PONG, node_available, node_driver, server

#: Sends each crowd thread makes after its wake-up (each releases and retakes the GIL).
SENDS = 8


def threads(n: int, work: int, switch_interval: Optional[float]) -> str:
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    threading.stack_size(256 * 1024)  # Address space for thousands of threads.
    # Before the threads start: on Linux each thread has its own affinity, inherited.
    os.sched_setaffinity(0, {BULK.measured})
    pairs = [socket.socketpair() for _ in range(n)]
    done = threading.Semaphore(0)
    waiting = threading.Semaphore(0)

    def woken(sock: socket.socket) -> None:
        waiting.release()
        sock.recv(1)
        total = 0
        for _ in range(SENDS):
            for i in range(work):
                total += i
            sock.send(b"x")
        done.release()

    for _, sock in pairs:
        threading.Thread(target=woken, args=(sock,), daemon=True).start()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # The sender: every thread's byte at once, from another CPU.
        try:
            os.sched_setaffinity(0, {BULK.peer})
            os.read(go_r, 1)
            for peer, _ in pairs:
                peer.send(b"x")
        finally:
            os._exit(0)
    # Every thread in recv() before the bytes come, so that they all wake together: each
    # has said so on its way there, and a moment more lets the last ones arrive.
    for _ in range(n):
        waiting.acquire(timeout=60)
    time.sleep(0.5)
    start, before = time.monotonic(), os.times()
    os.write(go_w, b"g")
    finished = sum(done.acquire(timeout=300) for _ in range(n))
    seconds, after = time.monotonic() - start, os.times()
    os.waitpid(pid, 0)
    return (f"{n} threads, switch interval {sys.getswitchinterval() * 1000:g} ms, {work} additions: "
            f"{finished} done in {seconds:.2f} s, user {after.user - before.user:.2f} s, "
            f"system {after.system - before.system:.2f} s")


def server_runs(n: int, runs: int, gate: Optional[int]) -> List[str]:
    scenarios.LAYOUT = PING_PONG  # The server and the driver on one CPU, as measured.
    extra = [] if gate is None else ["--gate", str(gate)]
    lines = []
    for _ in range(runs):
        with server("wsclient", False, "--keepalive", "20", *extra, measured=True) as srv, \
                node_driver(srv.port) as drv:
            cpu, start = srv.cpu_seconds(), time.monotonic()
            opened = drv.command(f"open {n} 200", max(120.0, n / 50))
            line = [f"opened {opened['opened']} in {time.monotonic() - start:.1f} s, "
                    f"{(srv.cpu_seconds() - cpu) / n * 1e6:.0f} us/handshake"]
            for _ in range(3):
                cpu = srv.cpu_seconds()
                rtt = drv.command("rtt 10 30", 300)
                line.append(f"rtt {rtt['seconds']:.1f} s, lost {rtt['lost']}, "
                            f"{(srv.cpu_seconds() - cpu) / max(1, rtt['done']) * 1e6:.0f} us/rt")
            cpu = srv.cpu_seconds()
            closed = drv.command("close 30", 300)
            line.append(f"closed {closed['closed']}/{closed['of']} in {closed['seconds']:.1f} s, "
                        f"server CPU {srv.cpu_seconds() - cpu:.1f} s")
            lines.append(" | ".join(line))
            print(lines[-1], flush=True)
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crowd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("threads", help="the GIL's crowd, without WebSocket code")
    t.add_argument("n", type=int)
    t.add_argument("--work", type=int, default=300, help="additions between sends (default 300)")
    t.add_argument("--switch-interval", type=float, default=None, help="seconds (default: CPython's, 0.005)")
    s = sub.add_parser("server", help="a wsclient server and the Node driver")
    s.add_argument("n", type=int)
    s.add_argument("--runs", type=int, default=4)
    s.add_argument("--gate", type=int, default=None, help="the server's wsclient.gate.DIRECT (default: no gate)")
    args = parser.parse_args(argv)
    if args.what == "threads":
        print(threads(args.n, args.work, args.switch_interval))
        return 0
    if not node_available():
        print("needs Node and its ws (npm ci --prefix tests/interop/node)", file=sys.stderr)
        return 2
    server_runs(args.n, args.runs, args.gate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
