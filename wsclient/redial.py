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

import inspect
from typing import Any, Callable, Iterator, Optional, Union

from .backoff import Backoff
from .client import connect
from .connection import WebSocket
from .reconnecting import Redialer, connections
from .uri import redact

__all__ = ["reconnect"]

_CONNECT = inspect.signature(connect)
_NOT_HERE = frozenset({"reconnect", "on_connect", "sock"})


def reconnect(
    uri: Union[str, Callable[[], str]],
    *,
    backoff: Optional[Backoff] = None,
    **connect_options: Any,
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
        connect_options: the keyword arguments of :func:`wsclient.connect` (``headers``
            may be a callable, called for each attempt), except ``reconnect``,
            ``on_connect`` and ``sock``.

    Returns:
        An iterator of open :class:`~wsclient.WebSocket` connections; the first attempt
        is made on the first ``next()``.

    Raises:
        TypeError: at once, an option ``connect()`` does not take (a misspelt name),
            ``reconnect``, ``on_connect`` or ``sock``, or a ``backoff`` that is not a
            :class:`~wsclient.Backoff`.
        From the iterator: the final error (``InvalidStatus`` for a 403, the
        ``ConnectionClosed`` of a close the policy calls final, the last error once
        ``max_attempts`` attempts failed in a row).
    """
    if backoff is None:
        backoff = Backoff()
    elif not isinstance(backoff, Backoff):
        raise TypeError(f"backoff must be a wsclient.Backoff or None, not {type(backoff).__name__}")
    for name in connect_options:
        if name in _NOT_HERE or name not in _CONNECT.parameters or name == "uri":
            raise TypeError(f"reconnect() got an unexpected keyword argument {name!r}")
    headers = connect_options.pop("headers", None)

    def dial() -> WebSocket:
        ws: WebSocket = connect(uri() if callable(uri) else uri, headers=headers() if callable(headers) else headers,
                                **connect_options)
        return ws

    name = redact(uri) if isinstance(uri, str) else getattr(uri, "__qualname__", "uri()")
    return connections(Redialer(dial, backoff, name=name))
