"""Programs for the supervisor tests: ``python -m tests.multiprocess.apps MODE``.

Modes: ``pids`` serves :func:`tell_pid` from two workers with :func:`serve_workers`; the
others run :func:`run_workers` with a factory of that name that fails in a worker.
The supervisor prints ``READY <port> <pid> <pid>`` once the workers listen and
``STATUS <n>`` when it returns, then exits with that status.
"""

from __future__ import annotations

import os
import sys
from typing import List

from wsclient import WebSocket, WebSocketServer, serve
from wsclient.workers import run_workers, serve_workers


def tell_pid(ws: WebSocket) -> None:
    """Greet with this worker's pid, then echo."""
    ws.send(str(os.getpid()))
    for message in ws:
        ws.send(message)


def failing(host: str, port: int) -> WebSocketServer:
    raise RuntimeError("no server today")


def exiting(host: str, port: int) -> WebSocketServer:
    os._exit(3)


def wrong_port(host: str, port: int) -> WebSocketServer:
    return serve(tell_pid, host, 0)


def ready(port: int, pids: List[int]) -> None:
    print("READY", port, *pids, flush=True)


def main(mode: str) -> int:
    if mode == "pids":
        status = serve_workers(tell_pid, "127.0.0.1", 0, workers=2, on_ready=ready, ping_interval=None)
    else:
        status = run_workers(globals()[mode], "127.0.0.1", 0, workers=2, on_ready=ready, start_timeout=20)
    print("STATUS", status, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
