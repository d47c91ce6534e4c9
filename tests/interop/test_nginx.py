"""wsclient's client through nginx, a reverse proxy in front of wsclient's server.

nginx runs from a generated configuration in a temporary directory (``daemon off``, one
process, free loopback ports): ``proxy_pass`` with ``proxy_http_version 1.1`` and the
``Upgrade``/``Connection`` headers, once plain and once terminating TLS with the test PKI.
The server checks a header only nginx adds, so the traffic provably went through it.
"""

from __future__ import annotations

import ssl
from typing import Iterator, List, Optional, Tuple

import pytest

import wsclient

from ..multiprocess.engines import NGINX_CONF
from ..proxies import find_program, free_port, running
from . import peers
from .peers import pattern

MiB = 1 << 20

#: The ``server`` block inside :data:`~tests.multiprocess.engines.NGINX_CONF`'s ``http``.
SERVER = """\
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Via-Nginx yes;
            proxy_read_timeout 60s;
            proxy_send_timeout 60s;
        }}
    }}"""


class Recorder(peers.Recorder):
    """The shared recorder, plus the header only nginx adds, per connection."""

    @property
    def via(self) -> List[Optional[str]]:
        return [request.headers["X-Via-Nginx"] for request in self.requests]


@pytest.fixture
def nginx(run_server, pki, tmp_path) -> Iterator[Tuple[Recorder, str, str]]:
    """nginx in front of a Recorder server; yields (recorder, ws:// URI, wss:// URI)."""
    binary = find_program("nginx", "nginx")
    recorder = Recorder()
    server = run_server(recorder)
    port, tls_port = free_port(), free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp_path, body=SERVER.format(
        port=port, tls_port=tls_port, upstream=server.server.port,
        cert=pki.cert_file, key=pki.key_file,
    )))
    argv = [binary, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")]
    with running(argv, str(tmp_path), "127.0.0.1", [port, tls_port]):
        yield recorder, f"ws://127.0.0.1:{port}/", f"wss://localhost:{tls_port}/"


def _messages():
    for seed, (kind, size) in enumerate([("text", 5), ("binary", 64 * 1024), ("text", MiB), ("binary", MiB)]):
        data = pattern(size, seed)
        yield data.decode("ascii") if kind == "text" else data


@pytest.mark.parametrize("scheme", ["ws", "wss"])
@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
def test_messages_and_client_close_through_nginx(nginx, pki, scheme, compression) -> None:
    recorder, ws_uri, wss_uri = nginx
    uri = ws_uri if scheme == "ws" else wss_uri
    context = pki.client_context() if scheme == "wss" else None
    with wsclient.connect(uri, proxy=None, ssl_context=context, compression=compression) as ws:
        offered = "permessage-deflate" in (ws.response.headers["Sec-WebSocket-Extensions"] or "")
        assert offered == (compression is not None)
        for message in _messages():
            ws.send(message)
            assert ws.recv(timeout=10) == message
        ws.close(4001, "bye")
        assert ws.close_code == 4001
    assert recorder.done.wait(10)
    assert recorder.via == ["yes"], "the connection did not go through nginx"
    assert recorder.closes == [(4001, "bye")]


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_server_close_through_nginx(nginx, pki, scheme) -> None:
    recorder, ws_uri, wss_uri = nginx
    uri = (ws_uri if scheme == "ws" else wss_uri) + "close"
    context = pki.client_context() if scheme == "wss" else None
    with wsclient.connect(uri, proxy=None, ssl_context=context) as ws:
        with pytest.raises(wsclient.ConnectionClosedError) as caught:
            ws.recv(timeout=10)
    assert (caught.value.code, caught.value.reason) == (4002, "server bye")
    assert recorder.done.wait(10)
    assert recorder.via == ["yes"]


def test_nginx_refuses_untrusted_name(nginx) -> None:
    """TLS through nginx is really verified: without the test CA, the default context fails."""
    _, _, wss_uri = nginx
    with pytest.raises(ssl.SSLCertVerificationError):
        wsclient.connect(wss_uri, proxy=None, timeout=5)
