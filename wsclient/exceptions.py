"""Every exception wsclient raises itself, in one tree.

::

    OSError
     └─ WebSocketError                  base of everything raised by wsclient
         ├─ ConnectionClosed            operating on a closed connection (.code, .reason)
         │   ├─ ConnectionClosedOK      closed with 1000, 1001, or an empty close frame
         │   └─ ConnectionClosedError   closed with any other code (1006: no close frame)
         ├─ InvalidURI                  not a valid ws:// or wss:// URI (also a ValueError)
         ├─ InvalidHandshake            the opening handshake failed
         │   ├─ InvalidHTTP             malformed or oversized HTTP head (.status: 400/431)
         │   ├─ InvalidHeader           a required header is missing or wrong
         │   ├─ NegotiationError        a subprotocol or extension that was not offered
         │   └─ InvalidStatus           the server answered something else than 101 (.response)
         ├─ ProxyError                  the proxy refused or failed (.status or None)
         └─ ProtocolError               the peer broke RFC 6455 (.code: the close code to send)
             └─ PayloadTooBig           a message over max_size (.code 1009)

Timeouts are the builtin :class:`TimeoutError`; DNS failures, refused connections and TLS
verification errors are the builtin :class:`OSError` subclasses, passed through unchanged.
Misuse of the API raises :class:`ValueError`, :class:`TypeError` or :class:`RuntimeError`.

``WebSocketError`` derives from :class:`OSError`, as :mod:`smtplib`'s errors do, so code
that already handles network failures with ``except OSError`` handles these too.

:func:`add_hint` tells the reader of an error what to do about it without changing its type
(an :class:`ssl.SSLCertVerificationError` stays one): a PEP 678 note where Python has
:meth:`BaseException.add_note` (3.11 and later), the end of the message where it does not.
It is for the I/O layer, not exported (``__all__`` lists the exception classes only).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .http11 import Response

__all__ = [
    "WebSocketError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidHandshake",
    "InvalidHTTP",
    "InvalidHeader",
    "NegotiationError",
    "InvalidStatus",
    "ProxyError",
    "ProtocolError",
    "PayloadTooBig",
]

#: Whether exceptions take PEP 678 notes (Python 3.11 and later).
HAS_NOTES = sys.version_info >= (3, 11)


def add_hint(exc: BaseException, hint: str, *, note: bool = HAS_NOTES) -> None:
    """Attach ``hint`` (what to do about ``exc``) to ``exc`` itself, keeping its type.

    Args:
        exc: the exception, about to be raised or re-raised.
        hint: one or more sentences for a person.
        note: add a PEP 678 note (shown under the traceback, in ``exc.__notes__``); False
            appends the hint to the message instead (what happens before Python 3.11).

    Raises:
        RuntimeError: ``note`` on a Python without notes.
    """
    if note:
        if not hasattr(exc, "add_note"):
            raise RuntimeError("PEP 678 notes need Python 3.11 or later")
        exc.add_note(hint)
    elif isinstance(exc, OSError) and isinstance(exc.strerror, str):
        exc.strerror = f"{exc.strerror}. {hint}"  # str() of OSError and SSLError reads it
    elif len(exc.args) == 1 and isinstance(exc.args[0], str):
        exc.args = (f"{exc.args[0]}. {hint}",)
    else:
        exc.args = (*exc.args, hint)


class WebSocketError(OSError):
    """Base class of every error wsclient raises itself."""

    def __init__(self, message: str = "") -> None:
        # One argument only: OSError(a, b) would read them as (errno, strerror).
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConnectionClosed(WebSocketError):
    """The connection is closed; raised by operations on it.

    Attributes:
        code: the close code the peer sent; where it sent none, the one this end sent;
            1006 where no close frame went either way.
        reason: the close reason that goes with ``code``.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = int(code)
        self.reason = reason
        text = f"connection closed: {self.code}"
        phrase = getattr(code, "phrase", None)  # A wsclient.CloseCode names itself.
        if phrase:
            text += f" ({phrase})"
        if reason:
            text += f" {reason!r}"
        super().__init__(text)


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally: code 1000 or 1001, or an empty close frame (1005).

    An empty close frame is what many peers send for a plain ``close()`` (Node's ``ws``
    among them); like ``websockets``, wsclient counts it as a normal close.
    """


class ConnectionClosedError(ConnectionClosed):
    """The connection closed abnormally (any code but 1000 and 1001)."""


class InvalidURI(WebSocketError, ValueError):
    """A URI that is not a valid ``ws://`` or ``wss://`` URI."""


class InvalidHandshake(WebSocketError):
    """The opening handshake failed (RFC 6455 section 4)."""


class InvalidHTTP(InvalidHandshake):
    """A malformed or oversized HTTP/1.1 head.

    Attributes:
        status: the HTTP status a server answers with (400, or 431 for oversized headers).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or has a wrong value.

    Attributes:
        name: the header's name.
        status: the HTTP status a server answers with (400, or 426 for a wrong version).
    """

    def __init__(self, name: str, message: str, status: int = 400) -> None:
        self.name = name
        self.status = status
        super().__init__(message)


class NegotiationError(InvalidHandshake):
    """A subprotocol or extension negotiation failed.

    Attributes:
        status: the HTTP status a server answers with (400).
    """

    status = 400


class InvalidStatus(InvalidHandshake):
    """The server answered the opening handshake with something else than ``101``.

    Attributes:
        response: the :class:`wsclient.Response`, with ``.status``, ``.headers`` and
            ``.body`` (users need the body of a 401 or 403).
    """

    def __init__(self, response: "Response") -> None:
        self.response = response
        super().__init__(f"server rejected WebSocket connection: HTTP {int(response.status)}")

    @property
    def status(self) -> int:
        """The HTTP status code of the response."""
        return int(self.response.status)


class ProxyError(WebSocketError):
    """The proxy refused the tunnel or failed.

    Attributes:
        status: the proxy's HTTP status where it gave one (e.g. 407), else ``None``.

    The message never contains the proxy's password.
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        self.status = status
        super().__init__(message)


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455 (or RFC 7692).

    Attributes:
        code: the close code this end closes the connection with (1002 by default; 1007
            for invalid UTF-8, 1009 for a message that is too big).
    """

    def __init__(self, message: str, code: int = 1002) -> None:
        self.code = code
        super().__init__(message)


class PayloadTooBig(ProtocolError):
    """A message larger than ``max_size`` (close code 1009, RFC 6455 section 7.4.1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=1009)
