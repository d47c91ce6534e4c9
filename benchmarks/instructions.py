"""Instructions per operation, counted by valgrind: ``python -m benchmarks.instructions``.

CPU time per operation on a shared virtual machine moves by 10-20 % from one run to the
next, which hides a change worth a few per cent. Valgrind's callgrind tool counts the
instructions a process executes in user space, which barely move (within about 1 % for
wsclient's round trips, exactly the same for the raw loop's). This module runs a client
(the same code as ``python -m benchmarks``' scenarios 1 and 5) under callgrind against the
neutral echo server (Node's ``ws``, else the ``websockets`` asyncio server; in its own
process, not counted), twice: once for ``--few`` operations and once for ``--many``.
The difference, divided by the difference in operations, is the count per operation:
start-up, imports and warm-up cancel out.

An instruction count is not a time: a system call counts as the few instructions that
make it (the kernel's work is not seen), and code that runs with cold caches costs more
per instruction than a tight loop. Use it to compare two versions of the same code (before
and after a change), and read it beside the CPU time the main benchmark reports. Linux and
valgrind (``apt-get install valgrind``).

Options: ``--op rtt`` (32-byte text round trips on one connection) and/or ``--op
handshake`` (connect and close), ``--lib`` (``raw``, ``wsclient``, ``websocket-client``,
``websockets``; repeatable; default raw and wsclient), ``--few``/``--many`` (operations
per run; the handshake counts are a tenth of these).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

from .scenarios import handshake_client, neutral, open_client, server

#: The operations measured, and what a line of output calls them.
OPERATIONS = {"rtt": "32-byte round trip", "handshake": "handshake (connect + close)"}
LIBRARIES = ("raw", "wsclient", "websocket-client", "websockets")
#: Operations before counting starts in a run (imports, first connections, caches).
WARM_UP = 20


def _operation(op: str, lib: str, port: int) -> Tuple[Callable[[], object], Callable[[], None]]:
    """(one operation, the clean-up after the last) for ``lib`` against ``port``."""
    if op == "handshake":
        return handshake_client(lib, port), lambda: None
    echo, close = open_client(lib, port)
    message = "x" * 32
    return (lambda: echo(message)), close


def child(op: str, lib: str, port: int, count: int) -> None:
    """The process callgrind runs: ``count`` operations after the warm-up."""
    step, close = _operation(op, lib, port)
    for _ in range(WARM_UP + count):
        step()
    close()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _environment(cache: str) -> Dict[str, str]:
    """The children's environment: a fixed hash seed (dictionaries and sets then probe the
    same way in every run), and compiled modules kept in ``cache``, so that a run under
    valgrind does not compile every module it imports (with PYTHONDONTWRITEBYTECODE set,
    nothing is ever cached, and ``import wsclient`` alone runs 800 million instructions)."""
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPYCACHEPREFIX=cache,
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run_child(op: str, lib: str, port: int, count: int, env: Dict[str, str], *, counted: bool) -> str:
    command = [sys.executable, "-m", "benchmarks.instructions", "--child", op, lib, str(port), str(count)]
    if counted:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{lib} {op}{' under valgrind' if counted else ''} failed: {result.stderr[-2000:]}")
    return result.stderr


def _collected(op: str, lib: str, port: int, count: int, env: Dict[str, str]) -> int:
    """The instructions one run of :func:`child` executed (every thread of it)."""
    found = re.search(r"Collected : ([\d,]+)", _run_child(op, lib, port, count, env, counted=True))
    if found is None:
        raise RuntimeError(f"valgrind reported no instruction count for {lib} {op}")
    return int(found.group(1).replace(",", ""))


def per_operation(op: str, lib: str, port: int, few: int, many: int) -> float:
    """Instructions per operation: (count after ``many`` - count after ``few``) / difference."""
    with tempfile.TemporaryDirectory(prefix="wsclient-pycache-") as cache:
        env = _environment(cache)
        _run_child(op, lib, port, 1, env, counted=False)  # Compiles and caches what it imports.
        return (_collected(op, lib, port, many, env) - _collected(op, lib, port, few, env)) / (many - few)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--op", action="append", choices=sorted(OPERATIONS))
    parser.add_argument("--lib", action="append", choices=LIBRARIES)
    parser.add_argument("--few", type=int, default=1000, help="round trips in the short run (default 1000)")
    parser.add_argument("--many", type=int, default=9000, help="round trips in the long run (default 9000)")
    parser.add_argument("--child", nargs=4, metavar=("OP", "LIB", "PORT", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        op, lib, port, count = args.child
        child(op, lib, int(port), int(count))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if not 0 < args.few < args.many:
        parser.error("--few must be at least 1 and below --many")
    with server(neutral()) as srv:
        for op in args.op or ["rtt", "handshake"]:
            # A handshake runs about ten times the instructions of a round trip.
            few, many = (args.few, args.many) if op == "rtt" else (max(1, args.few // 10), max(2, args.many // 10))
            for lib in args.lib or ["raw", "wsclient"]:
                count = per_operation(op, lib, srv.port, few, many)
                print(f"{lib}: {count:,.0f} instructions per {OPERATIONS[op]} ({few} and {many} operations)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
