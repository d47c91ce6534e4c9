"""The ``replay`` subcommand: serve the server's side of a recording (:mod:`wsclient.replay`)
to every client that connects, reporting each session's match or mismatch on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from .cli_serve import parse_address, stop_on_signals
from .cli_show import Palette, reason_of, wants_colour
from .cli_status import EXIT_FAILED, EXIT_MISMATCH, EXIT_OK, EXIT_USAGE
from .recording import RecordingError, read
from .replay import ReplayMismatch, ReplayServer

__all__ = ["replay"]

#: Seconds between two looks for a pending Ctrl-C while ``--once`` waits for its session.
_WAKE_INTERVAL = 0.5


def replay(args: argparse.Namespace) -> int:
    """The ``replay`` subcommand.

    Args:
        args: the parsed arguments (see ``python -m wsclient replay --help``).

    Returns:
        The exit status: 0 when every session matched, 3 after a mismatch (see
        :mod:`wsclient.cli_status`).
    """
    palette = Palette(wants_colour(sys.stderr))
    try:
        host, port = parse_address(args.address)
        recording = read(args.file)
    except RecordingError as exc:
        print(f"wsclient: cannot replay {args.file!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"wsclient: cannot read {args.file!r}: {reason_of(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # Not an address.
        print(f"wsclient: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def report(session: int, mismatch: Optional[ReplayMismatch]) -> None:
        if mismatch is None:
            print(palette.paint("info", f"session {session}: played to the end, every client message matched"),
                  file=sys.stderr, flush=True)
        else:
            print(palette.paint("error", f"wsclient: {mismatch}"), file=sys.stderr, flush=True)

    try:
        server = ReplayServer(recording, host, port, fast=args.fast, compare=not args.any_client_messages,
                              timeout=args.timeout, on_session=report)
    except OSError as exc:
        print(f"wsclient: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    stop_on_signals()
    print(server.uri, flush=True)
    events = len(recording.events)
    print(f"replaying {args.file} ({events} events{', fast' if args.fast else ''}) on {server.uri}; "
          f"{'one session' if args.once else 'Ctrl-C to stop'}", file=sys.stderr, flush=True)
    try:
        if args.once:
            server.start()
            # Bounded waits: Python acts on Ctrl-C between two, where it does not interrupt
            # a lock's wait (Windows).
            while not server.wait_finished(1, timeout=_WAKE_INTERVAL):
                pass
        else:
            server.serve_forever()  # Sessions come and go until Ctrl-C, SIGTERM or Ctrl-Break.
    except KeyboardInterrupt:
        print("shutting down", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return EXIT_MISMATCH if server.mismatches else EXIT_OK
