"""Properties of :mod:`wsclient.uri` and proxy URLs (:func:`wsclient.proxy.parse_proxy_url`):
a URI built from parts parses back to those parts, a parsed URI's text parses to itself,
and any text gives a result or :class:`InvalidURI`."""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Optional

from hypothesis import given, strategies as st

from wsclient.exceptions import InvalidURI
from wsclient.proxy import DEFAULT_PROXY_PORTS, parse_proxy_url
from wsclient.uri import parse_uri, resolve_redirect

_label = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
names = st.lists(_label, min_size=1, max_size=4).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: str(ipaddress.IPv6Address(a)))
hosts = st.one_of(names, ipv4, ipv6)
ports = st.none() | st.integers(1, 65535)
_pchar = st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@", max_size=8)
paths = st.lists(_pchar, max_size=4).map(lambda segs: "".join("/" + s for s in segs))
queries = st.none() | st.text(alphabet="abc019-._~!$&'()*+,;=:@/?", max_size=12)
creds = st.none() | st.text(min_size=1, max_size=10)


def _netloc(host: str, port: Optional[int]) -> str:
    text = f"[{host}]" if ":" in host else host
    return text + (f":{port}" if port is not None else "")


@given(secure=st.booleans(), host=hosts, port=ports, path=paths, query=queries,
       user=creds, password=creds)
def test_uri_from_parts(secure: bool, host: str, port: Optional[int], path: str, query: Optional[str],
                        user: Optional[str], password: Optional[str]) -> None:
    userinfo = ""
    if user is not None:
        userinfo = urllib.parse.quote(user, safe="")
        if password is not None:
            userinfo += ":" + urllib.parse.quote(password, safe="")
        userinfo += "@"
    resource = path + (f"?{query}" if query is not None else "")
    text = f"{'wss' if secure else 'ws'}://{userinfo}{_netloc(host, port)}{resource}"
    parsed = parse_uri(text)
    assert parsed.secure is secure
    assert parsed.host == host.lower()
    assert parsed.port == (port if port is not None else (443 if secure else 80))
    assert parsed.resource == (resource if resource.startswith("/") else "/" + resource)
    assert parsed.user == user
    assert parsed.password == (password if user is not None else None)
    again = parse_uri(str(parsed))
    assert (again.secure, again.host, again.port, again.resource) == (
        parsed.secure, parsed.host, parsed.port, parsed.resource)


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_invalid_uri(text: str) -> None:
    for candidate in (text, "ws://" + text, "wss://h/" + text):
        try:
            parsed = parse_uri(candidate)
        except InvalidURI:
            continue
        assert 1 <= parsed.port <= 65535 and parsed.resource.startswith("/")
        assert parse_uri(str(parsed)).uri == parsed.uri  # what it shows parses to itself
        try:
            resolve_redirect(parsed, text)
        except InvalidURI:
            pass


_names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}", fullmatch=True)


@given(scheme=st.sampled_from(sorted(DEFAULT_PROXY_PORTS)), host=hosts, port=ports,
       user=st.none() | _names, password=st.none() | st.text(min_size=1, max_size=20), slash=st.booleans())
def test_proxy_url_from_parts(scheme: str, host: str, port: Optional[int], user: Optional[str],
                              password: Optional[str], slash: bool) -> None:
    userinfo = ""
    if user is not None:
        userinfo = user + (":" + urllib.parse.quote(password, safe="") if password is not None else "") + "@"
    text = f"{scheme}://{userinfo}{_netloc(host, port)}" + ("/" if slash else "")
    try:
        proxy = parse_proxy_url(text)
    except InvalidURI:
        # Only SOCKS5 refuses credentials: a user without a password, or one too long.
        assert scheme.startswith("socks5") and user is not None
        assert password is None or len(password.encode("utf-8")) > 127
        return
    assert (proxy.scheme, proxy.host) == (scheme, host.lower())
    assert proxy.port == (port if port is not None else DEFAULT_PROXY_PORTS[scheme])
    assert (proxy.username, proxy.password) == ((user, password) if user is not None else (None, None))
    if user is not None and password is not None:
        assert ":***@" in str(proxy) and "***" in repr(proxy)  # the password is never shown
    if password is None:
        assert parse_proxy_url(str(proxy)) == proxy


@given(st.text(max_size=60))
def test_any_proxy_text_parses_or_raises_invalid_uri(text: str) -> None:
    try:
        proxy = parse_proxy_url(text)
    except InvalidURI:
        return
    assert proxy.scheme in DEFAULT_PROXY_PORTS and 1 <= proxy.port <= 65535
