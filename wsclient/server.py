"""WebSocketServer, serve() and broadcast(): a thread-per-connection server.

In the style of :mod:`socketserver`: ``serve_forever()`` runs the accept loop in the
caller's thread, ``shutdown()`` stops it from another thread, ``server_close()`` releases
the listening socket (:mod:`wsclient.listener`), and the server is a context manager.
Each client admitted (within ``max_connections``, unless shutting down) gets one thread,
which runs the TLS and opening handshakes (:mod:`wsclient.opening`, bounded by
``handshake_timeout``) and then ``handler(ws)``. Pings and closing handshakes of all
connections are handled by one watcher thread per server while handlers are busy, so a
server costs its handler threads plus two: the accept loop and the watcher; plus a third
when :data:`wsclient.gate.DIRECT` is set and more handlers than that wait for messages at
once: the gate, which bounds how many of them wake together.
"""

from __future__ import annotations

import logging
import math
import queue
import selectors
import socket
import ssl
import threading
import time
from typing import Any, Callable, Iterable, List, Optional, Sequence, Set, Tuple, Union

from .close import CloseCode
from .connection import WebSocket, connections_only
from .deflate import DeflateOptions
from .exceptions import ConnectionClosed
from .http11 import Request, Response
from .listener import Listener, ServerAddress, reuse_port_option, set_reuse_port
from .opening import DEFAULT_SERVER, Opener
from .options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_QUEUE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    ConnectionOptions,
    check_count,
)
from .protocol import DEFAULT_MAX_SIZE, PreparedMessage
from .routing import request_hook
from .sockio import deadline_after
from . import gate
from .gate import Gate
from .watcher import Watcher

__all__ = [
    "WebSocketServer", "serve", "broadcast", "reuse_port_option", "set_reuse_port", "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_HANDSHAKE_TIMEOUT", "DEFAULT_BACKLOG",
]

logger = logging.getLogger("wsclient")

#: Connections (handshaking or open) a server keeps at once; more get ``503`` at once.
DEFAULT_MAX_CONNECTIONS = 2048

#: Seconds a client has to finish the TLS and opening handshakes.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0

#: The listening socket's backlog.
DEFAULT_BACKLOG = 1024

#: Seconds ``shutdown()`` waits for closing handshakes and handler threads.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0

#: The share of ``shutdown()``'s bound kept for the handler threads: the closing handshakes
#: get the rest (8 of 10 s), then the connections still closing are cut, and their threads
#: (woken with ``ConnectionClosed``) end in the last fifth. Without it a handshake that
#: never completes used the whole bound and left its thread running after ``shutdown()``.
SHUTDOWN_THREAD_SHARE = 0.2

#: Descriptors a server keeps besides one per connection (the listening socket, the
#: watcher's and the stop signal's socket pairs, logging, the handler's own files).
DESCRIPTOR_MARGIN = 64

#: Seconds a connection's thread waits, once its connection is over, to serve the next
#: one instead of a new thread. Starting a thread (and waiting for it to run) took a
#: third of the accept loop's time per connection.
IDLE_THREAD_TIMEOUT = 5.0

Handler = Callable[[WebSocket], Any]


class WebSocketServer:
    """A WebSocket server running ``handler(ws)`` in a thread per connection.

    Args:
        server_address: ``(host, port)`` (``port=0`` picks a free port; an IPv6 host
            such as ``"::1"`` binds IPv6), or a ``str`` path for a unix domain socket.
        handler: called with each open :class:`~wsclient.WebSocket` in its own thread;
            when it returns the connection closes with 1000, when it raises with 1011
            (and the traceback is logged). A :func:`wsclient.route` router answers a
            path none of its templates matches ``404`` before any upgrade.
        ssl_context: a server-side TLS context, for ``wss://``.
        subprotocols: the subprotocols the server supports, in preference order.
        select_subprotocol: ``f(request, offered) -> str | None`` to choose instead.
        origins: accepted ``Origin`` values (``None`` in the list accepts requests
            without one); others get 403. None accepts any.
        process_request: ``f(request)`` returning None to go on with the upgrade, or a
            :class:`~wsclient.Response` or ``(status, headers, body)`` to send instead.
        process_response: ``f(request, response)`` called with the response decided
            for a request (the 101, an origin's 403, ``process_request``'s answer), which
            it may change in place; it returns None to send that one, or another
            response to send instead (a 101 must keep its negotiated headers).
        server_header: the ``Server`` header of those responses (wsclient's name and
            version by default); None sends none.
        compression: ``"deflate"`` (the server compresses with a 12-bit window and
            memLevel 5: :data:`wsclient.deflate.SERVER_WINDOW_BITS`), a
            :class:`~wsclient.DeflateOptions` taken as it is, or None.
        max_size, max_queue, ping_interval, ping_timeout, close_timeout: as for
            :func:`wsclient.connect`, for every connection.
        handshake_timeout: seconds a client has to finish the TLS and opening handshakes.
        max_connections: connections at once; beyond it clients get 503 (over TLS they
            are disconnected at once, as a 503 would need a TLS handshake first). None:
            unlimited.
        reuse_port: set ``SO_REUSEPORT`` so several processes can share the port (TCP
            only; each process binds the same explicit port).
        backlog: the listen backlog.
        trusted_proxies: addresses or CIDR networks (and ``"unix"`` for a unix socket
            peer) of reverse proxies whose ``X-Forwarded-For`` is believed: behind them
            ``ws.client_address`` is the right-most untrusted entry (see
            :mod:`wsclient.forwarded`). None (the default) ignores the header.

    Every connection the server opens has ``client_address``: the client's IP address as
    text, from ``X-Forwarded-For`` when the socket's peer is a trusted proxy, else the
    peer's own (None on a unix socket). ``remote_address`` stays the socket's peer.

    Raises:
        TypeError: an option of the wrong type (a handler that is not callable, a
            ``reuse_port`` that is not a bool, a subprotocol that is not a str...).
        ValueError: ``reuse_port=True`` where the platform has no ``SO_REUSEPORT`` (or on
            a unix socket); a ``trusted_proxies`` entry that is not an address or network;
            a size or a number of seconds out of range.
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        server_address: ServerAddress,
        handler: Handler,
        *,
        ssl_context: Optional[ssl.SSLContext] = None,
        subprotocols: Optional[Sequence[str]] = None,
        select_subprotocol: Optional[Callable[[Request, List[str]], Optional[str]]] = None,
        origins: Optional[Sequence[Optional[str]]] = None,
        process_request: Optional[Callable[[Request], Any]] = None,
        process_response: Optional[Callable[[Request, Response], Any]] = None,
        server_header: Optional[str] = DEFAULT_SERVER,
        compression: Union[str, DeflateOptions, None] = "deflate",
        max_size: Optional[int] = DEFAULT_MAX_SIZE,
        max_queue: Optional[int] = DEFAULT_MAX_QUEUE,
        ping_interval: Optional[float] = DEFAULT_PING_INTERVAL,
        ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT,
        close_timeout: Optional[float] = DEFAULT_CLOSE_TIMEOUT,
        handshake_timeout: Optional[float] = DEFAULT_HANDSHAKE_TIMEOUT,
        max_connections: Optional[int] = DEFAULT_MAX_CONNECTIONS,
        reuse_port: bool = False,
        backlog: int = DEFAULT_BACKLOG,
        trusted_proxies: Optional[Sequence[str]] = None,
    ) -> None:
        if not callable(handler):
            raise TypeError("handler must be callable")
        check_count("max_connections", max_connections)
        self._options = ConnectionOptions(max_size=max_size, max_queue=max_queue, ping_interval=ping_interval,
                                          ping_timeout=ping_timeout, close_timeout=close_timeout)
        self._watcher = Watcher("wsclient-server-watcher")
        self._gate = None if gate.DIRECT is None else Gate(name="wsclient-server-gate")
        self._opener = Opener(
            self._watcher, self._options, ssl_context=ssl_context, subprotocols=subprotocols,
            select_subprotocol=select_subprotocol, origins=origins,
            process_request=request_hook(handler, process_request), process_response=process_response,
            server_header=server_header, compression=compression, handshake_timeout=handshake_timeout,
            trusted_proxies=trusted_proxies, gate=self._gate,
        )
        self.handler = handler
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._threads: Set[threading.Thread] = set()  # Serving a connection, or idle.
        self._active = 0  # Connections being served (handshaking or open).
        self._idle = 0  # Idle threads no accepted connection has been promised to yet.
        self._handoff: "queue.SimpleQueue[Optional[Tuple[socket.socket, Any]]]" = queue.SimpleQueue()
        self._connections: Set[WebSocket] = set()
        self._stop_r, self._stop_w = socket.socketpair()
        self._serving = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._shutdown_requested = False
        self._shutdown_done = False  # shutdown() returned: serve_forever() may run again.
        self._stop_deadline: Optional[float] = None  # One bound for every stop, in all.
        self._closed = False
        if not isinstance(reuse_port, bool):
            raise TypeError(f"reuse_port must be a bool, not {type(reuse_port).__name__}")
        self._listener = Listener(server_address, reuse_port=reuse_port, backlog=backlog,
                                  tls=ssl_context is not None)
        raise_descriptor_limit(max_connections)
        self.socket = self._listener.socket
        self.server_address = self._listener.address

    # -- socketserver-style API ----------------------------------------------------

    @property
    def port(self) -> Optional[int]:
        """The bound TCP port (None for a unix socket)."""
        return None if self._listener.unix_path is not None else self.server_address[1]

    @property
    def connections(self) -> List[WebSocket]:
        """The open connections (a snapshot), for broadcasting."""
        with self._lock:
            return [ws for ws in self._connections if not ws.closed]

    @property
    def uri(self) -> str:
        """A ``ws://`` or ``wss://`` URI that reaches this server (for tests and logs)."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        if self._listener.unix_path is not None:
            return f"{scheme}://localhost/"
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/"

    def wait_serving(self, timeout: Optional[float] = None) -> bool:
        """Wait until :meth:`serve_forever` is accepting connections in another thread.

        Args:
            timeout: seconds; None waits without limit.

        Returns:
            True once serving; False at the timeout.
        """
        return self._serving.wait(timeout)

    def fileno(self) -> int:
        """The listening socket's file descriptor."""
        return self.socket.fileno()

    def __enter__(self) -> "WebSocketServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()
        self.server_close()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept connections until :meth:`shutdown` (or Ctrl-C, which shuts down first).

        The loop wakes at once on ``shutdown()``, and at least every ``poll_interval``
        seconds otherwise, as :mod:`socketserver`'s does: where a signal does not
        interrupt the wait (Ctrl-C on Windows, or a signal that reached another thread),
        its handler runs within that time, so Ctrl-C stops a serving process everywhere.

        Args:
            poll_interval: the longest wait in seconds (0.5 by default), above 0.

        Raises:
            TypeError: ``poll_interval`` is not an int or a float.
            ValueError: ``poll_interval`` is not above 0 and finite.
            RuntimeError: the server is closed.
            KeyboardInterrupt: Ctrl-C, after the connections have been closed with 1001.
        """
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
            raise TypeError(f"poll_interval must be an int or a float, not {type(poll_interval).__name__}")
        if not (math.isfinite(poll_interval) and poll_interval > 0):
            raise ValueError(f"poll_interval must be above 0 and finite, not {poll_interval!r}")
        if self._closed:
            raise RuntimeError("the server is closed")
        with self._lock:
            if self._shutdown_done:  # Served, shut down, and now started again.
                self._shutdown_requested = self._shutdown_done = False
                self._stop_deadline = None
                self._listener.resume()
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._stop_r, selectors.EVENT_READ)
                self._serving.set()
                while not self._shutdown_requested:
                    # Bounded: Python runs signal handlers between two waits at the latest.
                    for key, _ in selector.select(poll_interval):
                        if key.fileobj is self.socket:
                            self._accept()
                        else:  # A shutdown's wake-up byte (maybe a past one's): drained.
                            self._stop_r.recv(64)
        except KeyboardInterrupt:
            self._shutdown_requested = True
            self._listener.stop()
            self._close_connections(time.monotonic() + DEFAULT_SHUTDOWN_TIMEOUT)
            raise
        finally:
            self._serving.clear()
            self._stopped.set()

    def shutdown(self, timeout: Optional[float] = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        """Stop accepting, close every connection with 1001, wait for handler threads.

        Callable from any thread but the one running :meth:`serve_forever`.

        The closing handshakes get the first four fifths of the bound; connections
        still closing then are cut (their handlers' ``recv()`` and ``send()`` raise
        :class:`~wsclient.ConnectionClosed`), and the last fifth
        (``wsclient.server.SHUTDOWN_THREAD_SHARE``) is for the handler threads to end,
        so a handler that returns on ``ConnectionClosed`` has ended when this returns.
        The server stops listening until :meth:`serve_forever` runs again: clients already queued
        get 503, and on Linux later ones are refused at once, rather than waiting until
        :meth:`server_close`.

        Args:
            timeout: seconds for the whole stop (10 by default); None (or infinity) waits
                for the handler threads without limit, each closing handshake still
                bounded by ``close_timeout``.
        """
        self._shutdown_requested = True
        try:
            self._stop_w.send(b"\0")
        except OSError:
            pass
        deadline = deadline_after(timeout)
        self._stopped.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._listener.stop()
        self._close_connections(deadline)
        with self._lock:
            self._shutdown_done = True

    def server_close(self) -> None:
        """Release the listening socket (and the unix socket's path), and end the watcher
        thread (and the gate's, if any) at once, with their descriptors (bounded by
        :data:`wsclient.watcher.CLOSE_TIMEOUT` each)."""
        if self._closed:
            return
        self._closed = True
        self._release_idle_threads()
        self._listener.close()
        self._stop_r.close()
        self._stop_w.close()
        self._watcher.close()
        if self._gate is not None:
            self._gate.close()

    # -- accepting -----------------------------------------------------------------

    def _accept(self) -> None:
        accepted = self._listener.accept()
        if accepted is None:
            return
        sock, address = accepted
        with self._lock:
            busy = self.max_connections is not None and self._active >= self.max_connections
            if not busy and not self._shutdown_requested:
                self._active += 1
                if self._idle:  # An idle thread takes it: no thread start.
                    self._idle -= 1
                    self._handoff.put((sock, address))
                    return
                thread = threading.Thread(
                    target=self._serve_connections, args=(sock, address), daemon=True,
                    name="wsclient-conn",  # Renamed after each connection it serves.
                )
                self._threads.add(thread)
                thread.start()
                return
        self._listener.refuse(sock, 503, "the server is at its connection limit" if busy else "shutting down")

    # -- one connection, in its own thread ------------------------------------------

    def _serve_connections(self, sock: socket.socket, address: Any) -> None:
        """A connection's thread: serve it, then the next ones handed over while idle."""
        item: Optional[Tuple[socket.socket, Any]] = (sock, address)
        try:
            while item is not None:
                threading.current_thread().name = f"wsclient-conn-{item[1]!r}"
                self._run_connection(*item)
                item = self._next_connection()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _next_connection(self) -> Optional[Tuple[socket.socket, Any]]:
        """Wait idle for a connection to serve; None to end the thread."""
        with self._lock:
            if self._shutdown_requested or self._closed:
                return None
            self._idle += 1
        try:
            return self._handoff.get(timeout=IDLE_THREAD_TIMEOUT)
        except queue.Empty:
            with self._lock:
                if self._idle:  # Nobody was promised this thread: leave.
                    self._idle -= 1
                    return None
            # A connection (or a stop signal) was promised to an idle thread just now,
            # under the lock: it is already in the queue.
            return self._handoff.get()

    def _release_idle_threads(self) -> None:
        """Tell every idle thread to end (shutting down)."""
        with self._lock:
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._handoff.put(None)

    def _run_connection(self, sock: socket.socket, address: Any) -> None:
        ws = None
        try:
            ws = self._opener.open(sock, address)
            if ws is not None:
                # In server.connections before the client can see the 101, so a broadcast
                # that the client's next message triggers already includes it.
                with self._lock:
                    self._connections.add(ws)
                ws.flush()
                if self._shutdown_requested:
                    ws.close(CloseCode.GOING_AWAY)
                self._run_handler(ws)
        except Exception:
            logger.exception("connection from %s failed", address)
        finally:
            if ws is None:
                sock.close()
            else:
                with self._lock:
                    self._connections.discard(ws)
            with self._lock:
                self._active -= 1

    def _run_handler(self, ws: WebSocket) -> None:
        try:
            self.handler(ws)
        except ConnectionClosed:
            # Normally this client went away while the handler talked to it (closing it
            # again sends nothing). But the close may be another connection's, a relay's
            # upstream say, and then this one is still open: close it as for an error.
            ws.close(CloseCode.INTERNAL_ERROR)
        except Exception:
            logger.exception("handler failed for %s", ws.remote_address)
            ws.close(CloseCode.INTERNAL_ERROR)
        else:
            ws.close(CloseCode.NORMAL_CLOSURE)

    # -- shutting down ---------------------------------------------------------------

    def _close_connections(self, deadline: Optional[float]) -> None:
        """Send 1001 to every connection, wait for the handshakes, then for the threads.

        Every stop shares the first one's deadline: Ctrl-C in ``serve_forever()`` and the
        ``shutdown()`` that follows (``with serve(...)``) wait at most the bound in all.
        The handshakes may use all but :data:`SHUTDOWN_THREAD_SHARE` of the time left;
        then every connection is cut, and the threads have the rest to end. Without a
        deadline (``shutdown(None)``) the threads are waited for without limit, and each
        closing handshake for its ``close_timeout``.
        """
        with self._lock:
            bound = math.inf if deadline is None else deadline
            if self._stop_deadline is not None:
                bound = min(bound, self._stop_deadline)
            self._stop_deadline = bound
        deadline = None if bound == math.inf else bound
        close_by = self._close_by(deadline)
        self._opener.cut_short()  # A client still sending its request gets the end of the stream.
        for ws in self.connections:
            ws.start_close(CloseCode.GOING_AWAY, "server shutting down", close_by)
        for ws in self.connections:
            ws.wait_closed(close_by)
        for ws in self.connections:
            ws.abort()
        self._release_idle_threads()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():  # shutdown() from a handler
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _close_by(self, deadline: Optional[float]) -> Optional[float]:
        """When the closing handshakes of a stop due at ``deadline`` are cut short.

        Args:
            deadline: the stop's ``time.monotonic()`` deadline, or None for no bound.

        Returns:
            The ``time.monotonic()`` time by which the handshakes must end: before
            ``deadline`` by :data:`SHUTDOWN_THREAD_SHARE` of the time left, or
            ``close_timeout`` from now without a deadline; None for no bound at all.
        """
        now = time.monotonic()
        if deadline is None:
            close_timeout = self._options.close_timeout
            return None if close_timeout is None else now + close_timeout
        return now + max(0.0, deadline - now) * (1.0 - SHUTDOWN_THREAD_SHARE)


def raise_descriptor_limit(max_connections: Optional[int]) -> Optional[int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` so ``max_connections`` sockets fit.

    Each connection holds one descriptor; Linux's usual soft limit (1,024) would make
    ``accept()`` fail with EMFILE long before a 10,000-connection server is full, while
    the hard limit (the most an unprivileged process may set) is usually far higher. The
    soft limit is raised to ``max_connections`` + :data:`DESCRIPTOR_MARGIN`, or to the hard
    limit when there is no ``max_connections``, never above the hard limit and never
    lowered. Child processes inherit the raised limit; code that still uses
    ``select.select()`` cannot watch a descriptor numbered 1,024 or more.

    Args:
        max_connections: the server's connection limit; None: as many as allowed.

    Returns:
        The soft limit now in force, or None where the platform has no ``resource``
        module (Windows) or refuses the change.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinity = resource.RLIM_INFINITY
    want = hard if max_connections is None else max_connections + DESCRIPTOR_MARGIN
    if hard != infinity:
        want = min(want, hard)
    if want == infinity or soft == infinity or soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):  # pragma: no cover - e.g. macOS above OPEN_MAX
        return None
    logger.info("raised the open-descriptor limit (RLIMIT_NOFILE) from %d to %d for the server", soft, want)
    return want


def serve(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    unix_path: Optional[str] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    subprotocols: Optional[Sequence[str]] = None,
    select_subprotocol: Optional[Callable[[Request, List[str]], Optional[str]]] = None,
    origins: Optional[Sequence[Optional[str]]] = None,
    process_request: Optional[Callable[[Request], Any]] = None,
    process_response: Optional[Callable[[Request, Response], Any]] = None,
    server_header: Optional[str] = DEFAULT_SERVER,
    compression: Union[str, DeflateOptions, None] = "deflate",
    max_size: Optional[int] = DEFAULT_MAX_SIZE,
    max_queue: Optional[int] = DEFAULT_MAX_QUEUE,
    ping_interval: Optional[float] = DEFAULT_PING_INTERVAL,
    ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT,
    close_timeout: Optional[float] = DEFAULT_CLOSE_TIMEOUT,
    handshake_timeout: Optional[float] = DEFAULT_HANDSHAKE_TIMEOUT,
    max_connections: Optional[int] = DEFAULT_MAX_CONNECTIONS,
    reuse_port: bool = False,
    backlog: int = DEFAULT_BACKLOG,
    trusted_proxies: Optional[Sequence[str]] = None,
) -> WebSocketServer:
    """Create a bound, listening :class:`WebSocketServer`; call ``serve_forever()`` on it.

    Args:
        handler: called with each connection, in its own thread.
        host: the address to bind (``"::1"`` or ``"::"`` for IPv6).
        port: the TCP port; 0 picks a free one (read it back from ``server.port``).
        unix_path: bind a unix domain socket at this path instead of host and port.
        ssl_context, subprotocols, select_subprotocol, origins, process_request, process_response, server_header, compression, max_size, max_queue, ping_interval, ping_timeout, close_timeout, handshake_timeout, max_connections, reuse_port, backlog, trusted_proxies:
            as :class:`WebSocketServer` documents them.

    Returns:
        The server.

    Raises:
        TypeError, ValueError, OSError: as :class:`WebSocketServer` raises them.
    """
    address: ServerAddress = unix_path if unix_path is not None else (host, port)
    return WebSocketServer(
        address, handler, ssl_context=ssl_context, subprotocols=subprotocols,
        select_subprotocol=select_subprotocol, origins=origins, process_request=process_request,
        process_response=process_response, server_header=server_header,
        compression=compression, max_size=max_size, max_queue=max_queue, ping_interval=ping_interval,
        ping_timeout=ping_timeout, close_timeout=close_timeout, handshake_timeout=handshake_timeout,
        max_connections=max_connections, reuse_port=reuse_port, backlog=backlog,
        trusted_proxies=trusted_proxies,
    )


def broadcast(connections: Iterable[WebSocket], message: Union[str, bytes]) -> List[WebSocket]:
    """Send ``message`` to many connections without letting a slow one hold up the others.

    A connection whose peer reads gets the message, even if another thread is writing to
    it at that moment (broadcast waits for that write, up to half a second). Skipped for
    this message: a connection that is closed or closing, and one whose peer has stopped
    reading (its socket takes no byte now). A message that could only be written in part
    stays queued for that connection (at most one message per connection) and is finished
    in the background. Nothing is buffered without bound.

    Args:
        connections: the connections, e.g. ``server.connections``.
        message: ``str`` (text) or bytes-like (binary).

    Returns:
        The connections that were skipped, so the caller can close, log or retry them.
    """
    prepared = PreparedMessage(message)  # Encoded, and framed, once for all.
    return [ws for ws in connections_only(connections, "broadcast()") if not ws.send_nowait(prepared)]
