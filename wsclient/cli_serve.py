"""The ``serve`` subcommand: an echo or broadcast server from the command line, in one process
or in ``--workers N`` processes sharing a port (:mod:`wsclient.workers`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import ssl
import sys
from typing import Any, List, Optional, Tuple

from .cli_show import reason_of
from .cli_status import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .connection import WebSocket
from .exceptions import ConnectionClosed
from .forwarded import parse_trusted
from .server import WebSocketServer, broadcast, serve as ws_serve
from .workers import run_workers

__all__ = ["serve", "parse_address", "raise_interrupt", "stop_signals", "stop_on_signals"]


def parse_address(text: str) -> Tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` -> ``(host, port)``; HOST defaults to 127.0.0.1.

    Raises:
        ValueError: not an address.
    """
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"not a [HOST:]PORT: {text!r}")
    return host or "127.0.0.1", int(port)


def _server_handler(mode: str, holder: List[WebSocketServer], *, tag: str = "", show_client: bool = False) -> Any:
    def handler(ws: WebSocket) -> None:
        peer = ws.remote_address
        client = f" client={ws.client_address}" if show_client else ""
        print(f"{tag}opened {peer} {ws.request.path}{client}", file=sys.stderr, flush=True)
        try:
            for message in ws:
                if mode == "broadcast":
                    for skipped in broadcast(holder[0].connections, message):
                        print(f"{tag}skipped {skipped.remote_address}: not reading", file=sys.stderr, flush=True)
                else:
                    ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            if not ws.closed:
                ws.close()
            print(f"{tag}closed {peer} code={ws.close_code} reason={ws.close_reason!r}", file=sys.stderr, flush=True)

    return handler


def raise_interrupt(signum: int, frame: Any) -> None:
    """A signal handler (for SIGTERM and Ctrl-Break) that stops a server as Ctrl-C does.

    Raises:
        KeyboardInterrupt: always.
    """
    raise KeyboardInterrupt


def stop_signals() -> List[int]:
    """The signals besides SIGINT (Ctrl-C) that stop a server on this platform: SIGTERM, and
    SIGBREAK (Ctrl-Break) where :mod:`signal` has it (Windows).

    Returns:
        Their numbers, SIGTERM first.
    """
    names = ("SIGTERM", "SIGBREAK")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


def stop_on_signals() -> List[int]:
    """Make every signal of :func:`stop_signals` stop this process as Ctrl-C does (a
    ``KeyboardInterrupt`` in the main thread), for ``serve`` and ``replay``.

    Returns:
        The signals whose handler was set.

    Raises:
        ValueError: not called from the main thread (from :func:`signal.signal`).
    """
    handled = stop_signals()
    for signum in handled:
        signal.signal(signum, raise_interrupt)
    return handled


def _server_context(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.certfile, args.keyfile)
        except OSError as exc:  # ssl.SSLError too
            files = f"--certfile {args.certfile!r}" + (f" or --keyfile {args.keyfile!r}" if args.keyfile else "")
            raise ValueError(f"cannot load {files}: {reason_of(exc)}") from None
        return context
    if args.keyfile:
        raise ValueError("--keyfile needs --certfile")
    return None


def _build_server(args: argparse.Namespace, host: str, port: int, *, reuse_port: bool = False,
                  tag: str = "") -> WebSocketServer:
    """The server ``serve`` runs, in this process or in each worker."""
    holder: List[WebSocketServer] = []
    handler = _server_handler(args.mode, holder, tag=tag, show_client=bool(args.trusted_proxy))
    server = ws_serve(handler, host, port, ssl_context=_server_context(args),
                      compression=None if args.no_compression else "deflate",
                      trusted_proxies=args.trusted_proxy or None, reuse_port=reuse_port)
    holder.append(server)
    return server


def _worker_server(args: argparse.Namespace, host: str, port: int) -> WebSocketServer:
    """A worker's server (runs in the worker process): shares the port, tags its lines."""
    return _build_server(args, host, port, reuse_port=True, tag=f"[pid {os.getpid()}] ")


def _uri(args: argparse.Namespace, host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{'wss' if args.certfile else 'ws'}://{host}:{port}/"


def serve(args: argparse.Namespace) -> int:
    """The ``serve`` subcommand: an echo or broadcast server until Ctrl-C (or SIGTERM, or
    Ctrl-Break on Windows: :func:`stop_on_signals`).

    With ``--workers N`` (N > 1), N processes share the port (see :mod:`wsclient.workers`).

    Args:
        args: the parsed arguments (see ``python -m wsclient serve --help``).

    Returns:
        The exit status.
    """
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    try:
        host, port = parse_address(args.address)
        _server_context(args)
        parse_trusted(args.trusted_proxy)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {args.workers}")
        if args.workers > 1 and args.mode == "broadcast":
            raise ValueError("--broadcast reaches the clients of one process only: use one worker "
                             "(or relay messages between processes, as docs/deployment.rst shows)")
    except (ValueError, OSError) as exc:
        print(f"wsclient: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.workers > 1:
        return _serve_workers(args, host, port)
    try:
        server = _build_server(args, host, port)
    except OSError as exc:
        print(f"wsclient: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    stop_on_signals()
    print(server.uri, flush=True)
    print(f"serving ({args.mode}) on {server.uri}; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("shutting down", file=sys.stderr, flush=True)
    finally:
        server.shutdown(timeout=5)
        server.server_close()
    return EXIT_OK


def _serve_workers(args: argparse.Namespace, host: str, port: int) -> int:
    """``serve --workers N``: a supervisor (this process) and N workers on one port."""

    def ready(bound: int, pids: List[int]) -> None:
        uri = _uri(args, host, bound)
        print(f"serving ({args.mode}) on {uri} with {len(pids)} workers "
              f"(pids {' '.join(map(str, pids))}); Ctrl-C to stop", file=sys.stderr, flush=True)
        print(uri, flush=True)  # Last: whoever reads it finds the pids on stderr already.

    if not logging.getLogger().handlers:  # The supervisor's notices: worker deaths, restarts.
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="wsclient: %(message)s")
    try:
        status = run_workers(functools.partial(_worker_server, args), host, port,
                             workers=args.workers, on_ready=ready)
    except (ValueError, OSError) as exc:
        print(f"wsclient: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print("shut down" if status == 0 else "stopped after a failure", file=sys.stderr, flush=True)
    return EXIT_OK if status == 0 else EXIT_FAILED
