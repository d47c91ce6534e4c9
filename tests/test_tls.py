"""Tests for wsclient.tls: the default contexts and TLS inside TLS, against real TLS servers.

TLSInTLS is exercised through a TLS-terminating relay built from the ssl module: an outer TLS
server that forwards the decrypted bytes over TCP to an inner TLS server, so the client runs
one TLS session inside another, as through an ``https://`` proxy (the real proxy, squid, is
in test_proxy.py).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator, List, Optional

import certifi
import pytest

import wsclient
from wsclient import readiness, tls
from wsclient.tls import TLSInTLS

from .conftest import need
from .pki import Pki
from .proxies import find_program

DEADLINE = 20.0  # seconds any single test may spend waiting on sockets


def snapshot(context: ssl.SSLContext) -> tuple:
    """What a caller could observe of a context, to show it was not modified."""
    return (
        context.verify_mode, context.check_hostname, context.minimum_version,
        context.maximum_version, context.options, context.keylog_filename,
        len(context.get_ca_certs()), context.verify_flags,
    )


# -- the default contexts --------------------------------------------------------------------


def certifi_count() -> int:
    with open(certifi.where()) as file:
        return file.read().count("BEGIN CERTIFICATE")


@pytest.fixture
def no_cert_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither SSL_CERT_FILE nor SSL_CERT_DIR set (some machines set them for everything)."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def test_client_context_verifies_with_certifi_by_default(no_cert_variables) -> None:
    context = tls.client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == certifi_count()


def test_client_context_cafile_replaces_certifi(pki: Pki) -> None:
    context = tls.client_context(cafile=pki.ca_file)
    subjects = [dict(item[0] for item in cert["subject"]) for cert in context.get_ca_certs()]
    assert subjects == [{"organizationName": "wsclient tests", "commonName": "wsclient test CA"}]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_client_context_capath(pki: Pki, tmp_path) -> None:
    openssl = find_program("openssl", "openssl")
    with open(pki.ca_file, "rb") as source, open(tmp_path / "ca.pem", "wb") as copy:
        copy.write(source.read())
    subprocess.run([openssl, "rehash", str(tmp_path)], check=True, timeout=30)
    context = tls.client_context(capath=str(tmp_path))
    with TLSServer(pki.server_context()) as server:
        with server.connect(context, "localhost") as client:
            assert client.getpeercert()["subject"][-1] == (("commonName", "localhost"),)


def test_each_call_makes_a_new_context() -> None:
    first = tls.client_context()
    first.check_hostname = False
    assert tls.client_context().check_hostname is True


def test_missing_cafile_raises() -> None:
    with pytest.raises(FileNotFoundError):
        tls.client_context(cafile="/nonexistent/ca.pem")


def test_keylog_file_from_environment(pki: Pki, tmp_path, monkeypatch) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    context = tls.client_context(cafile=pki.ca_file)
    assert context.keylog_filename == str(keylog)
    with TLSServer(pki.server_context()) as server:
        with server.connect(context, "localhost"):
            pass
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in keylog.read_text()


def test_no_keylog_without_environment(monkeypatch) -> None:
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    assert tls.client_context().keylog_filename is None


def test_server_context_serves_the_chain(pki: Pki) -> None:
    context = tls.server_context(pki.cert_file, pki.key_file)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    with TLSServer(context) as server:
        with server.connect(pki.client_context(), "127.0.0.1") as client:
            assert client.version() in ("TLSv1.2", "TLSv1.3")


def test_server_context_with_key_in_certfile(pki: Pki) -> None:
    with TLSServer(tls.server_context(pki.chain_file)) as server:
        with server.connect(pki.client_context(), "localhost") as client:
            assert client.getpeercert() is not None


def test_server_context_rejects_mismatched_key(pki: Pki) -> None:
    with pytest.raises(ssl.SSLError):
        tls.server_context(pki.cert_file, pki.untrusted_key_file)


def test_default_context_rejects_test_certificate(pki: Pki, no_cert_variables) -> None:
    with TLSServer(pki.server_context()) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            server.connect(tls.client_context(), "localhost")


# -- client_ssl_context / server_ssl_context, through connect() and serve() -----------------


def text_of(exc: BaseException) -> str:
    """What a person reads of an error: its message and its PEP 678 notes."""
    return "\n".join([str(exc), *getattr(exc, "__notes__", [])])


def roundtrip(uri: str, **options: object) -> str:
    with wsclient.connect(uri, proxy=None, timeout=DEADLINE, **options) as ws:  # type: ignore[arg-type]
        ws.send("through TLS")
        return ws.recv(timeout=DEADLINE)


def test_public_names_are_exported() -> None:
    assert wsclient.client_ssl_context is tls.client_ssl_context
    assert wsclient.server_ssl_context is tls.server_ssl_context
    assert {"client_ssl_context", "server_ssl_context"} <= set(wsclient.__all__)


def test_ssl_cert_file_replaces_certifi(pki: Pki, run_server, monkeypatch) -> None:
    server = run_server(ssl_context=wsclient.server_ssl_context(pki.cert_file, pki.key_file))
    uri = f"wss://localhost:{server.port}/"
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(ssl.SSLCertVerificationError):  # certifi does not know the test CA
        roundtrip(uri)
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca_file)
    subjects = [dict(item[0] for item in cert["subject"])
                for cert in wsclient.client_ssl_context().get_ca_certs()]
    assert subjects == [{"organizationName": "wsclient tests", "commonName": "wsclient test CA"}]
    assert roundtrip(uri) == "through TLS"  # the default context, no ssl_context given


def test_ssl_cert_dir_replaces_certifi(pki: Pki, run_server, monkeypatch, tmp_path) -> None:
    openssl = find_program("openssl", "openssl")
    with open(pki.ca_file, "rb") as source, open(tmp_path / "ca.pem", "wb") as copy:
        copy.write(source.read())
    subprocess.run([openssl, "rehash", str(tmp_path)], check=True, timeout=30)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    server = run_server(ssl_context=wsclient.server_ssl_context(pki.cert_file, pki.key_file))
    assert roundtrip(f"wss://localhost:{server.port}/") == "through TLS"


def test_explicit_context_overrides_ssl_cert_file(pki: Pki, run_server, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca_file)
    server = run_server(ssl_context=wsclient.server_ssl_context(pki.cert_file, pki.key_file))
    uri = f"wss://localhost:{server.port}/"
    assert roundtrip(uri) == "through TLS"
    # An explicit ssl_context, and explicit CA arguments, win over the variable.
    with pytest.raises(ssl.SSLCertVerificationError):
        roundtrip(uri, ssl_context=wsclient.client_ssl_context(cafile=certifi.where()))
    with pytest.raises(ssl.SSLCertVerificationError):
        roundtrip(uri, ssl_context=ssl.create_default_context(cafile=certifi.where()))
    assert len(wsclient.client_ssl_context(cafile=certifi.where()).get_ca_certs()) == certifi_count()


def test_missing_ssl_cert_file_names_the_variable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "absent.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="SSL_CERT_FILE"):
        wsclient.client_ssl_context()


def test_empty_variables_count_as_unset(monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "")
    monkeypatch.setenv("SSL_CERT_DIR", "")
    assert len(wsclient.client_ssl_context().get_ca_certs()) == certifi_count()


def test_client_ssl_context_cadata(pki: Pki) -> None:
    with open(pki.ca_file) as file:
        context = wsclient.client_ssl_context(cadata=file.read())
    with TLSServer(pki.server_context()) as server:
        with server.connect(context, "localhost") as client:
            assert client.version() in ("TLSv1.2", "TLSv1.3")


def test_client_ssl_context_argument_errors(pki: Pki) -> None:
    with pytest.raises(ValueError, match="system_trust"):
        wsclient.client_ssl_context(cafile=pki.ca_file, system_trust=True)
    with pytest.raises(ValueError, match="certfile"):
        wsclient.client_ssl_context(keyfile=pki.client_key_file)
    with pytest.raises(TypeError, match="system_trust"):
        wsclient.client_ssl_context(system_trust="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wsclient.client_ssl_context(pki.ca_file)  # type: ignore[misc]  # keyword-only
    with pytest.raises(ssl.SSLError):
        wsclient.client_ssl_context(certfile=pki.client_cert_file, keyfile=pki.key_file)


@pytest.fixture
def mtls_server(pki: Pki, run_server):
    """A wsclient server that requires a client certificate signed by the test CA, and
    records the subject of each one it accepted."""
    context = wsclient.server_ssl_context(pki.cert_file, pki.key_file, cafile=pki.ca_file)
    assert context.verify_mode == ssl.CERT_REQUIRED

    def handler(ws) -> None:
        for message in ws:
            ws.send(message)

    return run_server(handler, ssl_context=context)


def test_mutual_tls_accepted(pki: Pki, mtls_server) -> None:
    context = wsclient.client_ssl_context(cafile=pki.ca_file, certfile=pki.client_cert_file,
                                          keyfile=pki.client_key_file)
    assert roundtrip(f"wss://localhost:{mtls_server.port}/", ssl_context=context) == "through TLS"


@pytest.mark.parametrize("client_cert", ["none", "untrusted"])
def test_mutual_tls_refused(pki: Pki, mtls_server, client_cert: str) -> None:
    if client_cert == "none":
        context = wsclient.client_ssl_context(cafile=pki.ca_file)
    else:
        context = wsclient.client_ssl_context(cafile=pki.ca_file,
                                              certfile=pki.untrusted_client_cert_file,
                                              keyfile=pki.untrusted_client_key_file)
    with pytest.raises(OSError) as caught:
        roundtrip(f"wss://localhost:{mtls_server.port}/", ssl_context=context)
    assert isinstance(caught.value, (ssl.SSLError, ConnectionError)), repr(caught.value)
    assert "client certificate" in text_of(caught.value)


def test_server_ssl_context_without_cafile_asks_no_certificate(pki: Pki) -> None:
    assert wsclient.server_ssl_context(pki.cert_file, pki.key_file).verify_mode == ssl.CERT_NONE


def test_system_trust_uses_truststore(pki: Pki, run_server, monkeypatch) -> None:
    try:
        import truststore
    except ImportError:
        need(False, "truststore is not installed (the test extra installs it)")
    context = wsclient.client_ssl_context(system_trust=True)
    assert isinstance(context, truststore.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    server = run_server(ssl_context=wsclient.server_ssl_context(pki.cert_file, pki.key_file))
    uri = f"wss://localhost:{server.port}/"
    # On Linux the "system store" is OpenSSL's configured one, which SSL_CERT_FILE and
    # SSL_CERT_DIR name: pointed at the test CA it is trusted, at certifi's bundle it is not.
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca_file)
    assert roundtrip(uri, ssl_context=wsclient.client_ssl_context(system_trust=True)) == "through TLS"
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    with pytest.raises(ssl.SSLCertVerificationError):
        roundtrip(uri, ssl_context=wsclient.client_ssl_context(system_trust=True))


def test_system_trust_without_truststore_says_what_to_install(tmp_path) -> None:
    script = (
        "import sys\n"
        "sys.modules['truststore'] = None  # as if it were not installed\n"
        "import wsclient\n"
        "try:\n"
        "    wsclient.client_ssl_context(system_trust=True)\n"
        "except ModuleNotFoundError as exc:\n"
        "    print('ERROR', exc.name, exc)\n"
        "import ssl\n"
        "print('still works:', wsclient.client_ssl_context().verify_mode == ssl.CERT_REQUIRED)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(wsclient.__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "ERROR truststore " in done.stdout
    assert 'pip install "wsclient-sync[truststore]"' in done.stdout
    assert "still works: True" in done.stdout


# -- errors that say what to do --------------------------------------------------------------


def test_untrusted_certificate_error_names_host_and_remedies(pki: Pki, run_server,
                                                             no_cert_variables) -> None:
    server = run_server(ssl_context=pki.untrusted_server_context())
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        roundtrip(f"wss://localhost:{server.port}/")
    assert type(caught.value) is ssl.SSLCertVerificationError
    text = text_of(caught.value)
    assert "self-signed certificate" in text  # OpenSSL's own words are kept
    for remedy in ("localhost", "cafile", "ssl_context", "SSL_CERT_FILE", "--cafile",
                   "system_trust"):
        assert remedy in text, (remedy, text)


def test_wrong_name_error_says_so(pki: Pki, run_server) -> None:
    server = run_server(ssl_context=pki.server_context())
    given = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        wsclient.connect("wss://wrong.example/", sock=given, timeout=DEADLINE,
                         ssl_context=pki.client_context())
    text = text_of(caught.value)
    assert "not valid for 'wrong.example'" in text
    assert "connect with a name the certificate lists" in text


def test_wss_to_a_ws_server_asks_is_this_a_ws_server(run_server) -> None:
    server = run_server()  # plain ws://: it closes on a TLS ClientHello
    with pytest.raises(OSError) as caught:
        roundtrip(f"wss://localhost:{server.port}/")
    assert isinstance(caught.value, (ssl.SSLError, ConnectionResetError)), repr(caught.value)
    assert "is this a ws:// server?" in text_of(caught.value)


def test_wss_to_a_plain_http_server_asks_is_this_a_ws_server() -> None:
    def answer_http(conn: socket.socket) -> None:  # the ClientHello read, HTTP answered
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    with PlainServer(answer_http) as server:
        with pytest.raises(ssl.SSLError) as caught:
            roundtrip(f"wss://localhost:{server.port}/")
    assert "is this a ws:// server?" in text_of(caught.value)


def test_ws_to_a_wss_server_asks_is_this_a_wss_server(pki: Pki, run_server) -> None:
    server = run_server(ssl_context=pki.server_context())
    with pytest.raises(OSError) as caught:
        roundtrip(f"ws://localhost:{server.port}/")
    assert isinstance(caught.value, (ConnectionResetError, wsclient.InvalidHTTP)), repr(caught.value)
    assert f"localhost:{server.port}" in text_of(caught.value)
    assert "is this a wss:// server?" in text_of(caught.value)


def test_ws_to_a_tls_server_that_answers_an_alert(pki: Pki) -> None:
    def alert(conn: socket.socket) -> None:  # a TLS alert record (unexpected_message)
        conn.recv(65536)
        conn.sendall(b"\x15\x03\x03\x00\x02\x02\x0a")

    with PlainServer(alert) as server:
        with pytest.raises(wsclient.InvalidHTTP) as caught:
            roundtrip(f"ws://localhost:{server.port}/")
    assert "is this a wss:// server?" in text_of(caught.value)


def test_a_real_http_refusal_gets_no_tls_hint(run_server) -> None:
    server = run_server(process_request=lambda request: (403, [], b"no"))
    with pytest.raises(wsclient.InvalidStatus) as caught:
        roundtrip(f"ws://localhost:{server.port}/")
    assert "wss://" not in text_of(caught.value)


class PlainServer:
    """A TCP server on loopback for one connection, running ``handler(conn)``."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(DEADLINE)
        self.port = self.listener.getsockname()[1]
        self.errors: List[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "PlainServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener.close()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "server thread did not finish"
        assert not self.errors, self.errors

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(DEADLINE)
            try:
                self.handler(conn)
            except OSError as exc:
                self.errors.append(exc)


# -- real TLS servers ------------------------------------------------------------------------


class TLSServer:
    """A TLS server on loopback for one connection, running ``handler(tls_socket)``."""

    def __init__(self, context: ssl.SSLContext,
                 handler: Optional[Callable[[ssl.SSLSocket], None]] = None) -> None:
        self.context = context
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(DEADLINE)
        self.address = self.listener.getsockname()
        self.errors: List[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "TLSServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener.close()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "server thread did not finish"

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.settimeout(DEADLINE)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls_conn:
                if self.handler is not None:
                    self.handler(tls_conn)
                else:
                    tls_conn.recv(1)  # until the client goes away
        except (OSError, ssl.SSLError) as exc:
            self.errors.append(exc)

    def connect(self, context: ssl.SSLContext, server_hostname: str) -> ssl.SSLSocket:
        raw = socket.create_connection(self.address, timeout=DEADLINE)
        try:
            return context.wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise


RELAY_BUFFER = 256 * 1024  # bytes the relay holds per direction (so back-pressure shows)


class Relay:
    """Outer TLS server that relays the decrypted stream to ``inner`` over TCP.

    One thread per connection does both directions with non-blocking sockets: OpenSSL does
    not allow one SSL object to be read and written by two threads at once.
    """

    def __init__(self, context: ssl.SSLContext, inner: TLSServer) -> None:
        self.inner = inner
        self.server = TLSServer(context, self._relay)

    def _relay(self, outer: ssl.SSLSocket) -> None:
        with socket.create_connection(self.inner.address, timeout=DEADLINE) as upstream:
            outer.setblocking(False)
            upstream.setblocking(False)
            _Shuttle(outer, upstream).run()

    def __enter__(self) -> "Relay":
        self.inner.__enter__()
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.__exit__()
        self.inner.__exit__()

    def open(self, pki: Pki, *, context: Optional[ssl.SSLContext] = None,
             server_hostname: str = "localhost") -> TLSInTLS:
        """Connect through the relay: outer TLS done, inner handshake not started."""
        outer = self.server.connect(pki.client_context(), "localhost")
        outer.settimeout(DEADLINE)
        return TLSInTLS(outer, context or pki.client_context(), server_hostname=server_hostname)


_WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)


class _Shuttle:
    """Moves bytes both ways between two non-blocking sockets until both ends are done."""

    def __init__(self, outer: ssl.SSLSocket, upstream: socket.socket) -> None:
        self.socks = (outer, upstream)
        self.buffers = (bytearray(), bytearray())  # bytes read from socks[0], from socks[1]
        self.reading = [True, True]
        self.shut = [False, False]

    def _read(self, side: int) -> bool:
        if not self.reading[side] or len(self.buffers[side]) >= RELAY_BUFFER:
            return False
        try:
            data = self.socks[side].recv(65536)
        except _WOULD_BLOCK:
            return False
        except OSError:
            data = b""
        self.buffers[side].extend(data)
        self.reading[side] = bool(data)
        return True

    def _write(self, side: int) -> bool:
        """Write what was read from ``side`` to the other socket."""
        buffer, target = self.buffers[side], self.socks[1 - side]
        if not buffer:
            if not self.reading[side] and not self.shut[1 - side]:
                self.shut[1 - side] = True
                with contextlib.suppress(OSError):  # keeps an SSLSocket's TLS state
                    socket.socket.shutdown(target, socket.SHUT_WR)
            return False
        try:
            del buffer[: target.send(buffer)]
        except _WOULD_BLOCK:
            return False
        except OSError:
            buffer.clear()
        return True

    def run(self) -> None:
        end = time.monotonic() + 3 * DEADLINE
        while time.monotonic() < end and not all(self.shut):
            moved = [self._read(0), self._read(1), self._write(0), self._write(1)]
            if any(moved) or self.socks[0].pending():
                continue
            readers = [sock for side, sock in enumerate(self.socks) if self.reading[side]]
            writers = [sock for side, sock in enumerate(self.socks) if self.buffers[1 - side]]
            select.select(readers, writers, [], 0.05)


def echo(conn: ssl.SSLSocket) -> None:
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


@pytest.fixture
def relay_to(pki: Pki) -> Iterator[Callable[..., Relay]]:
    """``relay_to(handler, inner_context=None)``: a relay to an inner TLS server."""
    relays: List[Relay] = []

    def start(handler: Callable = echo, inner_context: Optional[ssl.SSLContext] = None) -> Relay:
        inner = TLSServer(inner_context or pki.server_context(), handler)
        relay = Relay(pki.server_context(), inner).__enter__()
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        relay.__exit__()


def recv_exactly(sock: TLSInTLS, size: int) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + DEADLINE
    while len(data) < size and time.monotonic() < deadline:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


# -- TLSInTLS, blocking ----------------------------------------------------------------------


def test_tls_in_tls_blocking_round_trip(pki: Pki, relay_to) -> None:
    with relay_to().open(pki) as conn:
        conn.do_handshake()
        assert conn.version() in ("TLSv1.2", "TLSv1.3")
        assert conn.cipher() is not None
        assert conn.server_hostname == "localhost"
        assert conn.getpeercert()["subject"][-1] == (("commonName", "localhost"),)
        assert isinstance(conn.getpeercert(binary_form=True), bytes)
        conn.sendall(b"hello inside")
        assert recv_exactly(conn, 12) == b"hello inside"
        buffer = bytearray(5)
        conn.sendall(b"abcde")
        count = conn.recv_into(buffer)
        assert buffer[:count] == b"abcde"[:count] and count > 0


def test_tls_in_tls_alpn(pki: Pki, relay_to) -> None:
    server_context = pki.server_context()
    server_context.set_alpn_protocols(["x-inner"])
    client_context = pki.client_context()
    client_context.set_alpn_protocols(["x-inner"])
    with relay_to(inner_context=server_context).open(pki, context=client_context) as conn:
        conn.do_handshake()
        assert conn.selected_alpn_protocol() == "x-inner"


def test_tls_in_tls_never_modifies_the_context(pki: Pki, relay_to) -> None:
    context = pki.client_context()
    before = snapshot(context)
    with relay_to().open(pki, context=context) as conn:
        conn.do_handshake()
        conn.sendall(b"x")
        assert recv_exactly(conn, 1) == b"x"
    assert snapshot(context) == before


def test_tls_in_tls_large_transfer_with_two_threads(pki: Pki, relay_to) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    with relay_to().open(pki) as conn:
        conn.do_handshake()
        sender = threading.Thread(target=conn.sendall, args=(payload,), daemon=True)
        sender.start()
        received = recv_exactly(conn, len(payload))
        sender.join(DEADLINE)
        assert not sender.is_alive()
    assert received == payload


def test_tls_in_tls_untrusted_inner_certificate(pki: Pki, relay_to) -> None:
    relay = relay_to(inner_context=pki.untrusted_server_context())
    with relay.open(pki) as conn:
        with pytest.raises(ssl.SSLCertVerificationError):
            conn.do_handshake()


def test_tls_in_tls_wrong_inner_host_name(pki: Pki, relay_to) -> None:
    with relay_to().open(pki, server_hostname="wrong.example") as conn:
        with pytest.raises(ssl.SSLCertVerificationError, match="wrong.example"):
            conn.do_handshake()


def test_tls_in_tls_timeout_leaves_connection_usable(pki: Pki, relay_to) -> None:
    release = threading.Event()

    def late_echo(conn: ssl.SSLSocket) -> None:
        data = conn.recv(100)
        release.wait(DEADLINE)
        conn.sendall(data)

    with relay_to(late_echo).open(pki) as conn:
        conn.do_handshake()
        conn.sendall(b"later")
        conn.settimeout(0.2)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.recv(100)
        assert 0.15 < time.monotonic() - started < 5
        release.set()
        conn.settimeout(DEADLINE)
        assert recv_exactly(conn, 5) == b"later"


def test_tls_in_tls_end_of_stream(pki: Pki, relay_to) -> None:
    def say_and_close(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"bye")

    with relay_to(say_and_close).open(pki) as conn:
        conn.do_handshake()
        assert recv_exactly(conn, 3) == b"bye"
        assert conn.recv(10) == b""
        assert conn.pending() > 0  # recv() would return at once: the end of the stream


def test_tls_in_tls_close_and_context_manager(pki: Pki, relay_to) -> None:
    conn = relay_to().open(pki)
    with conn:
        conn.do_handshake()
        assert conn.fileno() >= 0
        assert conn.getsockname()[0] == "127.0.0.1"
        assert conn.getpeername()[0] == "127.0.0.1"
    assert conn.fileno() == -1
    conn.close()  # idempotent
    with pytest.raises(OSError):
        conn.recv(1)


def test_tls_in_tls_flags_rejected(pki: Pki, relay_to) -> None:
    with relay_to().open(pki) as conn:
        conn.do_handshake()
        with pytest.raises(ValueError):
            conn.send(b"x", socket.MSG_OOB)
        with pytest.raises(ValueError):
            conn.recv(1, socket.MSG_PEEK)
        with pytest.raises(ValueError):
            conn.settimeout(-1)


# -- TLSInTLS, non-blocking ------------------------------------------------------------------


def wait_ready(conn: TLSInTLS, events: int) -> None:
    readiness.wait_ready(conn, events, time.monotonic() + 0.1)


def nonblocking_handshake(conn: TLSInTLS) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            conn.do_handshake()
            return
        except ssl.SSLWantReadError:
            wait_ready(conn, readiness.READ)
        except ssl.SSLWantWriteError:
            wait_ready(conn, readiness.WRITE)
    pytest.fail("non-blocking handshake did not finish")


def test_tls_in_tls_nonblocking_round_trip(pki: Pki, relay_to) -> None:
    """The connection layer's way: poll fileno(), but read first while pending() > 0."""
    payload = os.urandom(4 * 1024 * 1024)
    with relay_to().open(pki) as conn:
        conn.setblocking(False)
        assert conn.gettimeout() == 0.0 and not conn.getblocking()
        nonblocking_handshake(conn)
        sent, received = 0, bytearray()
        deadline = time.monotonic() + DEADLINE
        while len(received) < len(payload) and time.monotonic() < deadline:
            if sent < len(payload):
                try:
                    sent += conn.send(payload[sent:])
                except ssl.SSLWantWriteError:
                    pass
            try:
                chunk = conn.recv(10000)
                assert chunk, "unexpected end of stream"
                received += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            if conn.pending() == 0:
                wait_ready(conn, readiness.READ | (readiness.WRITE if sent < len(payload) else 0))
        assert bytes(received) == payload


def test_tls_in_tls_nonblocking_recv_without_data(pki: Pki, relay_to) -> None:
    with relay_to().open(pki) as conn:
        conn.do_handshake()
        conn.settimeout(0)
        assert conn.pending() == 0
        with pytest.raises(ssl.SSLWantReadError):
            conn.recv(10)


def test_tls_in_tls_pending_counts_what_poll_cannot_see(pki: Pki, relay_to) -> None:
    """Several records arrive at once; reading them one byte at a time, with poll() only
    when pending() is 0, must neither stall nor lose a byte."""
    records = [b"first record", b"second record", b"third record"]

    def burst(conn: ssl.SSLSocket) -> None:
        conn.recv(1)
        for record in records:
            conn.sendall(record)
        conn.recv(1)  # until the client goes away

    expected = b"".join(records)
    with relay_to(burst).open(pki) as conn:
        conn.do_handshake()
        conn.setblocking(False)
        conn.sendall(b"!")
        received = bytearray()
        saw_pending = False
        deadline = time.monotonic() + DEADLINE
        while len(received) < len(expected) and time.monotonic() < deadline:
            if conn.pending() == 0:
                if not readiness.wait_ready(conn, readiness.READ, time.monotonic() + 1):
                    continue
            else:
                saw_pending = True
            try:
                received += conn.recv(1)
            except ssl.SSLWantReadError:
                continue
        assert bytes(received) == expected
        assert saw_pending


def test_tls_in_tls_nonblocking_send_backpressure(pki: Pki, relay_to) -> None:
    """When the far end stops reading, send() raises SSLWantWriteError; retried with the
    same data it goes on, and every byte it claimed arrives once, in order."""
    release = threading.Event()
    received = bytearray()

    def slow_sink(conn: ssl.SSLSocket) -> None:
        release.wait(DEADLINE)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            received.extend(data)

    relay = relay_to(slow_sink)
    with relay.open(pki) as conn:
        conn.do_handshake()
        conn.setblocking(False)
        block = os.urandom(65536)
        stream = bytearray()
        blocked = False
        for _ in range(4096):  # at most 256 MiB before the buffers must be full
            try:
                count = conn.send(block)
            except ssl.SSLWantWriteError:
                blocked = True
                break
            stream += block[:count]
        assert blocked, "send() never reported a full buffer"
        release.set()
        pending_block = block
        deadline = time.monotonic() + DEADLINE
        while pending_block and time.monotonic() < deadline:
            try:
                count = conn.send(pending_block)
            except ssl.SSLWantWriteError:
                wait_ready(conn, readiness.WRITE)
                continue
            stream += pending_block[:count]
            pending_block = pending_block[count:]
        assert not pending_block
        conn.setblocking(True)
        conn.shutdown(socket.SHUT_WR)
        relay.inner.thread.join(DEADLINE)  # the sink returns at the end of the stream
    assert not relay.inner.thread.is_alive()
    assert received == stream
