"""Tests for wsclient.headers: the Headers mapping and the header field rules."""

from __future__ import annotations

import http.client
import io
from typing import List

import pytest

from wsclient.headers import (
    SECRET_HEADERS,
    Headers,
    has_control_character,
    header_contains_token,
    is_token,
    parse_token_list,
)

# Headers ---------------------------------------------------------------------------------

HEADS = [
    b"Host: example.com\r\n\r\n",
    b"A: 1\r\nb: 2\r\na: 3\r\nB: 4\r\nc: \r\n\r\n",
    b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Thing:  spaced\r\n\r\n",
    b"Content-Type: text/plain\r\nCONTENT-type: other\r\n\r\n",
]


@pytest.mark.parametrize("head", HEADS)
def test_headers_read_like_http_message(head: bytes) -> None:
    message = http.client.parse_headers(io.BytesIO(head))
    headers = Headers(message.items())
    names = {name for name, _ in message.items()}
    probes = names | {name.upper() for name in names} | {name.lower() for name in names}
    for name in probes | {"Missing", "missing"}:
        assert headers[name] == message[name]
        assert headers.get(name) == message.get(name)
        assert headers.get(name, "dflt") == message.get(name, "dflt")
        assert headers.get_all(name) == message.get_all(name)
        assert headers.get_all(name, []) == message.get_all(name, [])
        assert (name in headers) == (name in message)
    assert headers.keys() == message.keys()
    assert headers.values() == message.values()
    assert headers.items() == message.items()
    assert list(headers) == list(message)
    assert len(headers) == len(message)


def test_headers_constructors() -> None:
    pairs = [("A", "1"), ("b", "2"), ("a", "3")]
    assert Headers().items() == []
    assert Headers(None).items() == []
    assert Headers(pairs).items() == pairs
    assert Headers(iter(pairs)).items() == pairs
    assert Headers({"A": "1", "b": "2"}).items() == [("A", "1"), ("b", "2")]
    other = Headers(pairs)
    assert Headers(other).items() == pairs
    message = http.client.parse_headers(io.BytesIO(b"X: 1\r\nx: 2\r\n\r\n"))
    assert Headers(message).get_all("x") == ["1", "2"]


@pytest.mark.parametrize(
    "bad",
    ["X: 1", b"X: 1", [("X",)], [("Authorization", "s3cr3t", "2")], ["XY"], [{"X", "1"}], 42],
)
def test_headers_constructor_type_errors(bad: object) -> None:
    with pytest.raises(TypeError) as info:
        Headers(bad)  # type: ignore[arg-type]
    assert "s3cr3t" not in str(info.value)


def test_headers_accept_lists_as_pairs() -> None:
    assert Headers([["X", "1"], ("Y", "2")]).items() == [("X", "1"), ("Y", "2")]


def test_headers_case_insensitive_and_case_preserving() -> None:
    headers = Headers([("Sec-WebSocket-Key", "k")])
    assert headers["sec-websocket-key"] == "k"
    assert headers["SEC-WEBSOCKET-KEY"] == "k"
    assert "sec-WEBsocket-key" in headers
    assert headers.keys() == ["Sec-WebSocket-Key"]
    assert 42 not in headers  # type: ignore[operator]


def test_headers_add_set_delete() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    headers.add("A", "4")
    assert headers.get_all("a") == ["1", "3", "4"]
    headers["a"] = "5"  # replaces every value, goes to the end
    assert headers.items() == [("B", "2"), ("a", "5")]
    headers["New"] = "6"
    assert headers["new"] == "6"
    del headers["B"]
    assert headers.items() == [("a", "5"), ("New", "6")]
    with pytest.raises(KeyError):
        del headers["B"]
    headers.add("x", "1")
    headers.add("X", "2")
    del headers["x"]
    assert "x" not in headers
    assert len(headers) == 2


def test_headers_missing_is_none_not_key_error() -> None:
    headers = Headers()
    assert headers["Missing"] is None
    assert headers.get("Missing") is None
    assert headers.get("Missing", "d") == "d"
    assert headers.get_all("Missing") is None
    assert headers.get_all("Missing", []) == []


def test_headers_copy_is_independent() -> None:
    headers = Headers([("A", "1")])
    copy = headers.copy()
    copy.add("A", "2")
    copy["B"] = "3"
    assert headers.items() == [("A", "1")]
    assert copy.items() == [("A", "1"), ("A", "2"), ("B", "3")]
    assert copy.get_all("a") == ["1", "2"] and copy["b"] == "3" and "b" in copy
    assert "b" not in headers and headers.get_all("a") == ["1"]
    del copy["a"]
    assert copy.items() == [("B", "3")] and headers["a"] == "1"
    assert Headers(headers)["a"] == "1" and "A" in Headers(headers)


def test_headers_equality() -> None:
    one = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    assert one == Headers([("a", "1"), ("b", "2"), ("A", "3")])
    assert one == Headers([("B", "2"), ("A", "1"), ("A", "3")])  # other names may move
    assert one != Headers([("A", "3"), ("B", "2"), ("A", "1")])  # a name's values may not
    assert one != Headers([("A", "1"), ("B", "2")])
    assert Headers({"X": "1"}) == {"x": "1"}
    assert Headers([("X", "1"), ("X", "2")]) == [("x", "1"), ("X", "2")]
    assert Headers() != 42
    assert Headers() != "text"
    with pytest.raises(TypeError):
        hash(Headers())


def test_headers_serialize() -> None:
    headers = Headers([("Host", "example.com"), ("X-A", "1"), ("x-a", "2")])
    assert headers.serialize() == b"Host: example.com\r\nX-A: 1\r\nx-a: 2\r\n"
    assert Headers().serialize() == b""
    assert Headers([("X", "caf\u00e9")]).serialize() == b"X: caf\xe9\r\n"


@pytest.mark.parametrize(
    "name", ["Authorization", "authorization", "Proxy-Authorization", "Cookie", "SET-COOKIE"]
)
def test_headers_repr_masks_secrets(name: str) -> None:
    headers = Headers([(name, "Basic c2VjcmV0"), ("X-Plain", "visible")])
    text = repr(headers)
    assert "c2VjcmV0" not in text
    assert "***" in text
    assert name in text
    assert "visible" in text


@pytest.mark.parametrize(
    "name",
    ["", "Bad Name", "Bad:Name", "Name ", " Name", "N\u00e9", "X\r\nInjected", "a\x00", "(x)"],
)
def test_headers_reject_invalid_names(name: str) -> None:
    with pytest.raises(ValueError):
        Headers([(name, "v")])
    headers = Headers()
    with pytest.raises(ValueError):
        headers.add(name, "v")
    with pytest.raises(ValueError):
        headers[name] = "v"
    assert len(headers) == 0


@pytest.mark.parametrize(
    "value",
    ["a\r\nInjected: yes", "a\nb", "a\rb", "a\x00b", "a\x01b", "a\x7fb", "\u20ac", "\U0001f600"],
)
def test_headers_reject_invalid_values(value: str) -> None:
    headers = Headers()
    with pytest.raises(ValueError):
        headers.add("X", value)
    with pytest.raises(ValueError):
        headers["X"] = value
    assert len(headers) == 0


@pytest.mark.parametrize(
    "value, says",
    [("a\r\nb", "control character"), ("a\x7f", "control character"), ("\u20ac", "not ISO-8859-1"),
     ("\u20ac\n", "control character")],
)
def test_an_invalid_value_is_refused_for_what_is_wrong_with_it(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Headers([("X", value)])


def test_a_name_checked_once_is_still_checked_in_every_other_form() -> None:
    # Valid names are remembered (the same few come in every handshake); an invalid one
    # never is, however often it comes.
    Headers([("X-Seen", "v")])
    for _ in range(3):
        with pytest.raises(ValueError):
            Headers([("X-Seen ", "v")])
        with pytest.raises(ValueError):
            Headers([("X Seen", "v")])


def test_headers_accept_valid_names_and_values() -> None:
    headers = Headers()
    headers.add("!#$%&'*+-.^_`|~09azAZ", "tab\tinside")
    headers.add("X-Latin", "\u00e9\u00ff")
    headers.add("X-Empty", "")
    headers.add("X-Strip", " \t padded \t ")
    assert headers["x-strip"] == "padded"
    assert headers["X-Empty"] == ""
    assert headers.get_all("!#$%&'*+-.^_`|~09azAZ") == ["tab\tinside"]


def test_headers_type_errors_never_show_the_value() -> None:
    with pytest.raises(TypeError) as info:
        Headers({"Authorization": b"Basic c2VjcmV0"})  # type: ignore[dict-item]
    assert "c2VjcmV0" not in str(info.value)
    with pytest.raises(TypeError):
        Headers().add(b"X", "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Headers().add("X", 1)  # type: ignore[arg-type]


# Token lists -----------------------------------------------------------------------------


def test_parse_token_list() -> None:
    assert parse_token_list([]) == []
    assert parse_token_list(["a"]) == ["a"]
    assert parse_token_list(["a, b", "c"]) == ["a", "b", "c"]
    assert parse_token_list([" a ,, b ,", ",", "\tc\t"]) == ["a", "b", "c"]
    assert parse_token_list(["keep-alive, Upgrade"]) == ["keep-alive", "Upgrade"]


@pytest.mark.parametrize(
    "values, found",
    [
        (["Upgrade"], True),
        (["upgrade"], True),
        (["UPGRADE"], True),
        (["keep-alive, Upgrade"], True),
        (["keep-alive", "upgrade"], True),
        ([" Upgrade ,close"], True),
        (["keep-alive"], False),
        (["upgrades"], False),
        (["keep-alive upgrade"], False),
        ([], False),
    ],
)
def test_header_contains_token(values: List[str], found: bool) -> None:
    headers = Headers([("Connection", value) for value in values])
    assert header_contains_token(headers, "connection", "Upgrade") is found


# Field rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["GET", "Sec-WebSocket-Key", "!#$%&'*+-.^_`|~", "0", "aZ9"])
def test_is_token_accepts_tokens(text: str) -> None:
    assert is_token(text)


@pytest.mark.parametrize(
    "text",
    ["", "GET ", " GET", "a:b", "a,b", "a\"b", "(x)", "a\tb", "a\r\nb", "caf\u00e9", "a\x7f"],
)
def test_is_token_rejects_everything_else(text: str) -> None:
    assert not is_token(text)


CONTROLS_BUT_HTAB = [chr(code) for code in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]]


@pytest.mark.parametrize("char", CONTROLS_BUT_HTAB)
def test_has_control_character_finds_every_control_but_htab(char: str) -> None:
    assert has_control_character(f"ok{char}ok")
    with pytest.raises(ValueError):
        Headers([("X", f"ok{char}ok")])


@pytest.mark.parametrize(
    "text", ["", "plain", "tab\tinside", " spaced ", "caf\u00e9", "\u00ff", "~"]
)
def test_has_control_character_accepts_field_text(text: str) -> None:
    assert not has_control_character(text)


@pytest.mark.parametrize("name", sorted(SECRET_HEADERS))
def test_every_secret_header_is_masked_in_any_case(name: str) -> None:
    headers = Headers([(name.upper(), "s3cr3t"), (name, "s3cr3t")])
    assert "s3cr3t" not in repr(headers)
    assert headers.get_all(name) == ["s3cr3t", "s3cr3t"]
