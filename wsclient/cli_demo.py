"""The ``demo`` subcommand: an echo server and a client on loopback, a few messages of each
kind, and the round-trip time; needs no network.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from typing import Any, List, TextIO, Tuple

from .cli_status import EXIT_FAILED, EXIT_OK
from .client import connect as ws_connect
from .connection import WebSocket
from .server import serve as ws_serve

__all__ = ["demo"]



def _echo(ws: WebSocket) -> None:
    for message in ws:
        ws.send(message)


def demo(*, rounds: int = 100, out: TextIO = sys.stdout) -> int:
    """Echo a few messages over loopback and print what happened and the round-trip time.

    Args:
        rounds: how many small round trips to time.
        out: where to print.

    Returns:
        0 when every message came back intact, else 1.
    """
    server = ws_serve(_echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="wsclient-demo-server", daemon=True)
    thread.start()
    print(f"server: echoing on {server.uri}", file=out)
    ok = True
    try:
        with ws_connect(server.uri, proxy=None, timeout=10) as ws:
            extension = ws.response.headers["Sec-WebSocket-Extensions"] or "none"
            print(f"client: connected to {server.uri} (extensions: {extension})", file=out)
            big = bytes(range(256)) * 4096
            checks: List[Tuple[str, Any, Any]] = [
                ("text", "Hello, WebSocket!", "Hello, WebSocket!"),
                ("binary", b"\x00\x01\x02\xff", b"\x00\x01\x02\xff"),
                ("1 MiB binary", big, big),
                ("fragmented text (3 frames)", ["frag", "ment", "ed"], "fragmented"),
            ]
            for label, sent, expected in checks:
                ws.send(sent)
                got = ws.recv(timeout=10)
                ok &= got == expected
                print(f"  {label:<28} {'echoed' if got == expected else 'MISMATCH'} ({len(got)} {'chars' if isinstance(got, str) else 'bytes'})", file=out)
            start = time.perf_counter()
            pong = ws.ping(b"demo").wait(10)
            ok &= pong
            print(f"  {'ping':<28} {'pong after %.3f ms' % ((time.perf_counter() - start) * 1000) if pong else 'NO PONG'}", file=out)
            times = []
            for i in range(rounds):
                start = time.perf_counter()
                ws.send(f"round {i}")
                ok &= ws.recv(timeout=10) == f"round {i}"
                times.append(time.perf_counter() - start)
            if times:
                print(f"round-trip time: median {statistics.median(times) * 1e6:.0f} us over {rounds} messages", file=out)
        print(f"client: closed with code {ws.close_code}", file=out)
    finally:
        server.shutdown(timeout=5)
        server.server_close()
        thread.join(5)
    print("server: shut down", file=out)
    return EXIT_OK if ok else EXIT_FAILED
