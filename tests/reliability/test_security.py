"""Security: TLS verification, masking, secrets, redirects and origins.

Already covered elsewhere, and not repeated here: the default client context's settings
(``tests/test_tls.py``), a private CA or wrong host name failing verification
(``tests/test_client.py``, ``tests/test_transport.py``), an ``https://`` proxy's certificate
being verified and proxy passwords kept out of messages, reprs and debug logs with real
proxies (``tests/test_proxy.py``), mask keys being fresh (``tests/test_frames.py``), the
``Origin`` allow-list (``tests/test_server.py``), and passwords in malformed URIs
(``tests/reliability/test_fuzz.py``).
"""

from __future__ import annotations

import ast
import base64
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

import wsclient
from wsclient.frames import Frame, FrameParser, Opcode

from .rawpeer import RawServer, raw_client, read_frames

PACKAGE = Path(wsclient.__file__).parent


# -- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("same_origin", [False, True], ids=["other-port", "same-host-and-port"])
def test_redirects_carry_credentials_only_to_the_same_host_and_port(run_server, same_origin: bool) -> None:
    seen: Dict[str, Any] = {}

    def final(request: Any) -> None:
        if request.path == "/final":
            seen.update(auth=request.headers.get("Authorization"), cookie=request.headers.get("Cookie"))
        return None

    target = run_server(process_request=final)

    def redirect(request: Any) -> Any:
        if request.path == "/start":
            base = f"ws://127.0.0.1:{first.port}" if same_origin else target.uri.rstrip("/")
            return (302, [("Location", base + "/final")], b"")
        return final(request)

    first = run_server(process_request=redirect)
    for uri, headers in ((f"ws://alice:pw1@127.0.0.1:{first.port}/start", {"Cookie": "session=c1"}),
                         (f"ws://127.0.0.1:{first.port}/start",
                          {"Authorization": "Bearer t1", "Cookie": "session=c1"})):
        seen.clear()
        wsclient.connect(uri, proxy=None, headers=headers).close()
        if same_origin:
            assert seen["auth"] is not None and seen["cookie"] == "session=c1"
        else:
            assert seen == {"auth": None, "cookie": None}


# -- TLS verification ------------------------------------------------------------------------


def _unverifying_code() -> List[str]:
    """Every place in the package that could turn certificate checks off."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            text = ""
            if isinstance(node, ast.Attribute) and node.attr in ("CERT_NONE", "CERT_OPTIONAL",
                                                                   "_create_unverified_context"):
                text = node.attr
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Attribute) and t.attr == "check_hostname" for t in node.targets):
                if not (isinstance(node.value, ast.Constant) and node.value.value is True):
                    text = "check_hostname = ..."
            elif isinstance(node, ast.keyword) and node.arg in ("cert_reqs", "check_hostname"):
                text = node.arg + "="
            if text:
                found.append(f"{path.name}:{node.lineno}:{text}")
    return found


def test_only_the_cli_insecure_flag_turns_verification_off() -> None:
    found = _unverifying_code()
    assert found and all(place.startswith("cli_connect.py:") for place in found), found
    cli = (PACKAGE / "cli_connect.py").read_text(encoding="utf-8").splitlines()
    for place in found:  # ...and each one under "if args.insecure:"
        line = int(place.split(":")[1])
        above = "\n".join(cli[max(0, line - 8) : line])
        assert "if args.insecure:" in above, place


def _cli(*args: str, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wsclient", *args], input=stdin, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, "NO_PROXY": "*"})


def test_cli_verifies_by_default_and_insecure_is_explicit_and_labelled(run_server, pki) -> None:
    server = run_server(ssl_context=pki.server_context())
    uri = f"wss://localhost:{server.port}/"
    refused = _cli("connect", uri, "--idle", "0.2", stdin="hi\n")
    assert refused.returncode == 1
    assert "certificate verify failed" in refused.stderr.lower() or "certificate" in refused.stderr.lower()
    insecure = _cli("connect", uri, "--insecure", "--idle", "1", stdin="hi\n")
    assert insecure.returncode == 0, insecure.stderr
    assert insecure.stdout.splitlines() == ["hi"]
    trusted = _cli("connect", uri, "--cafile", pki.ca_file, "--idle", "1", stdin="hi\n")
    assert trusted.returncode == 0 and trusted.stdout.splitlines() == ["hi"]
    help_text = " ".join(_cli("connect", "--help").stdout.split())
    assert "INSECURE: do not verify the server's certificate" in help_text


# -- masking -----------------------------------------------------------------------------------


class _RecordingOs:
    """``os`` for wsclient.frames, recording what ``urandom`` returned (from the real one)."""

    def __init__(self) -> None:
        self.keys: List[bytes] = []

    def urandom(self, size: int) -> bytes:
        data = os.urandom(size)
        self.keys.append(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def test_client_mask_keys_come_from_os_urandom(monkeypatch) -> None:
    import wsclient.frames

    recorder = _RecordingOs()
    monkeypatch.setattr(wsclient.frames, "os", recorder)
    received: List[Frame] = []

    def collect(sock: socket.socket) -> None:
        parser = FrameParser(expect_masked=True)
        keys = []
        deadline = time.monotonic() + 10
        while len(keys) < 301 and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            for piece in parser.feed(chunk):
                if piece.first:
                    keys.append(piece.header.mask_key)
        received.extend(keys)

    server = RawServer(collect)
    ws = wsclient.connect(server.uri, proxy=None, compression=None, ping_interval=None)
    for i in range(300):
        ws.send(f"message {i}")
    ws.ping(b"p")
    server.join()
    assert len(received) == 301
    # Each frame's key: the next 4 bytes of os.urandom, read in batches (frames.MaskKeys).
    drawn = b"".join(recorder.keys)
    assert received == [drawn[i : i + 4] for i in range(0, 4 * 301, 4)]
    assert len(drawn) < 4 * 301 + 4 * wsclient.frames.MaskKeys.BATCH  # no byte used twice or skipped
    assert len(set(received)) == 301  # and none repeated
    ws.close()


def test_server_rejects_unmasked_client_frames(run_server) -> None:
    outcome: Dict[str, Any] = {}
    done = threading.Event()

    def handler(ws: wsclient.WebSocket) -> None:
        try:
            outcome["message"] = ws.recv(timeout=10)
        except wsclient.ConnectionClosedError as exc:
            outcome["code"], outcome["cause"] = exc.code, exc.__cause__
        finally:
            done.set()

    server = run_server(handler)
    sock, response, _ = raw_client(server.uri)
    assert response.status == 101
    sock.sendall(Frame(Opcode.TEXT, b"not masked").serialize())  # no mask key: RFC 6455 5.1
    frames = read_frames(sock, expect_masked=False, until=lambda f: bool(f))
    assert frames[0].opcode == Opcode.CLOSE and frames[0].payload[:2] == (1002).to_bytes(2, "big")
    assert sock.recv(4096) == b""  # and the server closes the connection
    sock.close()
    assert done.wait(10)
    assert "message" not in outcome and outcome["code"] == 1002
    assert isinstance(outcome["cause"], wsclient.ProtocolError)


# -- secrets ---------------------------------------------------------------------------------

PASSWORD = "pw-8c1f9e"
TOKEN = "tok-5d2a77"
COOKIE = "ck-93be40"
PROXY_PASSWORD = "ppw-41d0c3"
SECRETS = [PASSWORD, TOKEN, COOKIE, PROXY_PASSWORD,
           base64.b64encode(f"alice:{PASSWORD}".encode()).decode(),
           base64.b64encode(f"bob:{PROXY_PASSWORD}".encode()).decode()]


def _assert_secret_free(what: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, (what, secret)


def test_no_secret_in_logs_reprs_or_exceptions(run_server, caplog) -> None:
    shown: List[tuple] = []

    def process(request: Any) -> Any:
        shown.append(("server request", repr(request)))
        if request.path == "/deny":
            return (401, [("WWW-Authenticate", 'Basic realm="x"')], b"who are you?")
        return None

    def handler(ws: wsclient.WebSocket) -> None:
        shown.extend([("server ws", repr(ws)), ("server headers", repr(ws.request.headers)),
                      ("server headers str", str(ws.request.headers))])
        if ws.request.path == "/boom":
            raise RuntimeError("the handler failed")  # logged with its traceback
        for message in ws:
            ws.send(message)

    server = run_server(handler, process_request=process)
    port = server.port
    caplog.set_level(logging.DEBUG, logger="wsclient")
    cookie = {"Cookie": f"session={COOKIE}"}
    with wsclient.connect(f"ws://alice:{PASSWORD}@127.0.0.1:{port}/ok", proxy=None, headers=cookie) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        shown += [("client ws", repr(ws)), ("client request", repr(ws.request)),
                  ("client response", repr(ws.response)), ("client headers", str(ws.request.headers))]
    bearer = {"Authorization": f"Bearer {TOKEN}", **cookie}
    with pytest.raises(wsclient.InvalidStatus) as denied:
        wsclient.connect(f"ws://127.0.0.1:{port}/deny", proxy=None, headers=bearer)
    with wsclient.connect(f"ws://127.0.0.1:{port}/boom", proxy=None, headers=bearer) as ws:
        with pytest.raises(wsclient.ConnectionClosedError) as boom:
            ws.recv(timeout=10)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(OSError) as via_proxy:
        wsclient.connect(f"ws://alice:{PASSWORD}@127.0.0.1:{port}/", headers=bearer, timeout=5,
                         proxy=f"http://bob:{PROXY_PASSWORD}@127.0.0.1:{closed_port}")
    for name, exc in (("denied", denied.value), ("boom", boom.value), ("proxy", via_proxy.value)):
        shown += [(name, str(exc)), (name, repr(exc)), (name, repr(exc.args))]
    shown.append(("denied response", repr(denied.value.response)))
    assert boom.value.code == 1011
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logs = "\n".join(formatter.format(record) for record in caplog.records)
    assert "handler failed" in logs and "Traceback" in logs  # the logs were captured
    for what, text in shown + [("logs", logs)]:
        _assert_secret_free(what, text)


def test_cli_verbose_trace_shows_no_secret(echo_server) -> None:
    uri = f"ws://alice:{PASSWORD}@127.0.0.1:{echo_server.port}/"
    result = _cli("connect", uri, "-v", "-H", f"Cookie: session={COOKIE}", "-H",
                  f"X-Token: {TOKEN}", "--idle", "1", stdin="hi\n")
    assert result.returncode == 0, result.stderr
    assert "hi" in result.stdout and result.stderr  # the trace is there...
    for secret in (PASSWORD, COOKIE, SECRETS[4]):  # ...without the credentials
        assert secret not in result.stderr + result.stdout, secret


# -- origins --------------------------------------------------------------------------------------


def test_origins_are_matched_exactly(run_server) -> None:
    ran: List[str] = []
    server = run_server(lambda ws: ran.append(ws.request.headers["Origin"]), origins=["https://app.example"])
    wsclient.connect(server.uri, proxy=None, origin="https://app.example").close()
    for origin in ("https://APP.example", "http://app.example", "https://app.example:443",
                   "https://app.example.evil", "null", None):
        with pytest.raises(wsclient.InvalidStatus) as info:
            wsclient.connect(server.uri, proxy=None, origin=origin)
        assert info.value.response.status == 403, origin
    deadline = time.monotonic() + 5
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == ["https://app.example"]  # no refused request reached the handler
