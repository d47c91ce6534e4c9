"""Headless Chromium against wsclient's server: ws:// and wss://, permessage-deflate on.

Our server answers a plain ``GET /`` with a page (page.html, through ``process_request``)
whose script opens a WebSocket back to the same server, echoes text and binary messages of
1 B, 64 KiB and 1 MiB, has the server close a second connection with 4002, and sends
``RESULT {json}`` before closing with 4001 "bye". The test waits for that message with a
deadline and kills Chromium by PID. For ``wss://`` Chromium trusts the test certificate by
its public key (``--ignore-certificate-errors-spki-list``, certificate pinning for that key
only), not by turning verification off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import threading
from typing import Any, Dict, List, Optional, Tuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import wsclient

from ..conftest import need
from .peers import HERE, Peer

#: Seconds Chromium has to load the page and finish every exchange.
BROWSER_TIMEOUT = 60.0


def _chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _spki_hash(cert_file: str) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium expects."""
    with open(cert_file, "rb") as file:
        cert = x509.load_pem_x509_certificate(file.read())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


class Site:
    """Serves page.html on ``/``, echoes on ``/echo``, closes with 4002 on ``/close``."""

    def __init__(self) -> None:
        with open(os.path.join(HERE, "page.html"), "rb") as file:
            self.page = file.read()
        self.result: Optional[Dict[str, Any]] = None
        self.got_result = threading.Event()
        self.extensions: List[Optional[str]] = []
        self.closes: List[Tuple[str, Optional[int], Optional[str]]] = []
        self.closed = threading.Event()

    def process_request(self, request: wsclient.Request) -> Any:
        if request.headers["Upgrade"] is not None:
            return None
        if request.path == "/":
            return 200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")], self.page
        return 404, [("Content-Type", "text/plain")], "not found"

    def __call__(self, ws: wsclient.WebSocket) -> None:
        self.extensions.append(ws.response.headers["Sec-WebSocket-Extensions"])
        try:
            if ws.request.path == "/close":
                ws.close(4002, "server bye")
            else:
                for message in ws:
                    if isinstance(message, str) and message.startswith("RESULT "):
                        self.result = json.loads(message[len("RESULT "):])
                        self.got_result.set()
                    else:
                        ws.send(message)
            self.closes.append((ws.request.path, ws.close_code, ws.close_reason))
        except wsclient.ConnectionClosed as exc:
            self.closes.append((ws.request.path, exc.code, exc.reason))
            if ws.request.path == "/echo":
                self.closed.set()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_chromium_page(run_server, pki, tmp_path, scheme) -> None:
    binary = _chromium()
    need(binary is not None, "chromium is not installed (apt-get install chromium)")
    site = Site()
    options: Dict[str, Any] = {"process_request": site.process_request, "compression": "deflate"}
    if scheme == "https":
        options["ssl_context"] = pki.server_context()
    server = run_server(site, **options)
    url = f"{scheme}://127.0.0.1:{server.server.port}/"
    argv = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-dev-shm-usage", "--no-default-browser-check",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    if scheme == "https":
        argv.append(f"--ignore-certificate-errors-spki-list={_spki_hash(pki.cert_file)}")
    argv.append(url)
    # Its shared-memory files go to TMPDIR, and a killed browser leaves them: keep them here.
    browser = Peer(argv, env=dict(os.environ, TMPDIR=str(tmp_path)))
    try:
        assert site.got_result.wait(BROWSER_TIMEOUT), f"no RESULT from Chromium; {browser.describe()}"
        assert site.closed.wait(10), "Chromium did not close with 4001"
    finally:
        browser.stop(group=True)
    result = site.result
    assert result is not None
    assert result["ok"], result["errors"]
    assert [tuple(entry) for entry in result["checked"]] == [
        (kind, size, True) for size in (1, 65536, 1048576) for kind in ("text", "binary")
    ]
    assert "permessage-deflate" in result["extensions"]
    assert site.extensions and all("permessage-deflate" in (e or "") for e in site.extensions)
    assert result["serverClose"] == [4002, "server bye"]
    assert ("/echo", 4001, "bye") in site.closes
