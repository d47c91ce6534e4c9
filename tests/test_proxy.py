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
from wsclient.exceptions import InvalidURI, ProxyError
from wsclient.proxy import (
    ProxyURL,
    connect_request,
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
        "",
    ],
)
def test_parse_proxy_url_errors_hide_the_password(url: str) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_proxy_url(url)
    assert isinstance(info.value, ValueError)
    assert SECRET not in str(info.value)


def test_parse_proxy_url_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        parse_proxy_url(b"http://h:1")  # type: ignore[arg-type]


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
ssh_socks = _module_proxy(run_ssh_socks)


@pytest.fixture(scope="module")
def squid_auth(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with run_squid(str(tmp_path_factory.mktemp("squid")), username="alice", password=SECRET,
                   cert_file=pki.cert_file, key_file=pki.key_file) as running:
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


@pytest.mark.parametrize("target", ["ws", "wss"])
def test_https_proxy_tls_in_tls(pki: Pki, squid_auth: RunningProxy, ws_target: EchoTarget,
                                wss_target: EchoTarget, target: str) -> None:
    echo = ws_target if target == "ws" else wss_target
    url = squid_auth.url("https").replace("127.0.0.1", "localhost")
    exchange(echo.uri(), url, ssl_context=pki.client_context(),
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


def squid_connect_log(squid: RunningProxy, marker: str) -> str:
    """The decoded access.log line of the CONNECT whose headers hold ``marker``."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for line in squid.log("access.log").splitlines():
            decoded = urllib.parse.unquote(line)
            if "CONNECT" in decoded and marker in decoded:
                return decoded
        time.sleep(0.05)  # squid writes the line when the tunnel closes
    pytest.fail(f"no CONNECT with {marker!r} in squid's access.log")


def test_secrets_stay_on_their_side(squid_auth: RunningProxy, run_peer) -> None:
    """The target's Authorization never reaches the proxy; the proxy's never the target."""
    peer = run_peer()
    marker = f"case-{time.monotonic_ns()}"
    uri = f"ws://bob:target-pass@127.0.0.1:{peer.port}/"
    seen: List = []

    with wsclient.connect(uri, proxy=squid_auth.url("http"), timeout=TIMEOUT,
                          headers={"X-Target-Only": "yes"},
                          proxy_headers={"X-Proxy-Note": marker}) as ws:
        seen.append(ws.request.headers)
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "x"
    target_token = base64.b64encode(b"bob:target-pass").decode()
    proxy_token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    sent = seen[0]
    assert sent["Authorization"] == f"Basic {target_token}"
    assert sent["Proxy-Authorization"] is None
    assert sent["X-Proxy-Note"] is None
    line = squid_connect_log(squid_auth, marker)
    assert f"Proxy-Authorization: Basic {proxy_token}" in line
    assert "X-Target-Only" not in line
    assert target_token not in line
    assert "\nAuthorization" not in line and "[Authorization" not in line


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


def test_proxy_credentials_never_reach_the_target(pproxy_auth: RunningProxy,
                                                  ws_target: EchoTarget) -> None:
    count = len(ws_target.requests)
    exchange(ws_target.uri(), pproxy_auth.url("http"))
    request = ws_target.requests[count]
    assert request.headers.get("Proxy-Authorization") is None
    assert request.headers.get("Authorization") is None


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
    assert "127.0.0.1" in lookups  # the proxy's own address, resolved numerically


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
    monkeypatch.setenv("no_proxy", "localhost, 127.0.0.0/8")
    exchange(ws_target.uri(), "auto")  # exempted: direct, so the dead proxy is not tried
    exchange(ws_target.uri(), None)


def test_environment_proxy_is_used(monkeypatch, pproxy_open: RunningProxy,
                                   ws_target: EchoTarget) -> None:
    clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("all_proxy", pproxy_open.url("socks5h"))
    before = pproxy_open.log("output.log").count(f":{ws_target.port}")
    exchange(ws_target.uri(), "auto")
    deadline = time.monotonic() + TIMEOUT
    while pproxy_open.log("output.log").count(f":{ws_target.port}") == before:
        assert time.monotonic() < deadline, "pproxy did not log the tunnel"
        time.sleep(0.05)


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
        wsclient.connect(ws_target.uri(), proxy=f"http://{UNRESOLVABLE}:3128", timeout=TIMEOUT)
    assert isinstance(info.value.__cause__, socket.gaierror)


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
    with pytest.raises(TimeoutError):
        wsclient.connect("ws://127.0.0.1:9/", proxy=f"{scheme}://127.0.0.1:{silent.port}",
                         timeout=0.5)
    assert 0.4 < time.monotonic() - started < 3


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
    ],
)
def test_misbehaving_http_proxy(scripted_proxy, answer: bytes, close: bool, match: str) -> None:
    peer = scripted_proxy(answer, close)
    with pytest.raises(ProxyError, match=match):
        transport.open_tunnel(parse_proxy_url(f"http://127.0.0.1:{peer.port}"), "h", 80,
                              deadline=time.monotonic() + TIMEOUT)


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


@pytest.mark.parametrize("server", ["pproxy_open", "squid_open", "tinyproxy_open"])
def test_target_bytes_are_not_lost(request, server: str) -> None:
    """A target that speaks first: the bytes that came with the proxy's answer are returned."""
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
        sock, leftover = transport.open_tunnel(
            parse_proxy_url(running.url("http")), "127.0.0.1", listener.getsockname()[1],
            deadline=time.monotonic() + TIMEOUT)
        with sock:
            sock.settimeout(TIMEOUT)
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
