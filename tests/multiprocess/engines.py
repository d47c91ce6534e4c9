"""Real engines for the multi-process tests: nginx, HAProxy, redis-server and ``wsclient serve``.

Each runs as a child process of the test, from a configuration written into a temporary
directory, on free loopback ports, in the foreground (``daemon off``, ``-db``), and is
stopped by its PID (SIGTERM, then SIGKILL after a bounded wait). A missing program skips the
test on a developer's machine and fails it when ``CI=true`` (:func:`tests.proxies.find_program`).

The proxying directives are docs/deployment.rst's own, taken from the page when a test
runs: nginx's ``map`` and ``location /`` (:func:`nginx_map`, :func:`nginx_location`) and
HAProxy's ``defaults`` (:func:`haproxy_defaults`), with only the upstreams and timeouts
changed, so the multi-process tests test what the page tells readers to write
(tests/test_docs_deployment.py runs the page's whole blocks, TLS included).

Proxies connect to the wsclient servers from :data:`PROXY_SOURCE` (``proxy_bind`` in nginx,
``source`` in HAProxy), a loopback address of its own, so a server can trust the proxy
without trusting the test's clients, which connect from 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
import time
from typing import Callable, Dict, Iterator, List, Optional

import pytest

from ..interop.peers import Peer
from ..proxies import find_program, free_port, running
from ..test_readme import find, substitute

#: The address the proxies connect to the servers from (any 127/8 address is loopback).
PROXY_SOURCE = "127.0.0.3"

#: Seconds a program may take to start listening, and any one wait on a process.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: What nginx needs around an ``http`` block's contents to run unprivileged in the
#: foreground with every file in ``{dir}`` (pid file, logs, temporary paths).
NGINX_MAIN = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 4096; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{body}
}}
"""

NGINX_MAP = """\
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
"""

#: :data:`NGINX_MAIN` with the ``map`` inside ``http`` (for tests writing their own ``server``).
NGINX_CONF = NGINX_MAIN.replace("{body}", NGINX_MAP.replace("{", "{{").replace("}", "}}") + "{body}")

#: Strings only the nginx block and the HAProxy block of docs/deployment.rst contain: the
#: tests find the blocks by them (:func:`tests.test_readme.find`) and run what they show.
DOC_NGINX_BLOCK = "map $http_upgrade $connection_upgrade {"
DOC_HAPROXY_BLOCK = "frontend websocket"


def doc_part(key: str, pattern: str) -> str:
    """The part of the docs block containing ``key`` that ``pattern`` (multi-line) matches."""
    code = find(key).code
    match = re.search(pattern, code, re.M | re.S)
    assert match, f"{pattern!r} no longer matches the block of docs/deployment.rst:\n{code}"
    return match.group(0)


def nginx_map() -> str:
    """The ``map`` of docs/deployment.rst's nginx block (``$connection_upgrade``)."""
    return doc_part(DOC_NGINX_BLOCK, r"^map \$http_upgrade \$connection_upgrade \{\n.*?^\}$") + "\n"


def nginx_location(upstream: str, timeout: str, source: str) -> str:
    """The proxying part of docs/deployment.rst's ``location /``, with the test's upstream and
    timeouts, plus ``proxy_bind source`` and a response header naming the upstream nginx
    chose, so a test can tell which server a client reached."""
    location = doc_part(DOC_NGINX_BLOCK, r"^(\s*)location / \{\n.*?^\1\}$")
    body = textwrap.dedent(location.split("{", 1)[1].rsplit("}", 1)[0].rstrip().lstrip("\n")) + "\n"
    body = substitute(body, {"proxy_pass http://wsclient;": f"proxy_pass http://{upstream};",
                             "proxy_read_timeout 1h;": f"proxy_read_timeout {timeout};",
                             "proxy_send_timeout 1h;": f"proxy_send_timeout {timeout};"})
    return body + f"proxy_bind {source};\nadd_header X-Upstream $upstream_addr always;\n"


def haproxy_defaults(tunnel: str) -> str:
    """The ``defaults`` section of docs/deployment.rst's HAProxy block, with ``timeout
    tunnel`` set to ``tunnel``."""
    defaults = doc_part(DOC_HAPROXY_BLOCK, r"^defaults\n(?:[ \t]+\S[^\n]*(?:\n|\Z))+")
    return substitute(defaults, {"timeout tunnel 1h\n": f"timeout tunnel {tunnel}\n"})


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` until it is true; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie waiting for its new parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


@contextlib.contextmanager
def run_nginx(directory: str, upstreams: Dict[str, List[int]], *,
              locations: Optional[Dict[str, str]] = None, timeout: str = "3600s") -> Iterator[int]:
    """nginx proxying WebSocket traffic to wsclient servers; yields its port.

    Args:
        directory: where the configuration and logs go.
        upstreams: upstream name -> the server ports in it (round robin).
        locations: path prefix -> upstream name (default: ``/`` to the only upstream).
        timeout: ``proxy_read_timeout`` and ``proxy_send_timeout``.
    """
    if locations is None:
        (name,) = upstreams
        locations = {"/": name}
    port = free_port()
    body = nginx_map()
    for name, ports in upstreams.items():
        servers = "".join(f"        server 127.0.0.1:{p};\n" for p in ports)
        body += f"    upstream {name} {{\n{servers}    }}\n"
    body += f"    server {{\n        listen 127.0.0.1:{port};\n"
    for path, name in locations.items():
        proxying = nginx_location(name, timeout, PROXY_SOURCE)
        body += f"        location {path} {{\n{proxying}        }}\n"
    body += "    }"
    with run_nginx_http(directory, body, port):
        yield port


@contextlib.contextmanager
def run_nginx_http(directory: str, http: str, port: int) -> Iterator[None]:
    """nginx running the contents ``http`` of an ``http`` block (``map``, ``upstream``,
    ``server``...) inside :data:`NGINX_MAIN`, until it listens on 127.0.0.1:``port``."""
    binary = find_program("nginx", "nginx")
    conf = os.path.join(directory, "nginx.conf")
    with open(conf, "w") as file:
        file.write(NGINX_MAIN.format(dir=directory, body=http))
    with running([binary, "-p", directory, "-c", conf, "-e", os.path.join(directory, "error.log")],
                 directory, "127.0.0.1", [port]):
        yield


HAPROXY_CONF = """\
global
    maxconn 4096
{defaults}
frontend websocket
    bind 127.0.0.1:{port}
    default_backend wsclient
backend wsclient
    balance roundrobin
    source {source}
{servers}
"""


@contextlib.contextmanager
def run_haproxy(directory: str, ports: List[int], *, tunnel: str = "1h") -> Iterator[int]:
    """HAProxy in HTTP mode in front of wsclient servers (``option forwardfor``); yields its port.

    ``tunnel`` is ``timeout tunnel``: how long an upgraded connection may stay silent.
    """
    port = free_port()
    servers = "".join(f"    server s{i} 127.0.0.1:{p}\n" for i, p in enumerate(ports))
    with run_haproxy_config(directory, HAPROXY_CONF.format(
            port=port, source=PROXY_SOURCE, servers=servers, defaults=haproxy_defaults(tunnel)), port):
        yield port


@contextlib.contextmanager
def run_haproxy_config(directory: str, config: str, port: int) -> Iterator[None]:
    """HAProxy in the foreground (``-db``) running ``config`` until it listens on
    127.0.0.1:``port``."""
    binary = find_program("haproxy", "haproxy")
    conf = os.path.join(directory, "haproxy.cfg")
    with open(conf, "w") as file:
        file.write(config)
    with running([binary, "-f", conf, "-db"], directory, "127.0.0.1", [port]):
        yield


@contextlib.contextmanager
def run_redis(directory: str) -> Iterator[int]:
    """redis-server on a free loopback port, without persistence; yields its port."""
    binary = find_program("redis-server", "redis-server")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory, "--protected-mode", "yes"]
    with running(argv, directory, "127.0.0.1", [port]):
        yield port


class ServeProcess(Peer):
    """``python -m wsclient serve 127.0.0.1:PORT ...`` (the package's own command line).

    Attributes:
        uri: the first line it printed; ``port`` its port.
    """

    def __init__(self, *args: str, address: str = "127.0.0.1:0") -> None:
        super().__init__([sys.executable, "-m", "wsclient", "serve", address, *args], cwd=ROOT)
        self.uri = self.line(START_TIMEOUT)
        assert self.uri.startswith(("ws://127.0.0.1:", "wss://127.0.0.1:")), self.describe()
        self.port = int(self.uri.rsplit(":", 1)[1].rstrip("/"))

    @property
    def errors(self) -> List[str]:
        """The lines written to stderr so far."""
        return [line for line in list(self.stderr) if line is not None]

    def wait_stderr(self, text: str, timeout: float = 10.0) -> str:
        """The first stderr line containing ``text``, waiting for it up to ``timeout``."""
        wait_until(lambda: any(text in line for line in self.errors), timeout, f"{text!r} on stderr")
        return next(line for line in self.errors if text in line)

    @property
    def worker_pids(self) -> List[int]:
        """The pids of ``serve --workers N``, from its "serving ... (pids ...)" line."""
        line = self.wait_stderr("(pids ", START_TIMEOUT)
        return [int(pid) for pid in line.split("(pids ", 1)[1].split(")")[0].split()]

    def pid_for(self, local_port: int, timeout: float = 10.0) -> int:
        """Which worker logged ``[pid N] opened ('127.0.0.1', local_port)``."""
        needle = f"opened ('127.0.0.1', {local_port})"

        def find() -> Optional[int]:
            for line in self.errors:
                if needle in line and line.startswith("[pid "):
                    return int(line[5:].split("]", 1)[0])
            return None

        wait_until(lambda: find() is not None, timeout, needle)
        pid = find()
        assert pid is not None
        return pid

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"wsclient serve still running after {timeout} s; {self.describe()}")
            raise
