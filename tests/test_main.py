"""End-to-end tests of ``python -m wsclient`` in subprocesses: demo, connect (pipe mode), serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Iterator, List

import pytest

import wsclient
from wsclient.__main__ import main

TIMEOUT = 30


def run(args: List[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wsclient", *args], input=stdin, capture_output=True,
                          text=True, timeout=TIMEOUT, env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})


class ServeProcess:
    """``python -m wsclient serve`` as a subprocess; its URI from the first stdout line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "wsclient", "serve", "127.0.0.1:0", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.uri = self.process.stdout.readline().strip()

    def stop(self) -> str:
        """Ctrl-C, then the stderr it wrote."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            _, err = self.process.communicate(timeout=TIMEOUT)
            pytest.fail(f"serve did not stop on SIGINT: {err}")
        return err


@pytest.fixture
def serve_process() -> Iterator[ServeProcess]:
    server = ServeProcess()
    yield server
    server.stop()


def test_demo_exits_0_and_prints_a_round_trip_time() -> None:
    result = run(["demo", "--rounds", "20"])
    assert result.returncode == 0, result.stderr
    assert "round-trip time: median" in result.stdout
    assert "1 MiB binary" in result.stdout and "MISMATCH" not in result.stdout
    assert "closed with code 1000" in result.stdout


def test_pipe_mode_against_serve_subprocess(serve_process: ServeProcess) -> None:
    assert serve_process.uri.startswith("ws://127.0.0.1:")
    result = run(["connect", serve_process.uri], stdin="one\ntwo\nthree\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["one", "two", "three"]


def test_serve_logs_connections_and_stops_on_sigint() -> None:
    server = ServeProcess()
    result = run(["connect", server.uri, "--recv", "1"], stdin="x\n")
    assert result.returncode == 0, result.stderr
    err = server.stop()
    assert server.process.returncode == 0
    assert "opened" in err and "closed" in err and "code=1000" in err


def test_serve_broadcast_sends_to_every_client() -> None:
    server = ServeProcess("--broadcast")
    try:
        with wsclient.connect(server.uri, proxy=None) as listener:
            with wsclient.connect(server.uri, proxy=None) as speaker:
                speaker.send("to all")
                assert speaker.recv(timeout=10) == "to all"
                assert listener.recv(timeout=10) == "to all"
    finally:
        server.stop()


def test_pipe_mode_against_in_process_server(echo_server) -> None:
    result = run(["connect", echo_server.uri, "--no-compression"], stdin="héllo\n{\"a\": 1}\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["héllo", '{"a": 1}']


def test_recv_n_exits_after_n_messages(run_server) -> None:
    def talker(ws: wsclient.WebSocket) -> None:
        for i in range(5):
            ws.send(f"tick {i}")
        ws.recv(timeout=20)  # Hold the connection open until the client closes.

    server = run_server(talker)
    result = run(["connect", server.uri, "--recv", "3"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["tick 0", "tick 1", "tick 2"]


def test_binary_and_multiline_messages_are_one_line_each(run_server) -> None:
    def sender(ws: wsclient.WebSocket) -> None:
        ws.send(b"\x00\xff")
        ws.send("two\nlines")

    result = run(["connect", run_server(sender).uri])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[binary 2 bytes] 00ff", "two\\nlines"]


def test_abnormal_close_exits_non_zero(run_server) -> None:
    def failing(ws: wsclient.WebSocket) -> None:
        ws.close(4000, "go away")

    result = run(["connect", run_server(failing).uri], stdin="")
    assert result.returncode == 1
    assert "4000" in result.stderr and "go away" in result.stderr


def test_bad_uri_exits_non_zero_with_a_clear_message() -> None:
    result = run(["connect", "http://127.0.0.1/"])
    assert result.returncode == 2
    assert "invalid URI" in result.stderr and "ws://" in result.stderr


def test_refused_connection_exits_non_zero() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # Bound, not listening: connections are refused.
        result = run(["connect", f"ws://127.0.0.1:{port}/", "--timeout", "5"])
    assert result.returncode == 1
    assert "cannot connect" in result.stderr and "refused" in result.stderr.lower()


def test_cannot_connect_message_masks_the_uri_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # Bound, not listening: connections are refused.
        result = run(["connect", f"ws://bob:s3cret@127.0.0.1:{port}/", "--timeout", "5"])
    assert result.returncode == 1
    assert "s3cret" not in result.stderr
    assert f"cannot connect to ws://bob:***@127.0.0.1:{port}/" in result.stderr


def test_failed_handshake_exits_non_zero(run_server) -> None:
    server = run_server(lambda ws: None, process_request=lambda request: (403, [], b"no"))
    result = run(["connect", server.uri])
    assert result.returncode == 1
    assert "403" in result.stderr


def test_headers_and_subprotocol_are_sent(run_server) -> None:
    def report(ws: wsclient.WebSocket) -> None:
        ws.send(f"{ws.request.headers['X-Token']} {ws.subprotocol}")

    server = run_server(report, subprotocols=["chat"])
    result = run(["connect", server.uri, "-H", "X-Token: abc", "--subprotocol", "chat", "--recv", "1"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "abc chat"


def test_verbose_logs_frames_on_stderr(echo_server) -> None:
    result = run(["connect", echo_server.uri, "-v"], stdin="traced\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "traced"
    assert "client < text" in result.stderr


@pytest.mark.parametrize("command", [[], ["demo"], ["connect"], ["serve"]])
def test_help_for_each_subcommand(command: List[str]) -> None:
    result = run([*command, "--help"])
    assert result.returncode == 0
    assert "usage: wsclient" in result.stdout
    assert "example" in result.stdout


def test_main_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
