"""The command line's exit statuses, as one documented table, and what Ctrl-C does to a connection.

The table is printed in ``python -m wsclient --help`` and in README.rst, and tested.
"""

from __future__ import annotations

import sys
from typing import List, Optional, Tuple, Union

from .connection import WebSocket
from .reconnecting import ReconnectingWebSocket

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_MISMATCH", "EXIT_INTERRUPTED", "EXIT_STATUSES",
           "NORMAL_CLOSE_CODES", "Connection", "shorten_close", "exit_table", "interrupted", "describe_close", "status_after_close", "INTERRUPT_CLOSE_TIMEOUT"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISMATCH = 3
#: As shells report a process killed by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130

#: Every exit status and what it means, in the order of the documented table.
EXIT_STATUSES: List[Tuple[int, str]] = [
    (EXIT_OK, "success: the connection closed normally (1000, 1001, or a close frame without "
              "a code, 1005); demo: every message came back; serve and replay: stopped by "
              "Ctrl-C, SIGTERM or (Windows) Ctrl-Break with no replay mismatch"),
    (EXIT_FAILED, "failure: the connection or its handshake failed (the reason, and the body of "
                  "a 401 or 403 answer, on stderr), a timeout, or any other close code"),
    (EXIT_USAGE, "bad arguments or a file that cannot be used (a recording, a certificate)"),
    (EXIT_MISMATCH, "replay: a client's messages differed from the recording"),
    (EXIT_INTERRUPTED, "connect, demo: interrupted by Ctrl-C (an open connection is closed with 1001)"),
]

#: What ``connect`` works with: a connection, or one that reconnects (``--reconnect``).
Connection = Union[WebSocket, ReconnectingWebSocket]

#: Close codes after which ``connect`` exits with :data:`EXIT_OK`.
NORMAL_CLOSE_CODES = (1000, 1001, 1005)

#: Seconds an interrupted command still waits for the peer to answer its 1001 close frame.
INTERRUPT_CLOSE_TIMEOUT = 2.0


def exit_table(indent: str = "  ") -> str:
    """The exit statuses as plain text, one per line (long meanings wrapped).

    Args:
        indent: put before each line.

    Returns:
        The table, ending with a newline.
    """
    lines = []
    for status, meaning in EXIT_STATUSES:
        words, line = meaning.split(), f"{indent}{status:<5}"
        for word in words:
            if len(line) + 1 + len(word) > 88:
                lines.append(line)
                line = indent + " " * 5 + word
            else:
                line += (" " if not line.endswith(" ") else "") + word
        lines.append(line)
    return "\n".join(lines) + "\n"


def describe_close(ws: Connection) -> str:
    """``connection closed with code N (reason)``.

    Args:
        ws: a closed connection.

    Returns:
        The phrase.
    """
    reason = f" ({ws.close_reason})" if ws.close_reason else ""
    return f"connection closed with code {ws.close_code}{reason}"


def status_after_close(ws: Connection) -> int:
    """The exit status for how a connection ended.

    Args:
        ws: a closed connection.

    Returns:
        :data:`EXIT_OK` for a code in :data:`NORMAL_CLOSE_CODES`, else :data:`EXIT_FAILED`.
    """
    return EXIT_OK if ws.close_code in NORMAL_CLOSE_CODES else EXIT_FAILED


def shorten_close(ws: Connection) -> None:
    """After Ctrl-C: wait at most :data:`INTERRUPT_CLOSE_TIMEOUT` seconds for the peer's close frame.

    Args:
        ws: the connection (for a reconnecting one, its current connection, if any).
    """
    current = ws.connection if isinstance(ws, ReconnectingWebSocket) else ws
    if current is not None:
        current.close_timeout = min(current.close_timeout or INTERRUPT_CLOSE_TIMEOUT, INTERRUPT_CLOSE_TIMEOUT)


def interrupted(ws: Optional[Connection] = None) -> int:
    """After Ctrl-C: one line on stderr, and an open connection closed with 1001 (going away).

    The close waits at most :data:`INTERRUPT_CLOSE_TIMEOUT` seconds for the peer, and a
    second Ctrl-C stops that wait.

    Args:
        ws: the connection, if one was opened.

    Returns:
        :data:`EXIT_INTERRUPTED`.
    """
    print("wsclient: interrupted", file=sys.stderr, flush=True)
    if ws is not None and not ws.closed:
        shorten_close(ws)
        try:
            ws.close(1001)  # While closing already, this only waits (bounded) for the end.
        except (KeyboardInterrupt, OSError):
            pass
    return EXIT_INTERRUPTED
