"""Replaying a recording: a server that plays the server's side of a recorded session.

Every client that connects gets the whole recording (:mod:`wsclient.recording`): the server
waits for each message the client sent in the recording, in order, and compares it
exactly (unless ``compare=False``); it sends each message, ping and close the server sent,
keeping the recorded gap after the event before it (or at once with ``fast=True``). A
difference is a *mismatch*: it is kept in :attr:`ReplayServer.mismatches`, passed to
``on_mismatch``, and the client's connection is closed with 1008 (policy violation) and a
reason naming the recording's line. Used by ``python -m wsclient replay`` and the pytest
fixture ``ws_replay_server``.

What cannot be replayed as such: pings from the client and the pongs answering them (the
server answers the client's pings by itself), and pongs from the server.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, List, Optional, Union

from .connection import WebSocket
from .exceptions import ConnectionClosed
from .recording import Event, Recording, describe_payload, read
from .server import WebSocketServer, serve

__all__ = ["ReplayMismatch", "ReplayServer", "DEFAULT_REPLAY_TIMEOUT"]

#: Seconds the replay waits for each message the client should send.
DEFAULT_REPLAY_TIMEOUT = 30.0

#: The close code a mismatch ends the client's connection with.
MISMATCH_CLOSE_CODE = 1008


class ReplayMismatch(AssertionError):
    """What a client sent differs from the recording (an ``AssertionError``, for test harnesses).

    Attributes:
        session: the number of the connection (1 for the first).
        line: the recording's line that was expected.
        expected: what the recording says (``text 'hello'``, ``close 1000``).
        got: what the client did instead.
    """

    def __init__(self, session: int, line: int, expected: str, got: str) -> None:
        self.session = session
        self.line = line
        self.expected = expected
        self.got = got
        super().__init__(f"replay mismatch in session {session} at recording line {line}: "
                         f"expected the client to send {expected}, got {got}")


class ReplayServer:
    """A server on ``host:port`` playing the server's side of a recording to each client.

    Args:
        recording: a :class:`~wsclient.recording.Recording` or the path of a recording file.
        host: the address to bind.
        port: the port; 0 picks a free one.
        fast: send the server's messages at once instead of with their recorded timing.
        compare: compare the client's messages with the recorded ones; with ``False`` any
            message is accepted where the recording has one.
        timeout: seconds to wait for each message the client should send.
        on_mismatch: called (in the connection's thread) with each :class:`ReplayMismatch`.
        on_session: called with the session number and ``None`` when a session played to
            its end, or the mismatch.
        **options: further options of :func:`wsclient.serve` (``ssl_context``,
            ``compression``...); ``subprotocols`` defaults to the recorded subprotocol.

    Raises:
        RecordingError: the file is not a recording.
        OSError: the file cannot be read, or the address cannot be bound.
    """

    def __init__(self, recording: Union[Recording, str, "os.PathLike[str]"], host: str = "127.0.0.1", port: int = 0, *,
                 fast: bool = False, compare: bool = True, timeout: float = DEFAULT_REPLAY_TIMEOUT,
                 on_mismatch: Optional[Callable[[ReplayMismatch], None]] = None,
                 on_session: Optional[Callable[[int, Optional[ReplayMismatch]], None]] = None,
                 **options: Any) -> None:
        self.recording = recording if isinstance(recording, Recording) else read(recording)
        self.fast = fast
        self.compare = compare
        self.timeout = timeout
        self.on_mismatch = on_mismatch
        self.on_session = on_session
        #: Every mismatch so far, in the order they happened.
        self.mismatches: List[ReplayMismatch] = []
        #: Sessions played to their end (matched or not).
        self.finished = 0
        self._sessions = 0
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        if self.recording.subprotocol is not None:
            options.setdefault("subprotocols", [self.recording.subprotocol])
        self.server: WebSocketServer = serve(self._play, host, port, **options)
        self._thread: Optional[threading.Thread] = None

    @property
    def uri(self) -> str:
        """The ``ws://`` (or ``wss://``) URI to connect to."""
        return self.server.uri

    @property
    def port(self) -> Optional[int]:
        """The bound port."""
        return self.server.port

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (from another thread)."""
        self.server.serve_forever()

    def start(self) -> "ReplayServer":
        """Serve in a background thread.

        Returns:
            The server itself.

        Raises:
            RuntimeError: it did not start serving within 10 s.
        """
        self._thread = threading.Thread(target=self.serve_forever, name="ws-replay-server", daemon=True)
        self._thread.start()
        if not self.server.wait_serving(10.0):
            raise RuntimeError("the replay server did not start serving")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, end the sessions in progress (their waits are cut short) and
        release the port.

        Args:
            timeout: seconds to wait for the server's threads.
        """
        self._stopping.set()
        self.server.shutdown(timeout=timeout)
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_finished(self, count: int = 1, timeout: Optional[float] = None) -> bool:
        """Wait until ``count`` sessions have played to their end.

        Args:
            count: how many sessions.
            timeout: seconds; ``None`` waits as long as it takes.

        Returns:
            True when they have, False on timeout.
        """
        with self._lock:
            return self._lock.wait_for(lambda: self.finished >= count, timeout)

    def check(self) -> None:
        """Raise the first mismatch seen so far, if any.

        Raises:
            ReplayMismatch: a client's messages differed from the recording.
        """
        if self.mismatches:
            raise self.mismatches[0]

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- one session ----------------------------------------------------------------------

    def _play(self, ws: WebSocket) -> None:
        with self._lock:
            self._sessions += 1
            session = self._sessions
        mismatch: Optional[ReplayMismatch] = None
        try:
            mismatch = self._play_events(ws, session)
        finally:
            if mismatch is not None:
                with self._lock:
                    self.mismatches.append(mismatch)
                if self.on_mismatch is not None:
                    self.on_mismatch(mismatch)
                if not ws.closed:
                    ws.close(MISMATCH_CLOSE_CODE, f"replay mismatch at recording line {mismatch.line}")
            if self.on_session is not None:
                self.on_session(session, mismatch)
            with self._lock:
                self.finished += 1
                self._lock.notify_all()

    def _play_events(self, ws: WebSocket, session: int) -> Optional[ReplayMismatch]:
        """Play the recording to one client; the mismatch, or None when it played to its end."""
        anchor_real, anchor_recorded = time.monotonic(), 0.0
        for event in self.recording.events:
            if self._stopping.is_set():
                return None
            if event.sender == "client":
                if event.type in ("text", "binary"):
                    mismatch = self._expect_message(ws, session, event)
                elif event.type == "close":
                    return self._expect_close(ws, session, event)
                else:  # Pings are answered by the server itself; pongs are not observable.
                    continue
                if mismatch is not None:
                    return mismatch
            else:
                if not self.fast:
                    delay = anchor_real + (event.time - anchor_recorded) - time.monotonic()
                    if delay > 0 and self._stopping.wait(delay):
                        return None
                try:
                    if event.type in ("text", "binary"):
                        assert event.data is not None
                        ws.send(event.data)
                    elif event.type == "ping":
                        ws.ping(event.data or b"")
                    elif event.type == "close":
                        self._close(ws, event)
                        return None
                except ConnectionClosed as exc:
                    return ReplayMismatch(session, event.line, "nothing more (the connection to stay open)",
                                          f"a close ({exc.code}) before the server's {event.describe()}")
            anchor_real, anchor_recorded = time.monotonic(), event.time
        return None  # The handler returning closes the connection with 1000.

    def _expect_message(self, ws: WebSocket, session: int, event: Event) -> Optional[ReplayMismatch]:
        expected = event.describe()
        try:
            got = ws.recv(timeout=self.timeout)
        except TimeoutError:
            return ReplayMismatch(session, event.line, expected, f"nothing within {self.timeout:g} s")
        except ConnectionClosed as exc:
            if self._stopping.is_set():  # stop() ended the session: not the client's doing.
                return None
            return ReplayMismatch(session, event.line, expected, f"a close ({exc.code})")
        if isinstance(got, str) != isinstance(event.data, str) or (self.compare and got != event.data):
            return ReplayMismatch(session, event.line, expected,
                                  describe_payload("text" if isinstance(got, str) else "binary", got))
        return None

    def _expect_close(self, ws: WebSocket, session: int, event: Event) -> Optional[ReplayMismatch]:
        expected = event.describe()
        try:
            got = ws.recv(timeout=self.timeout)
        except TimeoutError:
            return ReplayMismatch(session, event.line, expected, f"nothing within {self.timeout:g} s")
        except ConnectionClosed:
            code = ws.close_code
            if self.compare and code != event.code:
                return ReplayMismatch(session, event.line, expected, f"close {code}")
            return None
        return ReplayMismatch(session, event.line, expected,
                              describe_payload("text" if isinstance(got, str) else "binary", got))

    def _close(self, ws: WebSocket, event: Event) -> None:
        if event.code == 1006:  # The connection ended without a close frame: end it so.
            ws.abort()
        else:
            assert event.code is not None
            ws.close(event.code, event.reason if event.code != 1005 else "")
