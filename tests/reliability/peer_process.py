"""A wsclient peer in a process of its own, for tests that measure or freeze the other end.

Run as a script (it imports only :mod:`wsclient`)::

    python peer_process.py serve [--certfile F --keyfile F] [--ping-interval S] ...
    python peer_process.py client URI [--ping-interval S]

``serve`` starts an echo server on 127.0.0.1 (and a ``wss://`` one with a certificate), prints
one JSON line ``{"pid": ..., "ws": port, "wss": port}``, and serves until its standard input
closes; then it shuts down and exits 0. A request for ``/reject`` gets ``403``. ``client``
connects, sends ``ready``, prints ``ready``, and keeps the connection open (its watcher
answering pings) until standard input closes.

:class:`PeerProcess` starts either and stops it: it owns the PID and kills nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any, List, Optional

__all__ = ["PeerProcess", "main"]

HERE = os.path.abspath(__file__)


def _serve(args: argparse.Namespace) -> None:
    import ssl

    import wsclient

    def echo(ws: Any) -> None:
        for message in ws:
            ws.send(message)

    def process_request(request: Any) -> Any:
        return (403, [("Content-Type", "text/plain")], b"rejected") if request.path == "/reject" else None

    options = dict(ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
                   compression=None if args.no_compression else "deflate",
                   process_request=process_request, max_connections=args.max_connections)
    servers = [wsclient.serve(echo, "127.0.0.1", 0, **options)]
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
        servers.append(wsclient.serve(echo, "127.0.0.1", 0, ssl_context=context, **options))
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    ports = {"pid": os.getpid(), "ws": servers[0].port, "wss": servers[1].port if args.certfile else None}
    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(10)


def _client(args: argparse.Namespace) -> None:
    import wsclient

    ws = wsclient.connect(args.uri, proxy=None, ping_interval=args.ping_interval,
                          ping_timeout=args.ping_timeout)
    ws.send("ready")
    print(json.dumps({"pid": os.getpid(), "ready": True}), flush=True)
    sys.stdin.read()
    ws.close()


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--certfile")
    serve.add_argument("--keyfile")
    serve.add_argument("--no-compression", action="store_true")
    serve.add_argument("--max-connections", type=int, default=2048)
    client = sub.add_parser("client")
    client.add_argument("uri")
    for command in (serve, client):
        command.add_argument("--ping-interval", type=float, default=None)
        command.add_argument("--ping-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    (_serve if args.command == "serve" else _client)(args)


class PeerProcess:
    """Start ``peer_process.py`` with ``argv``; read its JSON line; stop it on :meth:`stop`.

    Attributes:
        pid: the child's PID (the only process this object ever signals).
        info: the JSON line it printed.
    """

    def __init__(self, argv: List[str], *, timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, HERE, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.process.pid
        line = _readline(self.process, timeout)
        if not line:
            self.stop()
            raise RuntimeError(f"peer process {argv} exited before it was ready")
        self.info = json.loads(line)

    @classmethod
    def serve(cls, *options: str) -> "PeerProcess":
        """An echo server process; ``.info["ws"]`` (and ``["wss"]``) are its ports."""
        return cls(["serve", *options])

    def uri(self, path: str = "/", *, secure: bool = False) -> str:
        """The ``ws://`` (or ``wss://``) URI of the server process."""
        scheme, port = ("wss", self.info["wss"]) if secure else ("ws", self.info["ws"])
        return f"{scheme}://127.0.0.1:{port}{path}"

    def stop(self, timeout: float = 20.0) -> int:
        """Close its stdin (a clean exit), else kill it; return its exit status."""
        if self.process.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)  # in case a test left it stopped
            except ProcessLookupError:
                pass
            try:
                self.process.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> "PeerProcess":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _readline(process: subprocess.Popen, timeout: float) -> str:
    """The child's first line of output, or '' if it exits or stays silent for ``timeout``."""
    result: List[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


if __name__ == "__main__":
    main()
