"""reconnect(): ``connect()`` in a loop, one fresh WebSocket per connection.

The iterator form of reconnecting, the shape users of ``websockets`` know::

    for ws in wsclient.reconnect(uri):
        try:
            for message in ws:
                handle(message)
        except wsclient.ConnectionClosed:
            continue  # the next connection

It sits above :mod:`wsclient.client` (it calls ``connect()``), as the reconnection
machinery it shares with ``connect(reconnect=...)`` sits below it
(:mod:`wsclient.reconnecting`).
"""

from __future__ import annotations

import ssl
from typing import Callable, Iterator, Optional, Sequence, Union

from .backoff import Backoff
from .client import DEFAULT_MAX_REDIRECTS, connect
from .connection import WebSocket
from .deflate import DeflateOptions
from .handshake import DEFAULT_USER_AGENT
from .headers import HeadersLike
from .options import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_QUEUE, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT
from .protocol import DEFAULT_MAX_SIZE
from .reconnecting import Redialer, connections
from .uri import redact

__all__ = ["reconnect"]


def reconnect(
    uri: Union[str, Callable[[], str]],
    *,
    backoff: Optional[Backoff] = None,
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
    unix_path: Optional[str] = None,
    proxy_ssl_context: Optional[ssl.SSLContext] = None,
    proxy_headers: HeadersLike = None,
) -> Iterator[WebSocket]:
    """Yield a new open connection to ``uri`` after each drop, with backoff.

    Each time the loop asks for the next connection, the previous one is closed if it is
    still open (1000), and how it ended goes through the backoff's ``retry`` policy: the
    default reconnects after network failures and after close codes such as 1001, 1006,
    1011 and 1012 (see :func:`wsclient.backoff.should_retry`). ``break`` out of the loop
    to stop.

    Args:
        uri: as for :func:`wsclient.connect`; a callable is called for each attempt.
        backoff: the delays, attempt limit and policy; None: ``Backoff()``.
        headers: as for :func:`wsclient.connect`; a callable is called for each attempt
            (a fresh token each time).
        timeout, subprotocols, origin, proxy, ssl_context, compression, max_size, ping_interval, ping_timeout, close_timeout, max_queue, user_agent, max_redirects, unix_path, proxy_ssl_context, proxy_headers:
            as for :func:`wsclient.connect`, for every connection (``sock=`` has no place
            here: a socket serves one connection).

    Returns:
        An iterator of open :class:`~wsclient.WebSocket` connections; the first attempt
        is made on the first ``next()``.

    Raises:
        TypeError: at once, an option ``connect()`` does not take (a misspelt name) or a
            ``backoff`` that is not a :class:`~wsclient.Backoff`.

    From the iterator: the final error (``InvalidStatus`` for a 403, the
    ``ConnectionClosed`` of a close the policy calls final, the last error once
    ``max_attempts`` attempts failed in a row).
    """
    if backoff is None:
        backoff = Backoff()
    elif not isinstance(backoff, Backoff):
        raise TypeError(f"backoff must be a wsclient.Backoff or None, not {type(backoff).__name__}")

    def dial() -> WebSocket:  # One plain connection; the URI and headers evaluated now.
        return connect(uri() if callable(uri) else uri, headers=headers() if callable(headers) else headers,
                       timeout=timeout, subprotocols=subprotocols, origin=origin, proxy=proxy,
                       ssl_context=ssl_context, compression=compression, max_size=max_size,
                       ping_interval=ping_interval, ping_timeout=ping_timeout, close_timeout=close_timeout,
                       max_queue=max_queue, user_agent=user_agent, max_redirects=max_redirects,
                       unix_path=unix_path, proxy_ssl_context=proxy_ssl_context, proxy_headers=proxy_headers)

    name = redact(uri) if isinstance(uri, str) else getattr(uri, "__qualname__", "uri()")
    return connections(Redialer(dial, backoff, name=name))
