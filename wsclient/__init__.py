"""wsclient: a synchronous, threaded WebSocket client and server.

RFC 6455 with permessage-deflate (RFC 7692), TLS with certifi's CA bundle by default, and
SOCKS4/4a/5/5h and HTTP(S) CONNECT proxies, behind a blocking API in the style of the
standard library::

    import wsclient

    with wsclient.connect("wss://example.com/socket") as ws:
        ws.send("hello")
        print(ws.recv(timeout=5))
"""

from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidHTTP,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    WebSocketError,
)
from .close import CloseCode
from .headers import Headers
from .http11 import Request, Response
from .deflate import DeflateOptions
from .connection import WebSocket, wait
from .backoff import Backoff
from .reconnecting import ReconnectingWebSocket
from .client import connect
from .redial import reconnect
from .server import WebSocketServer, broadcast, serve
from .tls import client_ssl_context, server_ssl_context
from .routing import route
from .version import __version__ as __version__  # re-exported: wsclient.__version__

__all__ = [
    "connect",
    "reconnect",
    "Backoff",
    "ReconnectingWebSocket",
    "serve",
    "route",
    "broadcast",
    "wait",
    "client_ssl_context",
    "server_ssl_context",
    "WebSocket",
    "WebSocketServer",
    "Request",
    "Response",
    "Headers",
    "DeflateOptions",
    "CloseCode",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHTTP",
    "InvalidStatus",
    "InvalidURI",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "WebSocketError",
]
