"""How much of its C stack each connection thread touches: ``python -m benchmarks.stacks [N]``.

Each server (the raw thread-per-connection loop, then wsclient) runs in its own process
(``python -m benchmarks.peers serve``); this process opens N connections to it, echoes one
message on each so every handler is blocked in its next ``recv()``, and reads the server's
``/proc/PID/smaps``. A thread's stack is an anonymous mapping of the thread stack size; its
``Rss`` is what the thread has touched, in whole pages, and stays resident while the
connection lives. Prints, per server, how many stacks were found and their mean ``Rss``.

This is the figure behind docs/performance.rst's "third stack page": the raw loop's
threads touch two pages, wsclient's three, because of how deep in nested constructors the
connection's objects are built. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import collections
import sys
from typing import Dict, List, Optional, Tuple

from . import raw
from .scenarios import HOST, server

#: The servers measured, in order.
SERVERS = ("raw", "wsclient")


def thread_stacks(pid: int, threads: int) -> Tuple[int, float]:
    """The thread stacks of process ``pid``: how many, and their mean Rss in KiB.

    The stacks are the largest readable and writable anonymous mappings that at least
    ``threads`` of them share a size (every thread's stack has the same size). Each stack's
    guard page is a mapping of its own, one per thread too, but not readable.
    """
    sizes: Dict[int, List[int]] = collections.defaultdict(list)
    size = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if "-" in fields[0] and not fields[0].endswith(":"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                anonymous = len(fields) < 6  # No path, no [heap] or [stack] name.
                size = (end - start) if anonymous and fields[1].startswith("rw") else None
            elif fields[0] == "Rss:" and size is not None:
                sizes[size].append(int(fields[1]))
    candidates = [s for s, rss in sizes.items() if len(rss) >= threads]
    if not candidates:
        raise RuntimeError(f"no {threads} anonymous mappings of one size in /proc/{pid}/smaps")
    stack_size = max(candidates)
    rss = sizes[stack_size]
    return len(rss), sum(rss) / len(rss)


def measure(lib: str, n: int) -> str:
    with server(lib, False, measured=True) as srv:
        connections = [raw.raw_connect(HOST, srv.port) for _ in range(n)]
        try:
            for conn in connections:
                conn.send(b"x", raw.BINARY)
            for conn in connections:
                conn.recv()
            count, mean = thread_stacks(srv.pid, n)
        finally:
            for conn in connections:
                conn.sock.close()
    return f"{lib}: {n} idle connections, {count} thread stacks, {mean:.1f} KiB touched each"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stacks", description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=300, help="idle connections (default 300)")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        parser.error("this needs Linux's /proc/PID/smaps")
    for lib in SERVERS:
        print(measure(lib, args.n), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
