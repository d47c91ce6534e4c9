"""Tests for wsclient.exceptions: the shape of the tree, the attributes, readable messages."""

from __future__ import annotations

import http
from types import SimpleNamespace

import pytest

import wsclient
from wsclient import exceptions
from wsclient.exceptions import (
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

# (class, its direct parents within the tree as documented in the module docstring)
TREE = [
    (WebSocketError, (OSError,)),
    (ConnectionClosed, (WebSocketError,)),
    (ConnectionClosedOK, (ConnectionClosed,)),
    (ConnectionClosedError, (ConnectionClosed,)),
    (InvalidURI, (WebSocketError, ValueError)),
    (InvalidHandshake, (WebSocketError,)),
    (InvalidHTTP, (InvalidHandshake,)),
    (InvalidHeader, (InvalidHandshake,)),
    (NegotiationError, (InvalidHandshake,)),
    (InvalidStatus, (InvalidHandshake,)),
    (ProxyError, (WebSocketError,)),
    (ProtocolError, (WebSocketError,)),
    (PayloadTooBig, (ProtocolError,)),
]


@pytest.mark.parametrize("cls, parents", TREE, ids=[c.__name__ for c, _ in TREE])
def test_tree(cls: type, parents: tuple) -> None:
    assert cls.__bases__ == parents
    assert issubclass(cls, WebSocketError)
    assert issubclass(cls, OSError)


def test_every_exception_is_in_the_tree_and_exported() -> None:
    assert sorted(exceptions.__all__) == sorted(c.__name__ for c, _ in TREE)
    for cls, _ in TREE:
        assert getattr(wsclient, cls.__name__) is cls
        assert cls.__doc__
        # The docstring's drawing names every class.
        assert cls.__name__ in exceptions.__doc__


def test_network_handlers_catch_them() -> None:
    with pytest.raises(OSError):
        raise ProtocolError("bad frame")
    with pytest.raises(ValueError):
        raise InvalidURI("not a ws:// URI")
    with pytest.raises(ConnectionClosed):
        raise ConnectionClosedOK(1000)
    with pytest.raises(ConnectionClosed):
        raise ConnectionClosedError(1006)
    with pytest.raises(ProtocolError):
        raise PayloadTooBig("too big")


def test_unrelated_errors_are_not_in_the_tree() -> None:
    assert not issubclass(ConnectionClosed, ValueError)
    assert not issubclass(ProtocolError, ValueError)
    assert not issubclass(TimeoutError, WebSocketError)
    assert not issubclass(InvalidURI, InvalidHandshake)
    assert not issubclass(PayloadTooBig, ConnectionClosed)


def test_websocket_error_is_a_plain_message() -> None:
    error = WebSocketError("something failed")
    assert str(error) == "something failed"
    # One argument, not read as (errno, strerror).
    assert error.errno is None
    assert error.strerror is None
    assert str(WebSocketError()) == ""


@pytest.mark.parametrize(
    "code, reason, text",
    [
        (wsclient.CloseCode(1000), "", "connection closed: 1000 (normal closure)"),
        (wsclient.CloseCode(1001), "bye", "connection closed: 1001 (going away) 'bye'"),
        (wsclient.CloseCode(1006), "", "connection closed: 1006 (abnormal closure)"),
        (wsclient.CloseCode(1009), "", "connection closed: 1009 (message too big)"),
        (wsclient.CloseCode(1011), "oops", "connection closed: 1011 (internal error) 'oops'"),
        (1011, "oops", "connection closed: 1011 'oops'"),  # A bare int is not looked up.
        (4000, "app", "connection closed: 4000 'app'"),
        (3000, "", "connection closed: 3000"),
    ],
)
def test_connection_closed(code: int, reason: str, text: str) -> None:
    for cls in (ConnectionClosed, ConnectionClosedOK, ConnectionClosedError):
        error = cls(code, reason)
        assert error.code == code and type(error.code) is int
        assert error.reason == reason
        assert str(error) == text


def test_connection_closed_reason_defaults_to_empty() -> None:
    error = ConnectionClosedError(wsclient.CloseCode.ABNORMAL_CLOSURE)
    assert error.reason == ""
    assert str(error) == "connection closed: 1006 (abnormal closure)"


def test_connection_closed_takes_a_close_code() -> None:
    error = ConnectionClosedOK(wsclient.CloseCode.GOING_AWAY, "shutdown")
    assert error.code == 1001
    assert str(error) == "connection closed: 1001 (going away) 'shutdown'"


def test_connection_closed_chains_the_protocol_error() -> None:
    cause = ProtocolError("invalid UTF-8 in a text message", code=1007)
    try:
        try:
            raise cause
        except ProtocolError as exc:
            raise ConnectionClosedError(exc.code, "bad text") from exc
    except ConnectionClosedError as error:
        assert error.__cause__ is cause
        assert error.code == 1007


def test_protocol_error_code() -> None:
    error = ProtocolError("reserved opcode 0x3")
    assert error.code == 1002
    assert str(error) == "reserved opcode 0x3"
    assert ProtocolError("bad text", code=1007).code == 1007


def test_payload_too_big() -> None:
    error = PayloadTooBig("message over max_size (10 bytes)")
    assert error.code == 1009
    assert isinstance(error, ProtocolError)
    assert str(error) == "message over max_size (10 bytes)"


def test_invalid_uri() -> None:
    error = InvalidURI("http://example.com is not a ws:// or wss:// URI")
    assert str(error) == "http://example.com is not a ws:// or wss:// URI"
    # ``except ValueError`` catches it, as it does for urllib.parse errors.
    with pytest.raises(ValueError, match="not a ws://"):
        raise error


def test_invalid_http() -> None:
    error = InvalidHTTP("header line too long")
    assert error.status == 400
    assert str(error) == "header line too long"
    assert InvalidHTTP("head too large", status=431).status == 431


def test_invalid_header() -> None:
    error = InvalidHeader("Sec-WebSocket-Version", "unsupported version 8", status=426)
    assert error.name == "Sec-WebSocket-Version"
    assert error.status == 426
    assert str(error) == "unsupported version 8"
    assert InvalidHeader("Upgrade", "missing").status == 400


def test_negotiation_error() -> None:
    error = NegotiationError("server chose subprotocol 'x' that was not offered")
    assert error.status == 400
    assert "not offered" in str(error)


def test_invalid_status() -> None:
    response = SimpleNamespace(
        status=http.HTTPStatus.UNAUTHORIZED, headers={"WWW-Authenticate": "Basic"}, body=b"no"
    )
    error = InvalidStatus(response)  # type: ignore[arg-type]
    assert error.response is response
    assert error.status == 401
    assert isinstance(error.status, int)
    assert str(error) == "server rejected WebSocket connection: HTTP 401"
    assert error.response.body == b"no"


def test_proxy_error() -> None:
    error = ProxyError("proxy refused the tunnel: 407 Proxy Authentication Required", status=407)
    assert error.status == 407
    assert str(error) == "proxy refused the tunnel: 407 Proxy Authentication Required"
    assert ProxyError("SOCKS5 proxy closed the connection").status is None


# -- the module stays sans-I/O (DESIGN.md: the core never touches sockets or threads) ----
