"""Running real peer programs as subprocesses: started, read line by line, killed by PID.

Every peer is a child process of the test. Its stdout is read by a thread into a queue so
each wait has a deadline; :meth:`Peer.stop` terminates the process by PID and waits a bounded
time, killing it if it lingers.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import wsclient

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")

#: Seconds any single wait for a peer's output may take.
PEER_TIMEOUT = 20.0


class Peer:
    """A subprocess whose stdout lines are collected by a reader thread."""

    def __init__(self, argv: Sequence[str], *, cwd: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.argv = list(argv)
        self.process = subprocess.Popen(
            self.argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.stderr: List[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put), daemon=True),
            threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr.append), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: Any, sink: Callable[[Optional[str]], None]) -> None:
        for raw in stream:
            sink(raw.decode("utf-8", "replace").rstrip("\n"))
        sink(None)

    def line(self, timeout: float = PEER_TIMEOUT) -> str:
        """The next line of output; AssertionError if none comes in time or the peer ends."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.argv[0]}: no output in {timeout}s; {self.describe()}") from None
        if line is None:
            self.lines.put(None)  # stay at end of output for later calls
            raise AssertionError(f"{self.argv[0]} ended; {self.describe()}")
        return line

    def event(self, name: str, timeout: float = PEER_TIMEOUT) -> Dict[str, Any]:
        """The next JSON line whose ``event`` is ``name`` (others before it are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.0, deadline - time.monotonic()))
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == name:
                return record
            if record.get("event") == "error":
                raise AssertionError(f"peer reported {record}; {self.describe()}")

    def events(self, timeout: float = PEER_TIMEOUT) -> Iterator[Dict[str, Any]]:
        """JSON lines until the peer's output ends, within ``timeout`` in all."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.argv[0]} still running after {timeout}s; {self.describe()}") from None
            if line is None:
                self.lines.put(None)
                return
            try:
                yield json.loads(line)
            except ValueError:
                continue

    def describe(self) -> str:
        return f"exit={self.process.poll()} stderr={' | '.join(self.stderr[-20:])!r}"

    def stop(self, timeout: float = 5.0, *, group: bool = False) -> None:
        """Terminate the process (by PID), kill it if it outlives ``timeout``.

        With ``group``, signal the process group this peer leads instead (it was started in
        a session of its own, so the group holds only its children, e.g. Chromium's helpers).
        """
        kill = os.killpg if group else os.kill
        if self.process.poll() is None:
            kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        if group:
            try:  # helpers that outlived their leader (the group id stays theirs)
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        for thread in self._threads:
            thread.join(timeout)


def node_ws_available() -> bool:
    """Node is installed and ``npm ci --prefix tests/interop/node`` has fetched ``ws``."""
    return shutil.which("node") is not None and os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for programs that need a number)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = PEER_TIMEOUT) -> None:
    """Return once something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s") from None
            time.sleep(0.05)


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` bytes of a compressible but non-trivial pattern, different for each seed."""
    unit = bytes(0x61 + ((i * 7 + seed) % 26) for i in range(26 * 37))
    return (unit * (size // len(unit) + 1))[:size]


class Recorder:
    """Our server's handler: echoes (or closes with 4002 on ``/close``) and records, per
    connection, the request, the negotiated extensions and how the connection closed."""

    def __init__(self) -> None:
        self.requests: List[wsclient.Request] = []
        self.extensions: List[Optional[str]] = []
        self.closes: List[Tuple[Optional[int], Optional[str]]] = []
        self.done = threading.Event()

    def __call__(self, ws: wsclient.WebSocket) -> None:
        self.requests.append(ws.request)
        self.extensions.append(ws.response.headers["Sec-WebSocket-Extensions"])
        try:
            if ws.request.path == "/close":
                ws.close(4002, "server bye")
            else:
                for message in ws:
                    ws.send(message)
        except wsclient.ConnectionClosed as exc:
            self.closes.append((exc.code, exc.reason))
        else:
            self.closes.append((ws.close_code, ws.close_reason))
        finally:
            self.done.set()
