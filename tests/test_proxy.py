"""Tests for wsclient.proxy: choosing a proxy, and tunnels through real proxy servers.

The matcher, the environment rules and URL parsing are tested as values. Tunnels go through
real proxies started on loopback by tests/proxies.py (pproxy, dante, microsocks, tinyproxy,
squid over plain TCP and TLS, and OpenSSH's ``ssh -D``) to a real WebSocket server from the
``websockets`` package, driven by ``wsclient.connect``. A silent or misbehaving proxy is a
raw socket speaking bytes.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Callable, Dict, Iterator, List, Optional

import pytest

import wsclient
from wsclient import transport
from wsclient.exceptions import InvalidHTTP, InvalidURI, ProxyError
from wsclient.http11 import DEFAULT_MAX_HEADERS, DEFAULT_MAX_LINE, ResponseParser
from wsclient.proxy import (
    ProxyURL,
    connect_request,
    http_connect,
    parse_proxy_url,
    proxy_from_environment,
    select_proxy,
    should_bypass,
)
from wsclient.tls import TLSInTLS
from wsclient.uri import parse_uri

from .pki import Pki
from .proxies import (
    EchoTarget,
    RunningProxy,
    missing,
    run_dante,
    run_echo_target,
    run_microsocks,
    run_pproxy,
    run_squid,
    run_ssh_socks,
    run_tinyproxy,
)

SECRET = "s3cr3t-Pa55"  # the proxy password; must never show in messages
WRONG = "wr0ng-Pa55"
# Credentials that need percent-encoding in a URL, UTF-8 beyond ASCII, and, for the password,
# the longest SOCKS5 credential PySocks can send (127 bytes).
ODD_USER = "al ice+é/%"  # no colon: HTTP Basic cannot carry one in a user id (RFC 7617)
ODD_PASSWORD = "p@ss:w%rd/?#[] ü" + "x" * (127 - len("p@ss:w%rd/?#[] ü".encode()))
TIMEOUT = 10.0
UNRESOLVABLE = "target.invalid-example.test"


# -- parse_proxy_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://proxy.example:3128", ProxyURL("http", "proxy.example", 3128)),
        ("http://proxy.example", ProxyURL("http", "proxy.example", 1080)),
        ("https://proxy.example", ProxyURL("https", "proxy.example", 443)),
        ("socks4://10.0.0.1", ProxyURL("socks4", "10.0.0.1", 1080)),
        ("socks4a://h:1", ProxyURL("socks4a", "h", 1)),
        ("socks5://[::1]:9050", ProxyURL("socks5", "::1", 9050)),
        # The zone was kept encoded (fe80::1%25eth0), which no resolver knows (RFC 6874).
        ("http://[FE80::1%25eth0]:3128", ProxyURL("http", "fe80::1%eth0", 3128)),
        ("SOCKS5H://Proxy.Example:1080/", ProxyURL("socks5h", "proxy.example", 1080)),
        ("proxy.example:8080", ProxyURL("http", "proxy.example", 8080)),
        ("  http://proxy.example:8080  ", ProxyURL("http", "proxy.example", 8080)),
        ("http://user@h:1", ProxyURL("http", "h", 1, "user", None)),
        ("http://user:@h:1", ProxyURL("http", "h", 1, "user", "")),
        ("http://us%40er:p%3Aa%20ss@h:1", ProxyURL("http", "h", 1, "us@er", "p:a ss")),
        ("socks5h://u:p@ss@h:1", ProxyURL("socks5h", "h", 1, "u", "p@ss")),
    ],
)
def test_parse_proxy_url(url: str, expected: ProxyURL) -> None:
    assert parse_proxy_url(url) == expected


def test_a_proxy_with_an_ipv6_zone_reads_back_as_written() -> None:
    url = parse_proxy_url("socks5h://[fe80::1%25eth0]:1080")
    assert str(url) == "socks5h://[fe80::1%25eth0]:1080"
    assert parse_proxy_url(str(url)) == url


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://user:{SECRET}@h:1",
        f"socks6://user:{SECRET}@h",
        f"http://user:{SECRET}@:8080",
        f"http://user:{SECRET}@h:port",
        f"http://user:{SECRET}@h:70000",
        f"http://user:{SECRET}@h:0",
        f"http://user:{SECRET}@h:1/path",
        f"http://user:{SECRET}@h:1?q",
        f"http://user:{SECRET}@[::1:1",
        f"http://user:ab/{SECRET}@127.0.0.1:3128",  # an unencoded '/' in the password
        f"socks5h://user:{SECRET}/x/y@127.0.0.1:1080",
        "",
    ],
)
def test_parse_proxy_url_errors_hide_the_password(url: str) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_proxy_url(url)
    assert isinstance(info.value, ValueError)
    exc: Optional[BaseException] = info.value
    while exc is not None:  # Not in the chained exceptions either (a traceback shows them).
        assert SECRET not in str(exc) and SECRET not in repr(exc)
        exc = exc.__cause__ or exc.__context__


def test_parse_proxy_url_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        parse_proxy_url(b"http://h:1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url, match",
    [
        ("socks5://alice@h:1", "needs a password"),
        ("socks5h://alice:@h:1", "needs a password"),
        (f"socks5://{'u' * 128}:{SECRET}@h:1", "user name .* longer than 127 bytes"),
        (f"socks5h://alice:{SECRET}{'é' * 60}@h:1", "password .* longer than 127 bytes"),
    ],
)
def test_socks5_credentials_that_cannot_be_sent(url: str, match: str) -> None:
    """RFC 1929 wants a password of 1 to 255 bytes; PySocks sends at most 127 correctly.
    Rather than leaving credentials out, or sending a wrong length, the URL is refused."""
    with pytest.raises(InvalidURI, match=match) as info:
        parse_proxy_url(url)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_http_proxy_user_name_with_a_colon(scheme: str) -> None:
    """Basic auth sends ``user:password``: a colon in the name would move the split, so the
    proxy would check another name and password. Refused before anything is sent."""
    with pytest.raises(InvalidURI, match="cannot contain ':'") as info:
        parse_proxy_url(f"{scheme}://ali%3Ace:{SECRET}@h:1")
    assert SECRET not in str(info.value)
    # In the password a colon is fine: everything after the first one is the password.
    assert parse_proxy_url("http://alice:pa%3Ass@h:1").password == "pa:ss"


def test_socks5_credentials_at_the_limits() -> None:
    url = parse_proxy_url(f"socks5://{'u' * 127}:{'é' * 63}x@h:1")
    assert (len(url.username.encode()), len(url.password.encode())) == (127, 127)
    # SOCKS4 has no password: a user id alone is fine, and so is HTTP's user without one.
    assert parse_proxy_url("socks4a://id@h:1").username == "id"
    assert parse_proxy_url("http://alice@h:1").password is None


def test_proxy_url_never_shows_the_password() -> None:
    url = parse_proxy_url(f"socks5h://alice:{SECRET}@[::1]:1080")
    assert url.password == SECRET
    assert str(url) == "socks5h://alice:***@[::1]:1080"
    assert SECRET not in repr(url)
    assert "password='***'" in repr(url)
    assert str(parse_proxy_url("http://h:1")) == "http://h:1"


@pytest.mark.parametrize(
    "scheme, is_socks, remote_dns",
    [("http", False, True), ("https", False, True), ("socks4", True, False),
     ("socks4a", True, True), ("socks5", True, False), ("socks5h", True, True)],
)
def test_proxy_kinds(scheme: str, is_socks: bool, remote_dns: bool) -> None:
    url = parse_proxy_url(f"{scheme}://h:1")
    assert (url.is_socks, url.remote_dns) == (is_socks, remote_dns)


# -- should_bypass ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host, port, no_proxy, expected",
    [
        ("example.com", 80, "*", True),
        ("example.com", 80, "", False),
        ("example.com", 80, " , ", False),
        ("example.com", 80, "example.com", True),
        ("a.example.com", 80, "example.com", True),
        ("a.b.example.com", 80, ".example.com", True),
        ("example.com", 80, ".example.com", True),
        ("a.example.com", 80, "*.example.com", True),
        ("badexample.com", 80, "example.com", False),
        ("badexample.com", 80, ".example.com", False),
        ("example.com", 80, "a.example.com", False),
        ("EXAMPLE.com", 80, "Example.COM", True),
        ("example.com.", 80, "example.com", True),
        ("example.com", 80, "other.org, example.com", True),
        ("example.com", 80, "other.org example.com", True),
        ("example.com", 80, "other.org,\texample.com", True),
        ("example.com", 8080, "example.com:8080", True),
        ("example.com", 80, "example.com:8080", False),
        ("a.example.com", 443, ".example.com:443", True),
        ("example.com", 80, "example.com:http", False),
        ("127.0.0.1", 80, "127.0.0.1", True),
        ("127.0.0.2", 80, "127.0.0.1", False),
        ("127.0.0.1", 80, "localhost", False),
        ("localhost", 80, "127.0.0.1", False),
        ("127.0.0.1", 9000, "127.0.0.1:9000", True),
        ("127.0.0.1", 9001, "127.0.0.1:9000", False),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("192.168.1.7", 80, "192.168.1.0/24", True),
        ("10.1.2.3", 80, "10.1.2.3/32", True),
        ("10.1.2.3", 80, "10.0.0.1/8", True),
        ("::1", 80, "::1", True),
        ("::1", 80, "[::1]", True),
        ("[::1]", 80, "::1", True),
        ("::1", 80, "0:0:0:0:0:0:0:1", True),
        ("::1", 8080, "[::1]:8080", True),
        ("::1", 80, "[::1]:8080", False),
        ("::1", 80, "::1/128", True),
        ("::1", 80, "[::1]/128", True),
        ("fd00::5", 80, "fd00::/8", True),
        ("fe80::1", 80, "fd00::/8", False),
        ("::1", 80, "127.0.0.0/8", False),
        ("127.0.0.1", 80, "::/0", False),
        ("example.com", 80, "10.0.0.0/8", False),
        ("10.0.0.1", 80, "10.0.0.0/99", False),
        ("example.com", 80, "*.", False),
        ("example.com", 80, ".", False),
    ],
)
def test_should_bypass(host: str, port: int, no_proxy: str, expected: bool) -> None:
    assert should_bypass(host, port, no_proxy) is expected


# -- the environment -------------------------------------------------------------------------

WS = parse_uri("ws://target.example:8000/")
WSS = parse_uri("wss://target.example/")


@pytest.mark.parametrize(
    "uri, environ, expected",
    [
        (WS, {}, None),
        (WS, {"http_proxy": "http://p:1"}, "http://p:1"),
        (WSS, {"http_proxy": "http://p:1"}, None),
        (WSS, {"https_proxy": "http://s:1"}, "http://s:1"),
        (WS, {"https_proxy": "http://s:1"}, None),
        (WS, {"ws_proxy": "socks5://w:1", "http_proxy": "http://p:1"}, "socks5://w:1"),
        (WSS, {"wss_proxy": "socks5://w:1", "https_proxy": "http://s:1"}, "socks5://w:1"),
        (WS, {"all_proxy": "socks5h://a:1"}, "socks5h://a:1"),
        (WSS, {"ALL_PROXY": "socks5h://a:1"}, "socks5h://a:1"),
        (WS, {"http_proxy": "http://p:1", "all_proxy": "socks5h://a:1"}, "http://p:1"),
        (WSS, {"HTTPS_PROXY": "http://S:1"}, "http://S:1"),
        (WSS, {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://UP:1"}, "http://low:1"),
        (WSS, {"https_proxy": "", "HTTPS_PROXY": "http://UP:1"}, "http://UP:1"),
        (WS, {"ws_proxy": " ", "http_proxy": "http://p:1"}, "http://p:1"),
        (WS, {"HTTP_PROXY": "http://up:1"}, "http://up:1"),
        (WS, {"HTTP_PROXY": "http://up:1", "REQUEST_METHOD": "GET"}, None),
        (WS, {"http_proxy": "http://p:1", "REQUEST_METHOD": "GET"}, "http://p:1"),
        (WS, {"http_proxy": "http://p:1", "no_proxy": "arget.example"}, "http://p:1"),
        (WS, {"http_proxy": "http://p:1", "no_proxy": ".example"}, None),
        (WS, {"http_proxy": "http://p:1", "NO_PROXY": "target.example"}, None),
        (WS, {"http_proxy": "http://p:1", "no_proxy": "target.example:9"}, "http://p:1"),
        (WS, {"http_proxy": "http://p:1", "no_proxy": "target.example:8000"}, None),
        (WSS, {"https_proxy": "http://p:1", "no_proxy": "target.example:443"}, None),
        (WS, {"http_proxy": "http://p:1", "no_proxy": "other", "NO_PROXY": "*"}, "http://p:1"),
        (WS, {"all_proxy": "http://p:1", "no_proxy": "*"}, None),
    ],
)
def test_proxy_from_environment(uri, environ: Dict[str, str], expected: Optional[str]) -> None:
    assert proxy_from_environment(uri, environ) == expected


def test_select_proxy() -> None:
    environ = {"http_proxy": "http://env:1", "no_proxy": "target.example"}
    assert select_proxy(WS, None, environ) is None
    assert select_proxy(WS, "auto", environ) is None  # no_proxy exempts the host
    assert select_proxy(WS, "auto", {"http_proxy": "http://env:1"}) == ProxyURL("http", "env", 1)
    # An explicit URL wins over the environment, and no_proxy does not apply to it.
    assert select_proxy(WS, "socks5://mine:2", environ) == ProxyURL("socks5", "mine", 2)
    with pytest.raises(TypeError):
        select_proxy(WS, 42, environ)  # type: ignore[arg-type]
    with pytest.raises(InvalidURI):
        select_proxy(WS, "auto", {"http_proxy": f"gopher://u:{SECRET}@h"})


def test_select_proxy_reads_os_environ_by_default(monkeypatch) -> None:
    for name in ("ws_proxy", "WS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY",
                 "no_proxy", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("all_proxy", "socks5h://from-env:1080")
    assert select_proxy(WS, "auto") == ProxyURL("socks5h", "from-env", 1080)


# -- the CONNECT request ---------------------------------------------------------------------


def test_connect_request_bytes() -> None:
    plain = parse_proxy_url("http://p:1")
    assert connect_request(plain, "example.com", 443) == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    )
    assert connect_request(plain, "::1", 80) == (
        b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
    )


def test_connect_request_credentials_and_headers() -> None:
    url = parse_proxy_url(f"http://al%20ice:{SECRET}@p:1")
    request = connect_request(url, "h", 8080, [("X-Trace", "1"), ("X-Trace", "2")])
    token = base64.b64encode(f"al ice:{SECRET}".encode()).decode()
    assert request == (
        b"CONNECT h:8080 HTTP/1.1\r\nHost: h:8080\r\n"
        + f"Proxy-Authorization: Basic {token}\r\n".encode()
        + b"X-Trace: 1\r\nX-Trace: 2\r\n\r\n"
    )
    assert b"\r\nAuthorization" not in request


def test_an_empty_user_name_with_a_password_is_sent() -> None:
    # RFC 7617 allows an empty user-id; dropping the password would hide it from the proxy.
    url = parse_proxy_url(f"http://:{SECRET}@p:1")
    assert (url.username, url.password) == ("", SECRET)
    token = base64.b64encode(f":{SECRET}".encode()).decode()
    assert f"Proxy-Authorization: Basic {token}\r\n".encode() in connect_request(url, "h", 80)
    assert parse_proxy_url("http://@p:1").username is None
    with pytest.raises(InvalidURI, match="needs a user name"):
        parse_proxy_url(f"socks5h://:{SECRET}@p:1")  # RFC 1929: one byte at least


@pytest.mark.parametrize("host", ["a" * 64 + ".example", "ä" * 60 + ".example", "a..b"])
def test_proxy_host_names_are_checked_when_parsed(host: str) -> None:
    with pytest.raises(InvalidURI):
        parse_proxy_url(f"http://{host}:3128")


def test_an_internationalized_proxy_host_is_encoded() -> None:
    assert parse_proxy_url("http://bücher.example:3128").host == "xn--bcher-kva.example"


def test_connect_request_headers_replace_ours() -> None:
    url = parse_proxy_url(f"http://u:{SECRET}@p:1")
    request = connect_request(url, "h", 1, {"proxy-authorization": "Bearer token"})
    assert request == b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nproxy-authorization: Bearer token\r\n\r\n"


def test_connect_request_rejects_header_injection() -> None:
    with pytest.raises(ValueError):
        connect_request(parse_proxy_url("http://p:1"), "h", 1, {"X-A": "1\r\nEvil: yes"})


# -- real proxies ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ws_target() -> Iterator[EchoTarget]:
    with run_echo_target() as target:
        yield target


@pytest.fixture(scope="module")
def wss_target(pki: Pki) -> Iterator[EchoTarget]:
    with run_echo_target(pki.server_context()) as target:
        yield target


def _module_proxy(runner: Callable, **options: object) -> Callable:
    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
        with runner(str(tmp_path_factory.mktemp(runner.__name__)), **options) as running:
            yield running

    return fixture


pproxy_open = _module_proxy(run_pproxy)
pproxy_auth = _module_proxy(run_pproxy, username="alice", password=SECRET)
dante_open = _module_proxy(run_dante)
dante_auth = _module_proxy(run_dante, auth=True)
microsocks_open = _module_proxy(run_microsocks)
microsocks_auth = _module_proxy(run_microsocks, username="alice", password=SECRET)
tinyproxy_open = _module_proxy(run_tinyproxy)
tinyproxy_auth = _module_proxy(run_tinyproxy, username="alice", password=SECRET)
squid_open = _module_proxy(run_squid)
squid_odd = _module_proxy(run_squid, username=ODD_USER, password=ODD_PASSWORD)
microsocks_odd = _module_proxy(run_microsocks, username=ODD_USER, password=ODD_PASSWORD)
ssh_socks = _module_proxy(run_ssh_socks)


@pytest.fixture(scope="module")
def squid_auth(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with run_squid(str(tmp_path_factory.mktemp("squid")), username="alice", password=SECRET,
                   cert_file=pki.cert_file, key_file=pki.key_file) as running:
        yield running


@pytest.fixture(scope="module")
def squid_open_tls(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with run_squid(str(tmp_path_factory.mktemp("squid")), cert_file=pki.cert_file,
                   key_file=pki.key_file) as running:
        yield running


def exchange(uri: str, proxy: Optional[str], **options: object) -> wsclient.WebSocket:
    """Connect, echo one message, and return the (closed) connection."""
    with wsclient.connect(uri, proxy=proxy, timeout=TIMEOUT, compression=None, **options) as ws:
        ws.send("through the proxy")
        assert ws.recv(timeout=TIMEOUT) == "through the proxy"
        ws.send(b"\x00binary\xff")
        assert ws.recv(timeout=TIMEOUT) == b"\x00binary\xff"
    return ws


TUNNELS = [
    ("pproxy_open", "http"), ("pproxy_open", "socks4"), ("pproxy_open", "socks5"),
    ("pproxy_open", "socks5h"),
    ("pproxy_auth", "http"), ("pproxy_auth", "socks4"), ("pproxy_auth", "socks5"),
    ("pproxy_auth", "socks5h"),
    ("dante_open", "socks4"), ("dante_open", "socks5"), ("dante_open", "socks5h"),
    ("dante_auth", "socks5"), ("dante_auth", "socks5h"),
    ("microsocks_open", "socks5"), ("microsocks_open", "socks5h"),
    ("microsocks_auth", "socks5"), ("microsocks_auth", "socks5h"),
    ("tinyproxy_open", "http"), ("tinyproxy_auth", "http"),
    ("squid_open", "http"), ("squid_auth", "http"),
    ("ssh_socks", "socks4"), ("ssh_socks", "socks4a"), ("ssh_socks", "socks5"),
    ("ssh_socks", "socks5h"),
]


@pytest.mark.parametrize("server, scheme", TUNNELS)
def test_ws_through_proxy(request, ws_target: EchoTarget, server: str, scheme: str) -> None:
    running: RunningProxy = request.getfixturevalue(server)
    ws = exchange(ws_target.uri(), running.url(scheme))
    assert ws.close_code == 1000


@pytest.mark.parametrize("server, scheme", TUNNELS)
def test_wss_through_proxy(request, pki: Pki, wss_target: EchoTarget, server: str,
                           scheme: str) -> None:
    running: RunningProxy = request.getfixturevalue(server)
    exchange(wss_target.uri(), running.url(scheme), ssl_context=pki.client_context())


@pytest.fixture(scope="module")
def ws_target_v6() -> Iterator[EchoTarget]:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        missing(f"IPv6 loopback is unavailable: {exc}")
    with run_echo_target(host="::1") as target:
        yield target


@pytest.mark.parametrize(
    "server, scheme",
    [("pproxy_open", "http"), ("squid_open", "http"), ("tinyproxy_open", "http"),
     ("pproxy_open", "socks5"), ("microsocks_open", "socks5h"), ("ssh_socks", "socks5h")],
)
def test_ipv6_target_through_proxy(request, ws_target_v6: EchoTarget, server: str,
                                   scheme: str) -> None:
    """``ws://[::1]:port/``: bracketed in the CONNECT request (dante is left out: its
    configuration here has an IPv4 external address only)."""
    running: RunningProxy = request.getfixturevalue(server)
    exchange(ws_target_v6.uri(), running.url(scheme))


@pytest.mark.parametrize("server", ["squid_auth", "squid_open_tls"])
@pytest.mark.parametrize("target", ["ws", "wss"])
def test_https_proxy_tls_in_tls(request, pki: Pki, ws_target: EchoTarget,
                                wss_target: EchoTarget, server: str, target: str) -> None:
    running: RunningProxy = request.getfixturevalue(server)
    echo = ws_target if target == "ws" else wss_target
    url = running.url("https").replace("127.0.0.1", "localhost")
    exchange(echo.uri(), url, ssl_context=pki.client_context(),
             proxy_ssl_context=pki.client_context())


def test_https_proxy_target_is_verified_on_its_own(pki: Pki, squid_open_tls: RunningProxy,
                                                   wss_target: EchoTarget) -> None:
    """Inside the TLS to a trusted proxy, the target's certificate is still checked, with
    ``ssl_context`` (here the default, certifi's bundle, which does not know the test CA)."""
    with pytest.raises(ssl.SSLCertVerificationError):
        wsclient.connect(wss_target.uri(), proxy=squid_open_tls.url("https"), timeout=TIMEOUT,
                         proxy_ssl_context=pki.client_context())


def test_https_proxy_socket_is_tls_in_tls(pki: Pki, squid_auth: RunningProxy,
                                          wss_target: EchoTarget) -> None:
    from .test_tls import snapshot

    proxy = parse_proxy_url(squid_auth.url("https"))  # 127.0.0.1: the certificate names it
    target_context, proxy_context = pki.client_context(), pki.client_context()
    before = snapshot(target_context), snapshot(proxy_context)
    sock, leftover = transport.open_socket(
        parse_uri(wss_target.uri()), deadline=time.monotonic() + TIMEOUT, proxy=proxy,
        ssl_context=target_context, proxy_ssl_context=proxy_context,
    )
    assert (snapshot(target_context), snapshot(proxy_context)) == before
    with sock:
        assert isinstance(sock, TLSInTLS)
        assert leftover == b""
        assert sock.gettimeout() is None
        assert sock.getpeername() == ("127.0.0.1", squid_auth.tls_port)
        assert sock.getpeercert()["subject"][-1] == (("commonName", "localhost"),)


def test_https_proxy_certificate_is_verified(squid_auth: RunningProxy,
                                             ws_target: EchoTarget) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):  # certifi does not trust the test CA
        wsclient.connect(ws_target.uri(), proxy=squid_auth.url("https"), timeout=TIMEOUT)


# -- credentials -----------------------------------------------------------------------------


def check_secret_free(exc: BaseException) -> None:
    text = str(exc) + repr(exc)
    cause = exc.__cause__
    while cause is not None:
        text += str(cause)
        cause = cause.__cause__
    assert SECRET not in text and WRONG not in text


@pytest.mark.parametrize(
    "server, scheme",
    [("pproxy_auth", "http"), ("tinyproxy_auth", "http"), ("squid_auth", "http"),
     ("squid_auth", "https")],
)
@pytest.mark.parametrize("password", [WRONG, None])
def test_http_proxy_rejects_credentials_with_407(request, pki: Pki, ws_target: EchoTarget,
                                                 server: str, scheme: str,
                                                 password: Optional[str]) -> None:
    running: RunningProxy = request.getfixturevalue(server)
    username = "alice" if password else None
    url = running.url(scheme, username=username, password=password)
    with pytest.raises(ProxyError) as info:
        wsclient.connect(ws_target.uri(), proxy=url, timeout=TIMEOUT,
                         proxy_ssl_context=pki.client_context())
    # tinyproxy answers wrong credentials with 401 (missing ones with 407); the status is
    # passed on as the proxy gave it.
    expected = 401 if (server, password) == ("tinyproxy_auth", WRONG) else 407
    assert info.value.status == expected
    assert str(expected) in str(info.value)
    check_secret_free(info.value)


@pytest.mark.parametrize(
    "server, scheme",
    [("pproxy_auth", "socks4"), ("pproxy_auth", "socks5"), ("pproxy_auth", "socks5h"),
     ("dante_auth", "socks5"), ("microsocks_auth", "socks5"), ("microsocks_auth", "socks5h")],
)
@pytest.mark.parametrize("credentials", ["wrong", "none"])
def test_socks_proxy_rejects_credentials(request, ws_target: EchoTarget, server: str,
                                         scheme: str, credentials: str) -> None:
    running: RunningProxy = request.getfixturevalue(server)
    if credentials == "wrong":
        username = "mallory" if scheme == "socks4" else running.username
        url = running.url(scheme, username=username, password=WRONG)
    else:
        url = running.url(scheme, username=None)
    with pytest.raises(ProxyError) as info:
        wsclient.connect(ws_target.uri(), proxy=url, timeout=TIMEOUT)
    assert info.value.status is None
    assert str(parse_proxy_url(url)) in str(info.value)
    check_secret_free(info.value)


def test_socks5_authentication_failure_is_named(microsocks_auth: RunningProxy,
                                                ws_target: EchoTarget) -> None:
    url = microsocks_auth.url("socks5", password=WRONG)
    with pytest.raises(ProxyError, match="authentication failed"):
        wsclient.connect(ws_target.uri(), proxy=url, timeout=TIMEOUT)


@pytest.mark.parametrize(
    "server, scheme",
    [("squid_odd", "http"), ("microsocks_odd", "socks5"), ("microsocks_odd", "socks5h")],
)
def test_credentials_are_percent_decoded(request, ws_target: EchoTarget, server: str,
                                         scheme: str) -> None:
    """A user name and password with ``@ : / % ? # [ ]``, spaces and non-ASCII letters,
    percent-encoded in the URL, reach the proxy decoded (UTF-8), and the proxy checks them."""
    running: RunningProxy = request.getfixturevalue(server)
    url = running.url(scheme)
    assert "%40" in url and "%C3%BC" in url
    exchange(ws_target.uri(), url)
    with pytest.raises(ProxyError):  # the same password, one character short
        wsclient.connect(ws_target.uri(), proxy=running.url(scheme, password=ODD_PASSWORD[:-1]),
                         timeout=TIMEOUT)


def test_socks5_user_without_password_fails_before_any_traffic(ws_target: EchoTarget) -> None:
    """No silent fallback to "no authentication": the URL is refused before any connection
    (the port is dead, so reaching it would be a ProxyError instead)."""
    with pytest.raises(InvalidURI, match="needs a password"):
        wsclient.connect(ws_target.uri(), proxy=f"socks5h://alice@127.0.0.1:{dead_port()}",
                         timeout=TIMEOUT)


def ssh_log_lines(running: RunningProxy, marker: str) -> List[str]:
    """The lines of ``ssh -vv``'s log that hold ``marker`` (waiting for one, bounded)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        lines = [line for line in running.log("client/output.log").splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("scheme", ["socks4", "socks4a"])
def test_socks4_user_id_reaches_the_proxy(ssh_socks: RunningProxy, ws_target: EchoTarget,
                                          scheme: str) -> None:
    """The user name of a socks4/socks4a URL, percent-decoded, is the request's user id (the
    password has no place in SOCKS4); socks4a hands the proxy the host name to resolve."""
    user_id = f"id-{scheme}-{time.monotonic_ns()}!"
    host = "localhost" if scheme == "socks4a" else "127.0.0.1"
    url = ssh_socks.url(scheme, username=user_id, password="unused")
    assert "%21" in url
    exchange(ws_target.uri(host=host), url)
    assert any(f"decode socks4: user {user_id}/" in line for line in ssh_log_lines(ssh_socks, user_id))
    if scheme == "socks4a":
        lines = ssh_log_lines(ssh_socks, f"socks4 host localhost port {ws_target.port}")
        assert any("dynamic request" in line for line in lines)


def squid_connect_lines(squid: RunningProxy, marker: str) -> List[str]:
    """The decoded access.log lines of the CONNECTs whose headers hold ``marker``, once the
    tunnel (squid logs it when it closes) is there."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        lines = [urllib.parse.unquote(line) for line in squid.log("access.log").splitlines()]
        found = [line for line in lines if "CONNECT" in line and marker in line]
        if any("TUNNEL" in line for line in found):
            return found
        time.sleep(0.05)
    pytest.fail(f"no CONNECT tunnel with {marker!r} in squid's access.log")


@pytest.fixture
def recording_target(run_server) -> tuple:
    """A wsclient echo server whose ``process_request`` keeps each request's header pairs."""
    heads: List[List] = []

    def record(request: wsclient.Request) -> None:
        heads.append(list(request.headers.items()))

    return run_server(process_request=record, compression=None), heads


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_secrets_stay_on_their_side(pki: Pki, squid_auth: RunningProxy, recording_target,
                                    scheme: str) -> None:
    """The target's Authorization never reaches the proxy; the proxy's never the target.
    What the proxy got is squid's log of the CONNECT headers; what the target got, its own
    record of the handshake request."""
    target, heads = recording_target
    marker = f"case-{scheme}-{time.monotonic_ns()}"
    uri = f"ws://bob:target-pass@127.0.0.1:{target.port}/"
    exchange(uri, squid_auth.url(scheme), headers={"X-Target-Only": "yes"},
             proxy_headers={"X-Proxy-Note": marker}, proxy_ssl_context=pki.client_context())
    target_token = base64.b64encode(b"bob:target-pass").decode()
    proxy_token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    (received,) = heads
    names = [name.lower() for name, _ in received]
    assert ("Authorization", f"Basic {target_token}") in received
    assert "x-target-only" in names
    assert "proxy-authorization" not in names and "x-proxy-note" not in names
    assert not any(proxy_token in value or SECRET in value for _, value in received)
    # Credentials go in the first CONNECT: one request, no 407 round trip.
    (line,) = squid_connect_lines(squid_auth, marker)
    assert f"Proxy-Authorization: Basic {proxy_token}" in line
    assert "X-Target-Only" not in line and target_token not in line
    assert "\nAuthorization" not in line and "[Authorization" not in line


@pytest.mark.parametrize(
    "server, scheme",
    [("pproxy_auth", "http"), ("pproxy_auth", "socks5"), ("microsocks_auth", "socks5h"),
     ("dante_auth", "socks5"), ("pproxy_auth", "socks4")],
)
def test_proxy_credentials_never_reach_the_target(request, recording_target, server: str,
                                                  scheme: str) -> None:
    running: RunningProxy = request.getfixturevalue(server)
    target, heads = recording_target
    exchange(target.uri, running.url(scheme))
    (received,) = heads
    names = [name.lower() for name, _ in received]
    assert "proxy-authorization" not in names and "authorization" not in names
    token = base64.b64encode(f"{running.username}:{running.password}".encode()).decode()
    assert not any(token in value or str(running.password) in value for _, value in received)


def test_debug_logs_hold_no_password(caplog, pproxy_auth: RunningProxy,
                                     ws_target: EchoTarget) -> None:
    caplog.set_level(logging.DEBUG, logger="wsclient")
    for scheme in ("http", "socks5h"):
        exchange(ws_target.uri(), pproxy_auth.url(scheme))
    with pytest.raises(ProxyError):
        wsclient.connect(ws_target.uri(), proxy=pproxy_auth.url("http", password=WRONG),
                         timeout=TIMEOUT)
    assert "via http://alice:***@" in caplog.text  # the proxy is logged, redacted
    assert SECRET not in caplog.text and WRONG not in caplog.text


# -- name resolution -------------------------------------------------------------------------


@pytest.fixture
def lookups(monkeypatch) -> List[str]:
    """The host names this process resolves (socket.getaddrinfo still does the work)."""
    names: List[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_gethostbyname = socket.gethostbyname

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        names.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host):  # type: ignore[no-untyped-def]
        names.append(host)
        return real_gethostbyname(host)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", gethostbyname)
    return names


@pytest.mark.parametrize(
    "server, scheme",
    [("ssh_socks", "socks4a"), ("ssh_socks", "socks5h"), ("pproxy_open", "socks5h")],
)
def test_remote_dns_resolves_on_the_proxy(request, lookups: List[str], ws_target: EchoTarget,
                                          server: str, scheme: str) -> None:
    running: RunningProxy = request.getfixturevalue(server)
    exchange(ws_target.uri(host="localhost"), running.url(scheme))
    assert "localhost" not in lookups
    # The proxy's own address is an IP literal: nothing looked up at all. And the fixture
    # does record lookups (so the line above can fail):
    socket.getaddrinfo("localhost", 80)
    assert lookups == ["localhost"]


@pytest.mark.parametrize(
    "server, scheme",
    [("ssh_socks", "socks4a"), ("ssh_socks", "socks5h"), ("dante_open", "socks5h"),
     ("microsocks_open", "socks5h"), ("squid_open", "http"), ("tinyproxy_open", "http")],
)
def test_unresolvable_target_fails_on_the_proxy(request, lookups: List[str], server: str,
                                                scheme: str) -> None:
    running: RunningProxy = request.getfixturevalue(server)
    with pytest.raises(ProxyError) as info:
        wsclient.connect(f"ws://{UNRESOLVABLE}:8000/", proxy=running.url(scheme),
                         timeout=TIMEOUT)
    assert not isinstance(info.value, socket.gaierror)
    assert UNRESOLVABLE not in lookups


@pytest.mark.parametrize("scheme", ["socks4", "socks5"])
def test_local_dns_fails_locally(lookups: List[str], dante_open: RunningProxy,
                                 scheme: str) -> None:
    with pytest.raises(socket.gaierror):
        wsclient.connect(f"ws://{UNRESOLVABLE}:8000/", proxy=dante_open.url(scheme),
                         timeout=TIMEOUT)
    assert UNRESOLVABLE in lookups


@pytest.mark.parametrize("scheme", ["socks4", "socks4a"])
def test_socks4_cannot_reach_ipv6(dante_open: RunningProxy, scheme: str) -> None:
    with pytest.raises(ProxyError, match="IPv6"):
        wsclient.connect("ws://[::1]:8000/", proxy=dante_open.url(scheme), timeout=TIMEOUT)


def test_dante_rejects_socks4a(dante_open: RunningProxy, ws_target: EchoTarget) -> None:
    """dante does not implement SOCKS4A: its refusal comes back as a ProxyError."""
    with pytest.raises(ProxyError, match="rejected"):
        wsclient.connect(ws_target.uri(host="localhost"), proxy=dante_open.url("socks4a"),
                         timeout=TIMEOUT)


def test_socks_target_refused_by_proxy(dante_open: RunningProxy) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProxyError, match="refused"):
        wsclient.connect(f"ws://127.0.0.1:{port}/", proxy=dante_open.url("socks5"),
                         timeout=TIMEOUT)


def test_http_proxy_error_status(squid_open: RunningProxy) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProxyError) as info:
        wsclient.connect(f"ws://127.0.0.1:{port}/", proxy=squid_open.url("http"),
                         timeout=TIMEOUT)
    assert info.value.status is not None and info.value.status >= 400


# -- the environment, end to end -------------------------------------------------------------


def clear_proxy_environment(monkeypatch) -> None:
    for name in ("ws_proxy", "wss_proxy", "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_environment_proxy_and_no_proxy(monkeypatch, ws_target: EchoTarget) -> None:
    clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{dead_port()}")
    with pytest.raises(ProxyError):  # "auto" (the default) takes the proxy from the environment
        wsclient.connect(ws_target.uri(), timeout=TIMEOUT)
    exchange(ws_target.uri(), None)  # None: direct, whatever the environment says
    monkeypatch.setenv("no_proxy", "localhost, 127.0.0.0/8")
    exchange(ws_target.uri(), "auto")  # exempted: direct, so the dead proxy is not tried


@contextlib.contextmanager
def tunnel_logged(pproxy: RunningProxy, port: int) -> Iterator[None]:
    """Check that pproxy logs one more tunnel to ``port`` during the block (bounded wait)."""
    before = pproxy.log("output.log").count(f":{port}")
    yield
    deadline = time.monotonic() + TIMEOUT
    while pproxy.log("output.log").count(f":{port}") == before:
        assert time.monotonic() < deadline, "pproxy did not log the tunnel"
        time.sleep(0.05)


def test_environment_proxy_is_used(monkeypatch, pproxy_open: RunningProxy,
                                   ws_target: EchoTarget) -> None:
    clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("ALL_PROXY", pproxy_open.url("socks5h"))
    with tunnel_logged(pproxy_open, ws_target.port):
        exchange(ws_target.uri(), "auto")


def test_explicit_proxy_wins_over_the_environment(monkeypatch, pproxy_open: RunningProxy,
                                                  ws_target: EchoTarget) -> None:
    clear_proxy_environment(monkeypatch)
    for name in ("ws_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{dead_port()}")
    with tunnel_logged(pproxy_open, ws_target.port):
        exchange(ws_target.uri(), pproxy_open.url("http"))


def test_explicit_proxy_ignores_no_proxy(monkeypatch, ws_target: EchoTarget) -> None:
    clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("no_proxy", "*")
    with pytest.raises(ProxyError):
        wsclient.connect(ws_target.uri(), proxy=f"http://127.0.0.1:{dead_port()}",
                         timeout=TIMEOUT)


# -- unreachable, silent and misbehaving proxies ---------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https", "socks4", "socks5h"])
def test_refused_proxy(ws_target: EchoTarget, scheme: str) -> None:
    url = f"{scheme}://alice:{SECRET}@127.0.0.1:{dead_port()}"
    with pytest.raises(ProxyError) as info:
        wsclient.connect(ws_target.uri(), proxy=url, timeout=TIMEOUT)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    check_secret_free(info.value)


def test_unresolvable_proxy(ws_target: EchoTarget) -> None:
    with pytest.raises(ProxyError) as info:
        wsclient.connect(ws_target.uri(), proxy=f"http://alice:{SECRET}@{UNRESOLVABLE}:3128",
                         timeout=TIMEOUT)
    assert isinstance(info.value.__cause__, socket.gaierror)
    check_secret_free(info.value)


class ScriptedProxy:
    """A misbehaving peer on loopback: reads the request, sends ``answer``, stays open."""

    def __init__(self, answer: Optional[bytes], close: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.answer = answer
        self.close_after = close
        self.stop = threading.Event()
        self.conns: List[socket.socket] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        end = time.monotonic() + 2 * TIMEOUT
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            if self.answer is not None:
                conn.settimeout(TIMEOUT)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(self.answer)
            if self.close_after:
                conn.close()

    def shut(self) -> None:
        self.stop.set()
        self.thread.join(2 * TIMEOUT)
        assert not self.thread.is_alive()
        self.listener.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def scripted_proxy() -> Iterator[Callable[..., ScriptedProxy]]:
    started: List[ScriptedProxy] = []

    def start(answer: Optional[bytes] = None, close: bool = False) -> ScriptedProxy:
        peer = ScriptedProxy(answer, close)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.shut()


@pytest.mark.parametrize("scheme", ["http", "https", "socks4", "socks4a", "socks5", "socks5h"])
def test_silent_proxy_times_out(scripted_proxy, scheme: str) -> None:
    silent = scripted_proxy()  # accepts TCP, never answers
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        wsclient.connect("ws://127.0.0.1:9/", timeout=0.5,
                         proxy=f"{scheme}://alice:{SECRET}@127.0.0.1:{silent.port}")
    assert 0.4 < time.monotonic() - started < 3
    check_secret_free(info.value)


def test_silent_proxy_times_out_in_open_tunnel(scripted_proxy) -> None:
    silent = scripted_proxy()
    proxy = parse_proxy_url(f"socks5://alice:{SECRET}@127.0.0.1:{silent.port}")
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        transport.open_tunnel(proxy, "127.0.0.1", 9, deadline=time.monotonic() + 0.3)
    assert 0.2 < time.monotonic() - started < 3
    check_secret_free(info.value)


@pytest.mark.parametrize(
    "answer, close, match",
    [
        (b"garbage\r\n\r\n", False, "invalid answer"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", False, "invalid"),
        (b"", True, "closed the connection"),
        (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad", False, "502"),
        # The body never ends and the proxy stays open: the status is all that matters.
        (b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 1000\r\n\r\nden", False, "407"),
    ],
)
def test_misbehaving_http_proxy(scripted_proxy, answer: bytes, close: bool, match: str) -> None:
    peer = scripted_proxy(answer, close)
    with pytest.raises(ProxyError, match=match):
        transport.open_tunnel(parse_proxy_url(f"http://127.0.0.1:{peer.port}"), "h", 80,
                              deadline=time.monotonic() + TIMEOUT)


def _head(headers: int, line: int) -> bytes:
    """``headers`` header lines, the first ``line`` bytes long, and the blank line."""
    first = b"X-Long: " + b"a" * (line - len(b"X-Long: "))
    rest = [b"X-%d: v" % index for index in range(headers - 1)]
    return b"\r\n".join([first, *rest]) + b"\r\n\r\n"


@pytest.mark.parametrize(
    "head",
    [_head(DEFAULT_MAX_HEADERS, 100), _head(DEFAULT_MAX_HEADERS + 1, 100),
     _head(2, DEFAULT_MAX_LINE), _head(2, DEFAULT_MAX_LINE + 1)],
    ids=["max-headers", "max-headers+1", "max-line", "max-line+1"],
)
def test_connect_answer_has_the_handshake_limits(scripted_proxy, head: bytes) -> None:
    """The proxy's answer is accepted or refused exactly as the opening handshake's response
    parser (``ResponseParser()``, as ``connect()`` uses it) takes a 101 with the same head."""
    try:
        response = ResponseParser().feed(b"HTTP/1.1 101 Switching Protocols\r\n" + head)
        handshake_accepts = response is not None
    except InvalidHTTP:
        handshake_accepts = False
    assert handshake_accepts == (head.count(b"\r\n") - 1 <= DEFAULT_MAX_HEADERS
                                 and len(head.split(b"\r\n")[0]) <= DEFAULT_MAX_LINE)
    peer = scripted_proxy(b"HTTP/1.1 200 Connection established\r\n" + head)
    proxy = parse_proxy_url(f"http://127.0.0.1:{peer.port}")
    if handshake_accepts:
        sock, leftover = transport.open_tunnel(proxy, "h", 80, deadline=time.monotonic() + TIMEOUT)
        sock.close()
        assert leftover == b""
    else:
        with pytest.raises(ProxyError, match="invalid answer"):
            transport.open_tunnel(proxy, "h", 80, deadline=time.monotonic() + TIMEOUT)


def test_https_proxy_that_speaks_plain_http(scripted_proxy) -> None:
    # An https:// URL for a plain HTTP proxy: it answers the TLS ClientHello with HTTP.
    peer = scripted_proxy(b"HTTP/1.1 400 Bad Request\r\n\r\n", close=True)
    proxy = parse_proxy_url(f"https://alice:{SECRET}@127.0.0.1:{peer.port}")
    with pytest.raises(ProxyError, match="TLS with proxy https://alice:\\*\\*\\*@127.0.0.1") as info:
        transport.open_tunnel(proxy, "127.0.0.1", 9, deadline=time.monotonic() + TIMEOUT)
    assert isinstance(info.value.__cause__, ssl.SSLError)
    check_secret_free(info.value)


def test_https_url_for_a_real_plain_proxy(pproxy_open: RunningProxy, ws_target: EchoTarget) -> None:
    with pytest.raises(ProxyError, match="TLS with proxy"):
        wsclient.connect(ws_target.uri(), proxy=f"https://127.0.0.1:{pproxy_open.port}", timeout=TIMEOUT)


def test_https_proxy_handshake_timeout_names_the_proxy(scripted_proxy) -> None:
    silent = scripted_proxy()  # Accepts TCP, never answers the ClientHello.
    with pytest.raises(TimeoutError, match="TLS handshake with proxy https://127.0.0.1"):
        wsclient.connect("ws://127.0.0.1:9/", proxy=f"https://127.0.0.1:{silent.port}", timeout=0.5)


def test_socks5h_refuses_host_names_pysocks_cannot_send(pproxy_open: RunningProxy) -> None:
    # PySocks writes the length byte as UTF-8: 128 and more would reach the proxy garbled.
    name = ".".join(["a" * 60, "b" * 60, "c" * 10])  # 132 bytes, a valid DNS name
    with pytest.raises(ProxyError, match="132-byte host name"):
        wsclient.connect(f"ws://{name}/", proxy=pproxy_open.url("socks5h"), timeout=TIMEOUT)


def test_proxy_data_before_tls_is_refused(scripted_proxy) -> None:
    peer = scripted_proxy(b"HTTP/1.1 200 Connection established\r\n\r\nsurprise")
    with pytest.raises(ProxyError, match="before the TLS handshake"):
        transport.open_socket(parse_uri("wss://localhost/"), deadline=time.monotonic() + TIMEOUT,
                              proxy=parse_proxy_url(f"http://127.0.0.1:{peer.port}"))


def test_bytes_after_connect_answer_are_kept(scripted_proxy) -> None:
    peer = scripted_proxy(b"HTTP/1.1 200 Connection established\r\n\r\nfirst frames")
    sock, leftover = transport.open_tunnel(parse_proxy_url(f"http://127.0.0.1:{peer.port}"),
                                           "h", 80, deadline=time.monotonic() + TIMEOUT)
    with sock:
        assert leftover == b"first frames"


class PatientSocket(socket.socket):
    """A socket whose first ``recv`` waits (bounded) until the proxy's whole answer and some
    bytes after it are queued, so that one read takes both, as it may on any network."""

    patient = True

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        deadline = time.monotonic() + TIMEOUT
        while self.patient and time.monotonic() < deadline:
            queued = super().recv(65536, socket.MSG_PEEK)
            end = queued.find(b"\r\n\r\n")
            if not queued or (end != -1 and len(queued) > end + 4):
                break
            time.sleep(0.01)
        self.patient = False
        return super().recv(bufsize, flags)


@pytest.mark.parametrize("server", ["pproxy_open", "squid_open", "tinyproxy_open"])
def test_target_bytes_are_not_lost(request, server: str) -> None:
    """A target that speaks first, through a real proxy: the bytes that came in the same read
    as the proxy's answer are returned by http_connect, and the rest follows on the socket."""
    running: RunningProxy = request.getfixturevalue(server)
    payload = bytes(range(256)) * 256
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def speak() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.sendall(payload)
                conn.recv(1)

    speaker = threading.Thread(target=speak, daemon=True)
    speaker.start()
    try:
        with PatientSocket() as sock:
            sock.settimeout(TIMEOUT)
            sock.connect((running.host, running.port))
            leftover = http_connect(sock, parse_proxy_url(running.url("http")), "127.0.0.1",
                                    listener.getsockname()[1],
                                    deadline=time.monotonic() + TIMEOUT)
            assert leftover and payload.startswith(leftover)
            received = bytearray(leftover)
            while len(received) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        assert bytes(received) == payload
    finally:
        speaker.join(TIMEOUT)
        listener.close()
    assert not speaker.is_alive()


def test_socks_connect_needs_an_address_for_local_dns() -> None:
    with pytest.raises(ValueError):
        transport.socks_connect(parse_proxy_url("socks5://127.0.0.1:1"), [], "example.com", 80,
                              deadline=None)
