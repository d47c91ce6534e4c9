"""A soak: many clients echo many messages through a fault-injecting TCP proxy.

Clients connect to a wsclient echo server through :class:`FaultProxy`, a real relay on
loopback sockets that, for some connections, cuts the stream after a random number of
bytes: ``close`` (FIN both ways), ``reset`` (RST both ways) or ``half-close`` (FIN to the
client only, the other direction left open). Some clients also close cleanly, early, with
a code of their own. Messages have random sizes (log-uniform, 0 B up to ``max_size``),
random content (compressible or not, text or binary), random fragmentation; compression
is on for some clients and off for others; both ends ping (keepalive on both, and
explicit pings).

Checked (:meth:`Result.problems`): every echo equals what was sent, in order, for every
client (nothing lost; a dropped client's echoes up to the drop are a prefix of what it
sent); a client the proxy cut sees 1006 (no close frame) unless it had finished, and so
does the server; a clean early close is seen by the server with the client's code; thread
and descriptor counts come back to their baseline.

Long run (the issue's figures): ``python -m tests.reliability.soak --clients 200
--messages 1000 --max-size 1048576``. The CI run is ``tests/reliability/test_soak.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import selectors
import socket
import struct
import threading
import time
import urllib.parse
from typing import Dict, List, Optional, Tuple

import wsclient
from wsclient.exceptions import ConnectionClosed

FAULTS = ("close", "reset", "half-close")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class FaultProxy:
    """A TCP relay in one thread (a selector); cuts chosen connections after N bytes.

    Args:
        upstream: the server's address.
        plan: ``plan(conn_index) -> (fault, after_bytes) or None``.
    """

    BUFFER = 1 << 20  # stop reading a side while the other has this much unsent

    def __init__(self, upstream: Tuple[str, int], plan) -> None:
        self.upstream = upstream
        self.plan = plan
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.pairs: List[dict] = []
        self.accepted = 0
        self.faults_done: Dict[str, int] = {kind: 0 for kind in FAULTS}
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self.sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        self.thread.join(10)
        assert not self.thread.is_alive(), "the proxy thread did not stop"
        for pair in list(self.pairs):
            self._close_pair(pair)
        self.sel.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the loop ---------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        index = self.accepted
        self.accepted += 1
        server = socket.create_connection(self.upstream)
        for s in (client, server):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = {"client": client, "server": server, "out": {client: bytearray(), server: bytearray()},
                "eof": set(), "down_bytes": 0, "plan": self.plan(index), "index": index}
        self.pairs.append(pair)
        self._update(pair)

    def _peer(self, pair: dict, sock: socket.socket) -> socket.socket:
        return pair["server"] if sock is pair["client"] else pair["client"]

    def _update(self, pair: dict) -> None:
        for sock in (pair["client"], pair["server"]):
            if sock.fileno() < 0:
                continue
            events = 0
            if sock not in pair["eof"] and len(pair["out"][self._peer(pair, sock)]) < self.BUFFER:
                events |= selectors.EVENT_READ
            if pair["out"][sock]:
                events |= selectors.EVENT_WRITE
            key = self.sel.get_map().get(sock)
            if events and key is None:
                self.sel.register(sock, events, pair)
            elif events and key.events != events:
                self.sel.modify(sock, events, pair)
            elif not events and key is not None:
                self.sel.unregister(sock)

    def _close_pair(self, pair: dict, *, reset: bool = False) -> None:
        for sock in (pair["client"], pair["server"]):
            if sock.fileno() < 0:
                continue
            if sock in self.sel.get_map():
                self.sel.unregister(sock)
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        if pair in self.pairs:
            self.pairs.remove(pair)

    def _fault(self, pair: dict) -> bool:
        """Apply the pair's fault if its byte count is reached; True if the pair is gone."""
        plan = pair["plan"]
        if plan is None or pair["down_bytes"] < plan[1]:
            return False
        kind = plan[0]
        pair["plan"] = None
        self.faults_done[kind] += 1
        if kind == "half-close":
            # FIN to the client; what the server sends from now on is read and dropped,
            # what the client sends still goes through.
            pair["out"][pair["client"]].clear()
            pair["discard_down"] = True
            try:
                pair["client"].shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return False
        self._close_pair(pair, reset=kind == "reset")
        return True

    def _readable(self, pair: dict, sock: socket.socket) -> None:
        peer = self._peer(pair, sock)
        try:
            data = sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            pair["eof"].add(sock)
            if not pair["out"][peer] and peer.fileno() >= 0 and not (
                    peer is pair["client"] and pair.get("discard_down")):
                try:
                    peer.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        elif sock is pair["server"]:
            if pair.get("discard_down"):
                return
            pair["down_bytes"] += len(data)
            pair["out"][peer] += data
            if self._fault(pair):
                return
        else:
            pair["out"][peer] += data
        if len(pair["eof"]) == 2 and not pair["out"][pair["client"]] and not pair["out"][pair["server"]]:
            self._close_pair(pair)

    def _writable(self, pair: dict, sock: socket.socket) -> None:
        out = pair["out"][sock]
        try:
            sent = sock.send(out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close_pair(pair)
            return
        del out[:sent]
        if not out and self._peer(pair, sock) in pair["eof"]:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if len(pair["eof"]) == 2 and not pair["out"][self._peer(pair, sock)]:
                self._close_pair(pair)

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, events in self.sel.select(timeout=1.0):
                if key.data is None:
                    self._accept()
                    continue
                if key.data == "wake":
                    continue
                pair, sock = key.data, key.fileobj
                if pair not in self.pairs or sock.fileno() < 0:
                    continue
                if events & selectors.EVENT_WRITE:
                    self._writable(pair, sock)
                if pair in self.pairs and sock.fileno() >= 0 and events & selectors.EVENT_READ:
                    self._readable(pair, sock)
                if pair in self.pairs:
                    self._update(pair)


@dataclasses.dataclass
class ClientResult:
    index: int
    plan: Optional[Tuple[str, int]]
    clean_close: Optional[Tuple[int, int]]  # (close code, after this many messages)
    compression: bool
    sent: int = 0
    echoed: int = 0
    bytes_echoed: int = 0
    pings: int = 0
    code: Optional[int] = None
    error: Optional[str] = None
    mismatch: Optional[str] = None


@dataclasses.dataclass
class Result:
    clients: List[ClientResult]
    server_codes: Dict[int, int]
    faults_done: Dict[str, int]
    threads: Tuple[int, int]
    fds: Tuple[int, int]
    seconds: float

    def figures(self) -> dict:
        dropped = [c for c in self.clients if c.code == 1006]
        return {
            "clients": len(self.clients),
            "messages_sent": sum(c.sent for c in self.clients),
            "messages_echoed": sum(c.echoed for c in self.clients),
            "bytes_echoed": sum(c.bytes_echoed for c in self.clients),
            "explicit_pings": sum(c.pings for c in self.clients),
            "completed": sum(1 for c in self.clients if c.code == 1000),
            "clean_early_closes": sum(1 for c in self.clients if c.clean_close and c.code == c.clean_close[0]),
            "dropped_1006": len(dropped),
            "faults_injected": self.faults_done,
            "threads_before_after": self.threads,
            "fds_before_after": self.fds,
            "seconds": round(self.seconds, 1),
            "problems": len(self.problems()),
        }

    def problems(self) -> List[str]:
        out = []
        for c in self.clients:
            server_code = self.server_codes.get(c.index)
            if c.mismatch:
                out.append(f"client {c.index}: {c.mismatch}")
            if c.error and c.code is None:
                out.append(f"client {c.index}: unexpected error {c.error}")
            if c.clean_close is not None and c.code == c.clean_close[0]:
                if server_code != c.clean_close[0]:
                    out.append(f"client {c.index}: closed with {c.clean_close[0]}, server saw {server_code}")
            elif c.code == 1000:
                if c.echoed != c.sent:
                    out.append(f"client {c.index}: finished with {c.echoed} of {c.sent} echoes")
                if server_code not in (1000, 1006):  # a cut during the closing handshake: 1006
                    out.append(f"client {c.index}: server saw {server_code} after a normal close")
            elif c.code == 1006:
                if c.plan is None:
                    out.append(f"client {c.index}: dropped (1006) without a fault: {c.error}")
                elif server_code != 1006:
                    out.append(f"client {c.index}: dropped by the proxy, server saw {server_code}")
            else:
                out.append(f"client {c.index}: close code {c.code} ({c.error})")
        if self.threads[1] != self.threads[0]:
            out.append(f"threads: {self.threads[0]} before, {self.threads[1]} after")
        if self.fds[1] != self.fds[0]:
            out.append(f"descriptors: {self.fds[0]} before, {self.fds[1]} after")
        return out


def _size(rng: random.Random, max_size: int) -> int:
    return min(max_size, int(2 ** rng.uniform(0, math.log2(max_size + 1))) - 1)


def _message(rng: random.Random, size: int):
    kind = rng.randrange(3)
    if kind == 0:
        return rng.randbytes(size)
    if kind == 1:
        return (b'{"id": %d, "name": "record"}, ' % rng.randrange(1000) * (size // 28 + 1))[:size]
    return ("héllo wörld ✓ " * (size // 14 + 1))[: size // 2]  # text, up to ~size bytes


def _pieces(rng: random.Random, message):
    cuts = sorted(rng.randrange(len(message) + 1) for _ in range(rng.randrange(1, 5)))
    bounds = [0, *cuts, len(message)]
    return [message[a:b] for a, b in zip(bounds, bounds[1:])]


def run(*, clients: int, messages: int, max_size: int, fault_rate: float = 0.25,
        clean_close_rate: float = 0.1, concurrency: Optional[int] = None, seed: int = 7,
        timeout: float = 600.0) -> Result:
    """Run the soak and return its :class:`Result` (not checked: see ``problems()``)."""
    master = random.Random(seed)
    plans: List[Optional[Tuple[str, int]]] = []
    for _ in range(clients):
        plans.append((master.choice(FAULTS), master.randrange(1000, 1 + max(2000, messages * max_size // 20)))
                     if master.random() < fault_rate else None)
    server_codes: Dict[int, int] = {}

    threads_before, fds_before = threading.active_count(), fd_count()

    def handler(ws) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query)
        index = int(query["id"][0])
        rng = random.Random(seed * 7919 + index)
        try:
            for message in ws:
                ws.send(message)
                if rng.random() < 0.05:
                    ws.ping(b"server")
        except ConnectionClosed:
            pass
        finally:
            server_codes[index] = ws.close_code

    server = wsclient.serve(handler, "127.0.0.1", 0, ping_interval=0.5, ping_timeout=30,
                            max_size=2 * max_size + 1024)
    server_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    server_thread.start()

    pending: Dict[int, Optional[Tuple[str, int]]] = {}

    def plan_for(conn_index: int):
        # The proxy's accept order is not the client index: clients register their
        # planned fault just before connecting, under a lock, one at a time.
        return pending.pop(conn_index, None)

    proxy = FaultProxy(("127.0.0.1", server.port), plan_for)
    connect_lock = threading.Lock()
    results: List[ClientResult] = []
    deadline = time.monotonic() + timeout

    def client(index: int) -> None:
        rng = random.Random(seed * 104729 + index)
        clean = None
        if plans[index] is None and rng.random() < clean_close_rate / (1 - fault_rate):
            clean = (rng.randrange(3000, 5000), rng.randrange(messages + 1))
        result = ClientResult(index, plans[index], clean, compression=rng.random() < 0.5)
        results.append(result)
        with connect_lock:  # the proxy numbers connections in accept order: one at a time
            pending[proxy.accepted] = plans[index]
            try:
                ws = wsclient.connect(f"ws://127.0.0.1:{proxy.port}/echo?id={index}", proxy=None,
                                      compression="deflate" if result.compression else None,
                                      ping_interval=0.5, ping_timeout=30, max_size=2 * max_size + 1024)
            except Exception as exc:  # noqa: BLE001 - recorded and reported
                result.error = f"connect: {type(exc).__name__}: {exc}"
                return
        try:
            for n in range(messages):
                if clean is not None and n == clean[1]:
                    ws.close(clean[0], "early")
                    break
                if time.monotonic() > deadline:
                    result.error = "soak deadline"
                    break
                message = _message(rng, _size(rng, max_size))
                if rng.random() < 0.2 and len(message) > 1:
                    ws.send(iter(_pieces(rng, message)))
                else:
                    ws.send(message)
                result.sent += 1
                echo = ws.recv(timeout=60)
                if echo != message:
                    result.mismatch = f"message {n}: {len(message)} bytes sent, {len(echo)} came back, different"
                    break
                result.echoed += 1
                result.bytes_echoed += len(message)
                if rng.random() < 0.05:
                    result.pings += 1
                    ws.ping(b"client")
            else:
                ws.close()
        except ConnectionClosed as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        except TimeoutError as exc:
            result.error = f"TimeoutError: {exc}"
        finally:
            ws.close()
            result.code = ws.close_code

    started = time.monotonic()
    workers: List[threading.Thread] = []
    limit = threading.Semaphore(concurrency or clients)

    def bounded(index: int) -> None:
        with limit:
            client(index)

    for index in range(clients):
        thread = threading.Thread(target=bounded, args=(index,), name=f"soak-client-{index}")
        thread.start()
        workers.append(thread)
    for thread in workers:
        thread.join(max(1.0, deadline - time.monotonic() + 60))
    seconds = time.monotonic() - started

    # Every client is done: each server-side connection ends too, once the proxy has passed
    # on the client's end (a dropped client's 1006 reaches the server through the relay,
    # a moment after the client saw it). Wait for that, boundedly, before shutdown() would
    # close what is left with 1001: a connection still open after the wait is a problem.
    settle = time.monotonic() + 30
    while len(server_codes) < clients and time.monotonic() < settle:
        time.sleep(0.05)
    server.shutdown()
    server_thread.join(30)
    server.server_close()
    proxy.stop()
    # Bounded wait for the connections' threads and sockets to go.
    end = time.monotonic() + 30
    while time.monotonic() < end and (threading.active_count() > threads_before or fd_count() > fds_before):
        time.sleep(0.05)
    results.sort(key=lambda r: r.index)
    return Result(results, server_codes, dict(proxy.faults_done),
                  (threads_before, threading.active_count()), (fds_before, fd_count()), seconds)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--max-size", type=int, default=1 << 20)
    parser.add_argument("--concurrency", type=int, default=None, help="clients at once (default: all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=7200)
    args = parser.parse_args()
    result = run(clients=args.clients, messages=args.messages, max_size=args.max_size,
                 concurrency=args.concurrency, seed=args.seed, timeout=args.timeout)
    print(json.dumps(result.figures(), indent=1))
    for problem in result.problems()[:50]:
        print("PROBLEM:", problem)
    return 1 if result.problems() else 0


if __name__ == "__main__":
    raise SystemExit(main())
