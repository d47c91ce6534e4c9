"""Tests for wsclient.uri: parsing ws:// and wss:// URIs and resolving redirects."""

from __future__ import annotations

import dataclasses

import pytest

from wsclient.exceptions import InvalidURI
from wsclient.uri import DEFAULT_PORTS, WebSocketURI, parse_uri, resolve_redirect


def test_default_ports() -> None:
    assert DEFAULT_PORTS == {"ws": 80, "wss": 443}
    assert parse_uri("ws://example.com").port == 80
    assert parse_uri("wss://example.com").port == 443


@pytest.mark.parametrize(
    "text, secure, host, port, resource",
    [
        ("ws://example.com", False, "example.com", 80, "/"),
        ("ws://example.com/", False, "example.com", 80, "/"),
        ("wss://example.com/chat", True, "example.com", 443, "/chat"),
        ("ws://example.com:8080/a/b", False, "example.com", 8080, "/a/b"),
        ("wss://example.com:443/", True, "example.com", 443, "/"),
        ("WS://EXAMPLE.COM/Path", False, "example.com", 80, "/Path"),
        ("ws://127.0.0.1:9000/", False, "127.0.0.1", 9000, "/"),
        ("ws://[::1]", False, "::1", 80, "/"),
        ("ws://[::1]:8080/x", False, "::1", 8080, "/x"),
        ("wss://[2001:DB8::1]/", True, "2001:db8::1", 443, "/"),
        ("ws://example.com?x=1", False, "example.com", 80, "/?x=1"),
        ("ws://example.com:/", False, "example.com", 80, "/"),  # empty port: RFC 3986 3.2.3
        ("ws://my_host.local/", False, "my_host.local", 80, "/"),
        ("ws://example.com./", False, "example.com.", 80, "/"),
        ("ws://example.com:00080/", False, "example.com", 80, "/"),
    ],
)
def test_parse_valid(text: str, secure: bool, host: str, port: int, resource: str) -> None:
    uri = parse_uri(text)
    assert (uri.secure, uri.host, uri.port, uri.resource) == (secure, host, port, resource)
    assert uri.user is None and uri.password is None


@pytest.mark.parametrize(
    "resource",
    [
        "/",
        "/a/b/c",
        "/a/b/?",
        "/path?query=1&x=y",
        "/p%20q?r=%2F%3d",
        "/a;b,c=d/e:f@g",
        "/~user/!$&'()*+,;=",
        "/?a=1&a=2&b=/x?y",
        "/%E2%82%AC",
        "//double//slash",
    ],
)
def test_path_and_query_preserved_exactly(resource: str) -> None:
    uri = parse_uri("ws://example.com" + resource)
    assert uri.resource == resource
    assert uri.uri == "ws://example.com" + resource


@pytest.mark.parametrize(
    "given, sent",
    [
        ("/a b", "/a%20b"),
        ("/?q=a b", "/?q=a%20b"),
        ("/caf\u00e9", "/caf%C3%A9"),
        ("/?name=\u20ac", "/?name=%E2%82%AC"),
        ("/\U0001f600", "/%F0%9F%98%80"),
        ('/"<>\\^`{|}', "/%22%3C%3E%5C%5E%60%7B%7C%7D"),
        ("/?a[]=1", "/?a%5B%5D=1"),
        ("/100%", "/100%25"),
        ("/%zz%4", "/%25zz%254"),
        ("/%4a", "/%4a"),  # escapes keep their case
    ],
)
def test_resource_percent_encodes_what_a_request_target_cannot_carry(
    given: str, sent: str
) -> None:
    assert parse_uri("ws://example.com" + given).resource == sent


def test_userinfo_is_percent_decoded() -> None:
    uri = parse_uri("wss://us%40er:p%3Ass%2Fw%C3%B6rd@example.com/")
    assert uri.user == "us@er"
    assert uri.password == "p:ss/w\u00f6rd"
    assert uri.host == "example.com"


def test_userinfo_variants() -> None:
    alice = parse_uri("ws://alice@h/")
    assert (alice.user, alice.password) == ("alice", None)
    assert parse_uri("ws://alice:@h/").password == ""
    assert parse_uri("ws://@h/").user is None
    # The last "@" ends the userinfo, so an unencoded "@" in the password still parses.
    uri = parse_uri("ws://bob:p@ss@h/")
    assert (uri.user, uri.password, uri.host) == ("bob", "p@ss", "h")


def test_userinfo_never_in_uri_or_host_header() -> None:
    uri = parse_uri("ws://alice:secret@example.com:8080/x")
    assert uri.uri == "ws://example.com:8080/x"
    assert str(uri) == "ws://example.com:8080/x"
    assert "secret" not in uri.host_header


def test_repr_masks_the_password() -> None:
    uri = parse_uri("ws://alice:s3cr3t@example.com/")
    text = repr(uri)
    assert "s3cr3t" not in text
    assert "password='***'" in text
    assert "alice" in text
    assert "password=None" in repr(parse_uri("ws://alice@example.com/"))


def test_scheme_property() -> None:
    assert parse_uri("ws://h/").scheme == "ws"
    assert parse_uri("wss://h/").scheme == "wss"


@pytest.mark.parametrize(
    "text, header",
    [
        ("ws://example.com/", "example.com"),
        ("ws://example.com:80/", "example.com"),
        ("ws://example.com:443/", "example.com:443"),
        ("wss://example.com:443/", "example.com"),
        ("wss://example.com:80/", "example.com:80"),
        ("ws://[::1]/", "[::1]"),
        ("ws://[::1]:8080/", "[::1]:8080"),
        ("ws://10.0.0.1:81/", "10.0.0.1:81"),
    ],
)
def test_host_header(text: str, header: str) -> None:
    assert parse_uri(text).host_header == header


def test_uri_property_round_trips() -> None:
    for text in ["ws://example.com/", "wss://[::1]:8443/a?b", "ws://h:81/x/y?z=1"]:
        uri = parse_uri(text)
        assert uri.uri == text
        assert parse_uri(uri.uri) == uri


def test_ipv6_zone() -> None:
    uri = parse_uri("ws://[fe80::1%25eth0]:9000/")
    assert uri.host == "fe80::1%eth0"
    assert uri.host_header == "[fe80::1%25eth0]:9000"
    with pytest.raises(InvalidURI):
        parse_uri("ws://[fe80::1%25]/")


def test_idna_host_names() -> None:
    assert parse_uri("ws://b\u00fccher.de/").host == "xn--bcher-kva.de"
    assert parse_uri("ws://B\u00dcCHER.DE/").host == "xn--bcher-kva.de"
    assert parse_uri("wss://\u4f8b\u3048.\u30c6\u30b9\u30c8/").host == "xn--r8jz45g.xn--zckzah"
    uri = parse_uri("ws://b\u00fccher.de:8080/")
    assert uri.host_header == "xn--bcher-kva.de:8080"
    assert uri.host_header.isascii()


def test_percent_encoded_host_is_decoded() -> None:
    assert parse_uri("ws://b%C3%BCcher.de/").host == "xn--bcher-kva.de"


def test_frozen_and_hashable() -> None:
    uri = parse_uri("ws://example.com/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        uri.port = 1  # type: ignore[misc]
    assert {uri: 1}[parse_uri("ws://EXAMPLE.com:80")] == 1


def test_constructed_directly() -> None:
    uri = WebSocketURI(secure=True, host="example.com", port=8443, resource="/a")
    assert uri.uri == "wss://example.com:8443/a"


def test_type_error_for_non_str() -> None:
    for value in [b"ws://example.com/", None, 42]:
        with pytest.raises(TypeError):
            parse_uri(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, words",
    [
        ("http://example.com/", ["'http'", "ws://", "wss://"]),
        ("https://example.com/", ["'https'", "ws://", "wss://"]),
        ("ftp://example.com/", ["'ftp'"]),
        ("example.com/path", ["no scheme"]),
        ("//example.com/", ["no scheme"]),
        ("ws:example.com", ["'//'"]),
        ("ws:/example.com", ["'//'"]),
        ("ws://example.com/#", ["fragment"]),
        ("ws://example.com/#frag", ["fragment"]),
        ("ws://example.com/path?q#frag", ["fragment"]),
        ("ws://", ["missing host"]),
        ("ws:///path", ["missing host"]),
        ("ws://:8080/", ["missing host"]),
        ("ws://user:pw@/x", ["missing host"]),
        ("ws://example.com:0/", ["port 0"]),
        ("ws://example.com:65536/", ["65536"]),
        ("ws://example.com:99999999999/", ["out of range"]),
        ("ws://example.com:http/", ["not a number"]),
        ("ws://example.com:-1/", ["not a number"]),
        ("ws://example.com:8o80/", ["not a number"]),
        ("ws://example.com:\u0661\u0662/", ["not a number"]),  # Arabic-Indic digits
        ("ws://::1/", ["brackets"]),
        ("ws://::1:8080/", ["brackets"]),
        ("ws://2001:db8::1/", ["brackets"]),
        ("ws://[::1/", ["IPv6"]),
        ("ws://[::1]junk/", ["IPv6"]),
        ("ws://[not-an-ip]/", ["IPv6"]),
        ("ws://[127.0.0.1]/", ["IPv6"]),
        ("ws://[::1]:abc/", ["not a number"]),
        ("ws://999.1.2.3/", ["IPv4"]),
        ("ws://1.2.3/", ["IPv4"]),
        ("ws://exa mple.com/", ["host"]),
        ("ws://exa<mple.com/", ["host"]),
        ("ws://a..b/", ["host"]),
        ("ws://./", ["host"]),
        ("ws://localhost../", ["host"]),  # Was accepted; wss:// then failed with a bare UnicodeError.
        ("wss://a.../", ["host"]),
        ("ws://\u00e9..x/", ["internationalized"]),
        ("ws://" + "a" * 64 + ".example/", ["too long"]),  # RFC 1035: labels up to 63
        ("ws://" + "abcdefgh." * 28 + "com/", ["too long"]),  # 255 in all
        ("ws://" + "\u00e4" * 60 + ".example/", ["internationalized"]),
        (" ws://example.com/", ["whitespace"]),
        ("ws://example.com/ ", ["whitespace"]),
        ("ws://example.com/\n", ["control"]),
        ("ws://example.com/a\r\nHost: evil", ["control"]),
        ("ws://exam\tple.com/", ["control"]),
        ("ws://example.com/\x00", ["control"]),
        ("ws://example.com/\x7f", ["control"]),
        ("ws://example.com/\x85", ["control"]),
        ("ws://example.com/\ud800", ["unencodable"]),
    ],
)
def test_invalid(text: str, words: list) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_uri(text)
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "ws://alice:hunter2@example.com:0/",
        "ws://alice:hunter2@example.com/#x",
        "http://alice:hunter2@example.com/",
        "ws://alice:hunter2@::1/",
        "ws://alice:hunter2@/",
        "ws://alice:hunter2@exa mple/",
        "ws://alice:hunter2@example.com/\x00",
        "ws://alice:ab/hunter2@example.com/",  # an unencoded '/' in the password
        "ws://alice:hun/ter2@example.com:0/",
    ],
)
def test_error_messages_never_show_the_password(text: str) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_uri(text)
    assert "hunter2" not in str(info.value) and "ter2" not in str(info.value)
    assert "hunter2" not in repr(info.value)


# Redirects -------------------------------------------------------------------------------

BASE = parse_uri("wss://alice:pw@example.com/a/b/c?q=1")


@pytest.mark.parametrize(
    "location, expected",
    [
        # RFC 3986 section 5.4.1 normal examples, adapted to a ws base.
        ("d", "wss://example.com/a/b/d"),
        ("./d", "wss://example.com/a/b/d"),
        ("d/", "wss://example.com/a/b/d/"),
        (".", "wss://example.com/a/b/"),
        ("./", "wss://example.com/a/b/"),
        ("..", "wss://example.com/a/"),
        ("../", "wss://example.com/a/"),
        ("../d", "wss://example.com/a/d"),
        ("../..", "wss://example.com/"),
        ("../../d", "wss://example.com/d"),
        ("../../../../d", "wss://example.com/d"),
        ("/./d", "wss://example.com/d"),
        ("/../d", "wss://example.com/d"),
        ("d/./e", "wss://example.com/a/b/d/e"),
        ("d/../e", "wss://example.com/a/b/e"),
        ("d?y=2", "wss://example.com/a/b/d?y=2"),
        ("?y=2", "wss://example.com/a/b/c?y=2"),
        ("/abs", "wss://example.com/abs"),
        ("/abs?x", "wss://example.com/abs?x"),
        ("d#frag", "wss://example.com/a/b/d"),
        ("  /spaced  ", "wss://example.com/spaced"),
    ],
)
def test_redirect_relative(location: str, expected: str) -> None:
    target = resolve_redirect(BASE, location)
    assert target.uri == expected
    assert (target.user, target.password) == ("alice", "pw")  # same host: kept


@pytest.mark.parametrize(
    "location, expected",
    [
        ("ws://other.org/x", "ws://other.org/x"),
        ("wss://other.org:8443/x?y", "wss://other.org:8443/x?y"),
        ("http://other.org/x", "ws://other.org/x"),
        ("https://other.org/x", "wss://other.org/x"),
        ("HTTPS://Other.ORG/x", "wss://other.org/x"),
        ("http://other.org:8080", "ws://other.org:8080/"),
        ("//other.org/p", "wss://other.org/p"),
        ("//[::1]:9000/p", "wss://[::1]:9000/p"),
        ("https://other.org/x#frag", "wss://other.org/x"),
    ],
)
def test_redirect_absolute(location: str, expected: str) -> None:
    target = resolve_redirect(BASE, location)
    assert target.uri == expected
    assert target.user is None and target.password is None  # another host: dropped


def test_redirect_credentials() -> None:
    # Same host and port, still TLS: kept.
    assert resolve_redirect(BASE, "https://example.com/n").password == "pw"
    assert resolve_redirect(BASE, "//example.com:443/n").password == "pw"
    # Same host, another port: dropped.
    assert resolve_redirect(BASE, "wss://example.com:8443/n").user is None
    # Downgrade from wss to ws: dropped, even on the same port.
    assert resolve_redirect(BASE, "ws://example.com:443/n").user is None
    # Credentials in the Location win.
    target = resolve_redirect(BASE, "wss://bob:other@example.com/n")
    assert (target.user, target.password) == ("bob", "other")
    # Upgrade from ws to wss on the same host and port keeps them.
    plain = parse_uri("ws://alice:pw@example.com:8000/")
    assert resolve_redirect(plain, "wss://example.com:8000/").password == "pw"


def test_redirect_without_credentials_in_base() -> None:
    base = parse_uri("ws://example.com/a")
    target = resolve_redirect(base, "b")
    assert target.uri == "ws://example.com/b"
    assert target.user is None


def test_redirect_keeps_base_port_and_ipv6() -> None:
    base = parse_uri("ws://[::1]:8765/room/1")
    assert resolve_redirect(base, "2").uri == "ws://[::1]:8765/room/2"


@pytest.mark.parametrize(
    "location",
    # An empty reference (or only a fragment) names the same URI again: a loop.
    ["", "   ", "#", "#frag", "ftp://o.org/", "mailto:x@y", "http://", "ws://h:0/", "http://::1/"],
)
def test_redirect_unusable(location: str) -> None:
    with pytest.raises(InvalidURI):
        resolve_redirect(BASE, location)


def test_redirect_type_error() -> None:
    with pytest.raises(TypeError):
        resolve_redirect(BASE, b"/x")  # type: ignore[arg-type]


def test_redirect_error_never_shows_password() -> None:
    with pytest.raises(InvalidURI) as info:
        resolve_redirect(BASE, "ftp://bob:hunter2@other.org/")
    assert "hunter2" not in str(info.value)
