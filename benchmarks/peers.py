"""Processes the benchmarks talk to: servers under test, the neutral echo server, neutral clients.

The neutral echo server is Node's ``ws`` (:file:`node_echo.js`) for small messages and
handshakes where Node and the package are installed, else the ``websockets`` asyncio server
(``serve neutral``); see :func:`benchmarks.scenarios.neutral`.

Each runs as ``python -m benchmarks.peers ...`` in a process of its own, so it never shares
the GIL with the code being measured. A server prints ``PORT <n>`` once it listens and
serves until it is terminated. A driver (a neutral client built on :mod:`benchmarks.raw`)
sets up its connections, prints ``READY``, then answers each ``run <seconds>`` line on its
stdin with one JSON line ``{"ops": ..., "elapsed": ...}``, until ``quit`` or end of input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import struct
import sys
import time
from typing import Any, Callable, List, Optional, Tuple

from . import raw

HOST = "127.0.0.1"


def _echo_sync(ws: Any) -> None:
    for message in ws:
        ws.send(message)


def serve(lib: str, deflate: bool, keepalive: Optional[float] = None, broadcaster: bool = False) -> None:
    """Run one echo server forever; print its port first.

    Args:
        keepalive: the ping interval (and timeout) for wsclient and websockets; None: off.
        broadcaster: also answer ``broadcast <seconds> <n>`` lines on stdin (see
            :func:`_broadcast_loop`); the handler then only reads.
    """
    if lib == "neutral":
        asyncio.run(_serve_neutral(deflate))
        return
    if lib == "node":  # Node's ws: this process becomes the node one (same pipes, same PID).
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_echo.js")
        os.execvp("node", ["node", script, *(["--deflate"] if deflate else [])])
    if lib == "websockets-asyncio":
        asyncio.run(_serve_asyncio_broadcaster())
        return
    handler = _read_only if broadcaster else _echo_sync
    if lib == "raw":
        server: Any = raw.RawServer(HOST, 0, deflate=deflate, keep=broadcaster)
        port = server.port
        connections: Callable[[], List[Any]] = lambda: list(server.connections)
        send: Callable[[List[Any], str], int] = raw.broadcast
    elif lib == "wsclient":
        import wsclient

        server = wsclient.serve(handler, HOST, 0, compression="deflate" if deflate else None, max_size=None,
                                max_connections=None, backlog=1024, **_keepalive(keepalive))
        port = server.port
        connections = lambda: server.connections
        send = lambda conns, message: len(wsclient.broadcast(conns, message))
    elif lib == "websockets":
        from websockets.sync.server import serve as ws_serve

        server = ws_serve(handler, HOST, 0, compression="deflate" if deflate else None, max_size=None,
                          **_keepalive(keepalive))
        port = server.socket.getsockname()[1]
        connections = lambda: []
        send = lambda conns, message: 0
    else:
        raise SystemExit(f"unknown server {lib}")
    print(f"PORT {port}", flush=True)
    if broadcaster:
        import threading

        threading.Thread(target=_broadcast_commands, args=(connections, send), daemon=True).start()
    server.serve_forever()


def _keepalive(seconds: Optional[float]) -> dict:
    """The ping options for ``--keepalive``: the library's defaults without it."""
    return {} if seconds is None else {"ping_interval": seconds, "ping_timeout": seconds}


def _read_only(ws: Any) -> None:
    for _ in ws:
        pass


def broadcast_message(seq: int, size: int = 1024) -> str:
    """A broadcast text of ``size`` bytes: CLOCK_MONOTONIC in ns, the sequence number, padding."""
    head = f"{time.monotonic_ns()} {seq} "
    return head + "x" * (size - len(head))


def _broadcast_commands(connections: Callable[[], List[Any]], send: Callable[[List[Any], str], int]) -> None:
    """Answer ``broadcast <seconds> <n>``: wait for n connections, broadcast 1 KiB texts
    back to back for that long, then "END"; reply with one JSON line."""
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != "broadcast":
            break
        seconds, n = float(words[1]), int(words[2])
        deadline = time.monotonic() + 60
        while len(connections()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        conns = connections()
        sent = skipped = 0
        cpu = time.process_time()
        start = time.monotonic()
        end = start + seconds
        while time.monotonic() < end:
            skipped += send(conns, broadcast_message(sent))
            sent += 1
        elapsed = time.monotonic() - start
        cpu = time.process_time() - cpu
        send(conns, "END")
        print(json.dumps({"sent": sent, "skipped": skipped, "connections": len(conns), "elapsed": elapsed,
                          "cpu": cpu}), flush=True)


async def _serve_asyncio_broadcaster() -> None:
    """websockets' asyncio server with its ``broadcast()``, answering the same commands."""
    from websockets.asyncio.server import broadcast as ws_broadcast, serve as aserve

    conns: set = set()

    async def handler(ws: Any) -> None:
        conns.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            conns.discard(ws)

    loop = asyncio.get_running_loop()
    async with aserve(handler, HOST, 0, compression=None, max_size=None, ping_interval=None, backlog=1024) as srv:
        print(f"PORT {next(iter(srv.sockets)).getsockname()[1]}", flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            words = line.split()
            if not words or words[0] != "broadcast":
                return
            seconds, n = float(words[1]), int(words[2])
            deadline = time.monotonic() + 60
            while len(conns) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            targets = list(conns)
            sent = 0
            cpu = time.process_time()
            start = time.monotonic()
            end = start + seconds
            while time.monotonic() < end:
                ws_broadcast(targets, broadcast_message(sent))
                sent += 1
                await asyncio.sleep(0)  # let the loop write: broadcast() only fills buffers
            elapsed = time.monotonic() - start
            cpu = time.process_time() - cpu
            ws_broadcast(targets, "END")
            print(json.dumps({"sent": sent, "skipped": 0, "connections": len(targets), "elapsed": elapsed,
                              "cpu": cpu}), flush=True)


async def _serve_neutral(deflate: bool) -> None:
    from websockets.asyncio.server import serve as aserve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    compression = "deflate" if deflate else None
    async with aserve(echo, HOST, 0, compression=compression, max_size=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


# -- drivers: neutral clients ---------------------------------------------------------


def timed(step: Callable[[], Any], duration: float) -> Tuple[int, float]:
    """Call ``step`` until ``duration`` seconds have passed (at least once): (calls, seconds)."""
    ops = 0
    start = time.perf_counter()
    end = start + duration
    now = start
    while ops == 0 or now < end:
        step()
        ops += 1
        now = time.perf_counter()
    return ops, now - start


def _timed(step: Callable[[], Any], duration: float) -> dict:
    """:func:`timed` as the JSON a driver answers with."""
    ops, elapsed = timed(step, duration)
    return {"ops": ops, "elapsed": elapsed}


def rtt_driver(port: int, message: bytes, opcode: int, deflate: bool) -> Callable[[float], dict]:
    """One connection, echo round trips of ``message``."""
    conn = raw.raw_connect(HOST, port, deflate=deflate)

    def step() -> None:
        conn.send(message, opcode)
        conn.recv()

    for _ in range(20):
        step()
    return lambda duration: _timed(step, duration)


def handshake_driver(port: int) -> Callable[[float], dict]:
    """Open a connection, close it properly, repeat."""

    def step() -> None:
        raw.raw_connect(HOST, port).close()

    for _ in range(5):
        step()
    return lambda duration: _timed(step, duration)


def many_driver(port: int, n: int) -> Callable[[float], dict]:
    """``n`` connections, each with one 32-byte message in flight at all times when run."""
    conns: List[raw.RawConnection] = [raw.raw_connect(HOST, port) for _ in range(n)]
    key = os.urandom(4)
    payload = b"x" * 32
    frame = struct.pack("!BB", 0x81, 0x80 | 32) + key + raw.mask(payload, key)
    reply = 2 + 32

    def run(duration: float) -> dict:
        sel = selectors.DefaultSelector()
        pending = {}
        for c in conns:
            c.sock.setblocking(False)
            sel.register(c.sock, selectors.EVENT_READ, c)
            pending[c.sock.fileno()] = 0
            c.sock.send(frame)
        ops = 0
        start = time.perf_counter()
        end = start + duration
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            for key_, _ in sel.select(end - now):
                sock = key_.fileobj
                data = sock.recv(65536)  # type: ignore[union-attr]
                if not data:
                    raise ConnectionResetError("server closed a connection")
                fd = sock.fileno()  # type: ignore[union-attr]
                got = pending[fd] + len(data)
                done, pending[fd] = divmod(got, reply)
                for _ in range(done):
                    sock.send(frame)  # type: ignore[union-attr]
                ops += done
        elapsed = time.perf_counter() - start
        # Each connection still owes exactly one echo: read it so the next run starts clean.
        sel.close()
        for c in conns:
            c.sock.settimeout(30)
            owed = reply - pending[c.sock.fileno()]
            while owed:
                data = c.sock.recv(owed)
                if not data:
                    raise ConnectionResetError("server closed a connection")
                owed -= len(data)
        for c in conns:
            c.sock.setblocking(True)
        return {"ops": ops, "elapsed": elapsed}

    return run


def idle_deflate_driver(port: int, n: int) -> Callable[[float], dict]:
    """``n`` permessage-deflate connections, each echoing one 1 KiB JSON message, then idle."""
    message = json_message(1024).encode()
    conns = []
    for _ in range(n):
        conn = raw.raw_connect(HOST, port, deflate=True)
        conn.send(message, raw.TEXT)
        if conn.recv()[1] != message:
            raise RuntimeError("echo mismatch")
        conns.append(conn)
    return lambda duration: {"ops": len(conns), "elapsed": duration}


def drive(args: argparse.Namespace) -> None:
    """Set up a neutral client, print READY, answer ``run <seconds>`` lines."""
    if args.mode == "rtt":
        if args.json:
            message, opcode = json_message(args.size).encode(), raw.TEXT
        elif args.size <= 1024:
            message, opcode = b"x" * args.size, raw.TEXT
        else:
            message, opcode = os.urandom(args.size), raw.BINARY
        run = rtt_driver(args.port, message, opcode, args.deflate)
    elif args.mode == "handshake":
        run = handshake_driver(args.port)
    elif args.mode == "many":
        run = many_driver(args.port, args.n)
    elif args.mode == "idle-deflate":
        run = idle_deflate_driver(args.port, args.n)
    else:
        raise SystemExit(f"unknown mode {args.mode}")
    print("READY", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        print(json.dumps(run(float(words[1]))), flush=True)


def _gc_stats(path: str) -> None:
    """Profiling aid: append the time spent in each generation's collections to ``path``
    every 5 s (WSBENCH_GCSTATS=path in the server's environment)."""
    import gc
    import threading

    spent = [0.0, 0.0, 0.0]
    count = [0, 0, 0]
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent[info["generation"]] += time.perf_counter() - started[0]
            count[info["generation"]] += 1

    gc.callbacks.append(callback)

    def report() -> None:
        while True:
            time.sleep(5)
            with open(path, "a") as f:
                f.write(f"{time.monotonic():.1f} gc seconds by generation {[round(x, 2) for x in spent]} "
                        f"collections {count} objects {len(gc.get_objects()) if count[2] < 0 else '-'}\n")

    threading.Thread(target=report, daemon=True).start()


def json_message(size: int) -> str:
    """A compressible JSON document of about ``size`` bytes (deterministic)."""
    records = []
    total = 2
    i = 0
    while total < size:
        record = json.dumps(
            {"id": i, "name": f"user{i % 997}", "active": i % 3 == 0, "score": (i * 7919) % 10007,
             "tags": ["alpha", "beta", "gamma"][: i % 4], "city": ["Paris", "Lima", "Oslo", "Pune"][i % 4]}
        )
        records.append(record)
        total += len(record) + 2
        i += 1
    return "[" + ", ".join(records) + "]"


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve")
    p_serve.add_argument("lib", choices=["neutral", "node", "raw", "wsclient", "websockets", "websockets-asyncio"])
    p_serve.add_argument("--deflate", action="store_true")
    p_serve.add_argument("--keepalive", type=float, default=None, help="ping interval and timeout (s)")
    p_serve.add_argument("--broadcaster", action="store_true", help="answer 'broadcast <s> <n>' on stdin")
    p_serve.add_argument("--switch-interval", type=float, default=None,
                         help="sys.setswitchinterval() first (seconds; Python's default is 0.005)")
    p_serve.add_argument("--gate", type=int, default=None,
                         help="wsclient: set wsclient.gate.DIRECT first (default: no gate)")
    p_drive = sub.add_parser("drive")
    p_drive.add_argument("mode", choices=["rtt", "handshake", "many", "idle-deflate"])
    p_drive.add_argument("--port", type=int, required=True)
    p_drive.add_argument("--size", type=int, default=32)
    p_drive.add_argument("--json", action="store_true")
    p_drive.add_argument("--deflate", action="store_true")
    p_drive.add_argument("--n", type=int, default=100)
    args = parser.parse_args(argv)
    if args.command == "serve":
        if os.environ.get("WSBENCH_GCSTATS"):
            _gc_stats(os.environ["WSBENCH_GCSTATS"])
        if args.switch_interval is not None:
            sys.setswitchinterval(args.switch_interval)
        if args.gate is not None:
            import wsclient.gate

            wsclient.gate.DIRECT = args.gate
        serve(args.lib, args.deflate, args.keepalive, args.broadcaster)
    else:
        drive(args)


if __name__ == "__main__":
    main(sys.argv[1:])
