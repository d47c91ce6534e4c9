"""connect(): open a client WebSocket connection, following redirects, under one deadline."""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional, Sequence, Tuple, Union, overload

from . import tls, transport
from .backoff import Backoff
from .connection import WebSocket
from .deflate import DeflateOptions, PerMessageDeflate, compression_options
from .exceptions import InvalidHandshake, InvalidStatus
from .extensions import client_accept, client_offer
from .handshake import DEFAULT_USER_AGENT, ClientHandshake
from .headers import Headers, HeadersLike
from .http11 import ResponseParser
from .options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_QUEUE,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    ConnectionOptions,
)
from .protocol import DEFAULT_MAX_SIZE, Protocol, Side
from .proxy import select_proxy
from .reconnecting import ReconnectingWebSocket
from .sockio import deadline_after, read_head, send_all
from .uri import WebSocketURI, parse_uri, redact, resolve_redirect
from .watcher import client_watcher

__all__ = ["connect", "DEFAULT_MAX_REDIRECTS"]

logger = logging.getLogger("wsclient")

#: How many redirects (301, 302, 303, 307, 308) ``connect()`` follows before giving up.
DEFAULT_MAX_REDIRECTS = 10

_REDIRECTS = frozenset((301, 302, 303, 307, 308))


@overload
def connect(
    uri: Union[str, Callable[[], str]],
    *,
    timeout: Optional[float] = ...,
    headers: Union[HeadersLike, Callable[[], HeadersLike]] = ...,
    subprotocols: Optional[Sequence[str]] = ...,
    origin: Optional[str] = ...,
    proxy: Optional[str] = ...,
    ssl_context: Optional[ssl.SSLContext] = ...,
    compression: Union[str, DeflateOptions, None] = ...,
    max_size: Optional[int] = ...,
    ping_interval: Optional[float] = ...,
    ping_timeout: Optional[float] = ...,
    close_timeout: Optional[float] = ...,
    max_queue: Optional[int] = ...,
    user_agent: Optional[str] = ...,
    max_redirects: int = ...,
    sock: Any = ...,
    unix_path: Optional[str] = ...,
    proxy_ssl_context: Optional[ssl.SSLContext] = ...,
    proxy_headers: HeadersLike = ...,
    reconnect: Literal[None, False] = ...,
    on_connect: Optional[Callable[[WebSocket], Any]] = ...,
) -> WebSocket: ...


@overload
def connect(
    uri: Union[str, Callable[[], str]],
    *,
    timeout: Optional[float] = ...,
    headers: Union[HeadersLike, Callable[[], HeadersLike]] = ...,
    subprotocols: Optional[Sequence[str]] = ...,
    origin: Optional[str] = ...,
    proxy: Optional[str] = ...,
    ssl_context: Optional[ssl.SSLContext] = ...,
    compression: Union[str, DeflateOptions, None] = ...,
    max_size: Optional[int] = ...,
    ping_interval: Optional[float] = ...,
    ping_timeout: Optional[float] = ...,
    close_timeout: Optional[float] = ...,
    max_queue: Optional[int] = ...,
    user_agent: Optional[str] = ...,
    max_redirects: int = ...,
    sock: Any = ...,
    unix_path: Optional[str] = ...,
    proxy_ssl_context: Optional[ssl.SSLContext] = ...,
    proxy_headers: HeadersLike = ...,
    reconnect: Union[Literal[True], Backoff],
    on_connect: Optional[Callable[[WebSocket], Any]] = ...,
) -> ReconnectingWebSocket: ...


@overload
def connect(
    uri: Union[str, Callable[[], str]],
    *,
    timeout: Optional[float] = ...,
    headers: Union[HeadersLike, Callable[[], HeadersLike]] = ...,
    subprotocols: Optional[Sequence[str]] = ...,
    origin: Optional[str] = ...,
    proxy: Optional[str] = ...,
    ssl_context: Optional[ssl.SSLContext] = ...,
    compression: Union[str, DeflateOptions, None] = ...,
    max_size: Optional[int] = ...,
    ping_interval: Optional[float] = ...,
    ping_timeout: Optional[float] = ...,
    close_timeout: Optional[float] = ...,
    max_queue: Optional[int] = ...,
    user_agent: Optional[str] = ...,
    max_redirects: int = ...,
    sock: Any = ...,
    unix_path: Optional[str] = ...,
    proxy_ssl_context: Optional[ssl.SSLContext] = ...,
    proxy_headers: HeadersLike = ...,
    reconnect: Union[bool, Backoff, None] = ...,
    on_connect: Optional[Callable[[WebSocket], Any]] = ...,
) -> Union[WebSocket, ReconnectingWebSocket]: ...


def connect(
    uri: Union[str, Callable[[], str]],
    *,
    timeout: Optional[float] = 10.0,
    headers: Union[HeadersLike, Callable[[], HeadersLike]] = None,
    subprotocols: Optional[Sequence[str]] = None,
    origin: Optional[str] = None,
    proxy: Optional[str] = "auto",
    ssl_context: Optional[ssl.SSLContext] = None,
    compression: Union[str, DeflateOptions, None] = "deflate",
    max_size: Optional[int] = DEFAULT_MAX_SIZE,
    ping_interval: Optional[float] = DEFAULT_PING_INTERVAL,
    ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT,
    close_timeout: Optional[float] = DEFAULT_CLOSE_TIMEOUT,
    max_queue: Optional[int] = DEFAULT_MAX_QUEUE,
    user_agent: Optional[str] = DEFAULT_USER_AGENT,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    sock: Any = None,
    unix_path: Optional[str] = None,
    proxy_ssl_context: Optional[ssl.SSLContext] = None,
    proxy_headers: HeadersLike = None,
    reconnect: Union[bool, Backoff, None] = None,
    on_connect: Optional[Callable[[WebSocket], Any]] = None,
) -> Union[WebSocket, ReconnectingWebSocket]:
    """Open a WebSocket connection.

    Args:
        uri: ``ws://`` or ``wss://``, a host name, IPv4 or bracketed IPv6 literal, an
            optional port, path and query; ``user:password@`` sends HTTP Basic auth. Or
            a callable returning one, called for each attempt (with ``reconnect``).
        timeout: one bound, in seconds, on everything opening takes: DNS, TCP, proxy,
            TLS, the HTTP upgrade and redirects. None: no bound.
        headers: extra request headers: a mapping or a list of ``(name, value)`` pairs
            (repeated names allowed). ``Origin``, ``User-Agent`` and ``Authorization``
            given here replace the defaults. Or a callable returning them, called for
            each attempt (fresh tokens when reconnecting).
        subprotocols: subprotocols to offer, in order of preference.
        origin: the ``Origin`` header; none is sent by default.
        proxy: ``"auto"`` reads the proxy environment variables (see
            :mod:`wsclient.proxy`); None connects directly; a URL (``http://``,
            ``https://``, ``socks4://``, ``socks4a://``, ``socks5://``, ``socks5h://``,
            with optional ``user:password@``) uses that proxy.
        ssl_context: the TLS context for ``wss://``; by default certificates are
            verified against certifi's CA bundle, with host name checking.
        compression: ``"deflate"`` offers permessage-deflate (the client compresses
            with a 12-bit window and memLevel 5:
            :data:`wsclient.deflate.CLIENT_WINDOW_BITS`), a
            :class:`~wsclient.DeflateOptions` tunes it, None offers nothing.
        max_size: the largest incoming message in bytes (after decompression); larger
            ones close the connection with 1009. None: unlimited.
        ping_interval: seconds between keepalive pings; None: no keepalive.
        ping_timeout: seconds to wait for the pong before closing with 1011.
        close_timeout: how long ``close()`` waits for the closing handshake.
        max_queue: bytes of received messages kept while the application is not calling
            ``recv()``; past it the connection stops reading (TCP pushes back on the peer).
            None: unlimited.
        user_agent: the ``User-Agent`` header; None sends none.
        max_redirects: how many redirects to follow.
        sock: an already connected socket to run the WebSocket over (no proxy, no DNS).
        unix_path: connect to this unix domain socket instead of the URI's host; the
            URI still gives the ``Host`` header and the path.
        proxy_ssl_context: the TLS context for an ``https://`` proxy.
        proxy_headers: extra headers for an HTTP proxy's ``CONNECT`` request.
        reconnect: True (``Backoff()``) or a :class:`~wsclient.Backoff`: return a
            :class:`~wsclient.ReconnectingWebSocket` that reconnects after drops, as
            the backoff's delays and ``retry`` policy say; the first connection is
            retried too. None or False: one plain connection.
        on_connect: with ``reconnect``, ``on_connect(ws)`` runs with each new
            :class:`~wsclient.WebSocket` before messages queued meanwhile are sent.

    Returns:
        The open :class:`~wsclient.WebSocket`; with ``reconnect``, a
        :class:`~wsclient.ReconnectingWebSocket`.

    Raises:
        InvalidURI: a malformed URI, before any network traffic.
        InvalidStatus: the server answered something else than 101 (the response, with
            its body, is ``.response``).
        InvalidHandshake: any other handshake failure.
        ProxyError: the proxy refused or failed.
        TimeoutError: ``timeout`` passed.
        OSError: DNS and connection failures, ``ssl.SSLCertVerificationError``: passed
            through unchanged.

    With ``reconnect``, only what the policy calls final (or the last error after
    ``max_attempts``) is raised.
    """
    if reconnect is not None and reconnect is not False:
        backoff = Backoff() if reconnect is True else reconnect
        if not isinstance(backoff, Backoff):
            raise TypeError(f"reconnect must be a bool, a wsclient.Backoff or None, not {type(reconnect).__name__}")
        if sock is not None:
            raise ValueError("reconnect= cannot be combined with sock=: a socket serves one connection")

        def dial() -> WebSocket:  # One plain connection; the URI and headers evaluated now.
            return connect(uri() if callable(uri) else uri, headers=headers() if callable(headers) else headers,
                           timeout=timeout, subprotocols=subprotocols, origin=origin, proxy=proxy,
                           ssl_context=ssl_context, compression=compression, max_size=max_size,
                           ping_interval=ping_interval, ping_timeout=ping_timeout, close_timeout=close_timeout,
                           max_queue=max_queue, user_agent=user_agent, max_redirects=max_redirects, sock=sock,
                           unix_path=unix_path, proxy_ssl_context=proxy_ssl_context, proxy_headers=proxy_headers)

        name = redact(uri) if isinstance(uri, str) else getattr(uri, "__qualname__", "uri()")
        return ReconnectingWebSocket(dial, backoff, on_connect=on_connect, name=name)
    if on_connect is not None:
        raise TypeError("on_connect= needs reconnect=True or a wsclient.Backoff")
    if callable(uri):
        uri = uri()
    if callable(headers):
        headers = headers()
    parsed = parse_uri(uri)
    deflate = compression_options(compression)
    options = ConnectionOptions(max_size=max_size, max_queue=max_queue, ping_interval=ping_interval,
                                ping_timeout=ping_timeout, close_timeout=close_timeout)
    _check_options(max_redirects=max_redirects, ssl_context=ssl_context,
                   proxy_ssl_context=proxy_ssl_context, sock=sock)
    deadline = deadline_after(timeout)
    extra = Headers(headers)
    settings = _Settings(
        subprotocols=subprotocols, origin=origin, proxy=proxy, ssl_context=ssl_context,
        deflate=deflate, options=options, user_agent=user_agent, sock=sock, unix_path=unix_path,
        proxy_ssl_context=proxy_ssl_context, proxy_headers=proxy_headers,
    )
    for attempt in range(max_redirects + 1):
        try:
            return _open(parsed, extra, settings, deadline)
        except InvalidStatus as exc:
            location = exc.response.headers.get("Location")
            if int(exc.response.status) not in _REDIRECTS or not location or attempt == max_redirects:
                raise
            if sock is not None or unix_path is not None:
                raise  # Cannot follow a redirect over a socket we were given.
            parsed, extra = _redirect(parsed, location, extra)
    raise AssertionError("unreachable")  # pragma: no cover


def _check_options(*, max_redirects: int, ssl_context: Any, proxy_ssl_context: Any, sock: Any) -> None:
    if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
        raise TypeError(f"max_redirects must be an int >= 0, not {type(max_redirects).__name__} {max_redirects!r}")
    if max_redirects < 0:
        raise ValueError(f"max_redirects must be an int >= 0, not {max_redirects!r}")
    tls.check_context("ssl_context", ssl_context)
    tls.check_context("proxy_ssl_context", proxy_ssl_context)
    if sock is not None and not isinstance(sock, socket.socket):
        raise TypeError(f"sock must be a connected socket.socket or None, not {type(sock).__name__}")


def _redirect(base: WebSocketURI, location: str, headers: Headers) -> Tuple[WebSocketURI, Headers]:
    """Where a 3xx points; refuses wss -> ws; drops credentials across hosts."""
    target = resolve_redirect(base, location)
    if base.secure and not target.secure:
        raise InvalidHandshake(f"refusing a redirect from wss:// to ws:// ({target.uri})")
    if (target.host, target.port) != (base.host, base.port):
        # Cookies are credentials as much as Authorization is (curl: CVE-2022-27776).
        headers = Headers([(name, value) for name, value in headers.items()
                           if name.lower() not in ("authorization", "cookie")])
    logger.info("following a redirect to %s", target.uri)
    return target, headers


@dataclass  # Not frozen: a frozen one sets each field through object.__setattr__ (1.2 us, not 0.2).
class _Settings:
    """The options of one ``connect()`` call that every attempt (redirect) reuses."""

    subprotocols: Optional[Sequence[str]]
    origin: Optional[str]
    proxy: Optional[str]
    ssl_context: Optional[ssl.SSLContext]
    deflate: Optional[DeflateOptions]
    options: ConnectionOptions
    user_agent: Optional[str]
    sock: Any
    unix_path: Optional[str]
    proxy_ssl_context: Optional[ssl.SSLContext]
    proxy_headers: HeadersLike


def _open(parsed: WebSocketURI, headers: Headers, settings: _Settings, deadline: Optional[float]) -> WebSocket:
    """One attempt: connect, handshake, and build the connection."""
    options = settings.deflate
    # The request first: what it refuses (a user name with ':' for Basic auth, a bad
    # header) is refused before any network traffic.
    handshake = ClientHandshake(
        parsed,
        origin=settings.origin,
        subprotocols=settings.subprotocols,
        extensions=client_offer(options) if options is not None else None,
        headers=headers,
        user_agent=settings.user_agent,
    )
    proxy_url = None
    if settings.sock is None and settings.unix_path is None:
        proxy_url = select_proxy(parsed, settings.proxy)
    sock, leftover = transport.open_socket(
        parsed,
        deadline=deadline,
        proxy=proxy_url,
        ssl_context=settings.ssl_context,
        proxy_ssl_context=settings.proxy_ssl_context,
        proxy_headers=settings.proxy_headers,
        sock=settings.sock,
        unix_path=settings.unix_path,
    )
    try:
        send_all(sock, handshake.request.serialize(), deadline)
        parser = ResponseParser()
        response = parser.feed(leftover) if leftover else None
        if response is None:
            response = read_head(sock, parser, deadline)
        result = handshake.check_response(response)
        deflate = None
        if options is not None:
            params = client_accept(options, result.extensions)
            if params is not None:
                deflate = PerMessageDeflate(params, is_client=True, options=options)
        protocol = Protocol(Side.CLIENT, max_size=settings.options.max_size, deflate=deflate)
        return WebSocket(
            sock,
            protocol,
            request=handshake.request,
            response=response,
            subprotocol=result.subprotocol,
            watcher=client_watcher(),
            options=settings.options,
            initial_data=parser.leftover,
        )
    except BaseException as exc:
        sock.close()
        transport.hint_opening_failure(exc, parsed)
        raise
