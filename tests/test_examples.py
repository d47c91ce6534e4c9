"""Run every example in examples/ so they cannot rot: in-process through main(), or as a
subprocess for the servers that run until Ctrl-C."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import ModuleType

import pytest

import wsclient

from .conftest import RunningServer, need
from .multiprocess.engines import run_redis
from .proxies import run_pproxy

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
TIMEOUT = 60


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ExampleServer:
    """An example server as a subprocess on port 0; stopped with SIGINT by PID."""

    def __init__(self, name: str, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, f"{name}.py"), "--port", "0", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.uri = self.process.stdout.readline().strip()

    def stop(self) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
        try:
            self.process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.communicate(timeout=TIMEOUT)
            pytest.fail("example server ignored SIGINT")
        return self.process.returncode


def test_every_example_is_tested() -> None:
    names = {name[:-3] for name in os.listdir(EXAMPLES) if name.endswith(".py")}
    tested = {"echo_client", "echo_server", "chat_server", "wss_client_custom_ca", "socks5_client",
              "reconnect_client", "token_auth_server", "notebook_cell", "test_with_fixtures", "redis_chat",
              "flask_chat", "wsgi_gunicorn"}
    assert names == tested


def test_echo_client_with_its_own_server() -> None:
    assert load("echo_client").main([]) == ["Hello", b"\x00binary\xff", "Goodbye"]


def test_echo_server_and_client_as_processes() -> None:
    server = ExampleServer("echo_server")
    try:
        assert server.uri.startswith("ws://127.0.0.1:")
        result = subprocess.run([sys.executable, os.path.join(EXAMPLES, "echo_client.py"), "--uri", server.uri],
                                capture_output=True, text=True, timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr
        assert "got 'Goodbye'" in result.stdout
    finally:
        assert server.stop() == 0


def test_chat_server_broadcasts() -> None:
    server = ExampleServer("chat_server")
    try:
        # One step at a time: broadcast() skips a client that is busy at that instant.
        with wsclient.connect(server.uri, proxy=None) as alice:
            assert alice.recv(timeout=10).endswith("joined")  # alice's own arrival
            with wsclient.connect(server.uri, proxy=None) as bob:
                bob_name = "%s:%s" % bob.local_address[:2]
                assert alice.recv(timeout=10) == f"* {bob_name} joined"
                assert bob.recv(timeout=10) == f"* {bob_name} joined"
                bob.send("hi all")
                assert alice.recv(timeout=10) == f"{bob_name}: hi all"
                assert bob.recv(timeout=10) == f"{bob_name}: hi all"
                bob.send(b"\x00\xff")  # Binary is relayed as binary, not as its repr.
                assert alice.recv(timeout=10) == b"\x00\xff"
                assert bob.recv(timeout=10) == b"\x00\xff"
    finally:
        assert server.stop() == 0


def test_redis_chat_reaches_the_clients_of_another_process(tmp_path) -> None:
    need(importlib.util.find_spec("redis") is not None, "the redis package is not installed (pip install redis)")
    with run_redis(str(tmp_path)) as port:
        url = f"redis://127.0.0.1:{port}/0"
        first, second = ExampleServer("redis_chat", "--redis", url), ExampleServer("redis_chat", "--redis", url)
        try:
            assert first.uri.startswith("ws://127.0.0.1:") and second.uri.startswith("ws://127.0.0.1:")
            # One step at a time: broadcast() skips a client that is busy at that instant.
            with wsclient.connect(first.uri, proxy=None) as alice:
                alice_name = "%s:%s" % alice.local_address[:2]
                assert alice.recv(timeout=10) == f"* {alice_name} joined"
                with wsclient.connect(second.uri, proxy=None) as bob:
                    bob_name = "%s:%s" % bob.local_address[:2]
                    assert bob.recv(timeout=10) == f"* {bob_name} joined"
                    assert alice.recv(timeout=10) == f"* {bob_name} joined"  # from the other process
                    bob.send("hi from the second process")
                    assert bob.recv(timeout=10) == f"{bob_name}: hi from the second process"
                    assert alice.recv(timeout=10) == f"{bob_name}: hi from the second process"
                    alice.send("hello from the first")
                    assert alice.recv(timeout=10) == f"{alice_name}: hello from the first"
                    assert bob.recv(timeout=10) == f"{alice_name}: hello from the first"
        finally:
            assert first.stop() == 0
            assert second.stop() == 0


def test_wss_client_custom_ca(pki) -> None:
    server = RunningServer(lambda ws: ws.send(ws.recv(timeout=10)), ssl_context=pki.server_context())
    try:
        uri = f"wss://localhost:{server.server.port}/"
        assert load("wss_client_custom_ca").main(["--cafile", pki.ca_file, "--uri", uri]) == "hello over TLS"
    finally:
        server.stop()


def test_socks5_client(tmp_path) -> None:
    with run_pproxy(str(tmp_path)) as proxy:
        assert load("socks5_client").main(["--proxy", proxy.url("socks5")]) == "through the proxy"


def test_reconnect_client_survives_a_restart() -> None:
    answers, reconnects = load("reconnect_client").main([])
    assert answers == [f"m{i}" for i in range(20)]
    assert reconnects >= 1


def test_token_auth_server() -> None:
    assert load("token_auth_server").main([]) == "welcome, you are in (/)"


def test_notebook_cell() -> None:
    assert load("notebook_cell").main() == {"echo": {"query": "status"}}


def test_with_fixtures_example_passes() -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             os.path.join(EXAMPLES, "test_with_fixtures.py")],
                            capture_output=True, text=True, timeout=TIMEOUT, cwd=EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_flask_chat_rooms() -> None:
    need(importlib.util.find_spec("flask") is not None, "flask is not installed (pip install -e .[test])")
    server = ExampleServer("flask_chat")
    try:
        assert server.uri.startswith("ws://127.0.0.1:")
        # One step at a time: broadcast() skips a client that is busy at that instant.
        with wsclient.connect(server.uri + "chat/blue", proxy=None) as alice:
            alice_name = "%s:%s" % alice.local_address[:2]
            assert alice.recv(timeout=10) == f"* {alice_name} joined blue"
            with wsclient.connect(server.uri + "chat/red", proxy=None) as carol:
                carol_name = "%s:%s" % carol.local_address[:2]
                assert carol.recv(timeout=10) == f"* {carol_name} joined red"
                with wsclient.connect(server.uri + "chat/blue", proxy=None) as bob:
                    bob_name = "%s:%s" % bob.local_address[:2]
                    assert bob.recv(timeout=10) == f"* {bob_name} joined blue"
                    assert alice.recv(timeout=10) == f"* {bob_name} joined blue"
                    bob.send("hi blue")
                    assert bob.recv(timeout=10) == f"{bob_name}: hi blue"
                    assert alice.recv(timeout=10) == f"{bob_name}: hi blue"
                    carol.send("hi red")
                    assert carol.recv(timeout=10) == f"{carol_name}: hi red"
                    with pytest.raises(TimeoutError):
                        alice.recv(timeout=0.5)  # nothing from the red room reaches blue
        page = urllib.request.urlopen(server.uri.replace("ws://", "http://"), timeout=10).read()
        assert b"/chat/" in page
    finally:
        assert server.stop() == 0


def test_wsgi_gunicorn() -> None:
    need(importlib.util.find_spec("gunicorn") is not None, "gunicorn is not installed (pip install -e .[test])")
    server = ExampleServer("wsgi_gunicorn", "--threads", "8")
    try:
        assert server.uri.startswith("ws://127.0.0.1:")
        http = server.uri.replace("ws://", "http://")
        deadline = time.monotonic() + TIMEOUT
        while True:  # the worker boots after the port is printed: a bounded poll
            try:
                page = urllib.request.urlopen(http, timeout=10).read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.1)
        assert b"/ws/echo" in page
        with wsclient.connect(server.uri + "ws/echo", proxy=None) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
        with wsclient.connect(server.uri + "ws/shout/ann", proxy=None) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "ann: HELLO"
        with pytest.raises(wsclient.InvalidStatus) as refused:
            wsclient.connect(server.uri + "ws/nowhere", proxy=None)
        assert refused.value.status == 404
        with pytest.raises(urllib.error.HTTPError) as plain:
            urllib.request.urlopen(http + "ws/echo", timeout=10)
        assert plain.value.code == 426
    finally:
        assert server.stop() == 0
