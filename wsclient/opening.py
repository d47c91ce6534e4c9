"""The server's side of a connection's opening: from an accepted socket to an open WebSocket.

An :class:`Opener` holds a server's per-connection options and runs, in the connection's
thread, everything before the handler: the TLS handshake, reading the request (a peer that
does not speak HTTP is refused with its first bytes), deciding the answer and sending a
refusal, all within ``handshake_timeout``. The decision is a :class:`Negotiator`'s, which
does no I/O, so :mod:`wsclient.wsgi` decides a WSGI server's requests the same way:
``process_request``, ``origins``, subprotocols, permessage-deflate (RFC 6455 section 4.2.2,
RFC 7692 section 5), then ``server_header`` and ``process_response``. It keeps the
sockets still in their opening, so a server shutting down can cut them short. The accept
loop, the threads and the handler are :mod:`wsclient.server`'s.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from . import tls
from .connection import WebSocket
from .deflate import DeflateOptions, PerMessageDeflate, compression_options
from .exceptions import InvalidHandshake
from .extensions import server_accept
from .forwarded import client_address, parse_trusted
from .handshake import (
    DEFAULT_SERVER_HEADER,
    accept_response,
    check_request,
    error_response,
    offered_subprotocols,
    reject_response,
    select_subprotocol,
)
from .headers import has_control_character
from .http11 import Request, RequestParser, Response
from .options import ConnectionOptions, check_seconds
from .protocol import Protocol, Side
from .sockio import deadline_after, read_head, remaining, send_all
from .gate import Gate
from .watcher import Watcher

__all__ = ["Opener", "Negotiator", "Decision", "DEFAULT_SERVER"]

logger = logging.getLogger("wsclient")

#: How a TLS connection starts: a handshake record (content type 22), record version
#: 3.x (RFC 8446 section 5.1). The ClientHello of a wss:// client on a plain port.
_TLS_HANDSHAKE_RECORD = b"\x16\x03"

class Opener:
    """Open the server's connections: TLS, request, answer, then a :class:`WebSocket`.

    Args:
        watcher: the server's watcher, which every connection it opens joins.
        gate: the server's gate, where its connections' readers may wait their turn.
        options: the options of every connection it opens (checked when made).
        ssl_context, subprotocols, select_subprotocol, origins, process_request,
        compression, process_response, server_header, handshake_timeout, trusted_proxies: as
            :class:`~wsclient.WebSocketServer` documents them.

    Raises:
        TypeError, ValueError: an option of the wrong type or value, at once rather than
            at the first client.
    """

    def __init__(
        self,
        watcher: Watcher,
        options: ConnectionOptions,
        *,
        ssl_context: Optional[ssl.SSLContext],
        subprotocols: Optional[Sequence[str]],
        select_subprotocol: Optional[Callable[[Request, List[str]], Optional[str]]],
        origins: Optional[Sequence[Optional[str]]],
        process_request: Optional[Callable[[Request], Any]],
        compression: Union[str, DeflateOptions, None],
        process_response: Optional[Callable[[Request, Response], Any]] = None,
        server_header: Optional[str] = DEFAULT_SERVER_HEADER,
        handshake_timeout: Optional[float],
        trusted_proxies: Optional[Sequence[str]],
        gate: Optional[Gate] = None,
    ) -> None:
        tls.check_context("ssl_context", ssl_context)
        self.negotiator = Negotiator(subprotocols=subprotocols, select_subprotocol=select_subprotocol,
                                     origins=origins, process_request=process_request,
                                     process_response=process_response, compression=compression,
                                     server_header=server_header)
        check_seconds("handshake_timeout", handshake_timeout, positive=True)
        self.trusted_proxies = None if trusted_proxies is None else parse_trusted(trusted_proxies)
        self.ssl_context = ssl_context
        self.options = options
        self.handshake_timeout = handshake_timeout
        self._watcher = watcher
        self._gate = gate
        self._lock = threading.Lock()
        self._opening: Set[socket.socket] = set()  # Sockets still in their opening.

    def open(self, sock: socket.socket, address: Any) -> Optional[WebSocket]:
        """Run the opening handshake on an accepted socket.

        Args:
            sock: the accepted socket, which this call owns.
            address: the peer's address, as ``accept()`` gave it.

        Returns:
            The connection, with its ``101`` response queued but not sent: the caller
            registers it, then sends the 101 with ``ws.flush()``. None when the
            client was refused or failed (answered if it could be, logged, and closed).
        """
        deadline = deadline_after(self.handshake_timeout)
        if sock.family in (socket.AF_INET, socket.AF_INET6):  # Not a unix socket (no AF_UNIX on Windows).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        parser = RequestParser()
        opening = sock
        with self._lock:
            self._opening.add(opening)  # cut_short() ends it.
        try:
            if self.ssl_context is not None:
                sock = opening = self._wrap(sock, deadline)
                sock.do_handshake()
            request = read_head(sock, parser, deadline)
            response, subprotocol, deflate = self.negotiator.decide(request)
            # The answer gets time of its own: a slow process_request must not make the
            # server drop the response it chose (the deadline is for the client's request).
            if response.status != 101:
                send_all(sock, response.serialize(), deadline_after(self.handshake_timeout))
        except Exception as exc:
            self._failed(sock, address, parser, exc)
            return None
        finally:
            with self._lock:
                self._opening.discard(opening)
        if response.status != 101:
            sock.close()
            return None
        protocol = Protocol(Side.SERVER, max_size=self.options.max_size, deflate=deflate)
        ws = WebSocket(
            sock, protocol, request=request, response=response, subprotocol=subprotocol,
            watcher=self._watcher, options=self.options, initial_data=parser.leftover,
            preamble=response.serialize(), gate=self._gate,
        )
        peer = address[0] if isinstance(address, tuple) else None
        ws.client_address = client_address(
            peer, request.headers.get_all("X-Forwarded-For"), self.trusted_proxies)
        return ws

    def cut_short(self) -> None:
        """End the stream of every connection still in its opening (the server is
        shutting down): a client still sending its request reads the end at once."""
        with self._lock:
            opening = list(self._opening)
        for sock in opening:
            try:  # The plain socket's shutdown(), also for TLS: it leaves the TLS state alone.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def _wrap(self, sock: socket.socket, deadline: Optional[float]) -> ssl.SSLSocket:
        """The TLS socket over ``sock``, its handshake not started yet."""
        assert self.ssl_context is not None
        sock.settimeout(remaining(deadline))
        wrapped = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._lock:  # The plain socket is detached now: watch the TLS one.
            self._opening.discard(sock)
            self._opening.add(wrapped)
        return wrapped

    def _failed(self, sock: socket.socket, address: Any, parser: RequestParser, exc: Exception) -> None:
        """The opening failed with ``exc`` (called while handling it, for the traceback):
        answer what deserves an answer, log why, close."""
        try:
            if isinstance(exc, InvalidHandshake):  # Malformed or refused: answer 4xx, say why.
                if self.ssl_context is None and parser.first_bytes.startswith(_TLS_HANDSHAKE_RECORD):
                    # An HTTP answer means nothing to a TLS client: just close.
                    logger.warning("a TLS handshake from %s arrived on a plain ws:// port "
                                   "(a wss:// client?): closed", address)
                    return
                logger.info("rejected a handshake from %s: %s", address, exc)
                _try_send(sock, error_response(exc).serialize(), deadline_after(self.handshake_timeout))
            elif isinstance(exc, OSError):  # TLS failures and timeouts included.
                logger.info("handshake with %s failed: %s", address, exc)
            else:  # A bug in process_request or select_subprotocol: say so.
                logger.exception("answering the handshake from %s failed", address)
                answer = reject_response(500, "internal server error").serialize()
                _try_send(sock, answer, deadline_after(self.handshake_timeout))
        finally:
            sock.close()


def _try_send(sock: Any, data: bytes, deadline: Optional[float]) -> None:
    try:
        send_all(sock, data, deadline)
    except (OSError, TimeoutError):
        pass


def _check_items(name: str, values: List[Any], kinds: Tuple[type, ...]) -> None:
    """Each item of a list option is of ``kinds`` (a subprotocol is a str, an origin a str
    or None), checked at once rather than at the first client.

    Raises:
        TypeError: an item of another type.
    """
    for value in values:
        if not isinstance(value, kinds):
            raise TypeError(f"{name} must hold {' or '.join(k.__name__ for k in kinds)}, not {type(value).__name__}")


class Decision(NamedTuple):
    """What a :class:`Negotiator` decided for one request.

    Attributes:
        response: the answer: a ``101`` to upgrade, anything else refuses.
        subprotocol: with a ``101``, the negotiated subprotocol or None.
        deflate: with a ``101``, the permessage-deflate codec, or None without compression.
    """

    response: Response
    subprotocol: Optional[str]
    deflate: Optional[PerMessageDeflate]


#: ``server_header=`` left out: the server's default ``Server`` header.
DEFAULT_SERVER = DEFAULT_SERVER_HEADER


class Negotiator:
    """Decide the answer to an opening request, without any I/O.

    One decision for every way a server meets a client: :class:`Opener` (``serve()``)
    and :mod:`wsclient.wsgi` (a WSGI server's connection) both ask it. In order:
    ``process_request`` may answer instead; the request is checked (RFC 6455 section
    4.2.1); ``origins`` refuses with ``403``; a subprotocol is chosen (section 4.2.2);
    a permessage-deflate offer is accepted (RFC 7692 section 5); then ``server_header``
    sets or removes the ``Server`` header and ``process_response`` may change the answer.

    Args:
        subprotocols, select_subprotocol, origins, process_request, compression: as
            :class:`~wsclient.WebSocketServer` documents them.
        process_response: ``process_response(request, response)`` is called with every
            response decided here (the 101, an origin's 403, ``process_request``'s answer)
            and may return another :class:`~wsclient.Response` (or ``(status, headers,
            body)`` tuple) to send instead, or None to keep it.
        server_header: the ``Server`` header of those responses; None sends none.

    Raises:
        TypeError, ValueError: an option of the wrong type or value.
    """

    def __init__(
        self,
        *,
        subprotocols: Optional[Sequence[str]] = None,
        select_subprotocol: Optional[Callable[[Request, List[str]], Optional[str]]] = None,
        origins: Optional[Sequence[Optional[str]]] = None,
        process_request: Optional[Callable[[Request], Any]] = None,
        process_response: Optional[Callable[[Request, Response], Any]] = None,
        compression: Union[str, DeflateOptions, None] = "deflate",
        server_header: Optional[str] = DEFAULT_SERVER,
    ) -> None:
        for name, value in (("subprotocols", subprotocols), ("origins", origins)):
            if isinstance(value, (str, bytes)):
                raise TypeError(f"{name} must be a sequence of str, not a single {type(value).__name__}")
        for name, hook in (("select_subprotocol", select_subprotocol), ("process_request", process_request),
                           ("process_response", process_response)):
            if hook is not None and not callable(hook):
                raise TypeError(f"{name} must be callable or None, not {type(hook).__name__}")
        if server_header is not None and not isinstance(server_header, str):
            raise TypeError(f"server_header must be a str or None, not {type(server_header).__name__}")
        if server_header is not None and (has_control_character(server_header) or not server_header.strip()):
            raise ValueError("server_header must be non-empty text without control characters")
        self.subprotocols = list(subprotocols or [])
        self.origins = None if origins is None else list(origins)
        _check_items("subprotocols", self.subprotocols, (str,))
        _check_items("origins", self.origins or [], (str, type(None)))
        self.select_subprotocol = select_subprotocol
        self.process_request = process_request
        self.process_response = process_response
        self.deflate_options = compression_options(compression, server=True)
        self.server_header = server_header

    def decide(self, request: Request) -> Decision:
        """Decide the answer to ``request``.

        Args:
            request: the client's request head.

        Returns:
            The decision: a ``101`` with the subprotocol and codec, or a refusal.

        Raises:
            InvalidHandshake: the request is not a valid opening handshake (answer it
                with :func:`~wsclient.handshake.error_response`).
            ValueError: a hook answered what cannot be sent (a 1xx of its own, a
                subprotocol the client did not offer, a 101 that was not decided here).
            TypeError: a hook returned something that is not a response.
            Exception: whatever the hooks raise.
        """
        decision = self._upgrade(request)
        response = decision.response
        headers = response.headers.copy()
        if self.server_header is None:
            if "Server" in headers:
                del headers["Server"]
        elif "Server" not in headers:
            headers.add("Server", self.server_header)
        response = Response(int(response.status), headers, response.body, reason=response.reason,
                            version=response.version)
        if self.process_response is not None:
            negotiated = [response.headers.get_all(name) for name in _HANDSHAKE_HEADERS]
            answer = self.process_response(request, response)
            if answer is not None:
                response = Response.coerce(answer)
            if int(response.status) < 200:
                if int(response.status) != 101 or int(decision.response.status) != 101:
                    raise ValueError(f"process_response answered {int(response.status)}: "
                                     "only the 101 decided here may switch protocols")
                _check_same_handshake(negotiated, response)
        if int(response.status) != 101:
            return Decision(response, None, None)
        return Decision(response, decision.subprotocol, decision.deflate)

    def _upgrade(self, request: Request) -> Decision:
        if self.process_request is not None:
            answer = self.process_request(request)
            if answer is not None:
                response = Response.coerce(answer)
                if response.status < 200:  # 101 is ours to send, after checking the request.
                    raise ValueError(f"process_request answered {int(response.status)}: a final status is 200 or more")
                return Decision(response, None, None)
        check_request(request)
        if self.origins is not None and request.headers.get("Origin") not in self.origins:
            return Decision(reject_response(403, "origin not allowed"), None, None)
        offered = offered_subprotocols(request)
        if self.select_subprotocol is not None:
            subprotocol = self.select_subprotocol(request, offered) if offered else None
            if subprotocol is not None and subprotocol not in offered:
                raise ValueError(f"select_subprotocol chose {subprotocol!r}, not offered")
        else:
            subprotocol = select_subprotocol(offered, self.subprotocols)
        extensions = None
        deflate = None
        if self.deflate_options is not None:
            accepted = server_accept(self.deflate_options, request.headers.get_all("Sec-WebSocket-Extensions") or [])
            if accepted is not None:
                extensions, params = accepted
                deflate = PerMessageDeflate(params, is_client=False, options=self.deflate_options)
        response = accept_response(request, subprotocol=subprotocol, extensions=extensions, server=None)
        return Decision(response, subprotocol, deflate)


#: Headers of a 101 that its connection depends on: process_response may not change them.
_HANDSHAKE_HEADERS = ("Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol",
                      "Sec-WebSocket-Extensions")


def _check_same_handshake(negotiated: List[Optional[List[str]]], response: Response) -> None:
    """A 101 that ``process_response`` changed keeps the negotiated headers.

    Raises:
        ValueError: it changed or dropped one.
    """
    for name, values in zip(_HANDSHAKE_HEADERS, negotiated):
        if response.headers.get_all(name) != values:
            raise ValueError(f"process_response changed the {name} header of the 101: "
                             "the connection was negotiated with the original")
