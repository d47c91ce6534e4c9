"""The ``connect`` subcommand: turn its options into a connection, run it as a pipe or
interactively (:mod:`wsclient.cli_interactive`), and turn how it ended into an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
from typing import IO, Any, Callable, List, Optional, Tuple, TypeVar

from .cli_interactive import interactive
from .cli_pipe import pipe
from .cli_session import Session, trace_logger
from .cli_show import Formatter, Palette, reason_of, wants_colour
from .cli_status import EXIT_FAILED, EXIT_USAGE, Connection, interrupted, shorten_close
from .client import connect as ws_connect
from .connection import WebSocket
from .exceptions import InvalidStatus, InvalidURI
from .reconnecting import logger as reconnecting_logger
from .recording import Recorder
from .tls import client_ssl_context
from .uri import redact

__all__ = ["connect", "MAX_BODY_SHOWN"]

T = TypeVar("T")

#: Characters of a rejected handshake's body (a 401's explanation) shown on stderr.
MAX_BODY_SHOWN = 2000


def _ssl_context(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    """The context --insecure, --cafile, --cert/--key and --system-trust ask for (None: the default).

    Raises:
        ValueError: an option that cannot be used, the message naming it.
    """
    if args.key and not args.cert:
        raise ValueError("--key goes with --cert (the client certificate), which is missing")
    if args.insecure:
        # Deliberately unverified, and only on request (--insecure): a fresh context,
        # never a default one changed behind the user's back.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if args.cert:
            _load(lambda: context.load_cert_chain(args.cert, args.key), args)
        return context
    if not (args.cafile or args.cert or args.system_trust):
        return None
    return _load(lambda: client_ssl_context(cafile=args.cafile, certfile=args.cert, keyfile=args.key,
                                            system_trust=args.system_trust), args)


def _load(build: Callable[[], T], args: argparse.Namespace) -> T:
    """``build()``, its failures to read a file turned into a ValueError naming the option."""
    try:
        return build()
    except ModuleNotFoundError:
        raise ValueError('--system-trust needs the truststore package: pip install "wsclient-sync[truststore]"') from None
    except OSError as exc:  # ssl.SSLError too
        options = [("--cafile", args.cafile), ("--cert", args.cert), ("--key", args.key)]
        named = [f"{option} {value!r}" for option, value in options if value and value == exc.filename]
        if not named:  # A certificate and key that do not match, say: name both.
            named = [f"{option} {value!r}" for option, value in options if value]
        raise ValueError(f"cannot load {' or '.join(named)}: {reason_of(exc)}") from None


def _headers(values: List[str]) -> List[Tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"a header is NAME:VALUE, not {value!r}")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def _setup_logging(verbose: int) -> None:
    """``-v``: this command's frame trace on stderr; ``-vv``: the library's debug log too."""
    if not verbose:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    trace_logger.addHandler(handler)
    trace_logger.setLevel(logging.DEBUG)
    trace_logger.propagate = False
    if verbose > 1:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(threadName)s %(name)s %(message)s")


def _show_reconnects() -> None:
    """``--reconnect``: each drop, delay and reconnection on stderr (the library's INFO lines)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("wsclient: %(message)s"))
    reconnecting_logger.addHandler(handler)
    if reconnecting_logger.getEffectiveLevel() > logging.INFO:
        reconnecting_logger.setLevel(logging.INFO)
    reconnecting_logger.propagate = False


def _rejected(exc: InvalidStatus, uri: str) -> None:
    """A non-101 answer: the status, then its body (a 401 or 403 usually says why)."""
    print(f"wsclient: cannot connect to {redact(uri)}: {exc}", file=sys.stderr)
    body = exc.response.body or b""
    if body:
        text = body.decode("utf-8", "replace").strip()
        if len(text) > MAX_BODY_SHOWN:
            text = text[:MAX_BODY_SHOWN] + f"... ({len(body)} bytes in all)"
        print("wsclient: the server said:", file=sys.stderr)
        for line in text.splitlines():
            print(f"  {line}", file=sys.stderr)


def _open(args: argparse.Namespace) -> Any:
    """The open connection, or an exit status when it could not be opened."""
    try:
        headers = _headers(args.header)
        context = _ssl_context(args)
    except ValueError as exc:
        print(f"wsclient: invalid argument: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.reconnect:
            return ws_connect(
                args.uri, timeout=args.timeout, headers=headers, subprotocols=args.subprotocol or None,
                origin=args.origin, proxy=args.proxy, ssl_context=context,
                compression=None if args.no_compression else "deflate",
                ping_interval=args.ping_interval or None, ping_timeout=args.ping_timeout or None,
                reconnect=True,
            )
        return ws_connect(
            args.uri, timeout=args.timeout, headers=headers, subprotocols=args.subprotocol or None,
            origin=args.origin, proxy=args.proxy, ssl_context=context,
            compression=None if args.no_compression else "deflate",
            ping_interval=None,  # The session sends its own keepalive pings (traced, timed).
        )
    except KeyboardInterrupt:
        return interrupted()
    except InvalidURI as exc:
        print(f"wsclient: invalid URI: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidStatus as exc:
        _rejected(exc, args.uri)
        return EXIT_FAILED
    except OSError as exc:  # WebSocketError and TimeoutError are OSErrors.
        print(f"wsclient: cannot connect to {redact(args.uri)}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, TypeError) as exc:  # Refused before any traffic: misuse, not failure.
        print(f"wsclient: invalid argument: {exc}", file=sys.stderr)
        return EXIT_USAGE


def connect(args: argparse.Namespace) -> int:
    """The ``connect`` subcommand: open a connection, then run it interactively or as a pipe.

    Args:
        args: the parsed arguments (see ``python -m wsclient connect --help``).

    Returns:
        The exit status (see :mod:`wsclient.cli_status`).
    """
    _setup_logging(args.verbose)
    if args.reconnect:
        if args.record:
            print("wsclient: invalid argument: --record records one connection; it does not go with --reconnect",
                  file=sys.stderr)
            return EXIT_USAGE
        _show_reconnects()
    record: Optional[IO[str]] = None
    if args.record:
        try:
            record = open(args.record, "w", encoding="utf-8")
        except OSError as exc:
            print(f"wsclient: cannot write --record {args.record!r}: {reason_of(exc)}", file=sys.stderr)
            return EXIT_USAGE
    try:
        opened = _open(args)
        if isinstance(opened, int):
            if record is not None:  # Nothing to record: leave no empty, unreadable file.
                record.close()
                os.unlink(args.record)
            return opened
        return _run(args, opened, record)
    finally:
        if record is not None:
            record.close()


def _run(args: argparse.Namespace, ws: Connection, record: Optional[IO[str]]) -> int:
    recorder = Recorder(record, uri=args.uri, subprotocol=ws.subprotocol) if record is not None else None
    terminal = sys.stdin.isatty() and args.recv is None
    palette = Palette(wants_colour(sys.stdout if terminal else sys.stderr))
    formatter = Formatter(binary_format=args.binary_format, pretty_json=args.json)
    # The session sends the keepalive pings itself (traced, timed), but with --reconnect
    # each connection keeps the library's own, whose timeout drops that connection only.
    session = Session(ws, recorder=recorder, keepalive=None if args.reconnect else args.ping_interval or None,
                      ping_timeout=args.ping_timeout or None)
    try:
        if terminal:
            return interactive(session, formatter=formatter, palette=palette,
                               show_pings=args.show_ping_pong, uri=args.uri)
        return pipe(session, formatter=formatter, palette=palette, show_pings=args.show_ping_pong,
                    recv=args.recv, timeout=args.timeout, idle=args.idle)
    except KeyboardInterrupt:  # Ctrl-C while sending, waiting or closing
        shorten_close(ws)
        try:
            session.close(1001)  # Traced and recorded; while closing already, a bounded wait.
        except (KeyboardInterrupt, OSError):  # A second Ctrl-C stops the wait.
            pass
        return interrupted(ws)
    finally:
        session.finish()
        if recorder is not None:
            recorder.end()
