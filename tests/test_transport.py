"""Tests for wsclient.transport: direct TCP, unix sockets, sock=, TLS, and the deadline.

Peers are real sockets on loopback; the TLS server uses the test PKI. Paths through proxies
are in test_proxy.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from typing import Callable, Iterator, List, Optional, Tuple

import certifi
import pytest

from wsclient import transport
from wsclient.uri import parse_uri

from .pki import Pki
from .proxies import missing
from .test_tls import snapshot

WAIT = 10.0  # seconds a server thread may take


class Listener:
    """A TCP (or unix) listener; a thread accepts one connection and, for TLS, handshakes."""

    def __init__(self, family: int = socket.AF_INET, address: object = ("127.0.0.1", 0),
                 context: Optional[ssl.SSLContext] = None, greeting: bytes = b"") -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.stopping = threading.Event()
        self.address = self.sock.getsockname()
        self.context = context
        self.greeting = greeting
        self.accepted: List[socket.socket] = []
        self.errors: List[BaseException] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.address[1]

    def _accept(self) -> None:
        end = time.monotonic() + WAIT
        while not self.stopping.is_set() and time.monotonic() < end:
            try:
                conn, _ = self.sock.accept()
                break
            except TimeoutError:
                continue
            except OSError:
                return
        else:
            return
        conn.settimeout(WAIT)
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            if self.greeting:
                conn.sendall(self.greeting)
        except (OSError, ssl.SSLError) as exc:
            self.errors.append(exc)
        self.accepted.append(conn)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(WAIT)
        self.sock.close()
        assert not self.thread.is_alive()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def listen() -> Iterator:
    listeners: List[Listener] = []

    def start(*args: object, **kwargs: object) -> Listener:
        listener = Listener(*args, **kwargs)  # type: ignore[arg-type]
        listeners.append(listener)
        return listener

    yield start
    for listener in listeners:
        listener.close()


def deadline(seconds: float = WAIT) -> float:
    return time.monotonic() + seconds


def check_ready(sock: object) -> None:
    """What open_socket promises about the socket it returns."""
    assert sock.gettimeout() is None  # type: ignore[attr-defined]


# -- direct TCP ------------------------------------------------------------------------------


def test_direct_ipv4(listen) -> None:
    server = listen()
    sock, leftover = transport.open_socket(parse_uri(f"ws://127.0.0.1:{server.port}/"),
                                           deadline=deadline())
    with sock:
        assert leftover == b""
        assert sock.getpeername() == ("127.0.0.1", server.port)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        check_ready(sock)


def test_direct_ipv6(listen) -> None:
    try:
        server = listen(socket.AF_INET6, ("::1", 0))
    except OSError as exc:
        missing(f"IPv6 loopback is unavailable: {exc}")
    sock, _ = transport.open_socket(parse_uri(f"ws://[::1]:{server.port}/"), deadline=deadline())
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.getpeername()[:2] == ("::1", server.port)


def test_direct_host_name(listen) -> None:
    server = listen()
    sock, _ = transport.open_socket(parse_uri(f"ws://localhost:{server.port}/"), deadline=None)
    with sock:
        assert sock.getpeername()[1] == server.port


def test_refused_connection_passes_through() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens once the probe is closed
    with pytest.raises(ConnectionRefusedError):
        transport.open_socket(parse_uri(f"ws://127.0.0.1:{port}/"), deadline=deadline())


def test_unknown_host_passes_gaierror_through() -> None:
    with pytest.raises(socket.gaierror) as caught:
        transport.open_socket(parse_uri("ws://host.invalid-example.test/"), deadline=deadline())
    assert "cannot resolve the host name 'host.invalid-example.test'" in text_of(caught.value)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "fe80::1", "::ffff:127.0.0.1"])
@pytest.mark.parametrize("within", [None, 5.0])
def test_an_ip_address_resolves_as_getaddrinfo_would_without_calling_it(
    monkeypatch: pytest.MonkeyPatch, address: str, within: Optional[float]
) -> None:
    expected = socket.getaddrinfo(address, 8443, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_NUMERICHOST)
    asked: List[str] = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args: asked.append(host) or real(host, *args))
    found = transport.resolve(address, 8443, deadline=None if within is None else deadline(within))
    assert [(f, t, p, sockaddr[:2]) for f, t, p, _, sockaddr in found] == [
        (f, t, p, sockaddr[:2]) for f, t, p, _, sockaddr in expected
    ]
    assert found[0][4] == (address, 8443) or found[0][4] == (address, 8443, 0, 0)
    assert asked == []
    # Another family than the address's still asks getaddrinfo, and gets its answer.
    other = socket.AF_INET6 if ":" not in address else socket.AF_INET
    try:
        wanted = real(address, 8443, other, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_NUMERICHOST)
    except socket.gaierror:
        with pytest.raises(socket.gaierror):
            transport.resolve(address, 8443, deadline=None, family=other)
    else:  # An IPv4-mapped IPv6 address, asked for as IPv4.
        assert transport.resolve(address, 8443, deadline=None, family=other) == wanted
    assert asked == [address]


def test_resolve_under_a_deadline() -> None:
    results = transport.resolve("localhost", 80, deadline=deadline())
    assert any(info[4][0] in ("127.0.0.1", "::1") for info in results)
    assert transport.resolve("::1", 80, deadline=deadline())[0][0] == socket.AF_INET6


def test_deadline_already_passed(listen) -> None:
    server = listen()
    with pytest.raises(TimeoutError):
        transport.open_socket(parse_uri(f"ws://127.0.0.1:{server.port}/"),
                              deadline=time.monotonic() - 1)


@contextlib.contextmanager
def full_backlog(host: str = "127.0.0.1") -> Iterator[Tuple[str, int]]:
    """A listener that never accepts, its queue filled: a new connect() hangs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, 0), family=family, backlog=0)
    fillers: List[socket.socket] = []
    try:
        for _ in range(64):
            filler = socket.socket(family)
            fillers.append(filler)
            filler.settimeout(0.2)
            try:
                filler.connect(listener.getsockname())
            except TimeoutError:
                break
        else:
            pytest.fail("the listen queue never filled")
        yield listener.getsockname()[:2]
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_tcp_connect_bounded_by_deadline() -> None:
    with full_backlog() as (host, port):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            transport.open_socket(parse_uri(f"ws://{host}:{port}/"), deadline=deadline(0.5))
        assert 0.4 < time.monotonic() - started < 3


def test_tls_handshake_bounded_by_deadline(listen) -> None:
    silent = listen()  # accepts TCP and never speaks TLS
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        transport.open_socket(parse_uri(f"wss://127.0.0.1:{silent.port}/"), deadline=deadline(0.5))
    assert 0.4 < time.monotonic() - started < 3


# -- Happy Eyeballs (RFC 8305) and what a failed connection says ----------------------------


def wait_for(condition: Callable[[], object], what: str) -> None:
    """A bounded poll of ``condition`` (every 5 ms, at most WAIT seconds)."""
    end = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() >= end:
            pytest.fail(f"still waiting after {WAIT} s for {what}")
        time.sleep(0.005)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def info(address: Tuple[str, int]) -> transport.AddrInfo:
    """One :func:`socket.getaddrinfo` result, as the resolver gives it."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    return socket.getaddrinfo(address[0], address[1], family, socket.SOCK_STREAM,
                              socket.IPPROTO_TCP, socket.AI_NUMERICHOST)[0]


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on (bound, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def hanging_ipv6() -> "contextlib.AbstractContextManager[Tuple[str, int]]":
    """A listener on ::1 that never accepts, its queue filled: a new connect() hangs."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        missing(f"IPv6 loopback is unavailable: {exc}")
    return full_backlog("::1")


def test_happy_eyeballs_second_address_when_first_hangs(listen) -> None:
    server = listen()
    with hanging_ipv6() as dead:
        addresses = [info(dead), info(("127.0.0.1", server.port))]
        before = open_fds()
        started = time.monotonic()
        sock = transport.connect_addresses(addresses, deadline=deadline(), what="example:1")
        elapsed = time.monotonic() - started
        with sock:
            assert sock.getpeername() == ("127.0.0.1", server.port)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            # The second attempt starts 250 ms after the first, not after a timeout.
            # (about 0.25 s measured; the bound leaves room for a loaded machine)
            assert transport.ATTEMPT_DELAY - 0.02 <= elapsed < 0.5, elapsed
            # The listener's thread accepts the connection in this process too: wait for
            # that, and count its end. Besides those two, the hanging attempt is closed.
            wait_for(lambda: server.accepted, "the listener to accept")
            assert open_fds() == before + 2
        assert open_fds() == before + 1


def test_happy_eyeballs_interleaves_families(listen) -> None:
    server = listen()
    with hanging_ipv6() as dead:
        # Three dead IPv6 addresses first: interleaving tries IPv4 second, at 250 ms (in
        # the resolver's order it would be fourth, at 750 ms).
        addresses = [info(dead)] * 3 + [info(("127.0.0.1", server.port))]
        started = time.monotonic()
        with transport.connect_addresses(addresses, deadline=deadline(), what="x:1") as sock:
            assert sock.getpeername() == ("127.0.0.1", server.port)
        assert time.monotonic() - started < 0.6


def test_happy_eyeballs_next_attempt_at_once_after_a_refusal(listen) -> None:
    server = listen()
    addresses = [info(("127.0.0.1", closed_port())), info(("127.0.0.1", server.port))]
    started = time.monotonic()
    with transport.connect_addresses(addresses, deadline=deadline(), what="x:1") as sock:
        assert sock.getpeername() == ("127.0.0.1", server.port)
    assert time.monotonic() - started < transport.ATTEMPT_DELAY


def test_happy_eyeballs_within_the_deadline_and_no_leak() -> None:
    with hanging_ipv6() as dead, full_backlog() as dead4:
        addresses = [info(dead), info(dead4)]
        before = open_fds()
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            transport.connect_addresses(addresses, deadline=deadline(0.6), what="example:80")
        assert 0.55 < time.monotonic() - started < 1.5
        assert open_fds() == before
    message = str(caught.value)
    assert "example:80" in message
    assert f"[::1]:{dead[1]} (no answer)" in message
    assert f"127.0.0.1:{dead4[1]} (no answer)" in message


def test_one_address_is_bounded_named_and_leaks_nothing() -> None:
    """One address is connected without a selector: the same deadline, message and care."""
    with full_backlog() as dead4:
        before = open_fds()
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            transport.connect_addresses([info(dead4)], deadline=deadline(0.3), what="example:80")
        assert 0.25 < time.monotonic() - started < 1.5
        assert open_fds() == before
    assert str(caught.value) == f"timed out connecting to example:80: tried 127.0.0.1:{dead4[1]} (no answer)"
    port = closed_port()
    before = open_fds()
    with pytest.raises(ConnectionRefusedError) as refused:
        transport.connect_addresses([info(("127.0.0.1", port))], deadline=deadline(), what="example:81")
    assert open_fds() == before
    assert f"cannot connect to example:81: tried 127.0.0.1:{port} (Connection refused)" in text_of(refused.value)
    with pytest.raises(TimeoutError):
        transport.connect_addresses([info(("127.0.0.1", port))], deadline=time.monotonic() - 1, what="x:1")
    assert open_fds() == before


def test_refused_names_host_port_and_every_address() -> None:
    addresses = [info(("::1", closed_port("::1"))), info(("127.0.0.1", closed_port()))]
    before = open_fds()
    with pytest.raises(ConnectionRefusedError) as caught:
        transport.connect_addresses(addresses, deadline=deadline(), what="example.test:8080")
    assert open_fds() == before
    text = text_of(caught.value)
    assert "cannot connect to example.test:8080" in text
    assert f"[::1]:{addresses[0][4][1]} (Connection refused)" in text
    assert f"127.0.0.1:{addresses[1][4][1]} (Connection refused)" in text


def test_refused_through_connect_names_host_and_port() -> None:
    import wsclient

    port = closed_port()
    with pytest.raises(ConnectionRefusedError) as caught:
        wsclient.connect(f"ws://localhost:{port}/", proxy=None, timeout=WAIT)
    assert f"cannot connect to localhost:{port}: tried 127.0.0.1:{port} (Connection refused)" \
        in text_of(caught.value)


def test_hint_in_the_message_without_notes() -> None:
    """Before Python 3.11 (no add_note) the hint goes into the message, type unchanged."""
    from wsclient.exceptions import add_hint

    refused = ConnectionRefusedError(111, "Connection refused")
    add_hint(refused, "cannot connect to h:1", note=False)
    assert str(refused) == "[Errno 111] Connection refused. cannot connect to h:1"
    assert refused.errno == 111 and type(refused) is ConnectionRefusedError
    failure = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] no")
    add_hint(failure, "pass cafile=", note=False)
    assert str(failure).endswith("no. pass cafile=")
    broken = wsclient_invalid_http("connection closed without a response")
    add_hint(broken, "is this a wss:// server?", note=False)
    assert str(broken) == "connection closed without a response. is this a wss:// server?"


def wsclient_invalid_http(message: str) -> Exception:
    from wsclient import InvalidHTTP

    return InvalidHTTP(message)


def text_of(exc: BaseException) -> str:
    """What a person reads of an error: its message and its PEP 678 notes."""
    return "\n".join([str(exc), *getattr(exc, "__notes__", [])])


# -- unix sockets and sock= ------------------------------------------------------------------


def test_unix_path(listen, tmp_path) -> None:
    path = str(tmp_path / "ws.sock")
    listen(socket.AF_UNIX, path)
    sock, leftover = transport.open_socket(parse_uri("ws://localhost/chat"), deadline=deadline(),
                                           unix_path=path)
    with sock:
        assert sock.family == socket.AF_UNIX
        assert sock.getpeername() == path
        assert leftover == b""
        check_ready(sock)


def test_unix_path_missing(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        transport.open_socket(parse_uri("ws://localhost/"), deadline=deadline(),
                              unix_path=str(tmp_path / "absent.sock"))


def test_given_socket_is_used(listen) -> None:
    server = listen()
    given = socket.create_connection(("127.0.0.1", server.port), timeout=3)
    sock, leftover = transport.open_socket(parse_uri("ws://example.com/"), deadline=deadline(),
                                           sock=given)
    with sock:
        assert sock is given
        assert leftover == b""
        check_ready(sock)


def test_given_socket_ignores_proxy(listen) -> None:
    from wsclient.proxy import parse_proxy_url

    server = listen()
    given = socket.create_connection(("127.0.0.1", server.port), timeout=3)
    unused = parse_proxy_url("http://127.0.0.1:9")  # would be refused if it were tried
    sock, _ = transport.open_socket(parse_uri("ws://example.com/"), deadline=deadline(),
                                    sock=given, proxy=unused)
    with sock:
        assert sock is given


def test_sock_and_unix_path_together_is_an_error(tmp_path) -> None:
    with socket.socket() as given, pytest.raises(ValueError):
        transport.open_socket(parse_uri("ws://localhost/"), deadline=None, sock=given,
                              unix_path=str(tmp_path / "x"))


# -- TLS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_wss_verified(listen, pki: Pki, host: str) -> None:
    server = listen(context=pki.server_context(), greeting=b"hi")
    context = pki.client_context()
    before = snapshot(context)
    sock, _ = transport.open_socket(parse_uri(f"wss://{host}:{server.port}/"), deadline=deadline(),
                                    ssl_context=context)
    with sock:
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.server_hostname == host
        assert sock.getpeercert()["subject"][-1] == (("commonName", "localhost"),)
        assert sock.recv(2) == b"hi"
        check_ready(sock)
    assert snapshot(context) == before


def test_wss_default_context_does_not_trust_test_ca(listen, pki: Pki) -> None:
    server = listen(context=pki.server_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        transport.open_socket(parse_uri(f"wss://localhost:{server.port}/"), deadline=deadline())


def test_wss_untrusted_certificate(listen, pki: Pki) -> None:
    server = listen(context=pki.untrusted_server_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        transport.open_socket(parse_uri(f"wss://localhost:{server.port}/"), deadline=deadline(),
                              ssl_context=pki.client_context())


def test_wss_wrong_host_name_closes_given_socket(listen, pki: Pki) -> None:
    server = listen(context=pki.server_context())
    given = socket.create_connection(("127.0.0.1", server.port), timeout=3)
    with pytest.raises(ssl.SSLCertVerificationError, match="wrong.example"):
        transport.open_socket(parse_uri("wss://wrong.example/"), deadline=deadline(),
                              ssl_context=pki.client_context(), sock=given)
    assert given.fileno() == -1


def test_wss_over_unix_path(listen, pki: Pki, tmp_path) -> None:
    path = str(tmp_path / "wss.sock")
    listen(socket.AF_UNIX, path, context=pki.server_context(), greeting=b"ok")
    sock, _ = transport.open_socket(parse_uri("wss://localhost/"), deadline=deadline(),
                                    ssl_context=pki.client_context(), unix_path=path)
    with sock:
        assert sock.recv(2) == b"ok"


def test_https_proxy_and_target_trust_ssl_cert_file(pki: Pki, tmp_path, monkeypatch) -> None:
    """TLS to an https:// proxy and TLS inside it use the same default contexts: with
    SSL_CERT_FILE naming the test CA, neither needs an ssl_context to trust it; with
    certifi's bundle there, the proxy's certificate is refused."""
    import wsclient

    from .proxies import run_echo_target, run_squid

    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with run_echo_target(pki.server_context()) as target, \
            run_squid(str(tmp_path), cert_file=pki.cert_file, key_file=pki.key_file) as squid:
        monkeypatch.setenv("SSL_CERT_FILE", pki.ca_file)
        with wsclient.connect(target.uri(), proxy=squid.url("https"), timeout=WAIT) as ws:
            ws.send("both TLS sessions trusted")
            assert ws.recv(timeout=WAIT) == "both TLS sessions trusted"
        monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            wsclient.connect(target.uri(), proxy=squid.url("https"), timeout=WAIT)
        assert "SSL_CERT_FILE" in text_of(caught.value)
        assert "proxy_ssl_context=" in text_of(caught.value)  # the proxy's, not the target's


def test_https_proxy_that_answers_plain_http_asks_is_this_an_http_proxy(listen) -> None:
    from wsclient import ProxyError
    from wsclient.proxy import parse_proxy_url

    plain = listen(greeting=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    proxy = parse_proxy_url(f"https://127.0.0.1:{plain.port}")
    with pytest.raises(ProxyError) as caught:
        transport.open_socket(parse_uri("wss://target.example/"), deadline=deadline(),
                              proxy=proxy)
    assert isinstance(caught.value.__cause__, ssl.SSLError)
    assert "is this an http:// proxy?" in text_of(caught.value)
    assert "ws:// server" not in text_of(caught.value)
