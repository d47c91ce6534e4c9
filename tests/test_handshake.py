"""Tests for wsclient.handshake: RFC 6455 section 4, both roles, in memory."""

from __future__ import annotations

import base64
import random
import sys
from typing import List, Optional, Tuple

import pytest

import wsclient

from wsclient.exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidHTTP,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
)
from wsclient.handshake import (
    DEFAULT_SERVER_HEADER,
    DEFAULT_USER_AGENT,
    GUID,
    ClientHandshake,
    HandshakeResult,
    accept_key,
    accept_response,
    check_key,
    check_request,
    error_response,
    generate_key,
    offered_subprotocols,
    reject_response,
    select_subprotocol,
)
from wsclient.headers import Headers
from wsclient.http11 import Request, RequestParser, Response, ResponseParser
from wsclient.uri import parse_uri

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def feed_randomly(parser: object, data: bytes, seed: int) -> Tuple[object, bytes]:
    """Feed ``data`` in random chunks; return the parsed value and every byte after it."""
    rng = random.Random(seed)
    index = 0
    while index < len(data):
        size = rng.randint(1, 40)
        result = parser.feed(data[index : index + size])  # type: ignore[attr-defined]
        index += size
        if result is not None:
            return result, parser.leftover + data[index:]  # type: ignore[attr-defined]
    raise AssertionError("incomplete message")


def client(uri: str = "ws://example.com/chat", **options: object) -> ClientHandshake:
    return ClientHandshake(parse_uri(uri), key=KEY, **options)  # type: ignore[arg-type]


def good_request(**changes: object) -> Request:
    headers = Headers(
        [
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    return Request(headers=headers, **changes)  # type: ignore[arg-type]


def with_headers(pairs: List[Tuple[str, str]], drop: Tuple[str, ...] = ()) -> Request:
    """The good request without the ``drop`` headers and with ``pairs`` added."""
    request = good_request()
    for name in drop:
        del request.headers[name]
    for name, value in pairs:
        request.headers.add(name, value)
    return request


def replaced(name: str, value: str) -> Request:
    """The good request with header ``name`` set to ``value``."""
    return with_headers([(name, value)], (name,))


def good_response(**changes: Optional[str]) -> Response:
    fields = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": ACCEPT}
    fields.update(changes)  # type: ignore[arg-type]
    return Response(101, [(name, value) for name, value in fields.items() if value is not None])


# Keys ------------------------------------------------------------------------------------


def test_rfc_6455_example() -> None:
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    assert accept_key(KEY) == ACCEPT


def test_generate_key() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50  # random
    for key in keys:
        assert len(key) == 24
        assert len(base64.b64decode(key, validate=True)) == 16
        assert check_key(key)


@pytest.mark.parametrize(
    "key, valid",
    [
        (KEY, True),
        ("AAAAAAAAAAAAAAAAAAAAAA==", True),
        ("dGhlIHNhbXBsZSBub25jZQ", False),  # padding missing
        ("dGhlIHNhbXBsZSBub25jZQ==x", False),
        ("dGhlIHNhbXBsZSBub25j", False),  # 15 bytes... not even valid base64
        ("AAAAAAAAAAAAAAAAAAAA", False),  # 15 bytes
        ("AAAAAAAAAAAAAAAAAAAAAAA=", False),  # 17 bytes
        ("dGhlIHNhbXBsZSBub25jZQ==, x", False),
        ("dGhl IHNhbXBsZSBub25jZQ==", False),
        ("", False),
        ("\u00e9" * 24, False),
    ],
)
def test_check_key(key: str, valid: bool) -> None:
    assert check_key(key) is valid


def test_default_user_agent_names_python_and_this_version() -> None:
    python = f"Python/{sys.version_info[0]}.{sys.version_info[1]}"
    assert DEFAULT_USER_AGENT == f"{python} wsclient/{wsclient.__version__}"
    assert DEFAULT_SERVER_HEADER.startswith("Python/")
    assert f"wsclient/{wsclient.__version__}" in DEFAULT_SERVER_HEADER


# Client request --------------------------------------------------------------------------


def test_client_request() -> None:
    handshake = client("ws://example.com:8080/chat?room=1")
    request = handshake.request
    assert handshake.key == KEY
    assert (request.method, request.path, request.version) == ("GET", "/chat?room=1", "HTTP/1.1")
    assert request.headers.items() == [
        ("Host", "example.com:8080"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
        ("User-Agent", DEFAULT_USER_AGENT),
    ]


def test_client_request_serialized_exactly() -> None:
    handshake = client("wss://[::1]/", user_agent=None)
    assert handshake.request.serialize() == (
        b"GET / HTTP/1.1\r\n"
        b"Host: [::1]\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
    )


def test_client_request_random_key() -> None:
    one = ClientHandshake(parse_uri("ws://h/"))
    two = ClientHandshake(parse_uri("ws://h/"))
    assert one.key != two.key
    assert one.request.headers["Sec-WebSocket-Key"] == one.key
    assert check_key(one.key)


def test_client_request_options() -> None:
    handshake = client(
        origin="https://app.example.com",
        subprotocols=["chat.v2", "chat.v1"],
        extensions="permessage-deflate; client_max_window_bits",
        user_agent="my-agent/1.0",
    )
    headers = handshake.request.headers
    assert headers["Origin"] == "https://app.example.com"
    assert headers.get_all("Sec-WebSocket-Protocol") == ["chat.v2, chat.v1"]
    assert headers["Sec-WebSocket-Extensions"] == "permessage-deflate; client_max_window_bits"
    assert headers["User-Agent"] == "my-agent/1.0"


def test_client_request_without_options_sends_no_optional_headers() -> None:
    headers = client(user_agent=None).request.headers
    for name in ["Origin", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "User-Agent"]:
        assert name not in headers
    assert "Authorization" not in headers


def test_client_request_user_headers() -> None:
    handshake = client(headers=[("X-Token", "a"), ("x-token", "b"), ("Cookie", "c=1")])
    headers = handshake.request.headers
    assert headers.get_all("X-Token") == ["a", "b"]
    assert headers["Cookie"] == "c=1"
    assert client(headers={"X-One": "1"}).request.headers["x-one"] == "1"
    assert client(headers=Headers([("X-H", "2")])).request.headers["X-H"] == "2"


def test_client_user_agent_and_origin_headers_replace_defaults() -> None:
    headers = client(headers={"User-Agent": "custom/2", "Origin": "https://o"}).request.headers
    assert headers.get_all("User-Agent") == ["custom/2"]
    assert headers.get_all("Origin") == ["https://o"]
    with pytest.raises(ValueError, match="Origin"):
        client(origin="https://a", headers={"Origin": "https://b"})


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "host",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "sec-websocket-version",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
    ],
)
def test_client_refuses_headers_the_handshake_owns(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        client(headers={name: "x"})


@pytest.mark.parametrize(
    "headers", [{"X\r\nEvil": "1"}, {"X": "1\r\nEvil: 2"}, [("X", "a\nb")], {"": "x"}]
)
def test_client_refuses_header_injection(headers: object) -> None:
    with pytest.raises(ValueError):
        client(headers=headers)


def test_client_basic_auth_from_uri() -> None:
    headers = client("ws://alice:p%40ss@example.com/").request.headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"alice:p@ss").decode()
    headers = client("ws://alice@example.com/").request.headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"alice:").decode()
    headers = client("ws://j%C3%BCrgen:%C3%BC@example.com/").request.headers
    expected = base64.b64encode("j\u00fcrgen:\u00fc".encode()).decode()
    assert headers["Authorization"] == "Basic " + expected


def test_client_authorization_header_wins_over_uri() -> None:
    handshake = client("ws://alice:pw@example.com/", headers={"Authorization": "Bearer t"})
    assert handshake.request.headers.get_all("Authorization") == ["Bearer t"]


def test_client_basic_auth_user_with_colon() -> None:
    with pytest.raises(InvalidURI):
        client("ws://a%3Ab:pw@example.com/")


def test_client_password_not_in_reprs() -> None:
    handshake = client("ws://alice:hunter2@example.com/")
    secret = base64.b64encode(b"alice:hunter2").decode()
    assert secret not in repr(handshake.request)
    assert secret not in repr(handshake.request.headers)
    assert "hunter2" not in repr(handshake.request)


@pytest.mark.parametrize(
    "subprotocols, error",
    [
        ("chat", TypeError),
        (["chat", 1], TypeError),
        ([""], ValueError),
        (["a b"], ValueError),
        (["a,b"], ValueError),
        (["a/b"], ValueError),
        (["caf\u00e9"], ValueError),
        (["chat", "chat"], ValueError),
    ],
)
def test_client_refuses_bad_subprotocols(subprotocols: object, error: type) -> None:
    with pytest.raises(error):
        client(subprotocols=subprotocols)


def test_client_accepts_subprotocol_tuple_and_empty_list() -> None:
    assert client(subprotocols=("a", "b.c-d_e~1")).request.headers["Sec-WebSocket-Protocol"] == (
        "a, b.c-d_e~1"
    )
    assert "Sec-WebSocket-Protocol" not in client(subprotocols=[]).request.headers


@pytest.mark.parametrize("key", ["short", "AAAAAAAAAAAAAAAAAAAA", ""])
def test_client_refuses_bad_key(key: str) -> None:
    with pytest.raises(ValueError):
        ClientHandshake(parse_uri("ws://h/"), key=key)


def test_client_options_are_keyword_only_and_typed() -> None:
    with pytest.raises(TypeError):
        ClientHandshake(parse_uri("ws://h/"), "https://origin")  # type: ignore[misc]
    with pytest.raises(TypeError):
        ClientHandshake("ws://h/")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ClientHandshake(parse_uri("ws://h/"), unknown=1)  # type: ignore[call-arg]


# Client: checking the response -----------------------------------------------------------


def test_check_response_accepts() -> None:
    result = client().check_response(good_response())
    assert result == HandshakeResult(subprotocol=None, extensions=[])


@pytest.mark.parametrize(
    "changes",
    [
        {"Upgrade": "WebSocket"},
        {"Upgrade": "WEBSOCKET"},
        {"Upgrade": "h2c, websocket"},
        {"Connection": "upgrade"},
        {"Connection": "keep-alive, Upgrade"},
        {"Connection": "UPGRADE"},
    ],
)
def test_check_response_tokens_case_insensitive(changes: dict) -> None:
    client().check_response(good_response(**changes))


def test_check_response_tokens_across_repeated_headers() -> None:
    response = Response(
        101,
        [
            ("Upgrade", "h2c"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive"),
            ("Connection", "upgrade"),
            ("Sec-WebSocket-Accept", ACCEPT),
        ],
    )
    client().check_response(response)


@pytest.mark.parametrize("status", [200, 301, 302, 400, 401, 403, 404, 426, 500, 503])
def test_check_response_status(status: int) -> None:
    response = Response(status, {"Location": "ws://elsewhere/"}, body=b"nope")
    with pytest.raises(InvalidStatus) as info:
        client().check_response(response)
    assert info.value.response is response
    assert info.value.status == status
    assert info.value.response.body == b"nope"


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"Upgrade": None}, "Upgrade"),
        ({"Upgrade": "h2c"}, "Upgrade"),
        ({"Upgrade": "websocket2"}, "Upgrade"),
        ({"Upgrade": "web socket"}, "Upgrade"),
        ({"Connection": None}, "Connection"),
        ({"Connection": "keep-alive"}, "Connection"),
        ({"Connection": "upgraded"}, "Connection"),
        ({"Sec-WebSocket-Accept": None}, "Sec-WebSocket-Accept"),
        ({"Sec-WebSocket-Accept": "wrong"}, "Sec-WebSocket-Accept"),
        ({"Sec-WebSocket-Accept": ACCEPT.lower()}, "Sec-WebSocket-Accept"),
        ({"Sec-WebSocket-Accept": accept_key(generate_key())}, "Sec-WebSocket-Accept"),
    ],
)
def test_check_response_bad_headers(changes: dict, name: str) -> None:
    with pytest.raises(InvalidHeader) as info:
        client().check_response(good_response(**changes))
    assert info.value.name == name
    assert name in str(info.value)


def test_check_response_repeated_accept() -> None:
    response = good_response()
    response.headers.add("Sec-WebSocket-Accept", ACCEPT)
    with pytest.raises(InvalidHeader, match="repeated"):
        client().check_response(response)


def test_check_response_subprotocol() -> None:
    handshake = client(subprotocols=["chat.v2", "chat.v1"])
    result = handshake.check_response(good_response(**{"Sec-WebSocket-Protocol": "chat.v1"}))
    assert result.subprotocol == "chat.v1"
    assert handshake.check_response(good_response()).subprotocol is None


@pytest.mark.parametrize(
    "offered, selected",
    [
        (None, "chat"),
        (["chat"], "other"),
        (["chat"], "CHAT"),
        (["chat", "other"], "chat, other"),
    ],
)
def test_check_response_bad_subprotocol(offered: Optional[list], selected: str) -> None:
    response = good_response(**{"Sec-WebSocket-Protocol": selected})
    with pytest.raises(NegotiationError):
        client(subprotocols=offered).check_response(response)


def test_check_response_repeated_subprotocol_headers() -> None:
    response = good_response(**{"Sec-WebSocket-Protocol": "chat"})
    response.headers.add("Sec-WebSocket-Protocol", "chat")
    with pytest.raises(NegotiationError, match="several"):
        client(subprotocols=["chat"]).check_response(response)


def test_check_response_extensions() -> None:
    offer = "permessage-deflate; client_max_window_bits"
    handshake = client(extensions=offer)
    answer = "permessage-deflate; server_no_context_takeover"
    response = good_response(**{"Sec-WebSocket-Extensions": answer})
    response.headers.add("Sec-WebSocket-Extensions", "x-other")
    assert handshake.check_response(response).extensions == [answer, "x-other"]
    assert handshake.check_response(good_response()).extensions == []


def test_check_response_extensions_not_offered() -> None:
    response = good_response(**{"Sec-WebSocket-Extensions": "permessage-deflate"})
    with pytest.raises(NegotiationError):
        client().check_response(response)
    response.headers.add("Sec-WebSocket-Extensions", "")
    with pytest.raises(NegotiationError):
        client().check_response(response)


@pytest.mark.parametrize("value", ["", " ", " , ,"])
def test_an_empty_extensions_header_accepts_nothing(value: str) -> None:
    # It failed the handshake ("extensions that were not offered") when none were offered.
    response = good_response(**{"Sec-WebSocket-Extensions": value})
    assert client().check_response(response).subprotocol is None


def test_handshake_result_is_frozen() -> None:
    result = HandshakeResult("chat", ["x"])
    with pytest.raises(AttributeError):
        result.subprotocol = "other"  # type: ignore[misc]
    assert HandshakeResult(None).extensions == []


# Server: checking the request ------------------------------------------------------------


def test_check_request_accepts() -> None:
    assert check_request(good_request()) == KEY


@pytest.mark.parametrize(
    "pairs, drop",
    [
        ([("Upgrade", "WebSocket")], ("Upgrade",)),
        ([("Upgrade", "h2c, websocket")], ("Upgrade",)),
        ([("Upgrade", "h2c"), ("Upgrade", "websocket")], ("Upgrade",)),
        ([("Connection", "keep-alive, Upgrade")], ("Connection",)),
        ([("Connection", "keep-alive"), ("Connection", "upgrade")], ("Connection",)),
        ([("Connection", "UPGRADE")], ("Connection",)),
        ([("Sec-WebSocket-Version", " 13 ")], ("Sec-WebSocket-Version",)),
        ([("Origin", "https://x")], ()),
    ],
)
def test_check_request_accepts_variants(pairs: list, drop: tuple) -> None:
    assert check_request(with_headers(pairs, drop)) == KEY


def test_check_request_later_http_minor_version() -> None:
    assert check_request(good_request(version="HTTP/1.2")) == KEY


@pytest.mark.parametrize(
    "request_, exception, status",
    [
        (good_request(method="POST"), InvalidHTTP, 405),
        (good_request(method="get"), InvalidHTTP, 405),
        (good_request(version="HTTP/1.0"), InvalidHTTP, 505),
        (good_request(version="junk"), InvalidHTTP, 505),
        (with_headers([], ("Host",)), InvalidHeader, 400),
        (with_headers([("Host", "other")]), InvalidHeader, 400),
        (with_headers([], ("Upgrade",)), InvalidHeader, 426),
        (with_headers([("Upgrade", "h2c")], ("Upgrade",)), InvalidHeader, 426),
        (with_headers([], ("Connection",)), InvalidHeader, 400),
        (with_headers([("Connection", "keep-alive")], ("Connection",)), InvalidHeader, 400),
        (with_headers([], ("Sec-WebSocket-Key",)), InvalidHeader, 400),
        (with_headers([("Sec-WebSocket-Key", KEY)]), InvalidHeader, 400),
        (replaced("Sec-WebSocket-Key", "c2hvcnQ="), InvalidHeader, 400),
        (replaced("Sec-WebSocket-Key", "not base64!"), InvalidHeader, 400),
        (replaced("Sec-WebSocket-Key", KEY + ", " + KEY), InvalidHeader, 400),
        (with_headers([], ("Sec-WebSocket-Version",)), InvalidHeader, 426),
        (replaced("Sec-WebSocket-Version", "8"), InvalidHeader, 426),
        (replaced("Sec-WebSocket-Version", "13, 8"), InvalidHeader, 426),
        (replaced("Sec-WebSocket-Version", "14"), InvalidHeader, 426),
        (with_headers([("Sec-WebSocket-Version", "13")]), InvalidHeader, 426),
    ],
)
def test_check_request_rejects(request_: Request, exception: type, status: int) -> None:
    with pytest.raises(exception) as info:
        check_request(request_)
    assert info.value.status == status


def test_check_request_http2_version_is_505() -> None:
    with pytest.raises(InvalidHTTP) as info:
        check_request(good_request(version="HTTP/2.0"))
    assert info.value.status == 505


def test_check_request_missing_upgrade_says_websocket_endpoint() -> None:
    browser = Request("GET", "/", Headers({"Host": "example.com", "Accept": "text/html"}))
    with pytest.raises(InvalidHeader) as info:
        check_request(browser)
    assert info.value.status == 426
    assert info.value.name == "Upgrade"
    assert "WebSocket endpoint" in str(info.value)
    response = error_response(info.value)
    assert response.status == 426
    assert b"WebSocket endpoint" in response.body
    assert response.headers["Upgrade"] == "websocket"
    assert response.headers["Sec-WebSocket-Version"] == "13"


def test_check_request_bad_version_response_carries_version_13() -> None:
    request = with_headers([("Sec-WebSocket-Version", "8")], ("Sec-WebSocket-Version",))
    with pytest.raises(InvalidHeader) as info:
        check_request(request)
    assert info.value.name == "Sec-WebSocket-Version"
    response = error_response(info.value)
    assert response.status == 426
    assert response.headers.get_all("Sec-WebSocket-Version") == ["13"]


def test_offered_subprotocols() -> None:
    assert offered_subprotocols(good_request()) == []
    request = with_headers([("Sec-WebSocket-Protocol", "a, b"), ("Sec-WebSocket-Protocol", "c")])
    assert offered_subprotocols(request) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "offered, supported, selected",
    [
        ([], ["chat"], None),
        (["chat"], [], None),
        (["chat"], ["chat"], "chat"),
        (["a", "b"], ["b", "a"], "b"),  # the server's preference wins
        (["a", "b"], ["c", "a"], "a"),
        (["a"], ["b", "c"], None),
        (["Chat"], ["chat"], None),  # case-sensitive
    ],
)
def test_select_subprotocol(offered: list, supported: list, selected: Optional[str]) -> None:
    assert select_subprotocol(offered, supported) == selected


# Server responses ------------------------------------------------------------------------


def test_accept_response() -> None:
    response = accept_response(good_request())
    assert response.status == 101
    assert response.headers.items() == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT),
        ("Server", DEFAULT_SERVER_HEADER),
    ]
    assert response.body == b""


def test_accept_response_options() -> None:
    request = with_headers([("Sec-WebSocket-Protocol", "chat, superchat")])
    response = accept_response(
        request,
        subprotocol="superchat",
        extensions="permessage-deflate",
        headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        server=None,
    )
    headers = response.headers
    assert headers["Sec-WebSocket-Protocol"] == "superchat"
    assert headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert "Server" not in headers
    assert accept_response(good_request(), headers={"Server": "mine"}).headers.get_all(
        "Server"
    ) == ["mine"]


def test_accept_response_refusals() -> None:
    with pytest.raises(ValueError, match="not offered"):
        accept_response(good_request(), subprotocol="chat")
    with pytest.raises(ValueError):
        accept_response(with_headers([], ("Sec-WebSocket-Key",)))
    for name in ["Upgrade", "Connection", "Sec-WebSocket-Accept", "sec-websocket-protocol"]:
        with pytest.raises(ValueError, match=name):
            accept_response(good_request(), headers={name: "x"})


def test_reject_response() -> None:
    response = reject_response(403, "origin not allowed")
    assert response.status == 403
    assert response.body == b"origin not allowed\n"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Connection"] == "close"
    assert "Upgrade" not in response.headers
    assert "Sec-WebSocket-Version" not in response.headers
    assert b"Content-Length: 19\r\n" in response.serialize()


def test_reject_response_426() -> None:
    response = reject_response(426, "upgrade please")
    headers = response.headers
    assert headers["Upgrade"] == "websocket"
    assert headers["Sec-WebSocket-Version"] == "13"
    assert {token.strip().lower() for token in headers["Connection"].split(",")} == {
        "upgrade",
        "close",
    }


def test_reject_response_405_has_allow() -> None:
    assert reject_response(405, "use GET").headers["Allow"] == "GET"


def test_reject_response_headers() -> None:
    response = reject_response(
        401, "log in", headers={"WWW-Authenticate": 'Basic realm="ws"', "Content-Type": "text/x"}
    )
    assert response.headers["WWW-Authenticate"] == 'Basic realm="ws"'
    assert response.headers.get_all("Content-Type") == ["text/x"]
    assert reject_response(400, "caf\u00e9").body == "caf\u00e9\n".encode()


@pytest.mark.parametrize("status", [100, 101, 199])
def test_reject_response_refuses_1xx(status: int) -> None:
    with pytest.raises(ValueError):
        reject_response(status, "x")


@pytest.mark.parametrize(
    "exc, status",
    [
        (InvalidHTTP("bad", 431), 431),
        (InvalidHTTP("bad method", 405), 405),
        (InvalidHeader("Sec-WebSocket-Key", "missing key"), 400),
        (InvalidHeader("Upgrade", "no", 426), 426),
        (NegotiationError("no"), 400),
        (InvalidHandshake("generic"), 400),
    ],
)
def test_error_response(exc: InvalidHandshake, status: int) -> None:
    response = error_response(exc)
    assert response.status == status
    assert str(exc).encode() in response.body
    assert response.headers["Connection"] is not None
    if status == 405:
        assert response.headers["Allow"] == "GET"


# Round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_round_trip_in_bytes(seed: int) -> None:
    uri = parse_uri("wss://alice:pw@example.com:8443/chat?room=42")
    handshake = ClientHandshake(
        uri,
        origin="https://example.com",
        subprotocols=["v2.chat", "v1.chat"],
        extensions="permessage-deflate; client_max_window_bits",
        headers=[("X-Trace", "1"), ("X-Trace", "2")],
    )
    frames = b"\x81\x85\x00\x00\x00\x00hello"

    # Client to server.
    request, early = feed_randomly(RequestParser(), handshake.request.serialize(), seed)
    assert isinstance(request, Request)
    assert early == b""
    assert request.path == "/chat?room=42"
    assert request.headers["Host"] == "example.com:8443"
    assert request.headers.get_all("X-Trace") == ["1", "2"]
    key = check_request(request)
    assert key == handshake.key
    subprotocol = select_subprotocol(offered_subprotocols(request), ["v1.chat", "v2.chat"])
    assert subprotocol == "v1.chat"
    answer = accept_response(
        request, subprotocol=subprotocol, extensions="permessage-deflate"
    )

    # Server to client, with the first frame in the same bytes.
    response, leftover = feed_randomly(ResponseParser(), answer.serialize() + frames, seed)
    assert isinstance(response, Response)
    assert leftover == frames
    result = handshake.check_response(response)
    assert result == HandshakeResult("v1.chat", ["permessage-deflate"])


def test_round_trip_rejection_in_bytes() -> None:
    handshake = client()
    raw = handshake.request.serialize().replace(b"Version: 13", b"Version: 8")
    request = RequestParser().feed(raw)
    assert isinstance(request, Request)
    with pytest.raises(InvalidHeader) as info:
        check_request(request)
    parser = ResponseParser()
    response = parser.feed(error_response(info.value).serialize())
    assert isinstance(response, Response)
    assert response.headers["Sec-WebSocket-Version"] == "13"
    with pytest.raises(InvalidStatus) as status:
        handshake.check_response(response)
    assert status.value.status == 426
    assert b"13" in status.value.response.body


def test_plain_http_get_to_a_websocket_endpoint() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: text/html\r\n\r\n"
    request = RequestParser().feed(raw)
    assert isinstance(request, Request)
    with pytest.raises(InvalidHeader) as info:
        check_request(request)
    wire = error_response(info.value).serialize()
    assert wire.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"WebSocket endpoint" in wire
