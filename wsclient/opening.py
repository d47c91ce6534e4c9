"""The server's side of a connection's opening: from an accepted socket to an open WebSocket.

An :class:`Opener` holds a server's per-connection options and runs, in the connection's
thread, everything before the handler: the TLS handshake, reading the request (a peer that
does not speak HTTP is refused with its first bytes), deciding the answer
(``process_request``, ``origins``, subprotocols, permessage-deflate: RFC 6455 section 4.2.2,
RFC 7692 section 5) and sending a refusal, all within ``handshake_timeout``. It keeps the
sockets still in their opening, so a server shutting down can cut them short. The accept
loop, the threads and the handler are :mod:`wsclient.server`'s.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Any, Callable, List, Optional, Sequence, Set, Tuple, Union

from . import tls
from .connection import WebSocket
from .deflate import DeflateOptions, PerMessageDeflate, compression_options
from .exceptions import InvalidHandshake
from .extensions import server_accept
from .forwarded import client_address, parse_trusted
from .handshake import (
    accept_response,
    check_request,
    error_response,
    offered_subprotocols,
    reject_response,
    select_subprotocol,
)
from .http11 import Request, RequestParser, Response
from .options import ConnectionOptions, check_seconds
from .protocol import Protocol, Side
from .sockio import deadline_after, read_head, remaining, send_all
from .watcher import Watcher

__all__ = ["Opener"]

logger = logging.getLogger("wsclient")

#: How a TLS connection starts: a handshake record (content type 22), record version
#: 3.x (RFC 8446 section 5.1). The ClientHello of a wss:// client on a plain port.
_TLS_HANDSHAKE_RECORD = b"\x16\x03"

#: What the upgrade decided: the response, and with a 101 the subprotocol and codec.
_Decision = Tuple[Response, Optional[str], Optional[PerMessageDeflate]]


class Opener:
    """Open the server's connections: TLS, request, answer, then a :class:`WebSocket`.

    Args:
        watcher: the server's watcher, which every connection it opens joins.
        options: the options of every connection it opens (checked when made).
        ssl_context, subprotocols, select_subprotocol, origins, process_request,
        compression, handshake_timeout, trusted_proxies: as
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
        handshake_timeout: Optional[float],
        trusted_proxies: Optional[Sequence[str]],
    ) -> None:
        _check_hooks(ssl_context=ssl_context, subprotocols=subprotocols, origins=origins,
                     select_subprotocol=select_subprotocol, process_request=process_request)
        check_seconds("handshake_timeout", handshake_timeout, positive=True)
        self.trusted_proxies = None if trusted_proxies is None else parse_trusted(trusted_proxies)
        self.ssl_context = ssl_context
        self.subprotocols = list(subprotocols or [])
        self.select_subprotocol = select_subprotocol
        self.origins = None if origins is None else list(origins)
        _check_items("subprotocols", self.subprotocols, (str,))
        _check_items("origins", self.origins or [], (str, type(None)))
        self.process_request = process_request
        self.deflate_options = compression_options(compression, server=True)
        self.options = options
        self.handshake_timeout = handshake_timeout
        self._watcher = watcher
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
        if sock.family != socket.AF_UNIX:
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
            response, subprotocol, deflate = self._upgrade(request)
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
            preamble=response.serialize(),
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

    def _upgrade(self, request: Request) -> _Decision:
        """Decide the answer to a request: the response, and with a 101 the negotiated
        subprotocol and permessage-deflate codec."""
        if self.process_request is not None:
            answer = self.process_request(request)
            if answer is not None:
                response = Response.coerce(answer)
                if response.status < 200:  # 101 is ours to send, after checking the request.
                    raise ValueError(f"process_request answered {int(response.status)}: a final status is 200 or more")
                return response, None, None
        check_request(request)
        if self.origins is not None and request.headers.get("Origin") not in self.origins:
            return reject_response(403, "origin not allowed"), None, None
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
        response = accept_response(request, subprotocol=subprotocol, extensions=extensions)
        return response, subprotocol, deflate


def _try_send(sock: Any, data: bytes, deadline: Optional[float]) -> None:
    try:
        send_all(sock, data, deadline)
    except (OSError, TimeoutError):
        pass


def _check_hooks(
    *, ssl_context: Any, subprotocols: Any, origins: Any, select_subprotocol: Any, process_request: Any,
) -> None:
    """Misuse of the handshake options raises at once, not at the first client."""
    tls.check_context("ssl_context", ssl_context)
    for name, value in (("subprotocols", subprotocols), ("origins", origins)):
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be a sequence of str, not a single {type(value).__name__}")
    for name, hook in (("select_subprotocol", select_subprotocol), ("process_request", process_request)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} must be callable or None, not {type(hook).__name__}")


def _check_items(name: str, values: List[Any], kinds: Tuple[type, ...]) -> None:
    """Each item of a list option is of ``kinds`` (a subprotocol is a str, an origin a str
    or None), checked at once rather than at the first client.

    Raises:
        TypeError: an item of another type.
    """
    for value in values:
        if not isinstance(value, kinds):
            raise TypeError(f"{name} must hold {' or '.join(k.__name__ for k in kinds)}, not {type(value).__name__}")
