"""The command line's arguments: the ``wsclient`` parser with its subcommands (demo, connect,
serve, replay), ``--version``, and the dispatch to the module that runs each subcommand
(:mod:`wsclient.cli_demo`, :mod:`wsclient.cli_connect`, :mod:`wsclient.cli_serve`,
:mod:`wsclient.cli_replay`). ``python -m wsclient`` and the ``wsclient`` command run :func:`main`.
"""

from __future__ import annotations

import argparse
import math
from typing import List, Optional

from . import __version__
from .cli_connect import connect
from .cli_interactive import HELP, history_path
from .cli_demo import demo
from .cli_replay import replay
from .cli_serve import serve
from .cli_show import BINARY_FORMATS
from .cli_status import exit_table, interrupted
from .replay import DEFAULT_REPLAY_TIMEOUT

__all__ = ["main", "build_parser"]

_DESCRIPTION = """\
A WebSocket client and server from the command line.

examples:
  python -m wsclient demo
  python -m wsclient connect ws://127.0.0.1:8765/
  echo hello | python -m wsclient connect ws://127.0.0.1:8765/
  python -m wsclient serve 8765
  python -m wsclient connect wss://example.com/feed --record feed.jsonl
  python -m wsclient replay feed.jsonl 127.0.0.1:8765
"""

_CONNECT_EPILOG = """\
interactive mode (stdin is a terminal): type a line to send it as a text message;
{help}
  History is kept across sessions in {history}.

pipe mode (stdin is not a terminal, or --recv N): each line of stdin is sent as a text
message and each message received is printed as one line on stdout (newlines in a text
message as \\n; binary messages as "[binary N bytes] HEX"). At end of input, once no message
has arrived for --idle seconds, the connection is closed normally; every message that
arrives before the peer's close frame is still printed. The client exits as soon as the
peer closes, or the N-th message of --recv N arrives, even while stdin stays open.

Colours are used on a terminal unless NO_COLOR is set. -v traces every frame both ways on
stderr (keepalive pings included); -vv adds the library's debug log.

--record FILE writes every message, ping, pong and close, both ways, with its time, as JSON
Lines (the format is documented and stable; see README); replay it with
"python -m wsclient replay FILE".

examples:
  echo '{{"op": "subscribe"}}' | python -m wsclient connect wss://example.com/feed --recv 5
  python -m wsclient connect ws://127.0.0.1:8765/ -H "Authorization: Bearer T" -v
  python -m wsclient connect wss://localhost:8443/ --cafile ca.pem
  python -m wsclient connect ws://127.0.0.1:8765/ --json -P --record session.jsonl
"""

_REPLAY_EPILOG = """\
Every client that connects gets the whole recording: the server waits for each message the
client sent in it, in order, and compares it exactly (any message is accepted with
--any-client-messages); it sends the server's messages, pings and close with their recorded
timing (at once with --fast). A difference is reported on stderr, naming the recording's
line, and the client's connection is closed with 1008. The first line on stdout is the
server's URI (handy with port 0).

examples:
  python -m wsclient replay session.jsonl 8765
  python -m wsclient replay session.jsonl 127.0.0.1:0 --fast --once
"""

_EXIT_EPILOG = """\
exit status:
{table}"""

_SERVE_EPILOG = """\
The first line on stdout is the server's URI (handy with port 0); a line per connection
(opened, closed with its code) goes to stderr. Ctrl-C shuts down cleanly: open
connections are closed with 1001.

examples:
  python -m wsclient serve 8765
  python -m wsclient serve 127.0.0.1:0 --broadcast
  python -m wsclient serve [::1]:8443 --certfile cert.pem --keyfile key.pem
  python -m wsclient serve 127.0.0.1:8765 --workers 4 --trusted-proxy 127.0.0.1

With --workers N, this process supervises N worker processes on one port (port 0 picks one
port for all); Ctrl-C or SIGTERM stops them all; a worker that crashes is replaced.
"""


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, 0 or more, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``wsclient`` argument parser, with its subcommands.

    Returns:
        The parser.
    """
    raw = argparse.RawDescriptionHelpFormatter
    exits = _EXIT_EPILOG.format(table=exit_table())
    parser = argparse.ArgumentParser(prog="wsclient", description=_DESCRIPTION, epilog=exits, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"wsclient {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo_parser = commands.add_parser(
        "demo", help="echo messages over loopback and print the round-trip time",
        description="Start an echo server on 127.0.0.1, connect a client, exchange messages "
        "(text, binary, 1 MiB, fragmented, a ping) and print the median round-trip time. "
        "Needs no network.\n\nexample:\n  python -m wsclient demo", epilog=exits, formatter_class=raw)
    demo_parser.add_argument("--rounds", type=int, default=100, help="round trips to time (default 100)")
    help_lines = HELP.replace("%", "%%")
    epilog = _CONNECT_EPILOG.format(help=help_lines, history=history_path()) + "\n" + exits
    _add_connect(commands.add_parser(
        "connect", help="an interactive or piped client", description="Connect to a WebSocket server.",
        epilog=epilog, formatter_class=raw))
    _add_serve(commands.add_parser(
        "serve", help="an echo or broadcast server", description="Run a WebSocket server.",
        epilog=_SERVE_EPILOG + "\n" + exits, formatter_class=raw))
    _add_replay(commands.add_parser(
        "replay", help="serve the server's side of a recording (connect --record)",
        description="Replay a recording made with connect --record: a server that plays its server side.",
        epilog=_REPLAY_EPILOG + "\n" + exits, formatter_class=raw))
    return parser


def _add_connect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uri", help="ws:// or wss:// URI")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="NAME:VALUE",
                        help="an extra request header (repeatable)")
    parser.add_argument("--subprotocol", action="append", default=[], metavar="NAME",
                        help="offer this subprotocol (repeatable, in order of preference)")
    parser.add_argument("--origin", help="the Origin header")
    proxy = parser.add_mutually_exclusive_group()
    proxy.add_argument("--proxy", default="auto", metavar="URL",
                       help="http://, https://, socks4://, socks4a://, socks5:// or socks5h:// "
                       "proxy (default: auto, from ws_proxy/http_proxy/... and no_proxy)")
    proxy.add_argument("--no-proxy", dest="proxy", action="store_const", const=None,
                       help="connect directly, ignoring proxy environment variables")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--cafile", metavar="FILE", help="trust the CA certificates in FILE (PEM) for wss://")
    tls.add_argument("--system-trust", action="store_true",
                     help="trust the operating system's certificate store (needs the truststore "
                     "package: pip install \"wsclient-sync[truststore]\")")
    tls.add_argument("--insecure", action="store_true",
                     help="INSECURE: do not verify the server's certificate or host name "
                     "(anyone on the path can read and change the traffic); for testing only")
    parser.add_argument("--cert", metavar="FILE",
                        help="present this client certificate (PEM; with its key unless --key) "
                        "to a server that asks for one (mutual TLS)")
    parser.add_argument("--key", metavar="FILE", help="the client certificate's private key (PEM)")
    parser.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    parser.add_argument("--ping-interval", type=_seconds, default=20.0, metavar="SECONDS",
                        help="keepalive ping interval (default 20; 0 disables)")
    parser.add_argument("--reconnect", action="store_true",
                        help="come back after drops: reconnect with exponential backoff and jitter "
                        "until Ctrl-C, Ctrl-D or a final error (a 403, a 4xxx close...); lines typed "
                        "meanwhile go out after the reconnect; each drop and attempt on stderr")
    parser.add_argument("--recv", type=_count, metavar="N",
                        help="exit (closing normally) after receiving N messages; "
                        "end of input then does not close the connection")
    parser.add_argument("--timeout", type=_seconds, default=10.0, metavar="SECONDS",
                        help="bound on opening the connection and, in pipe mode, on waiting "
                        "for messages after the end of input (default 10)")
    parser.add_argument("--idle", type=_seconds, default=0.5, metavar="SECONDS",
                        help="pipe mode: at end of input, wait until no message has arrived for "
                        "SECONDS (bounded by --timeout) before closing, so the peer can answer "
                        "the last lines (default 0.5; 0 closes at once)")
    parser.add_argument("--ping-timeout", type=_seconds, default=20.0, metavar="SECONDS",
                        help="close with 1011 when a keepalive pong takes longer (default 20; 0: wait forever)")
    show = parser.add_argument_group("showing messages")
    show.add_argument("--binary-format", choices=BINARY_FORMATS, default="hex",
                      help="show binary messages (and read /binary) as hex (default) or base64")
    show.add_argument("--json", action="store_true",
                      help="pretty-print text messages that are JSON, indented over several lines")
    show.add_argument("-P", "--show-ping-pong", action="store_true",
                      help="show keepalive pings and the round trip to their pongs")
    show.add_argument("-v", "--verbose", action="count", default=0,
                      help="trace every frame both ways on stderr; -vv adds the library's debug log")
    parser.add_argument("--record", metavar="FILE",
                        help="write every frame both ways, with its time, to FILE (JSON Lines; see README)")


def _add_replay(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a recording made with connect --record")
    parser.add_argument("address", metavar="[HOST:]PORT",
                        help="where to listen (HOST defaults to 127.0.0.1; PORT 0 picks a free port)")
    parser.add_argument("--fast", action="store_true", help="send the server's messages at once, not with their recorded timing")
    parser.add_argument("--once", action="store_true", help="exit after one session (status 0 if it matched, 3 if not)")
    parser.add_argument("--any-client-messages", action="store_true",
                        help="accept any message where the recording has one from the client (no comparison)")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_REPLAY_TIMEOUT, metavar="SECONDS",
                        help=f"how long to wait for each message from the client (default {DEFAULT_REPLAY_TIMEOUT:g})")


def _add_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="[HOST:]PORT",
                        help="where to listen (HOST defaults to 127.0.0.1; PORT 0 picks a free port)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--echo", dest="mode", action="store_const", const="echo",
                      help="send every message back to its sender (default)")
    mode.add_argument("--broadcast", dest="mode", action="store_const", const="broadcast",
                      help="send every message to every connected client")
    parser.set_defaults(mode="echo")
    parser.add_argument("--certfile", metavar="FILE", help="TLS certificate chain (PEM): serve wss://")
    parser.add_argument("--keyfile", metavar="FILE", help="the certificate's private key (PEM)")
    parser.add_argument("--no-compression", action="store_true", help="do not accept permessage-deflate")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="run N processes sharing the port (SO_REUSEPORT; default 1); each "
                        "connection line is then tagged with its worker's pid")
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                        help="believe X-Forwarded-For from this proxy address or CIDR network "
                        "(repeatable; 'unix' for a unix socket peer); lines then show client=")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the frame trace on stderr")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments (without the program name); None reads ``sys.argv``.

    Returns:
        The exit status (the table is :data:`wsclient.cli_status.EXIT_STATUSES`).
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            return demo(rounds=args.rounds)
        if args.command == "connect":
            return connect(args)
        if args.command == "replay":
            return replay(args)
        return serve(args)
    except KeyboardInterrupt:  # Ctrl-C anywhere the command itself does not handle it
        return interrupted()
