"""The proxy configurations of docs/deployment.rst run, as the page shows them, in real nginx
and HAProxy.

Each test finds its ``::`` block by a string only that block contains
(:func:`tests.test_readme.find`), replaces only what a test machine must change, each
replacement required to match (:func:`tests.test_readme.substitute`: a doc edit that
breaks one fails here loudly): the upstream servers' ports, the public listener (443 on every
address becomes a free port on 127.0.0.1), the certificate paths (the test PKI of
``tests/pki.py``); nginx also gets what it needs to run unprivileged in the foreground
around the block (``daemon off``, pid file, logs, temporary paths: the ``events``/``http``
of :data:`tests.multiprocess.engines.NGINX_MAIN`). Then a wsclient client connects over
``wss://`` (TLS ends at the proxy, as the page says) and checks what the page promises:

- an echo works through the proxy;
- the upstream sees ``X-Forwarded-For`` with the client's address and
  ``X-Forwarded-Proto: https``;
- connections spread over the two upstream servers.

With ``CI=true`` a missing nginx or haproxy fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import wsclient

from .multiprocess.engines import (DOC_HAPROXY_BLOCK, DOC_NGINX_BLOCK, run_haproxy_config,
                                   run_nginx_http)
from .pki import Pki
from .proxies import free_port
from .test_readme import find, substitute

#: Seconds any one step (a connection, a reply) may take.
STEP = 10.0
#: Connections opened through each proxy (kept open together, so balancing sees them all).
CLIENTS = 4


def report(ws: wsclient.WebSocket) -> None:
    """Tell the client which server it reached and the forwarding headers it got, then echo."""
    headers = ws.request.headers
    ws.send(json.dumps({
        "server": ws.local_address[1],
        "x-forwarded-for": headers.get_all("X-Forwarded-For"),
        "x-forwarded-proto": headers.get_all("X-Forwarded-Proto"),
    }))
    for message in ws:
        ws.send(message)


def check_through(uri: str, pki: Pki, servers: List[int]) -> None:
    """Through the proxy at ``uri``: echoes, the forwarding headers, both servers used."""
    clients: List[wsclient.WebSocket] = []
    try:
        reached: Dict[int, int] = {port: 0 for port in servers}
        for i in range(CLIENTS):
            ws = wsclient.connect(uri, ssl_context=pki.client_context(), proxy=None, timeout=STEP)
            clients.append(ws)
            seen = json.loads(ws.recv(timeout=STEP))
            assert seen["x-forwarded-for"] == ["127.0.0.1"], seen
            assert seen["x-forwarded-proto"] == ["https"], seen
            assert seen["server"] in reached, seen
            reached[seen["server"]] += 1
            ws.send(f"echo {i}")
            assert ws.recv(timeout=STEP) == f"echo {i}"
        assert all(reached.values()), f"connections did not spread over both servers: {reached}"
        for ws in clients:
            ws.close()
            assert ws.close_code == 1000
    finally:
        for ws in clients:
            ws.close()


def test_nginx_block_runs(run_server, pki: Pki, tmp_path: Path) -> None:
    """*nginx in front*: the page's ``map``, ``upstream`` and ``server``, in nginx."""
    servers = [run_server(report).port for _ in range(2)]
    port = free_port()
    http = substitute(find(DOC_NGINX_BLOCK).code, {
        "server 127.0.0.1:8001;": f"server 127.0.0.1:{servers[0]};",
        "server 127.0.0.1:8002;": f"server 127.0.0.1:{servers[1]};",
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "/etc/ssl/ws.example.com/fullchain.pem;": f"{pki.cert_file};",
        "/etc/ssl/ws.example.com/privkey.pem;": f"{pki.key_file};",
    })
    with run_nginx_http(str(tmp_path), http, port):
        check_through(f"wss://127.0.0.1:{port}/", pki, servers)


def test_haproxy_block_runs(run_server, pki: Pki, tmp_path: Path) -> None:
    """*HAProxy in front*: the page's ``defaults``, ``frontend`` and ``backend``, in HAProxy."""
    servers = [run_server(report).port for _ in range(2)]
    port = free_port()
    config = substitute(find(DOC_HAPROXY_BLOCK).code, {
        "server s1 127.0.0.1:8001 ": f"server s1 127.0.0.1:{servers[0]} ",
        "server s2 127.0.0.1:8002 ": f"server s2 127.0.0.1:{servers[1]} ",
        "bind :443 ssl crt /etc/haproxy/ws.example.com.pem":
            f"bind 127.0.0.1:{port} ssl crt {pki.chain_file}",
    })
    with run_haproxy_config(str(tmp_path), config + "\n", port):
        check_through(f"wss://127.0.0.1:{port}/", pki, servers)
