"""``connect`` as a pipe (stdin not a terminal, or ``--recv N``): one line of standard input
out as one text message, each message in printed as one line (see :class:`wsclient.cli_show.Formatter`).

It sends until the end of input, the N-th message (``--recv N``) or the peer's close,
whichever comes first: standard input left open does not keep a finished connection waiting.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import Any, Optional, Union

from .cli_session import Receiver, Session
from .cli_show import Formatter, Palette
from .cli_status import EXIT_FAILED, describe_close, status_after_close
from .exceptions import ConnectionClosed

__all__ = ["pipe", "READ_AHEAD"]

#: Lines read ahead of the connection (the reader then waits for the sender).
READ_AHEAD = 64

#: Queue items besides lines: end of input, and the receiver has stopped.
_EOF, _STOPPED = object(), object()


def _read_stdin(events: "queue.Queue[Any]", room: threading.Semaphore) -> None:
    """Put each line of standard input (decoded, without its line end) on ``events``, then _EOF.

    Runs in a daemon thread, so that the main thread waits for input and for the receiver at
    once. It reads file descriptor 0 with ``os.read``, not through ``sys.stdin``: a daemon
    thread still blocked in ``sys.stdin`` holds its lock at interpreter shutdown.
    """
    encoding = getattr(sys.stdin, "encoding", None) or "utf-8"
    errors = getattr(sys.stdin, "errors", None) or "strict"
    buffered = b""
    try:
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            *lines, buffered = (buffered + chunk).split(b"\n")
            for line in lines:
                room.acquire()
                events.put(line.rstrip(b"\r").decode(encoding, errors))
        if buffered:
            events.put(buffered.rstrip(b"\r").decode(encoding, errors))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError.
        events.put(exc)
    events.put(_EOF)


def _quiet(receiver: Receiver, idle: float, timeout: Optional[float]) -> None:
    """Wait until no message has arrived for ``idle`` seconds (at most ``timeout`` in all)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not receiver.reached.is_set():
        receiver.activity.clear()
        wait = idle if deadline is None else min(idle, deadline - time.monotonic())
        if wait <= 0 or not receiver.activity.wait(wait):
            return


def pipe(session: Session, *, formatter: Formatter, palette: Palette, show_pings: bool,
         recv: Optional[int], timeout: Optional[float], idle: float) -> int:
    """Run the connection as a pipe until it ends.

    Args:
        session: the open connection.
        formatter: how messages are printed on stdout.
        palette: colours for stderr.
        show_pings: print keepalive pings and their round trips on stderr (``-P``).
        recv: stop after this many messages (``--recv N``), or ``None``.
        timeout: after the end of input, how long to wait for ``recv`` messages.
        idle: after the end of input, close once no message has come for this long.

    Returns:
        The exit status.
    """
    ws = session.ws

    def pong(rtt: Optional[float], keepalive: bool) -> None:
        if show_pings:
            text = f"ping: pong after {rtt * 1000:.2f} ms" if rtt is not None else "ping: no pong"
            print(palette.paint("control" if rtt is not None else "error", text), file=sys.stderr, flush=True)

    def show(message: Union[str, bytes]) -> None:
        print(formatter.format(message), flush=True)

    session.on_pong = pong
    events: "queue.Queue[Any]" = queue.Queue()
    room = threading.Semaphore(READ_AHEAD)
    receiver = Receiver(session, show, limit=recv, on_stop=lambda: events.put(_STOPPED))
    receiver.start()
    threading.Thread(target=_read_stdin, args=(events, room), name="wsclient-stdin", daemon=True).start()
    try:
        while True:
            event = events.get()
            if event is _STOPPED or event is _EOF:
                break
            if isinstance(event, Exception):
                print(palette.paint("error", f"wsclient: cannot read standard input: {event}"), file=sys.stderr)
                receiver.close_and_wait()
                return EXIT_FAILED
            room.release()
            session.send(event)
        if event is _EOF and recv is not None and not receiver.reached.wait(timeout):
            print(palette.paint("error", f"wsclient: timed out waiting for {recv} messages "
                                f"({receiver.count} received)"), file=sys.stderr)
            receiver.close_and_wait()
            return EXIT_FAILED
        if event is _EOF and recv is None and idle > 0:
            # A peer that answers messages (an echo server, an RPC endpoint) must get the
            # chance to answer the last lines before our close frame: once it has our close
            # frame it may not send anything more (RFC 6455 section 5.5.1).
            _quiet(receiver, idle, timeout)
    except ConnectionClosed:
        pass  # Reported below from the close code.
    receiver.close_and_wait()
    status = status_after_close(ws)
    if status != 0:
        print(palette.paint("error", f"wsclient: {describe_close(ws)}"), file=sys.stderr)
    return status
