"""WebSockets inside a WSGI application: upgrade a request of a WSGI server's connection.

:func:`accept` turns the request a WSGI view is handling into a :class:`~wsclient.WebSocket`,
with what a :func:`wsclient.serve` connection has: keepalive, pings answered while the view
is busy (one watcher thread per process), a bounded receive queue, :func:`wsclient.broadcast`
over :func:`connections` and :func:`wsclient.wait`. :class:`WebSocketApp` is a WSGI
application of its own that does the same around ``handler(ws)``. No web framework is
needed here.

How a connection changes hands. The request is checked and negotiated by the server's own
rules (:class:`wsclient.opening.Negotiator`); a request that is not an upgrade raises
:class:`HandshakeRefused`, itself a WSGI application answering 400/426. The WSGI server's
socket (``environ["werkzeug.socket"]`` under Werkzeug's development server,
``environ["gunicorn.socket"]`` under gunicorn's sync and gthread workers) is then taken
over: the connection gets its own duplicate of the descriptor, and the server's descriptor
is pointed at a socket whose other end is already closed. Whatever the server writes once
the view returns fails as a write to a client that went away (``EPIPE``), which Werkzeug
(``connection_dropped``) and gunicorn (``Ignoring EPIPE``) handle quietly, closing their
side without reading another request from it; the WebSocket's own close ends the TCP
connection as a ``serve()`` connection's does. No server internals are touched. A server
that does not expose its socket, or exposes a TLS socket, gets a :class:`RuntimeError`
naming it (``SERVER_SOFTWARE``): terminate TLS in front of it instead.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Union
from urllib.parse import quote

from .close import CloseCode
from .connection import WebSocket
from .deflate import DeflateOptions
from .exceptions import ConnectionClosed, InvalidHandshake
from .handshake import error_response, reject_response
from .headers import Headers
from .http11 import Request, Response
from .opening import DEFAULT_SERVER, Negotiator
from .options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_QUEUE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    ConnectionOptions,
)
from .protocol import DEFAULT_MAX_SIZE, Protocol, Side
from .routing import request_hook
from .watcher import Watcher

__all__ = ["accept", "WebSocketApp", "HandshakeRefused", "connections", "request_from_environ", "SOCKET_KEYS"]

logger = logging.getLogger("wsclient")

#: The environ keys under which WSGI servers hand over the connection's socket:
#: Werkzeug's development server, then gunicorn's sync and gthread workers.
SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")

#: Set in the environ once its request became a WebSocket.
_ACCEPTED = "wsclient.accepted"

WSGIEnviron = Dict[str, Any]
StartResponse = Callable[..., Any]


class HandshakeRefused(InvalidHandshake):
    """:func:`accept` refused the request (not an upgrade, a bad handshake, a refused origin).

    The exception is also a WSGI application that sends its response, so a view can
    ``return`` it (Flask accepts a WSGI application as a view's return value)::

        try:
            ws = wsclient.wsgi.accept(environ)
        except wsclient.wsgi.HandshakeRefused as refused:
            return refused(environ, start_response)   # plain WSGI; in Flask: return refused

    Attributes:
        response: the :class:`~wsclient.Response` to send: ``426`` for a request without
            ``Upgrade: websocket`` (with ``Upgrade`` and ``Sec-WebSocket-Version`` headers),
            ``400`` for a malformed handshake, ``405`` for another method than GET, ``403``
            for an origin not in ``origins``, or what ``process_response`` made of it.
    """

    def __init__(self, response: Response, message: str = "") -> None:
        self.response = response
        super().__init__(message or f"WebSocket handshake refused: HTTP {int(response.status)}")

    @property
    def status(self) -> int:
        """The HTTP status code of :attr:`response`."""
        return int(self.response.status)

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        """Send :attr:`response` as a WSGI application."""
        response = self.response
        headers = [(name, value) for name, value in response.headers.items()
                   if name.lower() not in ("connection", "content-length")]
        headers.append(("Content-Length", str(len(response.body))))
        start_response(f"{int(response.status)} {response.reason}", headers)
        return [response.body]


def accept(
    environ: WSGIEnviron,
    *,
    subprotocols: Optional[Sequence[str]] = None,
    select_subprotocol: Optional[Callable[[Request, List[str]], Optional[str]]] = None,
    origins: Optional[Sequence[Optional[str]]] = None,
    process_response: Optional[Callable[[Request, Response], Any]] = None,
    server_header: Optional[str] = DEFAULT_SERVER,
    compression: Union[str, DeflateOptions, None] = "deflate",
    max_size: Optional[int] = DEFAULT_MAX_SIZE,
    max_queue: Optional[int] = DEFAULT_MAX_QUEUE,
    ping_interval: Optional[float] = DEFAULT_PING_INTERVAL,
    ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT,
    close_timeout: Optional[float] = DEFAULT_CLOSE_TIMEOUT,
) -> WebSocket:
    """Upgrade the request of a WSGI view to a WebSocket.

    Call it in the view, use the connection, then return any response: it never reaches
    the client (the server's write goes to a closed socket and is dropped quietly). The
    connection outlives the view if the view hands it to another thread; it is closed
    with ``close()`` (or by the peer), as any connection. Under Werkzeug 3 (Flask), the
    route must be declared for WebSockets (``@app.route(path, websocket=True)``), or
    Werkzeug answers the upgrade ``400`` before the view runs.

    Args:
        environ: the request's WSGI environ (``flask.request.environ`` in Flask).
        subprotocols, select_subprotocol, origins, compression, max_size, max_queue, ping_interval, ping_timeout, close_timeout:
            as :func:`wsclient.serve` documents them.
        process_response: ``process_response(request, response)`` may return another
            response instead of the decided one (the 101 with extra headers, say), or None.
        server_header: the 101's ``Server`` header; None sends none.

    Returns:
        The open connection, its 101 sent; listed in :func:`connections` until closed.

    Raises:
        HandshakeRefused: the request is not a WebSocket upgrade or was refused; return
            the exception from the view to send its response.
        RuntimeError: the WSGI server does not hand over its socket (named from
            ``SERVER_SOFTWARE``), hands over a TLS socket, or runs on a platform without
            ``os.dup2`` for sockets; or the request was accepted already.
        TypeError, ValueError: an option of the wrong type or value; a hook's answer that
            cannot be sent (see :class:`wsclient.opening.Negotiator`).
        OSError: the socket failed while being taken over.
        Exception: whatever ``select_subprotocol`` or ``process_response`` raise.
    """
    negotiator = Negotiator(subprotocols=subprotocols, select_subprotocol=select_subprotocol, origins=origins,
                            process_response=process_response, compression=compression,
                            server_header=server_header)
    options = ConnectionOptions(max_size=max_size, max_queue=max_queue, ping_interval=ping_interval,
                                ping_timeout=ping_timeout, close_timeout=close_timeout)
    return _accept(environ, negotiator, options)


class WebSocketApp:
    """A WSGI application that upgrades every request and runs ``handler(ws)``.

    Mount it under a path of an existing application (``DispatcherMiddleware(app,
    {"/ws": WebSocketApp(handler)})`` with Werkzeug) or run it under gunicorn directly
    (``gunicorn module:app``). As with :func:`wsclient.serve`, the connection is closed
    with 1000 when the handler returns and with 1011 (and a logged traceback) when it
    raises. A request that is not an upgrade is answered ``426`` (or ``400``). The
    handler may be a :func:`wsclient.route` router: a path no template matches is then
    answered ``404`` before any upgrade, and ``handler(ws, **params)`` runs for the others
    (the templates match the full request path, mount point included).

    The handler runs in the WSGI server's thread for the request: a gunicorn sync worker
    serves nothing else meanwhile, a gthread worker one thread fewer.

    Args:
        handler: called with each connection.
        process_request: ``f(request)`` returning None to go on with the upgrade, or a
            response to send instead (authentication, say), as :func:`wsclient.serve`.
        subprotocols, select_subprotocol, origins, process_response, server_header, compression, max_size, max_queue, ping_interval, ping_timeout, close_timeout:
            as :func:`accept`.

    Raises:
        TypeError, ValueError: an option of the wrong type or value.
    """

    def __init__(
        self,
        handler: Callable[[WebSocket], Any],
        *,
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
    ) -> None:
        if not callable(handler):
            raise TypeError("handler must be callable")
        self.handler = handler
        self._negotiator = Negotiator(
            subprotocols=subprotocols, select_subprotocol=select_subprotocol, origins=origins,
            process_request=request_hook(handler, process_request),
            process_response=process_response, compression=compression, server_header=server_header,
        )
        self._options = ConnectionOptions(max_size=max_size, max_queue=max_queue, ping_interval=ping_interval,
                                          ping_timeout=ping_timeout, close_timeout=close_timeout)

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        """Upgrade the request, run the handler, close the connection.

        Returns:
            An empty body: the 101 went out on the socket itself.
        """
        try:
            ws = _accept(environ, self._negotiator, self._options)
        except HandshakeRefused as refused:
            return refused(environ, start_response)
        except Exception:  # A bug in a hook: the client gets 500, as from serve().
            logger.exception("answering the WebSocket handshake failed")
            return HandshakeRefused(reject_response(500, "internal server error"))(environ, start_response)
        try:
            self.handler(ws)
        except ConnectionClosed:
            ws.close(CloseCode.INTERNAL_ERROR)  # Sends nothing if the peer closed it.
        except Exception:
            logger.exception("WebSocket handler failed for %s", ws.remote_address)
            ws.close(CloseCode.INTERNAL_ERROR)
        else:
            ws.close(CloseCode.NORMAL_CLOSURE)
        # For the server's access log; the server's write of it goes nowhere.
        start_response("101 Switching Protocols", [])
        return []


def connections() -> List[WebSocket]:
    """The open connections :func:`accept` made in this process (a snapshot).

    For :func:`wsclient.broadcast`: ``wsclient.broadcast(wsclient.wsgi.connections(),
    message)``. Each worker process of a server has its own list; a message for every
    client of a multi-process server goes through a broker (see README).

    Returns:
        The connections not closed yet, oldest first.
    """
    with _lock:
        for ws in [ws for ws in _open if ws.closed]:
            _open.pop(ws, None)
        return [ws for ws in _open if not ws.closed]


# -- per process: the watcher and the registry ---------------------------------------------

_lock = threading.Lock()
_watcher: Optional[Watcher] = None
_open: Dict[WebSocket, None] = {}  # Insertion-ordered set.


def _process_watcher() -> Watcher:
    """This process's watcher (made on first use: a forked worker makes its own)."""
    global _watcher
    with _lock:
        if _watcher is None:
            _watcher = Watcher("wsclient-wsgi-watcher")
        return _watcher


def _forget_parent() -> None:
    """In a forked child: the parent's watcher thread and connections are not ours."""
    global _watcher, _lock
    _watcher = None
    _lock = threading.Lock()
    _open.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent)


def _register(ws: WebSocket) -> None:
    with _lock:
        for old in [old for old in _open if old.closed]:
            _open.pop(old, None)
        _open[ws] = None


# -- taking a connection over ---------------------------------------------------------------


def _accept(environ: WSGIEnviron, negotiator: Negotiator, options: ConnectionOptions) -> WebSocket:
    """:func:`accept` with its options checked."""
    request = request_from_environ(environ)
    try:
        decision = negotiator.decide(request)
    except InvalidHandshake as exc:
        raise HandshakeRefused(error_response(exc), str(exc)) from exc
    if int(decision.response.status) != 101:
        raise HandshakeRefused(decision.response)
    if environ.get(_ACCEPTED):
        raise RuntimeError("this request was already accepted as a WebSocket")
    server_sock = _server_socket(environ)
    sock = _take_over(server_sock)
    environ[_ACCEPTED] = True
    try:
        protocol = Protocol(Side.SERVER, max_size=options.max_size, deflate=decision.deflate)
        ws = WebSocket(sock, protocol, request=request, response=decision.response,
                       subprotocol=decision.subprotocol, watcher=_process_watcher(), options=options,
                       preamble=decision.response.serialize())
    except BaseException:
        sock.close()
        raise
    ws.client_address = environ.get("REMOTE_ADDR") or None
    _register(ws)  # Listed before the client can see the 101, as serve() does.
    ws.flush()
    return ws


def request_from_environ(environ: WSGIEnviron) -> Request:
    """The request head a WSGI environ describes (for the handshake checks).

    The target is ``RAW_URI`` or ``REQUEST_URI`` where the server gives it (gunicorn,
    Werkzeug, uWSGI), else rebuilt from ``SCRIPT_NAME``, ``PATH_INFO`` and
    ``QUERY_STRING``. Headers come from the ``HTTP_*`` keys (a header sent twice arrives
    joined with commas, as WSGI servers pass it).

    Args:
        environ: a WSGI environ.

    Returns:
        The request (method, target, headers and version).

    Raises:
        TypeError: ``environ`` is not a mapping.
    """
    if not isinstance(environ, dict):
        raise TypeError(f"environ must be the WSGI environ dict, not {type(environ).__name__}")
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        path = quote(path.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~%")
        query = environ.get("QUERY_STRING", "")
        target = (path or "/") + (f"?{query}" if query else "")
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            headers.add(key[5:].replace("_", "-").title(), value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.add(key.replace("_", "-").title(), str(value))
    return Request(str(environ.get("REQUEST_METHOD", "GET")), target, headers,
                   str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")))


def _server_software(environ: WSGIEnviron) -> str:
    return str(environ.get("SERVER_SOFTWARE") or "this WSGI server")


def _server_socket(environ: WSGIEnviron) -> socket.socket:
    """The socket the WSGI server handed over in ``environ``.

    Raises:
        RuntimeError: none (naming the server), a TLS one, or a platform without dup2
            for sockets.
    """
    for key in SOCKET_KEYS:
        sock = environ.get(key)
        if sock is not None:
            break
    else:
        raise RuntimeError(
            f"{_server_software(environ)} does not hand over its connection's socket to the application "
            f"(none of {', '.join(SOCKET_KEYS)} in the environ): run the app under Werkzeug's server "
            "or gunicorn's sync or gthread worker, or serve WebSockets with wsclient.serve()")
    if isinstance(sock, ssl.SSLSocket):
        raise RuntimeError(
            f"{_server_software(environ)} serves this request over TLS, and a TLS connection cannot "
            "change hands: terminate TLS in a proxy in front of the WSGI server")
    if not isinstance(sock, socket.socket):
        raise RuntimeError(f"{_server_software(environ)} handed over a {type(sock).__name__}, not a socket")
    if os.name != "posix":
        raise RuntimeError("taking a WSGI server's socket over needs a POSIX system")
    return sock


def _take_over(server_sock: socket.socket) -> socket.socket:
    """A socket of our own on the server's connection, the server's left writing nowhere.

    The connection gets a duplicate descriptor; the server's descriptor number is then
    made to point to one end of a socket pair whose other end is closed, so that after the
    view the server's writes fail with ``EPIPE`` and its reads see the end, and closing
    our socket is the end of the TCP connection.
    """
    sock = server_sock.dup()
    try:
        dead, peer = socket.socketpair()
        try:
            peer.close()
            os.dup2(dead.fileno(), server_sock.fileno())
        finally:
            dead.close()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock
