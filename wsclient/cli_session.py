"""One command-line connection seen frame by frame: every message, ping, pong and close it sends
or receives goes through a :class:`Session`, which traces it (``-v``), records it
(``--record``) and reports ping round trips (``-P``).

The command line sends its own keepalive pings (the library's are turned off) so that they
are traced, recorded and timed like the rest. Pings from the peer, and the pongs the
library answers them with by itself, are not seen here.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional, Union

from .close import serialize_close
from .cli_status import Connection
from .connection import WebSocket
from .exceptions import ConnectionClosed
from .recording import Recorder, describe_payload

__all__ = ["Session", "trace_logger"]

#: The trace of ``-v``: one DEBUG line per frame, the same form both ways.
trace_logger = logging.getLogger("wsclient.cli")

#: ``on_pong(round_trip_seconds_or_None, keepalive)``: a pong arrived (or not in time).
PongCallback = Callable[[Optional[float], bool], None]


class Session:
    """A connection as the command line drives it.

    Args:
        ws: the open connection (opened with ``ping_interval=None`` when ``keepalive`` is
            set), or a reconnecting one.
        recorder: where to record every event, or ``None``.
        keepalive: seconds between keepalive pings, or ``None`` for none.
        ping_timeout: seconds a pong may take before the connection is closed with 1011.
        on_pong: called after each ping (``/ping`` or keepalive) with its round trip.
    """

    def __init__(self, ws: Connection, *, recorder: Optional[Recorder] = None, keepalive: Optional[float] = None,
                 ping_timeout: Optional[float] = 20.0, on_pong: Optional[PongCallback] = None) -> None:
        self.ws = ws
        self.recorder = recorder
        self.ping_timeout = ping_timeout
        self.on_pong = on_pong
        self._ended = threading.Event()
        self._close_recorded = False  # The end of the connection is recorded.
        self._client_closed = False  # Our close frame is recorded.
        self._lock = threading.Lock()
        self._pings = 0
        self._keepalive: Optional[threading.Thread] = None
        if keepalive:
            self._keepalive = threading.Thread(target=self._keep_alive, args=(keepalive,),
                                               name="wsclient-keepalive", daemon=True)
            self._keepalive.start()

    def _trace(self, arrow: str, what: str) -> None:
        if trace_logger.isEnabledFor(logging.DEBUG):
            trace_logger.debug("%s %s", arrow, what)

    def send(self, message: Union[str, bytes]) -> None:
        """Send a message (traced and recorded before it goes out).

        Args:
            message: text or bytes.

        Raises:
            ConnectionClosed: the connection is closed.
        """
        self._trace(">", describe_payload("text" if isinstance(message, str) else "binary", message))
        if self.recorder is not None and not self.ws.closed:
            self.recorder.message("client", message)
        self.ws.send(message)

    def recv(self) -> Union[str, bytes]:
        """The next message (traced and recorded); at the end, the peer's close is traced and
        recorded once.

        Returns:
            The message.

        Raises:
            ConnectionClosed: the connection has closed.
        """
        try:
            message = self.ws.recv()
        except ConnectionClosed:
            self._record_close("server")
            raise
        self._trace("<", describe_payload("text" if isinstance(message, str) else "binary", message))
        if self.recorder is not None:
            self.recorder.message("server", message)
        return message

    def ping(self, data: bytes = b"", *, keepalive: bool = False) -> Optional[float]:
        """Send a ping and wait (at most ``ping_timeout``) for its pong.

        Args:
            data: the payload (at most 125 bytes).
            keepalive: a keepalive ping (shown as such).

        Returns:
            The round trip in seconds, or None when no pong came in time.

        Raises:
            ConnectionClosed: the connection is closed.
            ValueError: the payload is too long.
        """
        self._trace(">", describe_payload("ping", data) + (" (keepalive)" if keepalive else ""))
        if self.recorder is not None:
            self.recorder.control("client", "ping", data)
        start = time.perf_counter()
        answered = self.ws.ping(data).wait(self.ping_timeout)
        rtt = time.perf_counter() - start if answered else None
        if rtt is not None:
            self._trace("<", describe_payload("pong", data) + f" after {rtt * 1000:.2f} ms")
            if self.recorder is not None:
                self.recorder.control("server", "pong", data)
        if self.on_pong is not None:
            self.on_pong(rtt, keepalive)
        return rtt

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close (traced and recorded before the close frame goes out); the peer's answer is
        recorded by :meth:`recv` or :meth:`finish`.

        Args:
            code: the close code.
            reason: the close reason.

        Raises:
            ValueError: an invalid code or reason (nothing is sent or recorded).
        """
        serialize_close(code, reason)  # Validate first: a refused code never went out.
        with self._lock:
            first = not self.ws.closed and not self._client_closed and not self._close_recorded
            self._client_closed = True
        if first:
            self._trace(">", f"close {code}" + (f" {reason!r}" if reason else ""))
            if self.recorder is not None:
                self.recorder.close("client", code, reason)
        self.ws.close(code, reason)

    def _record_close(self, sender: str) -> None:
        """Trace and record how the connection ended, once."""
        with self._lock:
            if self._close_recorded:
                return
            self._close_recorded = True
            echo = not self._client_closed
            self._client_closed = True
        self._ended.set()
        code = self.ws.close_code or 1006
        reason = self.ws.close_reason or ""
        self._trace("<", f"close {code}" + (f" {reason!r}" if reason else ""))
        if self.recorder is not None:
            self.recorder.close(sender, code, reason)
        if echo and code != 1006:  # The library answered the peer's close frame with its code.
            self._trace(">", f"close {code} (answer)")
            if self.recorder is not None:
                self.recorder.close("client", code, "")

    def finish(self) -> None:
        """The connection has closed: stop the keepalive (a daemon thread, not waited for:
        it may still wait for a pong that will not come), record the peer's close if
        :meth:`recv` has not."""
        self._ended.set()
        if self.ws.closed:
            self._record_close("server")

    def _keep_alive(self, interval: float) -> None:
        """Ping every ``interval`` seconds; no pong within ``ping_timeout``: close with 1011."""
        counter = 0
        while not self._ended.wait(interval) and not self.ws.closed:
            counter += 1
            try:
                rtt = self.ping(counter.to_bytes(8, "big"), keepalive=True)
            except (ConnectionClosed, OSError):
                return
            if rtt is None and not self.ws.closed:
                self._trace("!", "no pong: closing with 1011")
                try:
                    self.close(1011, "keepalive ping timeout")
                except OSError:
                    pass
                return


class Receiver(threading.Thread):
    """Receives every message of a session until the connection closes, handing each to
    ``on_message``; optionally stops after ``limit`` messages.

    Args:
        session: the session.
        on_message: called (in this thread) with each message.
        limit: stop after this many messages, or ``None``.
        on_stop: called (in this thread) once it stops, for whatever reason.
    """

    def __init__(self, session: Session, on_message: Callable[[Union[str, bytes]], None], *,
                 limit: Optional[int] = None, on_stop: Optional[Callable[[], None]] = None) -> None:
        super().__init__(name="wsclient-receiver", daemon=True)
        self.session = session
        self.on_message = on_message
        self.limit = limit
        self.on_stop = on_stop
        self.count = 0
        self.reached = threading.Event()
        self.activity = threading.Event()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            while True:
                message = self.session.recv()
                self.on_message(message)
                self.count += 1
                self.activity.set()
                if self.limit is not None and self.count >= self.limit:
                    return
        except BaseException as exc:  # ConnectionClosed at the end; others reported by the caller.
            self.error = exc
        finally:
            self.reached.set()
            if self.on_stop is not None:
                self.on_stop()

    def close_and_wait(self) -> None:
        """Close the connection normally (if still open) and wait, bounded, for the end."""
        ws = self.session.ws
        if not ws.closed:
            self.session.close()
        close_timeout = ws.close_timeout if isinstance(ws, WebSocket) else None
        self.join(max(5.0, (close_timeout or 10.0) + 1))
        self.session.finish()
