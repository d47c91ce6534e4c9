"""ReconnectingWebSocket: one connection object that survives drops.

A :class:`ReconnectingWebSocket` stands for a series of :class:`~wsclient.WebSocket`
connections to one server, opened one after another by a ``dial`` callable (one plain
``connect()``) as each drops, with the delays and the policy of a
:class:`~wsclient.Backoff`. Under it, a :class:`Redialer` makes the attempts; the
iterator form, :func:`connections`, yields each new connection instead.

What crosses a drop, honestly:

* Received messages: every message the old connection received before it dropped is
  still returned by ``recv()``, in order, before any message of the next connection.
* Sent messages: a ``send()`` made while disconnected is queued (bounded in bytes:
  ``max_buffer``) and goes out, in order, on the next connection, after ``on_connect``.
  A ``send()`` that fails because the connection dropped under it is queued again, first.
  A message that ``send()`` handed to the operating system before the drop may still be
  lost: the socket had accepted it, the peer never read it, and nothing at this level
  can know. Protocols that cannot lose a message acknowledge them end to end.
* Messages still queued when ``close()`` is called are discarded (and logged).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Set, Tuple, Union

from .backoff import Attempts, Backoff
from .close import CloseCode, serialize_close
from .connection import Message, WebSocket, drain_messages, receive_until
from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from .options import check_count
from .protocol import OK_CLOSE_CODES
from .sockio import deadline_after

__all__ = ["ReconnectingWebSocket", "Redialer", "connections", "closed_error", "DEFAULT_MAX_BUFFER"]

logger = logging.getLogger(__name__)

#: Bytes of messages ``send()`` queues while disconnected (1 MiB); past it ``send()``
#: waits (bounded by its ``timeout``) for the next connection to take them. A single
#: message larger than the bound is still queued when nothing else is.
DEFAULT_MAX_BUFFER = 2**20

Dial = Callable[[], WebSocket]
OnConnect = Callable[[WebSocket], Any]


def closed_error(ws: WebSocket) -> ConnectionClosed:
    """The :class:`~wsclient.ConnectionClosed` that describes how ``ws`` ended.

    Args:
        ws: a closed connection.

    Returns:
        ``ConnectionClosedOK`` for 1000, 1001 and 1005, else ``ConnectionClosedError``, with
        the connection's close code (1006 where no close frame went either way) and reason.
    """
    code = ws.close_code if ws.close_code is not None else CloseCode.ABNORMAL_CLOSURE
    cls = ConnectionClosedOK if code in OK_CLOSE_CODES else ConnectionClosedError
    return cls(code, ws.close_reason or "")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _left(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class Redialer:
    """Opens connection after connection with ``dial``, as a :class:`~wsclient.Backoff` says.

    Args:
        dial: opens one connection (one plain ``connect()``); its exceptions are the
            failures the backoff's ``retry`` policy judges.
        backoff: the delays, the attempt limit and the policy.
        name: what the log lines call the server (a URI without its password).

    Attributes:
        reconnects: connections opened after the first one.
        last_error: why the last attempt failed or the last connection ended, or None.
    """

    def __init__(self, dial: Dial, backoff: Backoff, *, name: str) -> None:
        self._dial = dial
        self._retry = backoff.retry
        self._attempts: Attempts = backoff.start()
        self._stop = threading.Event()
        self._opened = 0
        self.name = name
        self.reconnects = 0
        self.last_error: Optional[BaseException] = None

    def stop(self) -> None:
        """Make :meth:`open` return None at once, also during a backoff wait (any thread)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def open(self, error: Optional[BaseException] = None) -> Optional[WebSocket]:
        """Open the next connection, retrying failures the policy calls transient.

        Args:
            error: why the previous connection ended (from :meth:`dropped`), or None for
                the first connection.

        Returns:
            The open connection, or None once :meth:`stop` was called.

        Raises:
            The final error: ``error`` or an attempt's exception when the policy calls it
            final, or the last one when ``max_attempts`` attempts have failed in a row.
        """
        while True:
            if error is not None:
                self.last_error = error
                if not self._retry(error):
                    logger.warning("%s: giving up: %s is final", self.name, _describe(error))
                    raise error
            delay = self._attempts.next_delay(error)
            if delay is None:
                assert error is not None  # max_attempts >= 1: the first attempt is always made
                logger.warning("%s: giving up after %d attempts: %s", self.name, self._attempts.count,
                               _describe(error))
                raise error
            if delay > 0:
                logger.info("%s: attempt %d in %.3f s (after %s)", self.name, self._attempts.count, delay,
                            _describe(error) if error is not None else "nothing")
                if self._stop.wait(delay):
                    return None
            if self._stop.is_set():
                return None
            logger.debug("%s: attempt %d", self.name, self._attempts.count)
            try:
                ws = self._dial()
            except Exception as exc:
                error = self.last_error = exc
                logger.info("%s: attempt %d failed: %s", self.name, self._attempts.count, _describe(exc))
                continue
            if self._stop.is_set():
                ws.close()
                return None
            self._attempts.opened()
            self._opened += 1
            if self._opened > 1:
                self.reconnects += 1
                logger.info("%s: reconnected (attempt %d, reconnect %d)", self.name, self._attempts.count,
                            self.reconnects)
            return ws

    def dropped(self, ws: WebSocket, error: Optional[BaseException] = None) -> BaseException:
        """Record that ``ws`` (the connection :meth:`open` returned last) has ended.

        Args:
            ws: the connection.
            error: what ended it, if not its close (an ``on_connect`` that raised).

        Returns:
            The error to pass to the next :meth:`open`: ``error``, or the connection's
            :func:`closed_error`.
        """
        healthy = self._attempts.closed()
        if error is None:
            error = closed_error(ws)
        self.last_error = error
        logger.info("%s: connection dropped: %s%s", self.name, _describe(error),
                    "" if healthy else " (before it counted as healthy)")
        return error


def connections(redialer: Redialer) -> Iterator[WebSocket]:
    """Yield a new open connection each time the previous one has ended.

    When the consumer asks for the next connection, the previous one is closed (with 1000)
    if it is still open, and how it ended goes through the policy. The iteration stops by
    raising the final error (a 403, a close code the policy calls final, the last error
    after ``max_attempts``); ``break`` out of the loop to stop without one.

    Args:
        redialer: makes the attempts.

    Yields:
        Each open :class:`~wsclient.WebSocket`.

    Raises:
        The final error, as :meth:`Redialer.open`.
    """
    error: Optional[BaseException] = None
    while True:
        ws = redialer.open(error)
        if ws is None:
            return
        yield ws
        if not ws.closed:
            ws.close()
        error = redialer.dropped(ws)


class _Queued:
    """A message waiting for the next connection: a copy, and its size in bytes.

    Checked now as ``WebSocket.send()`` would check it (type, UTF-8), so a message that
    could never be sent fails the caller's ``send()``, not the reconnection.
    """

    __slots__ = ("message", "compress", "size")

    def __init__(self, message: Any, compress: Optional[bool]) -> None:
        self.compress = compress
        if isinstance(message, str):
            self.message: Any = message
            self.size = len(message.encode("utf-8"))  # UnicodeEncodeError: a lone surrogate
            return
        try:  # A copy: the caller may reuse its buffer once send() returns.
            self.message = memoryview(message).tobytes()
            self.size = len(self.message)
            return
        except TypeError:
            if not isinstance(message, Iterable) or isinstance(message, Mapping):
                raise TypeError(
                    f"a message is str, bytes-like or an iterable of them, not {type(message).__name__}"
                ) from None
        pieces: List[Any] = []
        self.size = 0
        for piece in message:
            if isinstance(piece, str):
                self.size += len(piece.encode("utf-8"))
            else:
                try:
                    piece = memoryview(piece).tobytes()
                except TypeError:
                    raise TypeError(f"a fragment is str or bytes-like, not {type(piece).__name__}") from None
                self.size += len(piece)
            if pieces and isinstance(piece, str) != isinstance(pieces[0], str):
                raise TypeError("the fragments of one message are all str or all bytes-like")
            pieces.append(piece)
        self.message = pieces


def _one_shot(message: Any) -> bool:
    """Whether ``message`` is an iterator that a failed send may have consumed in part."""
    return isinstance(message, Iterator)


class ReconnectingWebSocket:
    """A WebSocket connection that comes back after drops.

    Not built directly: ``wsclient.connect(uri, reconnect=True)`` (or
    ``reconnect=Backoff(...)``) returns one, once the first connection is open. It has the
    methods of :class:`~wsclient.WebSocket`; ``send()`` and ``recv()`` keep working across
    drops, and :func:`wsclient.wait` works on it. A background thread notices a drop at
    once, waits as the backoff says, reconnects, runs ``on_connect(ws)`` with the new
    :class:`~wsclient.WebSocket` (log in again, subscribe again), sends what was queued
    meanwhile, and only then lets ``send()`` and ``recv()`` use the new connection.

    It gives up only on what the backoff's ``retry`` policy calls final, after
    ``max_attempts`` failed attempts in a row, or after :meth:`close`; then ``recv()``
    (once the messages already received are returned) and ``send()`` raise the final error:
    a :class:`~wsclient.ConnectionClosed` or the opening error (``InvalidStatus`` for a
    403...).

    Args:
        dial: opens one connection: a plain ``connect()``, evaluating per attempt a URI or
            headers given as callables.
        backoff: delays, attempt limit and retry policy.
        on_connect: called with each new connection before anything queued is sent: first
            in the thread that builds this object, then in the reconnecting thread. If it
            raises, the connection is closed and the exception judged by the policy (a
            ``ConnectionClosed`` or another ``OSError`` is retried, a bug is final). It
            talks through the ``WebSocket`` it is given: this object's ``send()`` would
            queue behind it, and its ``recv()`` would wait for it to finish.
        name: what log lines call the server (never a password).
        max_buffer: bytes of messages queued while disconnected
            (:data:`~wsclient.reconnecting.DEFAULT_MAX_BUFFER`); None: unbounded.

    Raises:
        TypeError: a ``dial`` or ``on_connect`` that is not callable, a ``backoff`` that is
            not a :class:`~wsclient.Backoff`, a ``max_buffer`` that is not an int.
        ValueError: a ``max_buffer`` below 1.

    The first connection's final error is raised too, as ``connect()`` raises it.
    """

    def __init__(
        self,
        dial: Dial,
        backoff: Backoff,
        *,
        on_connect: Optional[OnConnect] = None,
        name: str = "",
        max_buffer: Optional[int] = DEFAULT_MAX_BUFFER,
    ) -> None:
        if not callable(dial):
            raise TypeError("dial must be callable")
        if on_connect is not None and not callable(on_connect):
            raise TypeError(f"on_connect must be callable or None, not {type(on_connect).__name__}")
        if not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a wsclient.Backoff, not {type(backoff).__name__}")
        check_count("max_buffer", max_buffer)
        self.name = name
        self.max_buffer = max_buffer
        self._redialer = Redialer(dial, backoff, name=name)
        self._on_connect = on_connect
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ws: Optional[WebSocket] = None  # Open and taking sends; None while reconnecting.
        self._last: Optional[WebSocket] = None  # The latest connection, whatever its state.
        self._inbox: Deque[Message] = collections.deque()  # Received before a drop.
        self._outbox: Deque[_Queued] = collections.deque()
        self._outbox_bytes = 0
        self._ready: Set[threading.Event] = set()
        self._closing = False  # close() was called.
        self._closed_ws: Optional[WebSocket] = None  # The connection open when it was.
        self._close_status: Tuple[int, str] = (int(CloseCode.NORMAL_CLOSURE), "")
        self._final: Optional[BaseException] = None
        self._wake = threading.Event()  # The reconnecting thread: the connection changed.
        ws = self._establish(None)
        assert ws is not None  # Nobody can call close() before the object exists.
        self._thread = threading.Thread(target=self._run, args=(ws,), name="wsclient-reconnect", daemon=True)
        self._thread.start()

    # -- the current connection's face ---------------------------------------------------

    @property
    def connection(self) -> Optional[WebSocket]:
        """The open connection now, or None while reconnecting (or once closed)."""
        return self._ws

    @property
    def reconnects(self) -> int:
        """How many times a new connection was opened after the first."""
        return self._redialer.reconnects

    @property
    def last_error(self) -> Optional[BaseException]:
        """Why the last connection dropped or the last attempt failed; None if neither
        happened yet."""
        return self._redialer.last_error

    @property
    def closed(self) -> bool:
        """Whether it is over (:meth:`close` was called or the policy gave up)."""
        return self._closing or self._final is not None

    @property
    def subprotocol(self) -> Optional[str]:
        """The latest connection's negotiated subprotocol, or None."""
        return self._latest().subprotocol

    @property
    def request(self) -> Any:
        """The latest connection's opening request (``.path``, ``.headers``)."""
        return self._latest().request

    @property
    def response(self) -> Any:
        """The latest connection's opening response (``.status``, ``.headers``)."""
        return self._latest().response

    @property
    def local_address(self) -> Any:
        """The latest connection's local socket address."""
        return self._latest().local_address

    @property
    def remote_address(self) -> Any:
        """The latest connection's peer address."""
        return self._latest().remote_address

    @property
    def close_code(self) -> Optional[int]:
        """Once :attr:`closed`: the code that ended it (the final drop's; after
        :meth:`close`, the connection's, or the code given to ``close()`` if it came
        while reconnecting; 1006 when the end was an opening error). Else None."""
        status = self._end_status()
        return None if status is None else status[0]

    @property
    def close_reason(self) -> Optional[str]:
        """The reason that goes with :attr:`close_code`, once closed; else None."""
        status = self._end_status()
        return None if status is None else status[1]

    def _end_status(self) -> Optional[Tuple[int, str]]:
        final = self._final
        if isinstance(final, ConnectionClosed):
            return final.code, final.reason
        if final is not None:
            return int(CloseCode.ABNORMAL_CLOSURE), ""
        if not self._closing:
            return None
        ws = self._closed_ws
        if ws is not None and ws.close_code is not None:
            return ws.close_code, ws.close_reason or ""
        return self._close_status

    def _latest(self) -> WebSocket:
        last = self._last
        assert last is not None  # Set before the constructor returns.
        return last

    def __enter__(self) -> "ReconnectingWebSocket":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[Message]:
        """Yield messages across drops until :meth:`close` or a normal final close; a
        final error raises."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open" if self._ws is not None else "reconnecting"
        return f"<wsclient.ReconnectingWebSocket {state} {self.name} reconnects={self.reconnects}>"

    # -- receiving -------------------------------------------------------------------------

    def recv(self, timeout: Optional[float] = None) -> Message:
        """Receive the next message, across drops.

        Args:
            timeout: seconds to wait, reconnections included; None waits as long as it
                takes; 0 returns a message only if one is ready.

        Returns:
            ``str`` for a text message, ``bytes`` for a binary one; the messages a
            connection received before it dropped come first.

        Raises:
            TimeoutError: no message within ``timeout``; nothing is lost.
            ConnectionClosedOK: after :meth:`close`, once every message received was
                returned.
            ConnectionClosed, InvalidStatus, OSError...: the final error, once the policy
                gave up and every message received was returned.
        """
        deadline = deadline_after(timeout)
        while True:
            with self._cond:
                while True:
                    if self._inbox:
                        return self._inbox.popleft()
                    ws = self._ws
                    if ws is not None:
                        break
                    if self._final is not None:
                        raise self._final.with_traceback(None)  # One instance, raised afresh each time.
                    if self._closing:
                        ws = self._closed_ws  # Its remaining messages, then its close.
                        if ws is None:
                            raise ConnectionClosedOK(CloseCode.NORMAL_CLOSURE, "")
                        break
                    if not self._wait(deadline):
                        raise TimeoutError("no message received within the timeout")
            try:
                return ws.recv(_left(deadline))
            except ConnectionClosed:
                with self._cond:
                    if self._closing and self._final is None:
                        raise
                    # Dropped: the reconnecting thread takes over; wait for what comes next.
                    while self._ws is ws and self._final is None and not self._closing:
                        if not self._wait(deadline):
                            raise TimeoutError("no message received within the timeout") from None

    def _wait(self, deadline: Optional[float]) -> bool:
        """Wait on the condition (held) until notified or ``deadline``; False if it passed."""
        left = _left(deadline)
        if left is not None and left <= 0:
            return False
        self._cond.wait(left)
        return True

    def recv_json(self, timeout: Optional[float] = None) -> Any:
        """Receive the next message and decode it as JSON.

        Raises:
            ValueError: the message is not valid JSON (``json.JSONDecodeError``).
            TimeoutError, ConnectionClosed: as :meth:`recv`.
        """
        return json.loads(self.recv(timeout))

    def recv_until(
        self,
        predicate: Callable[[Message], bool],
        timeout: Optional[float] = None,
        *,
        skipped: Optional[List[Message]] = None,
    ) -> Message:
        """Receive until a message matches ``predicate``, as :meth:`wsclient.WebSocket.recv_until`.

        Args:
            predicate: called with each message; the first for which it is true is returned.
            timeout: seconds for the whole wait; None waits without limit.
            skipped: a list to which the non-matching messages are appended.

        Returns:
            The matching message.

        Raises:
            TimeoutError: nothing matched in time.
            ConnectionClosed: as :meth:`recv`.
        """
        return receive_until(self.recv, predicate, timeout, skipped)

    def drain(self) -> List[Message]:
        """Return every message already received, without waiting; [] if none."""
        # OSError: also the final opening error (the next recv() raises it).
        return drain_messages(self.recv, (TimeoutError, OSError))

    # -- sending ---------------------------------------------------------------------------

    def send(
        self,
        message: Union[str, bytes, bytearray, memoryview, Iterable[Any]],
        timeout: Optional[float] = None,
        *,
        compress: Optional[bool] = None,
    ) -> None:
        """Send a message now, or queue it for the next connection while disconnected.

        Args:
            message: as :meth:`wsclient.WebSocket.send`. An iterable of pieces is read
                whole when it has to be queued.
            timeout: seconds to wait for room in the queue (``max_buffer``) or for a peer
                that stops reading.
            compress: as :meth:`wsclient.WebSocket.send`.

        Raises:
            TimeoutError: no room in the queue, or the peer did not read, within
                ``timeout``; the message was not sent (see :meth:`wsclient.WebSocket.send`
                for a send cut part-way, which also drops that connection).
            ConnectionClosed: after :meth:`close` (``ConnectionClosedOK``), or the final
                error once the policy gave up; also when an iterator given as ``message``
                was in part consumed by a connection that dropped.
            TypeError: a message of another type.
        """
        deadline = deadline_after(timeout)
        item: Optional[_Queued] = None
        while True:
            with self._cond:
                ws = self._usable()
                while ws is None:
                    if item is None:
                        item = _Queued(message, compress)  # Reads an iterable whole.
                    if self.max_buffer is None or not self._outbox or self._outbox_bytes + item.size <= self.max_buffer:
                        self._outbox.append(item)
                        self._outbox_bytes += item.size
                        return
                    if not self._wait(deadline):
                        raise TimeoutError("the send buffer stayed full past the timeout; the message was not sent")
                    ws = self._usable()  # The connection may be back: then send directly.
            if item is not None:
                message = item.message
            try:
                ws.send(message, _left(deadline), compress=compress)
                return
            except ConnectionClosed:
                if _one_shot(message):
                    raise
                with self._cond:
                    if self._closing or self._final is not None:
                        raise
                    if self._ws is ws or self._ws is None:
                        # The next connection sends it first, after on_connect.
                        item = item or _Queued(message, compress)
                        self._outbox.appendleft(item)
                        self._outbox_bytes += item.size
                        return
                    # A newer connection is already open: send it there.

    def _usable(self) -> Optional[WebSocket]:
        """The connection to send on directly, or None to queue (hold the lock).

        Raises:
            The final error, or ``ConnectionClosedOK`` after close().
        """
        if self._final is not None:
            raise self._final.with_traceback(None)  # One instance, raised afresh each time.
        if self._closing:
            raise ConnectionClosedOK(CloseCode.NORMAL_CLOSURE, "")
        if self._outbox:
            return None  # Behind what is queued.
        return self._ws

    def ping(self, data: Union[str, bytes] = b"") -> threading.Event:
        """Send a ping on the current connection.

        Returns:
            An event set when the matching pong arrives.

        Raises:
            ConnectionClosedError: reconnecting now (code 1006), or the connection dropped.
            ConnectionClosed: after :meth:`close` or once the policy gave up.
            TypeError, ValueError: as :meth:`wsclient.WebSocket.ping`.
        """
        return self._current().ping(data)

    def pong(self, data: Union[str, bytes] = b"") -> None:
        """Send an unsolicited pong on the current connection.

        Raises:
            As :meth:`ping`.
        """
        self._current().pong(data)

    def _current(self) -> WebSocket:
        with self._lock:
            if self._final is not None:
                raise self._final.with_traceback(None)  # One instance, raised afresh each time.
            if self._closing:
                raise ConnectionClosedOK(CloseCode.NORMAL_CLOSURE, "")
            ws = self._ws
        if ws is None:
            raise ConnectionClosedError(CloseCode.ABNORMAL_CLOSURE, "reconnecting")
        return ws

    # -- closing ---------------------------------------------------------------------------

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Stop reconnecting and close the current connection (its closing handshake).

        Idempotent and callable from any thread; returns at once during a backoff wait; a
        thread blocked in ``recv()`` or ``send()`` wakes (``ConnectionClosedOK``, after the
        messages already received). Messages still queued for sending are discarded.

        Args:
            code, reason: as :meth:`wsclient.WebSocket.close`.

        Raises:
            TypeError, ValueError: an invalid close code or reason.
        """
        serialize_close(code, reason)
        with self._cond:
            if not self._closing:
                self._closed_ws = self._ws
                self._close_status = (int(code), reason)
            self._closing = True
            ws = self._last
            if self._outbox:
                logger.info("%s: closed with %d queued message(s) unsent", self.name, len(self._outbox))
                self._outbox.clear()
                self._outbox_bytes = 0
            self._notify()
        self._redialer.stop()
        self._wake.set()
        if ws is not None:
            ws.close(code, reason)

    # -- the package's internal API for wsclient.wait() -------------------------------------

    @property
    def ready(self) -> bool:
        """True when :meth:`recv` would not block: a message is ready, or it is over (for
        :func:`wsclient.wait`)."""
        with self._lock:
            if self._inbox or self._closing or self._final is not None:
                return True
            ws = self._ws
        return ws is not None and ws.ready and not ws.closed

    def add_ready_event(self, event: threading.Event) -> None:
        """Set ``event`` whenever a message is queued, a connection changes or it ends,
        until :meth:`discard_ready_event` (for :func:`wsclient.wait`)."""
        with self._lock:
            self._ready.add(event)
            if self._ws is not None:
                self._ws.add_ready_event(event)

    def discard_ready_event(self, event: threading.Event) -> None:
        """Stop setting ``event`` (see :meth:`add_ready_event`)."""
        with self._lock:
            self._ready.discard(event)
            if self._ws is not None:
                self._ws.discard_ready_event(event)

    def _notify(self) -> None:
        """The state changed (hold the lock): wake waiters and wait() callers."""
        self._cond.notify_all()
        for event in self._ready:
            event.set()

    # -- the reconnecting thread -------------------------------------------------------------

    def _run(self, ws: Optional[WebSocket]) -> None:
        """Watch each connection; when it drops, reconnect (until close() or final)."""
        try:
            while ws is not None:
                self._watch(ws)
                error = self._retire(ws)
                if error is None:
                    return
                ws = self._establish(error)
        except BaseException as exc:  # The final error (or a bug): recv() and send() raise it.
            with self._cond:
                if not self._closing:
                    self._final = exc
                self._outbox.clear()
                self._outbox_bytes = 0
                self._notify()
            if not isinstance(exc, Exception):
                raise

    def _watch(self, ws: WebSocket) -> None:
        """Return once ``ws`` has closed, or close() was called."""
        wake = self._wake
        ws.add_ready_event(wake)  # Set on every message and on the close.
        try:
            while not ws.closed and not self._closing:
                wake.wait()
                wake.clear()
        finally:
            ws.discard_ready_event(wake)

    def _retire(self, ws: WebSocket) -> Optional[BaseException]:
        """``ws`` has dropped: keep what it received, and say why it ended (None after
        close(), whose connection keeps its messages for recv())."""
        messages = ws.drain() if not self._closing else []
        with self._cond:
            if self._closing:
                return None
            self._inbox.extend(messages)
            if self._ws is ws:
                self._ws = None
            for event in self._ready:
                ws.discard_ready_event(event)
            self._notify()
        return self._redialer.dropped(ws)

    def _establish(self, error: Optional[BaseException]) -> Optional[WebSocket]:
        """Open the next connection, run on_connect, send what was queued, and publish it.

        Returns:
            The published connection, or None after close().

        Raises:
            The final error.
        """
        while True:
            ws = self._redialer.open(error)
            if ws is None:
                return None
            with self._cond:
                if self._closing:
                    ws.close()
                    return None
                self._last = ws
            try:
                if self._on_connect is not None:
                    self._on_connect(ws)
                if self._flush(ws):
                    return ws
            except Exception as exc:
                if not ws.closed:
                    # on_connect failed on an open connection: it is the reason, not the close.
                    ws.close(CloseCode.INTERNAL_ERROR if not isinstance(exc, OSError) else CloseCode.NORMAL_CLOSURE)
                    error = self._redialer.dropped(ws, exc)
                    continue
            if self._closing:
                return None
            error = self._redialer.dropped(ws)

    def _flush(self, ws: WebSocket) -> bool:
        """Send what was queued, in order, then publish ``ws``; False if it dropped first.

        Raises:
            ConnectionClosed: from sending, when ``ws`` dropped.
        """
        while True:
            with self._cond:
                if self._closing:
                    return False
                if not self._outbox:
                    self._ws = ws
                    for event in self._ready:
                        ws.add_ready_event(event)
                    self._notify()
                    return True
                item = self._outbox[0]
            ws.send(item.message, compress=item.compress)
            with self._cond:
                if self._outbox and self._outbox[0] is item:
                    self._outbox.popleft()
                    self._outbox_bytes -= item.size
                    self._cond.notify_all()  # Room for senders waiting on max_buffer.
