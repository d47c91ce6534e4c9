"""Real proxy servers for the tests, started on free loopback ports and stopped by PID.

Each ``run_*`` function is a context manager: it finds the program, writes its configuration
into a directory, starts it, waits (bounded) until its port accepts connections, yields a
:class:`RunningProxy` and, on exit, stops that process (SIGTERM, then SIGKILL) with bounded
waits. A missing program skips the test, or fails it when ``CI=true``.

- ``pproxy`` (PyPI, a test dependency): HTTP CONNECT, SOCKS4 and SOCKS5 on one port.
  pproxy answers SOCKS requests before it connects to the target, and remembers a client
  address that authenticated once unless ``--auth 0`` (used here).
- ``danted`` (Debian ``dante-server``): SOCKS4 and SOCKS5. Its ``username`` method checks
  system accounts, so :func:`run_dante` with credentials needs the account
  :data:`DANTE_USER`; it is created when the tests run as root, else the test skips (fails
  in CI). Dante rejects SOCKS4A requests.
- ``microsocks`` (Debian): SOCKS5 with ``-u``/``-P``.
- ``tinyproxy`` (Debian): HTTP CONNECT with ``BasicAuth``; no ``ConnectPort`` line, so every
  port may be tunnelled.
- ``ssh -D`` (Debian ``openssh-server`` and ``openssh-client``): OpenSSH's dynamic forwarding,
  the one SOCKS4A server here (pproxy ignores the SOCKS4A host name; dante rejects it). The
  ``sshd`` runs on loopback and accepts only a key made for the test. The ``ssh`` client runs
  with ``-vv``, so its log (``log("client/output.log")``) shows each SOCKS4 request's user id
  and SOCKS4A host name as the proxy decoded them.
- ``squid`` (Debian ``squid-openssl``): HTTP CONNECT with Basic auth (``basic_ncsa_auth``
  and an htpasswd made with ``openssl passwd -apr1``), over TLS as well (``https_port``);
  it logs the request headers it gets (``log_mime_hdrs``), so tests can check what a
  ``CONNECT`` carried.

Also :func:`run_echo_target`: a real WebSocket echo server from the ``websockets`` package, the
target the tunnels lead to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from typing import Iterator, List, Optional, Sequence

import pytest

IN_CI = os.environ.get("CI") == "true"

#: The system account :func:`run_dante` authenticates with (dante checks system passwords).
DANTE_USER = "wsclientproxy"
DANTE_PASSWORD = "dante-secret-7"

#: How long a proxy may take to start accepting connections, and to stop.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def missing(reason: str) -> None:
    """Skip the test on a developer's machine; fail it in CI (``CI=true``)."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def find_program(name: str, package: str) -> str:
    """The path of ``name`` on ``PATH`` or in an sbin directory, else skip (fail in CI)."""
    found = shutil.which(name)
    if found is None:
        for directory in _SBIN_DIRS:
            candidate = os.path.join(directory, name)
            if os.access(candidate, os.X_OK):
                found = candidate
                break
    if found is None:
        missing(f"{name} is not installed (apt-get install {package})")
    assert found is not None
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclasses.dataclass
class RunningProxy:
    """A proxy process and how to reach it.

    Attributes:
        host: the loopback address it listens on.
        port: its (plain) port.
        tls_port: its TLS port (squid's ``https_port``), or ``None``.
        username, password: the credentials it accepts, or ``None``.
        process: the process (stopped by PID at exit).
        directory: where its configuration and logs are.
    """

    host: str
    port: int
    process: subprocess.Popen
    directory: str
    username: Optional[str] = None
    password: Optional[str] = None
    tls_port: Optional[int] = None

    def url(self, scheme: str, *, username: Optional[str] = "", password: Optional[str] = "") -> str:
        """The proxy URL for ``scheme``, with the proxy's credentials unless others are given.

        ``username=None`` leaves the credentials out.
        """
        if username == "":
            username = self.username
        if password == "":
            password = self.password
        port = self.tls_port if scheme == "https" else self.port
        userinfo = ""
        if username is not None:
            userinfo = urllib.parse.quote(username, safe="")
            if password is not None:
                userinfo += ":" + urllib.parse.quote(password, safe="")
            userinfo += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{userinfo}{host}:{port}"

    def log(self, name: str) -> str:
        """The text of a log file in :attr:`directory` ("" when absent)."""
        try:
            with open(os.path.join(self.directory, name), errors="replace") as file:
                return file.read()
        except FileNotFoundError:
            return ""


def _wait_for_port(process: subprocess.Popen, host: str, port: int, output: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(output, errors="replace") as file:
                text = file.read()[-3000:]
            pytest.fail(f"{process.args[0]} exited with {process.returncode}:\n{text}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{process.args[0]} did not listen on {host}:{port} within {START_TIMEOUT} s")


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop the process we started, by its PID, with bounded waits."""
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def running(argv: List[str], directory: str, host: str, ports: Sequence[int],
            sig: int = signal.SIGTERM) -> Iterator[subprocess.Popen]:
    """Run a program we start (output logged in ``directory``) until every port listens;
    stop it by its PID afterwards."""
    output = os.path.join(directory, "output.log")
    with open(output, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=directory,
                                   stdin=subprocess.DEVNULL)
    try:
        for port in ports:
            _wait_for_port(process, host, port, output)
        yield process
    finally:
        stop_process(process, sig)


def _open_directory(directory: str) -> None:
    """Let a proxy that drops root privileges (to nobody, proxy...) write its logs there."""
    os.chmod(directory, 0o777)


@contextlib.contextmanager
def run_pproxy(directory: str, *, username: Optional[str] = None,
               password: Optional[str] = None, host: str = "127.0.0.1") -> Iterator[RunningProxy]:
    """pproxy speaking HTTP CONNECT, SOCKS4 and SOCKS5 on one port.

    With credentials, HTTP and SOCKS5 take ``username:password`` and SOCKS4 takes the user id
    ``username`` (pproxy compares a SOCKS4 user id with its list of users).
    """
    if importlib.util.find_spec("pproxy") is None:
        missing("pproxy is not installed (pip install pproxy)")
    port = free_port(host)
    listen = f"http+socks4+socks5://{'[' + host + ']' if ':' in host else host}:{port}/"
    if username is not None:
        users = os.path.join(directory, "users")
        with open(users, "w") as file:
            file.write(f"{username}:{password}\n{username}\n")
        listen += f"##{users}"
    argv = [sys.executable, "-m", "pproxy", "-l", listen, "--auth", "0", "-v"]
    with running(argv, directory, host, [port]) as process:
        yield RunningProxy(host, port, process, directory, username, password)


def ensure_dante_user() -> None:
    """Make sure the system account :data:`DANTE_USER` exists with its password."""
    try:
        pwd.getpwnam(DANTE_USER)
        exists = True
    except KeyError:
        exists = False
    if os.geteuid() != 0:
        if not exists:
            missing(
                f"dante's username method checks system accounts: as root run "
                f"'useradd -M -s /usr/sbin/nologin {DANTE_USER}' and "
                f"'echo {DANTE_USER}:{DANTE_PASSWORD} | chpasswd'"
            )
        return
    if not exists:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", DANTE_USER],
                       check=True, timeout=30)
    subprocess.run(["chpasswd"], input=f"{DANTE_USER}:{DANTE_PASSWORD}\n".encode(),
                   check=True, timeout=30)


_DANTE_CONF = """\
logoutput: {directory}/danted.log
internal: {host} port = {port}
external: {host}
socksmethod: {method}
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
  from: 127.0.0.0/8 to: 0.0.0.0/0
}}
socks pass {{
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect
  log: connect error
}}
"""


@contextlib.contextmanager
def run_dante(directory: str, *, auth: bool = False) -> Iterator[RunningProxy]:
    """danted: SOCKS4 and SOCKS5 without authentication, or SOCKS5 with ``username``."""
    program = find_program("danted", "dante-server")
    if auth:
        ensure_dante_user()
    host, port = "127.0.0.1", free_port()
    _open_directory(directory)
    config = os.path.join(directory, "danted.conf")
    with open(config, "w") as file:
        method = "username" if auth else "none"
        file.write(_DANTE_CONF.format(directory=directory, host=host, port=port, method=method))
    argv = [program, "-f", config, "-p", os.path.join(directory, "danted.pid"), "-N", "1"]
    with running(argv, directory, host, [port]) as process:
        user, password = (DANTE_USER, DANTE_PASSWORD) if auth else (None, None)
        yield RunningProxy(host, port, process, directory, user, password)


@contextlib.contextmanager
def run_microsocks(directory: str, *, username: Optional[str] = None,
                   password: Optional[str] = None) -> Iterator[RunningProxy]:
    """microsocks: SOCKS5, with username/password authentication when given."""
    program = find_program("microsocks", "microsocks")
    host, port = "127.0.0.1", free_port()
    argv = [program, "-i", host, "-p", str(port)]
    if username is not None:
        argv += ["-u", username, "-P", password or ""]
    with running(argv, directory, host, [port]) as process:
        yield RunningProxy(host, port, process, directory, username, password)


@contextlib.contextmanager
def run_tinyproxy(directory: str, *, username: Optional[str] = None,
                  password: Optional[str] = None) -> Iterator[RunningProxy]:
    """tinyproxy: HTTP CONNECT to any port, with ``BasicAuth`` when credentials are given."""
    program = find_program("tinyproxy", "tinyproxy")
    host, port = "127.0.0.1", free_port()
    _open_directory(directory)
    lines = [
        f"Port {port}", f"Listen {host}", "Timeout 30", "MaxClients 50", f"Allow {host}",
        f'LogFile "{directory}/tinyproxy.log"', "LogLevel Info", "DisableViaHeader Yes",
        f'PidFile "{directory}/tinyproxy.pid"',
    ]
    if os.geteuid() == 0:
        lines += ["User nobody", "Group nogroup"]
    if username is not None:
        lines.append(f"BasicAuth {username} {password}")
    config = os.path.join(directory, "tinyproxy.conf")
    with open(config, "w") as file:
        file.write("\n".join(lines) + "\n")
    with running([program, "-d", "-c", config], directory, host, [port]) as process:
        yield RunningProxy(host, port, process, directory, username, password)


def _htpasswd(directory: str, username: str, password: str) -> str:
    """An htpasswd file for squid's basic_ncsa_auth, hashed by ``openssl passwd -apr1``."""
    openssl = find_program("openssl", "openssl")
    digest = subprocess.run([openssl, "passwd", "-apr1", password], check=True, timeout=30,
                            capture_output=True, text=True).stdout.strip()
    path = os.path.join(directory, "htpasswd")
    with open(path, "w") as file:
        file.write(f"{username}:{digest}\n")
    os.chmod(path, 0o644)
    return path


def _squid_conf(directory: str, host: str, port: int, auth_file: Optional[str],
                tls_port: Optional[int], cert_file: Optional[str], key_file: Optional[str]) -> str:
    lines = [f"http_port {host}:{port}"]
    if tls_port is not None:
        lines.append(f"https_port {host}:{tls_port} tls-cert={cert_file} tls-key={key_file}")
    lines += [
        f"pid_filename {directory}/squid.pid",
        f"cache_log {directory}/cache.log",
        f"access_log stdio:{directory}/access.log squid",
        "log_mime_hdrs on",
        "cache deny all",
        f"coredump_dir {directory}",
        "shutdown_lifetime 1 seconds",
        "netdb_filename none",
        "pinger_enable off",
        "logfile_rotate 0",
        "acl loopback src 127.0.0.1/32 ::1",
        "acl CONNECT method CONNECT",
        "http_access deny !loopback",
    ]
    if auth_file is not None:
        lines += [
            f"auth_param basic program {_ncsa_auth()} {auth_file}",
            "auth_param basic realm wsclient-tests",
            "acl authenticated proxy_auth REQUIRED",
            "http_access allow CONNECT authenticated",
        ]
    else:
        lines.append("http_access allow CONNECT")
    lines.append("http_access deny all")
    return "\n".join(lines) + "\n"


def _ncsa_auth() -> str:
    for directory in ("/usr/lib/squid", "/usr/lib64/squid", "/usr/libexec/squid"):
        candidate = os.path.join(directory, "basic_ncsa_auth")
        if os.access(candidate, os.X_OK):
            return candidate
    missing("squid's basic_ncsa_auth helper is not installed (apt-get install squid-openssl)")
    return ""


@contextlib.contextmanager
def run_squid(directory: str, *, username: Optional[str] = None, password: Optional[str] = None,
              cert_file: Optional[str] = None, key_file: Optional[str] = None
              ) -> Iterator[RunningProxy]:
    """squid: HTTP CONNECT (Basic auth when credentials are given), and over TLS on
    :attr:`RunningProxy.tls_port` when a certificate is given."""
    program = find_program("squid", "squid-openssl")
    host, port = "127.0.0.1", free_port()
    tls_port = free_port() if cert_file is not None else None
    with _reachable_directory(directory) as directory:
        with _squid(program, directory, host, port, username, password, tls_port, cert_file,
                    key_file) as running:
            yield running


@contextlib.contextmanager
def _reachable_directory(directory: str) -> Iterator[str]:
    """``directory``, or, as root, a fresh one that squid's ``proxy`` user can reach too
    (pytest's temporary directories sit under a directory only root may enter)."""
    if os.geteuid() != 0:
        yield directory
        return
    reachable = tempfile.mkdtemp(prefix="wsclient-squid-")
    _open_directory(reachable)
    try:
        yield reachable
    finally:
        shutil.rmtree(reachable, ignore_errors=True)


@contextlib.contextmanager
def _squid(program: str, directory: str, host: str, port: int, username: Optional[str],
           password: Optional[str], tls_port: Optional[int], cert_file: Optional[str],
           key_file: Optional[str]) -> Iterator[RunningProxy]:
    auth_file = _htpasswd(directory, username, password or "") if username is not None else None
    config = os.path.join(directory, "squid.conf")
    with open(config, "w") as file:
        file.write(_squid_conf(directory, host, port, auth_file, tls_port, cert_file, key_file))
    ports = [port] + ([tls_port] if tls_port is not None else [])
    argv = [program, "-N", "-d", "1", "-f", config]
    with running(argv, directory, host, ports, sig=signal.SIGINT) as process:
        yield RunningProxy(host, port, process, directory, username, password, tls_port)


_SSHD_CONF = """\
Port {port}
ListenAddress {host}
HostKey {directory}/host_key
PidFile {directory}/sshd.pid
AuthorizedKeysFile {directory}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding yes
PermitTTY no
"""


def _keygen(program: str, path: str) -> None:
    subprocess.run([program, "-q", "-t", "ed25519", "-N", "", "-f", path], check=True, timeout=30)


@contextlib.contextmanager
def run_ssh_socks(directory: str) -> Iterator[RunningProxy]:
    """``ssh -D``: OpenSSH's dynamic forwarding, a SOCKS4, SOCKS4A and SOCKS5 proxy (no
    SOCKS authentication), through an ``sshd`` on loopback that lets this user in by key."""
    sshd = find_program("sshd", "openssh-server")
    ssh = find_program("ssh", "openssh-client")
    keygen = find_program("ssh-keygen", "openssh-client")
    host, sshd_port, socks_port = "127.0.0.1", free_port(), free_port()
    _keygen(keygen, os.path.join(directory, "host_key"))
    _keygen(keygen, os.path.join(directory, "user_key"))
    shutil.copy(os.path.join(directory, "user_key.pub"), os.path.join(directory, "authorized_keys"))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
    config = os.path.join(directory, "sshd_config")
    with open(config, "w") as file:
        file.write(_SSHD_CONF.format(port=sshd_port, host=host, directory=directory))
    user = pwd.getpwuid(os.geteuid()).pw_name
    client = [
        ssh, "-N", "-F", "/dev/null", "-D", f"{host}:{socks_port}", "-p", str(sshd_port),
        "-i", os.path.join(directory, "user_key"), "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "ExitOnForwardFailure=yes", "-vv", f"{user}@{host}",
    ]
    with running([sshd, "-D", "-e", "-f", config], directory, host, [sshd_port]):
        client_dir = os.path.join(directory, "client")
        os.makedirs(client_dir, exist_ok=True)
        with running(client, client_dir, host, [socks_port]) as process:
            yield RunningProxy(host, socks_port, process, directory)


@dataclasses.dataclass
class EchoTarget:
    """A ``websockets`` echo server; :attr:`requests` has each handshake request it got."""

    host: str
    port: int
    secure: bool
    requests: list

    def uri(self, host: Optional[str] = None, resource: str = "/") -> str:
        host = host or self.host
        host = f"[{host}]" if ":" in host else host
        return f"{'wss' if self.secure else 'ws'}://{host}:{self.port}{resource}"


@contextlib.contextmanager
def run_echo_target(ssl_context: Optional[ssl.SSLContext] = None,
                    host: str = "127.0.0.1") -> Iterator[EchoTarget]:
    """A real WebSocket echo server (``websockets.sync.server``) in a thread."""
    from websockets.sync.server import serve

    requests: list = []

    def echo(ws) -> None:  # type: ignore[no-untyped-def]
        requests.append(ws.request)
        for message in ws:
            ws.send(message)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = serve(echo, host, 0, ssl=ssl_context, compression=None, family=family)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, name="echo-target", daemon=True)
    thread.start()
    try:
        yield EchoTarget(host, port, ssl_context is not None, requests)
    finally:
        server.shutdown()
        thread.join(STOP_TIMEOUT)
        assert not thread.is_alive(), "echo target thread did not stop"
