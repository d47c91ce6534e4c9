"""The opening handshake of RFC 6455 section 4, for both roles, without I/O.

The client builds its upgrade request with :class:`ClientHandshake` and checks the server's
answer with :meth:`ClientHandshake.check_response`. The server checks the request with
:func:`check_request`, then answers with :func:`accept_response` or :func:`reject_response`.
Reading and writing the bytes is the caller's job (:mod:`wsclient.http11` parses them).

Extension offers and answers travel here as raw ``Sec-WebSocket-Extensions`` values;
:mod:`wsclient.extensions` builds and interprets them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
import secrets
import sys
from typing import Dict, List, Optional, Sequence

from .exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidHTTP,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
)
from .headers import Headers, HeadersLike, header_contains_token, parse_token_list
from .http11 import Request, Response
from .uri import WebSocketURI
from .version import __version__

__all__ = [
    "GUID",
    "DEFAULT_USER_AGENT",
    "DEFAULT_SERVER_HEADER",
    "generate_key",
    "accept_key",
    "check_key",
    "HandshakeResult",
    "ClientHandshake",
    "check_request",
    "offered_subprotocols",
    "select_subprotocol",
    "accept_response",
    "reject_response",
    "error_response",
]

#: The GUID appended to the key to compute ``Sec-WebSocket-Accept`` (RFC 6455 section 1.3).
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: The only protocol version (RFC 6455 section 4.1, item 9).
VERSION = "13"


#: The ``User-Agent`` a client sends by default.
DEFAULT_USER_AGENT = (
    f"Python/{sys.version_info[0]}.{sys.version_info[1]} wsclient/{__version__}"
)

#: The ``Server`` header a server sends by default.
DEFAULT_SERVER_HEADER = DEFAULT_USER_AGENT

# Headers the handshake computes; users may not set them (the hint says what to use).
_CLIENT_OWNED = {
    "host": "it comes from the URI",
    "upgrade": "the handshake sets it",
    "connection": "the handshake sets it",
    "sec-websocket-key": "the handshake generates it",
    "sec-websocket-version": "the handshake sets it",
    "sec-websocket-accept": "servers send it",
    "sec-websocket-protocol": "use subprotocols=",
    "sec-websocket-extensions": "use the compression option",
}
_SERVER_OWNED = {
    "upgrade": "the handshake sets it",
    "connection": "the handshake sets it",
    "sec-websocket-accept": "the handshake computes it",
    "sec-websocket-protocol": "use subprotocol=",
    "sec-websocket-extensions": "use extensions=",
}


def generate_key() -> str:
    """A new ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (RFC 6455 section 4.1).

    Returns:
        A 24-character string.
    """
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for ``key`` (RFC 6455 section 4.2.2, item 5.4).

    Args:
        key: the client's ``Sec-WebSocket-Key``.

    Returns:
        base64(SHA-1(key + GUID)).
    """
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()  # noqa: S324 - RFC 6455
    return base64.b64encode(digest).decode("ascii")


def check_key(key: str) -> bool:
    """Whether ``key`` is base64 of exactly 16 bytes (RFC 6455 section 4.2.1, item 5).

    Args:
        key: a ``Sec-WebSocket-Key`` value.

    Returns:
        ``True`` when it is valid.
    """
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


@dataclasses.dataclass(frozen=True)
class HandshakeResult:
    """What the server accepted.

    Attributes:
        subprotocol: the selected subprotocol, or ``None``.
        extensions: the server's ``Sec-WebSocket-Extensions`` header values, raw, in order
            (empty when it accepted none); :mod:`wsclient.extensions` interprets them.
    """

    subprotocol: Optional[str]
    extensions: List[str] = dataclasses.field(default_factory=list)


def _user_headers(headers: HeadersLike, owned: Dict[str, str]) -> Headers:
    """The user's headers as :class:`Headers`, refusing the ones the handshake owns."""
    result = Headers(headers)
    for name in result:
        hint = owned.get(name.lower())
        if hint is not None:
            raise ValueError(f"header {name!r} cannot be set: {hint}")
    return result


_SEPARATORS = frozenset('()<>@,;:\\"/[]?={} \t')  # RFC 2616 section 2.2


def _check_subprotocols(subprotocols: Optional[Sequence[str]]) -> List[str]:
    """Validate an offer: tokens, no repeats (RFC 6455 section 4.1, item 10)."""
    if subprotocols is None:
        return []
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols must be a sequence of str, not a str")
    offered = list(subprotocols)
    for name in offered:
        if not isinstance(name, str):
            raise TypeError(f"subprotocol names must be str, not {type(name).__name__}")
        if not name or not all("!" <= char <= "~" and char not in _SEPARATORS for char in name):
            raise ValueError(f"invalid subprotocol name {name!r}")
    if len(set(offered)) != len(offered):
        raise ValueError(f"repeated subprotocol in {offered!r}")
    return offered



class ClientHandshake:
    """The client's side of the opening handshake (RFC 6455 section 4.1).

    Headers the handshake computes (``Host``, ``Upgrade``, ``Connection`` and every
    ``Sec-WebSocket-*``) cannot be given in ``headers``. ``Origin``, ``User-Agent`` and
    ``Authorization`` given there replace the ones this class would send.

    Args:
        uri: where to connect; its user and password give ``Authorization: Basic``.
        origin: the ``Origin`` header, or ``None`` for none.
        subprotocols: the subprotocols to offer, in order of preference.
        extensions: the ``Sec-WebSocket-Extensions`` offer, or ``None``.
        headers: more request headers: a mapping, ``(name, value)`` pairs or :class:`Headers`.
        user_agent: the ``User-Agent`` header; ``None`` sends none.
        key: the ``Sec-WebSocket-Key`` (for tests); a fresh random one by default.

    Attributes:
        request: the :class:`Request` to send.
        key: the ``Sec-WebSocket-Key`` it carries.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a header the handshake owns, an invalid subprotocol, key or header.
    """

    def __init__(
        self,
        uri: WebSocketURI,
        *,
        origin: Optional[str] = None,
        subprotocols: Optional[Sequence[str]] = None,
        extensions: Optional[str] = None,
        headers: HeadersLike = None,
        user_agent: Optional[str] = DEFAULT_USER_AGENT,
        key: Optional[str] = None,
    ) -> None:
        if not isinstance(uri, WebSocketURI):
            raise TypeError(f"uri must be a WebSocketURI, not {type(uri).__name__}")
        if key is not None and not check_key(key):
            raise ValueError("key must be base64 of 16 bytes")
        self.key = generate_key() if key is None else key
        self.subprotocols = _check_subprotocols(subprotocols)
        self.extensions = extensions
        extra = _user_headers(headers, _CLIENT_OWNED)
        if origin is not None and "Origin" in extra:
            raise ValueError("give the Origin either as origin= or in headers, not both")
        fields = Headers()
        fields.add("Host", uri.host_header)
        fields.add("Upgrade", "websocket")
        fields.add("Connection", "Upgrade")
        fields.add("Sec-WebSocket-Key", self.key)
        fields.add("Sec-WebSocket-Version", VERSION)
        if self.subprotocols:
            fields.add("Sec-WebSocket-Protocol", ", ".join(self.subprotocols))
        if extensions is not None:
            fields.add("Sec-WebSocket-Extensions", extensions)
        if origin is not None:
            fields.add("Origin", origin)
        if uri.user is not None and "Authorization" not in extra:
            fields.add("Authorization", _basic_auth(uri.user, uri.password or ""))
        if user_agent is not None and "User-Agent" not in extra:
            fields.add("User-Agent", user_agent)
        for name, value in extra.items():
            fields.add(name, value)
        self.request = Request("GET", uri.resource, fields)

    def check_response(self, response: Response) -> HandshakeResult:
        """Check the server's answer (RFC 6455 section 4.1, the client's checks).

        Args:
            response: the parsed response.

        Returns:
            The negotiated subprotocol and the raw extension values.

        Raises:
            InvalidStatus: the status is not 101 (a redirect included: the caller decides).
            InvalidHeader: ``Upgrade``, ``Connection`` or ``Sec-WebSocket-Accept`` is wrong.
            NegotiationError: a subprotocol that was not offered, several subprotocols, or
                extensions when none were offered.
        """
        if int(response.status) != 101:
            raise InvalidStatus(response)
        headers = response.headers
        _require_token(headers, "Upgrade", "websocket")
        _require_token(headers, "Connection", "upgrade")
        accepts = headers.get_all("Sec-WebSocket-Accept") or []
        if len(accepts) != 1:
            problem = "missing" if not accepts else "repeated"
            raise InvalidHeader("Sec-WebSocket-Accept", f"{problem} Sec-WebSocket-Accept header")
        if accepts[0] != accept_key(self.key):
            raise InvalidHeader("Sec-WebSocket-Accept", "wrong Sec-WebSocket-Accept value")
        extensions = headers.get_all("Sec-WebSocket-Extensions") or []
        # A value of only spaces and commas lists nothing (RFC 7230 section 7).
        if self.extensions is None and any(value.strip(" \t,") for value in extensions):
            raise NegotiationError("the server accepted extensions that were not offered")
        return HandshakeResult(self._selected_subprotocol(headers), extensions)

    def _selected_subprotocol(self, headers: Headers) -> Optional[str]:
        selected = parse_token_list(headers.get_all("Sec-WebSocket-Protocol") or [])
        if not selected:
            return None
        if len(selected) > 1:
            raise NegotiationError(f"the server selected several subprotocols: {selected!r}")
        if selected[0] not in self.subprotocols:
            raise NegotiationError(f"the server selected subprotocol {selected[0]!r}, not offered")
        return selected[0]


def _basic_auth(user: str, password: str) -> str:
    """An ``Authorization`` value for HTTP Basic auth (RFC 7617 section 2, UTF-8)."""
    if ":" in user:
        raise InvalidURI("a user name for HTTP Basic auth cannot contain ':' (RFC 7617)")
    credentials = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {credentials}"


def _require_token(headers: Headers, name: str, token: str, status: int = 400) -> None:
    if not header_contains_token(headers, name, token):
        problem = "missing" if name not in headers else "wrong"
        raise InvalidHeader(name, f"{problem} {name} header: expected {token!r}", status)


# The absolute-form RFC 6455 section 4.2.1 allows besides a path ("GET http://h/chat").
_ABSOLUTE_TARGET_RE = re.compile(r"(?i)(https?|wss?)://")


def check_request(request: Request) -> str:
    """Check a client's opening handshake (RFC 6455 section 4.2.1).

    Args:
        request: the parsed request.

    Returns:
        The client's ``Sec-WebSocket-Key``.

    Raises:
        InvalidHTTP: the method is not ``GET`` (status 405), the version is not HTTP/1.1
            or a later HTTP/1 minor version (505), or the request target is neither a path
            nor an absolute ``http``/``https``/``ws``/``wss`` URI (400: ``*``, a bare
            authority or a relative name; RFC 6455 section 4.2.1), or the request has a
            body (``Transfer-Encoding``, or a ``Content-Length`` other than 0: 400).
        InvalidHeader: a missing or repeated ``Host`` (400); no ``Upgrade: websocket``
            (426: "this is a WebSocket endpoint"); no ``upgrade`` in ``Connection`` (400);
            a ``Sec-WebSocket-Version`` other than ``13`` (426); a missing, repeated or
            malformed ``Sec-WebSocket-Key`` (400).
    """
    if request.method != "GET":
        message = f"method {request.method} not allowed: a WebSocket handshake is a GET"
        raise InvalidHTTP(message, 405)
    if not _is_http1x_from_11(request.version):
        raise InvalidHTTP(f"{request.version} is not supported; WebSocket needs HTTP/1.1", 505)
    if not request.path.startswith("/") and not _ABSOLUTE_TARGET_RE.match(request.path):
        raise InvalidHTTP("the request target must be a path (/...) or an absolute URI", 400)
    headers = request.headers
    if "Transfer-Encoding" in headers or headers.get("Content-Length", "0").strip() != "0":
        # What follows the head is WebSocket frames: a body would be read as frames.
        raise InvalidHTTP("a WebSocket handshake has no request body", 400)
    if len(headers.get_all("Host") or []) != 1:
        problem = "missing" if "Host" not in headers else "repeated"
        raise InvalidHeader("Host", f"{problem} Host header (RFC 9112 section 3.2)")
    if not header_contains_token(headers, "Upgrade", "websocket"):
        message = "this is a WebSocket endpoint: send a WebSocket handshake (Upgrade: websocket)"
        raise InvalidHeader("Upgrade", message, 426)
    _require_token(headers, "Connection", "upgrade")
    versions = headers.get_all("Sec-WebSocket-Version") or []
    if versions != [VERSION]:
        message = f"unsupported Sec-WebSocket-Version {', '.join(versions) or '(missing)'}: use 13"
        raise InvalidHeader("Sec-WebSocket-Version", message, 426)
    keys = headers.get_all("Sec-WebSocket-Key") or []
    if len(keys) != 1:
        problem = "missing" if not keys else "repeated"
        raise InvalidHeader("Sec-WebSocket-Key", f"{problem} Sec-WebSocket-Key header")
    if not check_key(keys[0]):
        raise InvalidHeader("Sec-WebSocket-Key", "Sec-WebSocket-Key is not base64 of 16 bytes")
    return keys[0]


def _is_http1x_from_11(version: str) -> bool:
    """``HTTP/1.1`` or a later HTTP/1 minor version (RFC 6455 section 4.2.1, item 1)."""
    return re.fullmatch(r"HTTP/1\.[1-9]", version) is not None


def offered_subprotocols(request: Request) -> List[str]:
    """The subprotocols a client offered, in its order (RFC 6455 section 4.2.1, item 8).

    Args:
        request: the client's request.

    Returns:
        The elements of every ``Sec-WebSocket-Protocol`` header; empty when none.
    """
    return parse_token_list(request.headers.get_all("Sec-WebSocket-Protocol") or [])


def select_subprotocol(offered: Sequence[str], supported: Sequence[str]) -> Optional[str]:
    """The server's choice: the first of ``supported`` that the client offered.

    Args:
        offered: what the client offered (:func:`offered_subprotocols`).
        supported: what the server speaks, in order of preference.

    Returns:
        The subprotocol, or ``None`` when the client offered none of them (or nothing).
    """
    for name in supported:
        if name in offered:
            return name
    return None


def accept_response(
    request: Request,
    *,
    subprotocol: Optional[str] = None,
    extensions: Optional[str] = None,
    headers: HeadersLike = None,
    server: Optional[str] = DEFAULT_SERVER_HEADER,
) -> Response:
    """The ``101 Switching Protocols`` answer to a checked request (RFC 6455 section 4.2.2).

    Args:
        request: the client's request, already checked with :func:`check_request`.
        subprotocol: the selected subprotocol (one the client offered), or ``None``.
        extensions: the accepted ``Sec-WebSocket-Extensions`` value, or ``None``.
        headers: more response headers; a ``Server`` header there replaces ``server``.
        server: the ``Server`` header; ``None`` sends none.

    Returns:
        The response to send.

    Raises:
        ValueError: the request has no single key, ``subprotocol`` was not offered, or
            ``headers`` sets a header the handshake owns.
    """
    keys = request.headers.get_all("Sec-WebSocket-Key") or []
    if len(keys) != 1:
        raise ValueError("the request has no single Sec-WebSocket-Key; check it first")
    if subprotocol is not None and subprotocol not in offered_subprotocols(request):
        raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
    extra = _user_headers(headers, _SERVER_OWNED)
    fields = Headers()
    fields.add("Upgrade", "websocket")
    fields.add("Connection", "Upgrade")
    fields.add("Sec-WebSocket-Accept", accept_key(keys[0]))
    if subprotocol is not None:
        fields.add("Sec-WebSocket-Protocol", subprotocol)
    if extensions is not None:
        fields.add("Sec-WebSocket-Extensions", extensions)
    if server is not None and "Server" not in extra:
        fields.add("Server", server)
    for name, value in extra.items():
        fields.add(name, value)
    return Response(101, fields)


def reject_response(status: int, message: str, *, headers: HeadersLike = None) -> Response:
    """An error answer to a handshake: a short ``text/plain`` body saying what was wrong.

    It carries ``Connection: close``; a ``426`` also ``Upgrade: websocket`` and
    ``Sec-WebSocket-Version: 13`` (RFC 6455 section 4.2.2, item 4; RFC 9110 section
    15.5.22), a ``405`` ``Allow: GET`` (RFC 9110 section 15.5.6). Headers given in
    ``headers`` replace these defaults.

    Args:
        status: the status, 200 or above (4xx and 5xx, usually).
        message: the text of the body, for people.
        headers: more headers.

    Returns:
        The response to send before closing the connection.

    Raises:
        ValueError: ``status`` below 200, or one that cannot carry a body (204, 304).
    """
    if int(status) < 200:
        raise ValueError(f"a handshake cannot be rejected with status {int(status)}")
    extra = Headers(headers)
    fields = Headers()
    defaults = [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")]
    if int(status) == 426:
        defaults[1] = ("Connection", "Upgrade, close")
        defaults += [("Upgrade", "websocket"), ("Sec-WebSocket-Version", VERSION)]
    elif int(status) == 405:
        defaults.append(("Allow", "GET"))
    for name, value in defaults:
        if name not in extra:
            fields.add(name, value)
    for name, value in extra.items():
        fields.add(name, value)
    return Response(status, fields, message.rstrip("\n") + "\n")


def error_response(exc: InvalidHandshake) -> Response:
    """The :func:`reject_response` for a failed :func:`check_request`.

    Args:
        exc: the exception; its ``.status`` (400 when it has none) and message are used.

    Returns:
        The response to send.
    """
    status = getattr(exc, "status", None) or 400
    return reject_response(status, str(exc) or "invalid WebSocket handshake")
