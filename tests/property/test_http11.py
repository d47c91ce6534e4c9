"""Properties of :mod:`wsclient.http11`: valid request and response heads round-trip
through serialise and parse in any split, and the parsers' limits hold for any head."""

from __future__ import annotations

from typing import List, Optional

from hypothesis import assume, given, strategies as st

from wsclient.exceptions import InvalidHTTP
from wsclient.headers import Headers
from wsclient.http11 import Request, RequestParser, Response, ResponseParser

from .strategies import splits

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=16)
# A field value: ISO-8859-1 without controls (HTAB allowed), no surrounding spaces.
values = st.text(
    alphabet=st.characters(min_codepoint=0x09, max_codepoint=0xFF, exclude_characters="\n\r\x0b\x0c\x7f"
                           + "".join(map(chr, range(0x0E, 0x20)))),
    max_size=40,
).map(lambda v: v.strip(" \t"))
headers = st.lists(st.tuples(tokens, values), max_size=12).map(Headers)
targets = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60)


@given(method=tokens, target=targets, fields=headers, tail=st.binary(max_size=20), data=st.data())
def test_request_round_trip(method: str, target: str, fields: Headers, tail: bytes, data: st.DataObject) -> None:
    raw = Request(method, target, fields).serialize()
    parser = RequestParser()
    result: Optional[Request] = None
    fed = 0
    for piece in data.draw(splits(raw + tail)):
        if result is None and piece:
            result = parser.feed(piece)
            fed += len(piece)
    assert result is not None
    assert (result.method, result.path, result.version) == (method, target, "HTTP/1.1")
    assert result.headers.items() == fields.items()
    assert parser.leftover == (raw + tail)[len(raw) : fed]


@given(status=st.integers(100, 999), fields=headers, body=st.binary(max_size=200),
       reason=st.none() | values, data=st.data())
def test_response_round_trip(status: int, fields: Headers, body: bytes, reason: Optional[str], data: st.DataObject) -> None:
    for name in ("content-length", "transfer-encoding"):
        if name in fields:
            del fields[name]
    if status < 200 or status in (204, 304):
        body = b""
    assume(not (100 <= status < 200 and status != 101))  # interim answers are skipped
    response = Response(status, fields, body, reason=reason)
    raw = response.serialize()
    parser = ResponseParser()
    result = None
    for piece in data.draw(splits(raw)):
        if piece and result is None:
            result = parser.feed(piece)
    if result is None and status != 101:
        result = parser.feed(b"")  # a body read to the end of input
    assert result is not None
    assert int(result.status) == status and result.reason == response.reason
    assert result.body == body
    expected = [(n, v) for n, v in fields.items()]
    assert [(n, v) for n, v in result.headers.items() if n.lower() != "content-length"] == expected


@given(n=st.integers(1, 20), limit=st.integers(1, 20))
def test_max_headers_holds(n: int, limit: int) -> None:
    raw = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(n)) + b"\r\n"
    parser = RequestParser(max_headers=limit)
    try:
        request = parser.feed(raw)
    except InvalidHTTP as exc:
        assert n > limit and exc.status == 431
    else:
        assert n <= limit and request is not None and len(request.headers) == n


@given(size=st.integers(1, 300), limit=st.integers(16, 200), data=st.data())
def test_max_line_holds_in_any_split(size: int, limit: int, data: st.DataObject) -> None:
    raw = b"GET / HTTP/1.1\r\nX: " + b"v" * size + b"\r\n\r\n"
    parser = RequestParser(max_line=limit)
    try:
        for piece in data.draw(splits(raw)):
            if piece:
                parser.feed(piece)
    except InvalidHTTP as exc:
        assert size + 3 > limit and exc.status == 431
    else:
        assert size + 3 <= limit


@given(raw=st.binary(max_size=300), limit=st.integers(8, 300), data=st.data())
def test_head_never_buffers_past_max_head(raw: bytes, limit: int, data: st.DataObject) -> None:
    """Any bytes: a request, an InvalidHTTP, or waiting, never more than max_head buffered."""
    parser = RequestParser(max_head=limit, max_line=limit)
    fed = 0
    try:
        for piece in data.draw(splits(raw)):
            if not piece:
                continue
            fed += len(piece)
            if parser.feed(piece) is not None:
                return
            assert len(parser.leftover) <= limit + 1
    except InvalidHTTP as exc:
        assert exc.status in (400, 414, 431, 505)


@given(raw=st.binary(max_size=300), data=st.data())
def test_response_parser_raises_only_invalid_http(raw: bytes, data: st.DataObject) -> None:
    parser = ResponseParser(max_body=64)
    try:
        for piece in data.draw(splits(raw)) + [b""]:
            if parser.feed(piece) is not None:
                return
    except InvalidHTTP:
        pass
