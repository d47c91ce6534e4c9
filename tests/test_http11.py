"""Tests for wsclient.http11: Request, Response and the incremental parsers, with their limits."""

from __future__ import annotations

import http
import random
from typing import List, Tuple, Union

import pytest

from wsclient.exceptions import InvalidHandshake, InvalidHTTP
from wsclient.headers import Headers
from wsclient.http11 import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_HEAD,
    DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_LINE,
    Request,
    RequestParser,
    Response,
    ResponseParser,
)

Parser = Union[RequestParser, ResponseParser]

# Feeding modes: the whole input at once, byte by byte, and random chunk sizes (seeded).
MODES = ["whole", "bytewise", "random-1", "random-2", "random-3"]


def split(data: bytes, mode: str) -> List[bytes]:
    """``data`` cut into the pieces a peer might send in ``mode``."""
    if mode == "whole":
        return [data]
    if mode == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(int(mode.split("-")[1]))
    pieces, index = [], 0
    while index < len(data):
        size = rng.randint(1, 23)
        pieces.append(data[index : index + size])
        index += size
    return pieces


def run(parser: Parser, data: bytes, mode: str, *, eof: bool = False) -> Tuple[object, bytes]:
    """Feed ``data`` in ``mode``; return the parsed value and every byte after it."""
    pieces = split(data, mode)
    for index, piece in enumerate(pieces):
        result = parser.feed(piece)
        if result is not None:
            return result, parser.leftover + b"".join(pieces[index + 1 :])
    if eof:
        return parser.feed(b""), parser.leftover
    return None, parser.leftover


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def test_defaults() -> None:
    assert DEFAULT_MAX_LINE == 8192
    assert DEFAULT_MAX_HEADERS == 128
    assert DEFAULT_MAX_HEAD == 65536
    assert DEFAULT_MAX_BODY == 1 << 20


# Request ---------------------------------------------------------------------------------


def test_request_defaults_and_serialize() -> None:
    request = Request()
    assert (request.method, request.path, request.version) == ("GET", "/", "HTTP/1.1")
    assert isinstance(request.headers, Headers) and len(request.headers) == 0
    request = Request("GET", "/chat?x=1", Headers([("Host", "h"), ("X", "1")]))
    assert request.serialize() == b"GET /chat?x=1 HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n"


def test_request_coerces_headers() -> None:
    request = Request(headers={"Host": "h"})  # type: ignore[arg-type]
    assert isinstance(request.headers, Headers)
    assert request.headers["host"] == "h"


@pytest.mark.parametrize(
    "method, path", [("G T", "/"), ("", "/"), ("GET", ""), ("GET", "/a b"), ("GET", "/\u00e9")]
)
def test_request_serialize_rejects_bad_request_lines(method: str, path: str) -> None:
    with pytest.raises(ValueError):
        Request(method, path).serialize()


def test_request_repr_masks_secrets() -> None:
    request = Request(headers=Headers([("Authorization", "Basic c2VjcmV0")]))
    assert "c2VjcmV0" not in repr(request)


# Response --------------------------------------------------------------------------------


def test_response_status_types() -> None:
    response = Response(101)
    assert response.status is http.HTTPStatus.SWITCHING_PROTOCOLS
    assert response.status == 101
    assert response.reason == "Switching Protocols"
    assert Response(http.HTTPStatus.NOT_FOUND).status is http.HTTPStatus.NOT_FOUND
    unknown = Response(299)
    assert type(unknown.status) is int and unknown.status == 299
    assert unknown.reason == ""
    assert Response(200, reason="Fine").reason == "Fine"


@pytest.mark.parametrize("status", [99, 1000, 0, -200])
def test_response_status_out_of_range(status: int) -> None:
    with pytest.raises(ValueError):
        Response(status)


@pytest.mark.parametrize("status", ["200", 200.0, True, None])
def test_response_status_type_error(status: object) -> None:
    with pytest.raises(TypeError):
        Response(status)  # type: ignore[arg-type]


def test_response_headers_and_body() -> None:
    response = Response(401, {"WWW-Authenticate": "Basic"}, "d\u00e9nied")
    assert isinstance(response.headers, Headers)
    assert response.headers["www-authenticate"] == "Basic"
    assert response.body == "d\u00e9nied".encode("utf-8")
    assert Response(200, [("A", "1"), ("A", "2")]).headers.get_all("a") == ["1", "2"]
    assert Response(200, body=bytearray(b"x")).body == b"x"
    assert type(Response(200, body=memoryview(b"xy")).body) is bytes
    assert Response(200).body == b""
    assert Response(200).body_truncated is False
    with pytest.raises(TypeError):
        Response(200, body=42)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [100, 101, 204, 304])
def test_response_without_body_statuses(status: int) -> None:
    with pytest.raises(ValueError):
        Response(status, body=b"x")
    assert b"Content-Length" not in Response(status).serialize()


def test_response_rejects_bad_reason() -> None:
    with pytest.raises(ValueError):
        Response(200, reason="OK\r\nInjected: 1")


def test_response_serialize() -> None:
    assert Response(101, [("Upgrade", "websocket")]).serialize() == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    )
    assert Response(200).serialize() == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    assert Response(403, body="no").serialize() == (
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"
    )
    given = Response(200, {"content-length": "2"}, b"hi").serialize()
    assert given == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
    chunked = Response(200, {"Transfer-Encoding": "chunked"}, b"0\r\n\r\n").serialize()
    assert b"Content-Length" not in chunked
    assert Response(299).serialize() == b"HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n"


def test_response_serialize_does_not_change_headers() -> None:
    response = Response(200, body=b"x")
    response.serialize()
    assert "Content-Length" not in response.headers


def test_response_coerce() -> None:
    response = Response(200)
    assert Response.coerce(response) is response
    built = Response.coerce((401, {"WWW-Authenticate": "Basic"}, "nope"))
    assert built.status == 401 and built.headers["WWW-Authenticate"] == "Basic"
    assert built.body == b"nope"
    built = Response.coerce((http.HTTPStatus.OK, [("X", "1")], b""))
    assert built.status is http.HTTPStatus.OK
    assert Response.coerce((200, None, b"")).headers.items() == []
    for bad in [None, 200, [200, {}, b""], (200, {}), (200, {}, b"", 1), "200"]:
        with pytest.raises(TypeError):
            Response.coerce(bad)
    with pytest.raises(TypeError) as info:
        Response.coerce((200, {"Set-Cookie": "s3cr3t"}))
    assert "s3cr3t" not in str(info.value)


def test_response_equality_and_repr() -> None:
    assert Response(200, {"A": "1"}, b"x") == Response(200, {"a": "1"}, b"x")
    assert Response(200, {"A": "1"}, b"x") != Response(200, {"A": "1"}, b"y")
    assert Response(200) != Response(201)
    assert Response(200) != 200
    text = repr(Response(200, {"Set-Cookie": "session=s3cr3t"}, b"body"))
    assert "s3cr3t" not in text
    assert "200" in text


# RequestParser ---------------------------------------------------------------------------

HANDSHAKE = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"X-Multi: 1\r\n"
    b"x-multi: 2\r\n"
    b"\r\n"
)


def test_request_parser(mode: str) -> None:
    request, leftover = run(RequestParser(), HANDSHAKE + b"\x81\x85early", mode)
    assert isinstance(request, Request)
    assert (request.method, request.path, request.version) == ("GET", "/chat?room=1", "HTTP/1.1")
    assert request.headers["host"] == "example.com"
    assert request.headers.get_all("X-MULTI") == ["1", "2"]
    assert request.headers.keys()[-2:] == ["X-Multi", "x-multi"]
    assert leftover == b"\x81\x85early"


def test_request_parser_incomplete_returns_none(mode: str) -> None:
    request, leftover = run(RequestParser(), HANDSHAKE[:-2], mode)
    assert request is None


def test_request_parser_round_trip(mode: str) -> None:
    sent = Request("GET", "/a?b=c", Headers([("Host", "h"), ("A", "1"), ("a", "2")]))
    request, leftover = run(RequestParser(), sent.serialize(), mode)
    assert request == sent
    assert leftover == b""


def test_request_parser_accepts_bare_lf(mode: str) -> None:
    data = b"GET / HTTP/1.1\nHost: h\r\nX: 1\n\nrest"
    request, leftover = run(RequestParser(), data, mode)
    assert isinstance(request, Request)
    assert request.headers.items() == [("Host", "h"), ("X", "1")]
    assert leftover == b"rest"


def test_request_parser_ignores_empty_lines_before_request_line(mode: str) -> None:
    request, _ = run(RequestParser(), b"\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", mode)
    assert isinstance(request, Request) and request.path == "/"


def test_request_parser_field_values(mode: str) -> None:
    data = (
        b"GET / HTTP/1.1\r\nHost:h\r\nX-Spaces:   v  \t\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n"
        b"X-Tab: a\tb\r\nX-Colon: a:b: c\r\n\r\n"
    )
    request, _ = run(RequestParser(), data, mode)
    assert isinstance(request, Request)
    headers = request.headers
    assert headers["Host"] == "h"
    assert headers["X-Spaces"] == "v"
    assert headers["X-Empty"] == ""
    assert headers["X-Latin"] == "caf\u00e9"
    assert headers["X-Tab"] == "a\tb"
    assert headers["X-Colon"] == "a:b: c"


@pytest.mark.parametrize(
    "version", [b"HTTP/1.1", b"HTTP/1.2", b"HTTP/1.9"]
)
def test_request_parser_accepts_http11_and_later_minor(version: bytes) -> None:
    request = RequestParser().feed(b"GET / " + version + b"\r\nHost: h\r\n\r\n")
    assert isinstance(request, Request) and request.version == version.decode()


@pytest.mark.parametrize(
    "head, status",
    [
        (b"GET / HTTP/1.0\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\n\r\n", 505),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/1\r\n\r\n", 400),
        (b"GET / http/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1x\r\n\r\n", 400),
        (b"GET / HTTP/11.1\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\n\r\n", 400),
        (b" GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET /a b HTTP/1.1\r\n\r\n", 400),
        (b"GET\t/ HTTP/1.1\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\n\r\n", 400),
        (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400),
        (b"GET /\x00 HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nN\xe9: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: 1\r\n\tfolded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n Leading: space\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\rHost: h\r\n\r\n", 400),
    ],
)
def test_request_parser_rejects(head: bytes, status: int, mode: str) -> None:
    with pytest.raises(InvalidHTTP) as info:
        run(RequestParser(), head, mode)
    assert info.value.status == status
    assert isinstance(info.value, InvalidHandshake)


# Bytes that cannot begin a request line fail at once, with no line end needed: a TLS
# ClientHello on a plain port (its record header: handshake 0x16, version 0x03 0x01), or
# binary junk, held the connection until the handshake timed out.
@pytest.mark.parametrize(
    "start",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"\x16",
        b"\x00\x01\x02\x03",
        b"G\xc3",
        b"GET\t",
        b" GET",
        b"GET  ",
        b"GET /\x00",
        b"GET / X",
        b"GET / HTTP/1.1 ",
        b"GET / HTTP/1.12",
        b"GET / HTTP/1.1\rX",
        b"\r\n\r\r",
    ],
)
def test_request_parser_refuses_an_impossible_start_at_once(start: bytes) -> None:
    with pytest.raises(InvalidHTTP) as info:
        RequestParser().feed(start)
    assert info.value.status == 400


def test_request_parser_keeps_the_first_bytes_after_an_error() -> None:
    # How a server tells a TLS client on its plain port from other junk.
    parser = RequestParser()
    assert parser.first_bytes == b""
    with pytest.raises(InvalidHTTP):
        for byte in b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc":
            parser.feed(bytes([byte]))
    assert parser.first_bytes == b"\x16"  # It failed with its first byte.
    parser = RequestParser()
    with pytest.raises(InvalidHTTP):
        parser.feed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert parser.first_bytes == b"\x16\x03\x01\x02\x00\x01\x00\x01"
    parser = RequestParser()
    parser.feed(b"GE")
    parser.feed(b"T / HTTP/1.1\r\n")
    assert parser.first_bytes == b"GET / HT"


def test_request_parser_refuses_a_bad_request_line_before_its_headers() -> None:
    parser = RequestParser()
    with pytest.raises(InvalidHTTP) as info:
        parser.feed(b"GET / HTTP/1.0\r\nHost: h\r\n")
    assert info.value.status == 505
    with pytest.raises(InvalidHTTP) as info:
        RequestParser().feed(b"GET / HTTP/1.0\r")  # Complete but for its LF.
    assert info.value.status == 505


@pytest.mark.parametrize(
    "head",
    [
        HANDSHAKE,
        b"\r\n\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\n\n",
        b"M-SEARCH http://h/a?b=%20c#d HTTP/1.9\r\n\r\n",
        b"~!#$%&'*+-.^_`|09azAZ /~ HTTP/1.1\r\n\r\n",
    ],
)
def test_request_parser_waits_for_a_request_that_trickles_in(head: bytes) -> None:
    # Every prefix of a valid request may arrive alone (a slow link): none is refused.
    parser = RequestParser()
    for index in range(len(head) - 1):
        assert parser.feed(head[index : index + 1]) is None
    assert isinstance(parser.feed(head[-1:]), Request)


@pytest.mark.parametrize(
    "line", [b"X: 1\r\n folded: 2", b"X: 1\r\n\tfolded", b"X: 1\r\n  more text"]
)
def test_request_parser_rejects_obsolete_line_folding(line: bytes, mode: str) -> None:
    with pytest.raises(InvalidHTTP, match="folding") as info:
        run(RequestParser(), b"GET / HTTP/1.1\r\n" + line + b"\r\n\r\n", mode)
    assert info.value.status == 400


@pytest.mark.parametrize("line", [b"X: a\rb", b"X\r: b", b"X: \r"])
def test_request_parser_rejects_bare_cr(line: bytes, mode: str) -> None:
    with pytest.raises(InvalidHTTP, match="CR") as info:
        run(RequestParser(), b"GET / HTTP/1.1\r\n" + line + b"\r\n\r\n", mode)
    assert info.value.status == 400


def test_response_parser_rejects_bare_cr_in_trailers(mode: str) -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\rb\r\n\r\n"
    with pytest.raises(InvalidHTTP, match="CR"):
        run(ResponseParser(), data, mode)


def test_request_parser_errors_do_not_echo_secrets() -> None:
    for head in [
        b"GET /?token=s3cr3t HTTP/1.0\r\n\r\n",
        b"GET /?token=s3cr3t x HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nAuthorization: Basic s3cr3t\x01\r\n\r\n",
        b"GET / HTTP/1.1\r\nCookie: s3cr3t\r\n folded-s3cr3t\r\n\r\n",
    ]:
        with pytest.raises(InvalidHTTP) as info:
            RequestParser().feed(head)
        assert "s3cr3t" not in str(info.value)


def test_request_parser_eof() -> None:
    with pytest.raises(InvalidHTTP, match="without a request"):
        RequestParser().feed(b"")
    parser = RequestParser()
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\n") is None
    with pytest.raises(InvalidHTTP, match="before the end"):
        parser.feed(b"")


def test_request_parser_feed_after_complete() -> None:
    parser = RequestParser()
    assert parser.feed(b"GET / HTTP/1.1\r\n\r\nxy") is not None
    assert parser.leftover == b"xy"
    with pytest.raises(RuntimeError):
        parser.feed(b"more")
    assert parser.leftover == b"xy"


@pytest.mark.parametrize("name", ["max_line", "max_headers", "max_head"])
@pytest.mark.parametrize("value", [0, -1, "10", 1.5, True, None])
def test_parser_limits_are_validated(name: str, value: object) -> None:
    with pytest.raises(ValueError):
        RequestParser(**{name: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ResponseParser(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, "10", True, None])
def test_response_parser_max_body_is_validated(value: object) -> None:
    with pytest.raises(ValueError):
        ResponseParser(max_body=value)  # type: ignore[arg-type]


def test_parsers_keyword_only() -> None:
    with pytest.raises(TypeError):
        RequestParser(100)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ResponseParser(100)  # type: ignore[misc]


# Limits ----------------------------------------------------------------------------------


def request_line_of(length: int) -> bytes:
    """A request line exactly ``length`` bytes long."""
    line = b"GET / HTTP/1.1"
    return line[:5] + b"a" * (length - len(line)) + line[5:]


def test_request_line_limit(mode: str) -> None:
    exact = request_line_of(100) + b"\r\n\r\n"
    request, _ = run(RequestParser(max_line=100), exact, mode)
    assert isinstance(request, Request)
    lf_only = request_line_of(100) + b"\n\n"
    request, _ = run(RequestParser(max_line=100), lf_only, mode)
    assert isinstance(request, Request)
    with pytest.raises(InvalidHTTP) as info:
        run(RequestParser(max_line=100), request_line_of(101) + b"\r\n\r\n", mode)
    assert info.value.status == 414


def test_header_line_limit(mode: str) -> None:
    start = b"GET / HTTP/1.1\r\n"
    exact = b"X: " + b"v" * 97  # 100 bytes
    request, _ = run(RequestParser(max_line=100), start + exact + b"\r\n\r\n", mode)
    assert isinstance(request, Request)
    assert request.headers["X"] == "v" * 97
    with pytest.raises(InvalidHTTP) as info:
        run(RequestParser(max_line=100), start + exact + b"v\r\n\r\n", mode)
    assert info.value.status == 431


def test_header_count_limit(mode: str) -> None:
    def head(count: int) -> bytes:
        fields = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(count))
        return b"GET / HTTP/1.1\r\n" + fields + b"\r\n"

    request, _ = run(RequestParser(max_headers=5), head(5), mode)
    assert isinstance(request, Request) and len(request.headers) == 5
    with pytest.raises(InvalidHTTP) as info:
        run(RequestParser(max_headers=5), head(6), mode)
    assert info.value.status == 431


def test_head_size_limit(mode: str) -> None:
    head = b"GET / HTTP/1.1\r\nX: 123456\r\n\r\n"
    request, _ = run(RequestParser(max_head=len(head)), head, mode)
    assert isinstance(request, Request)
    with pytest.raises(InvalidHTTP) as info:
        run(RequestParser(max_head=len(head) - 1), head, mode)
    assert info.value.status == 431


def test_bare_lf_line_endings_are_accepted(mode: str) -> None:
    """RFC 9112 section 2.2: a recipient may take a lone LF as a line's end."""
    request, rest = run(RequestParser(), b"GET /a HTTP/1.1\nHost: h\nX: 1\r\n\r\nrest", mode)
    assert isinstance(request, Request)
    assert request.path == "/a" and request.headers.items() == [("Host", "h"), ("X", "1")]
    assert rest == b"rest"


def test_empty_lines_before_the_start_line_are_ignored(mode: str) -> None:
    for before in (b"\r\n", b"\r\n\r\n", b"\r\n\n"):
        request, _ = run(RequestParser(), before + b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n", mode)
        assert isinstance(request, Request)
        assert request.path == "/b" and request.headers.items() == [("Host", "h")]


def test_head_size_limit_counts_leading_empty_lines() -> None:
    parser = RequestParser(max_head=100)
    with pytest.raises(InvalidHTTP) as info:
        for _ in range(100):
            parser.feed(b"\r\n")
    assert info.value.status == 431


def test_endless_header_line_fails_once_max_line_is_exceeded() -> None:
    parser = RequestParser(max_line=1000)
    parser.feed(b"GET / HTTP/1.1\r\nX-Endless: ")
    fed = 0
    with pytest.raises(InvalidHTTP) as info:
        for _ in range(10_000):  # bounded: 10 MB if the limit were not enforced
            parser.feed(b"a" * 100)
            fed += 100
    assert info.value.status == 431
    # It fails within one chunk of the limit, not when a CRLF finally comes.
    assert fed <= 1000


def test_endless_line_fed_byte_by_byte_fails_at_the_limit() -> None:
    parser = RequestParser(max_line=50)
    fed = 0
    with pytest.raises(InvalidHTTP) as info:
        for _ in range(10_000):
            parser.feed(b"G")
            fed += 1
    assert info.value.status == 414
    assert fed == 51  # max_line bytes and one more that could be a CR; the next one fails


def test_endless_short_headers_fail_at_max_headers_or_max_head() -> None:
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\n")
    fed = 0
    with pytest.raises(InvalidHTTP) as info:
        for _ in range(100_000):
            parser.feed(b"X: 1\r\n")
            fed += 1
    assert info.value.status == 431
    assert fed <= DEFAULT_MAX_HEADERS + 1
    parser = RequestParser(max_headers=100_000)
    parser.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(InvalidHTTP) as info:
        for _ in range(100_000):
            parser.feed(b"X-Long-Name: 1234567890\r\n")
    assert info.value.status == 431
    assert "65536" in str(info.value)


def test_one_huge_chunk_without_newline_fails() -> None:
    with pytest.raises(InvalidHTTP):
        RequestParser().feed(b"G" * (DEFAULT_MAX_HEAD * 4))


# ResponseParser --------------------------------------------------------------------------

UPGRADE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)


def test_response_parser_101_is_head_only(mode: str) -> None:
    frames = b"\x81\x05hello\x88\x00"
    response, leftover = run(ResponseParser(), UPGRADE + frames, mode)
    assert isinstance(response, Response)
    assert response.status is http.HTTPStatus.SWITCHING_PROTOCOLS
    assert response.reason == "Switching Protocols"
    assert response.headers["upgrade"] == "websocket"
    assert response.body == b""
    assert leftover == frames


def test_response_parser_101_with_content_length_still_head_only() -> None:
    parser = ResponseParser()
    response = parser.feed(b"HTTP/1.1 101 OK\r\nContent-Length: 5\r\n\r\n\x81\x00")
    assert isinstance(response, Response) and response.body == b""
    assert parser.leftover == b"\x81\x00"


def test_response_parser_content_length(mode: str) -> None:
    data = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 11\r\n\r\nlog in here" + b"NEXT"
    response, leftover = run(ResponseParser(), data, mode)
    assert isinstance(response, Response)
    assert response.status == 401 and response.body == b"log in here"
    assert response.body_truncated is False
    assert leftover == b"NEXT"


def test_response_parser_zero_content_length(mode: str) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nX"
    response, leftover = run(ResponseParser(), data, mode)
    assert isinstance(response, Response) and response.body == b""
    assert leftover == b"X"


def test_response_parser_repeated_equal_content_length(mode: str) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nokX"
    response, leftover = run(ResponseParser(), data, mode)
    assert isinstance(response, Response) and response.body == b"ok"
    assert leftover == b"X"


@pytest.mark.parametrize(
    "value", [b"abc", b"-1", b"+5", b"1, 2", b"", b"0x10", b"1.0", b"\xd9\xa1"]
)
def test_response_parser_bad_content_length(value: bytes) -> None:
    with pytest.raises(InvalidHTTP, match="Content-Length"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nbody")


def test_response_parser_conflicting_content_lengths() -> None:
    with pytest.raises(InvalidHTTP, match="Content-Length"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")


CHUNKED = (
    b"HTTP/1.1 403 Forbidden\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"5\r\nhello\r\n"
    b"1;name=value\r\n \r\n"
    b"A\r\n0123456789\r\n"
    b"0\r\n"
    b"Trailer-One: 1\r\n"
    b"Trailer-Two: 2\r\n"
    b"\r\n"
)


def test_response_parser_chunked(mode: str) -> None:
    response, leftover = run(ResponseParser(), CHUNKED + b"after", mode)
    assert isinstance(response, Response)
    assert response.status == 403
    assert response.body == b"hello 0123456789"
    assert response.body_truncated is False
    assert "Trailer-One" not in response.headers
    assert leftover == b"after"


def test_response_parser_chunked_with_lf_only(mode: str) -> None:
    data = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n"
    response, _ = run(ResponseParser(), data, mode)
    assert isinstance(response, Response) and response.body == b"ok"


def test_response_parser_transfer_encoding_wins_over_content_length(mode: str) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    )
    response, _ = run(ResponseParser(), data, mode)
    assert isinstance(response, Response) and response.body == b"ok"


def test_response_parser_chunked_as_final_coding(mode: str) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"2\r\nzz\r\n0\r\n\r\n"
    )
    response, _ = run(ResponseParser(), data, mode)
    assert isinstance(response, Response) and response.body == b"zz"


def test_response_parser_non_chunked_transfer_encoding_reads_to_eof(mode: str) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 1\r\n\r\n"
        b"raw bytes"
    )
    response, _ = run(ResponseParser(), data, mode, eof=True)
    assert isinstance(response, Response) and response.body == b"raw bytes"
    assert response.body_truncated is False


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nab\r\n0\r\n\r\n",
        b"\r\nab\r\n0\r\n\r\n",
        b"-2\r\nab\r\n0\r\n\r\n",
        b"0x2\r\nab\r\n0\r\n\r\n",
        b"12345678901234567\r\n",
        b"2\r\nabc\r\n0\r\n\r\n",
        b"2\r\nab0\r\n\r\n",
    ],
)
def test_response_parser_bad_chunks(chunks: bytes, mode: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    with pytest.raises(InvalidHTTP, match="chunk"):
        run(ResponseParser(), head + chunks, mode)


def test_response_parser_until_eof(mode: str) -> None:
    data = b"HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nit broke"
    response, leftover = run(ResponseParser(), data, mode)
    assert response is None
    response, leftover = run(ResponseParser(), data, mode, eof=True)
    assert isinstance(response, Response)
    assert response.body == b"it broke" and response.body_truncated is False
    assert response.version == "HTTP/1.0"


@pytest.mark.parametrize("status", [204, 304])
def test_response_parser_no_body_statuses(status: int, mode: str) -> None:
    data = b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\nnext!" % status
    response, leftover = run(ResponseParser(), data, mode)
    assert isinstance(response, Response) and response.status == status
    assert response.body == b""
    assert leftover == b"next!"


def test_response_parser_skips_interim_responses(mode: str) -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        + UPGRADE
        + b"frames"
    )
    response, leftover = run(ResponseParser(), data, mode)
    assert isinstance(response, Response) and response.status == 101
    assert "Link" not in response.headers
    assert leftover == b"frames"


def test_response_parser_eof_during_interim_response() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n") is None
    with pytest.raises(InvalidHTTP, match="closed"):
        parser.feed(b"")


@pytest.mark.parametrize(
    "line, status, reason",
    [
        (b"HTTP/1.1 200 OK", 200, "OK"),
        (b"HTTP/1.1 200", 200, ""),
        (b"HTTP/1.1 200 ", 200, ""),
        (b"HTTP/1.0 200 Connection established", 200, "Connection established"),
        (b"HTTP/1.1 404 Not   Found", 404, "Not   Found"),
        (b"HTTP/1.1 200 D\xe9j\xe0 vu", 200, "D\u00e9j\u00e0 vu"),
        (b"HTTP/1.1 599 Custom", 599, "Custom"),
    ],
)
def test_response_parser_status_lines(line: bytes, status: int, reason: str) -> None:
    response = ResponseParser().feed(line + b"\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(response, Response)
    assert response.status == status and response.reason == reason


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1",
        b"HTTP/2 200 OK",
        b"HTTP/2.0 200 OK",
        b"ICY 200 OK",
        b"http/1.1 200 OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 200 OK\x00",
        b"HTTP/1.1 \xd9\xa2\xd9\xa0\xd9\xa0 OK",
        b"<html>",
    ],
)
def test_response_parser_rejects_bad_status_lines(line: bytes, mode: str) -> None:
    with pytest.raises(InvalidHTTP):
        run(ResponseParser(), line + b"\r\n\r\n", mode)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n",
    ],
)
def test_response_parser_rejects_bad_headers(head: bytes) -> None:
    with pytest.raises(InvalidHTTP):
        ResponseParser().feed(head)


def test_response_parser_eof_before_head() -> None:
    with pytest.raises(InvalidHTTP, match="without a response"):
        ResponseParser().feed(b"")
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 101 Switching")
    with pytest.raises(InvalidHTTP, match="before the end of the response head"):
        parser.feed(b"")


def test_response_parser_eof_in_content_length_body(mode: str) -> None:
    data = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\npartial"
    response, _ = run(ResponseParser(), data, mode, eof=True)
    assert isinstance(response, Response)
    assert response.body == b"partial" and response.body_truncated is True


def test_response_parser_eof_in_chunked_body(mode: str) -> None:
    data = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"
    response, _ = run(ResponseParser(), data, mode, eof=True)
    assert isinstance(response, Response)
    assert response.body == b"hel" and response.body_truncated is True


def test_response_parser_feed_after_complete() -> None:
    parser = ResponseParser()
    assert parser.feed(UPGRADE) is not None
    with pytest.raises(RuntimeError):
        parser.feed(b"\x81\x00")
    with pytest.raises(RuntimeError):
        parser.feed(b"")
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 500 X\r\n\r\nbody")
    assert parser.feed(b"") is not None
    with pytest.raises(RuntimeError):
        parser.feed(b"")


# max_body --------------------------------------------------------------------------------


def test_max_body_content_length_truncates_without_waiting(mode: str) -> None:
    # 1000 bytes announced, only 10 kept: the response is complete after 10 bytes.
    data = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
    response, _ = run(ResponseParser(max_body=10), data, mode)
    assert isinstance(response, Response)
    assert response.body == b"x" * 10 and response.body_truncated is True


def test_max_body_exact_is_not_truncated(mode: str) -> None:
    data = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\n" + b"x" * 10
    response, _ = run(ResponseParser(max_body=10), data, mode)
    assert isinstance(response, Response) and response.body_truncated is False
    eof_body = b"HTTP/1.1 403 Forbidden\r\n\r\n" + b"x" * 10
    response, _ = run(ResponseParser(max_body=10), eof_body, mode, eof=True)
    assert isinstance(response, Response) and response.body_truncated is False


def test_max_body_chunked(mode: str) -> None:
    data = (
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"8\r\nabcdefgh\r\n8\r\nijklmnop\r\n"
    )
    response, _ = run(ResponseParser(max_body=12), data, mode)
    assert isinstance(response, Response)
    assert response.body == b"abcdefghijkl" and response.body_truncated is True


def test_max_body_until_eof(mode: str) -> None:
    data = b"HTTP/1.1 500 Oops\r\n\r\n" + b"y" * 50
    response, _ = run(ResponseParser(max_body=20), data, mode)
    assert isinstance(response, Response)
    assert response.body == b"y" * 20 and response.body_truncated is True


def test_max_body_zero(mode: str) -> None:
    data = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc"
    response, _ = run(ResponseParser(max_body=0), data, mode)
    assert isinstance(response, Response)
    assert response.body == b"" and response.body_truncated is True


def test_max_body_never_buffers_an_endless_body() -> None:
    parser = ResponseParser(max_body=1000)
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    response = None
    for _ in range(1000):
        response = parser.feed(b"z" * 100)
        if response is not None:
            break
    assert response is not None and len(response.body) == 1000


# head_only (CONNECT answers) -------------------------------------------------------------


def test_head_only_2xx_leaves_the_tunnel(mode: str) -> None:
    data = b"HTTP/1.1 200 Connection established\r\nContent-Length: 50\r\n\r\n\x16\x03\x01tls"
    response, leftover = run(ResponseParser(head_only=True), data, mode)
    assert isinstance(response, Response) and response.status == 200
    assert response.body == b""
    assert leftover == b"\x16\x03\x01tls"


@pytest.mark.parametrize("body_framing", [b"Content-Length: 1000\r\n", b"Transfer-Encoding: chunked\r\n"])
def test_head_only_refusal_ends_with_its_head(mode: str, body_framing: bytes) -> None:
    # The body of a refusal is never used; a proxy that never finishes it must not hold
    # the client until its deadline.
    data = (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="proxy"\r\n' + body_framing + b"\r\nden"
    )
    response, leftover = run(ResponseParser(head_only=True), data, mode)
    assert isinstance(response, Response) and response.status == 407
    assert response.body == b""
    assert leftover == b"den"


def test_head_only_error_without_length_does_not_wait_for_eof(mode: str) -> None:
    data = b"HTTP/1.1 403 Forbidden\r\n\r\nsome bytes"
    response, leftover = run(ResponseParser(head_only=True), data, mode)
    assert isinstance(response, Response) and response.status == 403
    assert response.body == b""
    assert leftover == b"some bytes"
    te = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: gzip\r\n\r\nzz"
    response, _ = run(ResponseParser(head_only=True), te, mode)
    assert isinstance(response, Response) and response.body == b""


def test_head_only_skips_interim_responses() -> None:
    parser = ResponseParser(head_only=True)
    response = parser.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\ntunnel")
    assert isinstance(response, Response) and response.status == 200
    assert parser.leftover == b"tunnel"


# Response parser limits ------------------------------------------------------------------


def test_response_parser_limits(mode: str) -> None:
    with pytest.raises(InvalidHTTP):
        run(ResponseParser(max_line=20), b"HTTP/1.1 200 " + b"O" * 20 + b"\r\n\r\n", mode)
    many = b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 4 + b"\r\n"
    with pytest.raises(InvalidHTTP) as info:
        run(ResponseParser(max_headers=3), many, mode)
    assert info.value.status == 431
    response, _ = run(ResponseParser(max_headers=4), many, mode, eof=True)
    assert isinstance(response, Response)
    with pytest.raises(InvalidHTTP):
        run(ResponseParser(max_head=len(many) - 1), many, mode)


def test_response_parser_chunk_line_limits(mode: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    long_extension = b"2;" + b"e" * 100 + b"\r\nok\r\n0\r\n\r\n"
    with pytest.raises(InvalidHTTP):
        run(ResponseParser(max_line=50), head + long_extension, mode)
    trailers = b"0\r\n" + b"T: 1\r\n" * 4 + b"\r\n"
    with pytest.raises(InvalidHTTP) as info:
        run(ResponseParser(max_headers=3), head + trailers, mode)
    assert info.value.status == 431
    response, _ = run(ResponseParser(max_headers=4), head + trailers, mode)
    assert isinstance(response, Response)


def test_response_parser_endless_status_line() -> None:
    parser = ResponseParser(max_line=1000)
    fed = 0
    with pytest.raises(InvalidHTTP):
        for _ in range(10_000):
            parser.feed(b"H" * 100)
            fed += 100
    assert fed <= 1000


# Round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        Response(101, [("Upgrade", "websocket"), ("Connection", "Upgrade")]),
        Response(200, [("Content-Type", "text/plain")], b"healthy"),
        Response(401, [("WWW-Authenticate", 'Basic realm="x"')], "who are you?"),
        Response(404),
        Response(204, [("X", "1")]),
        Response(299, body=b"custom"),
    ],
)
def test_response_round_trip(response: Response, mode: str) -> None:
    parsed, leftover = run(ResponseParser(), response.serialize(), mode)
    assert isinstance(parsed, Response)
    assert int(parsed.status) == int(response.status)
    assert parsed.reason == response.reason
    assert parsed.body == response.body
    for name, value in response.headers.items():
        assert parsed.headers.get_all(name) == response.headers.get_all(name)
    assert leftover == b""


@pytest.mark.parametrize("seed", range(30))
def test_random_chunking_of_many_shapes(seed: int) -> None:
    rng = random.Random(seed)
    body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    parts = [part for part in [body[:50], body[50:]] if part]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    data = rng.choice(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n" % chunked,
        ]
    )
    parser = ResponseParser()
    index, response = 0, None
    while index < len(data) and response is None:
        size = rng.randint(1, 64)
        response = parser.feed(data[index : index + size])
        index += size
    assert isinstance(response, Response)
    assert response.body == body
