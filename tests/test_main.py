"""End-to-end tests of ``python -m wsclient`` in subprocesses: demo, connect (pipe mode), serve."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

import wsclient
from wsclient.__main__ import main
from wsclient.close import parse_close
from wsclient.frames import FrameParser, Opcode, serialize_frame
from wsclient.handshake import accept_response
from .reliability.rawpeer import raw_client
from wsclient.http11 import RequestParser

TIMEOUT = 30


def run(args: List[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wsclient", *args], input=stdin, capture_output=True,
                          text=True, timeout=TIMEOUT, env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})


def start(args: List[str], stdin: int = subprocess.PIPE, **env: str) -> subprocess.Popen:
    """``python -m wsclient ARGS`` with every pipe open (stdin too, so it never ends by itself)."""
    return subprocess.Popen([sys.executable, "-m", "wsclient", *args], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_PROXY": "*", "no_proxy": "*", **env})


def finish(process: subprocess.Popen, timeout: float = TIMEOUT) -> tuple:
    """Wait (bounded) for the process to exit, its stdin left open: (status, stdout, stderr);
    killed if it does not exit in time. (Its output is small: the pipes cannot fill.)"""
    try:
        process.wait(timeout)
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=TIMEOUT)
        pytest.fail(f"still running after {timeout} s; stdout {out!r}, stderr {err!r}")
    return process.returncode, out, err


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = TIMEOUT) -> None:
    """Wait (bounded) until a line of the process's stdout contains ``text``."""
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if text in lines.get(timeout=max(0.0, deadline - time.monotonic())):
                return
        except queue.Empty:
            pytest.fail(f"no line with {text!r} within {timeout} s")


class SilentPeer:
    """A TCP peer on 127.0.0.1 that accepts one client and then answers as little as asked:
    nothing at all, or the opening handshake but never a close frame. It records the close
    frame the client sends."""

    def __init__(self, *, handshake: bool) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.handshake = handshake
        self.request_read = threading.Event()
        self.close_frame = threading.Event()
        self.close_code: Optional[int] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.listener.settimeout(TIMEOUT)
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            parser, request = RequestParser(), None
            while request is None:
                request = parser.feed(conn.recv(65536))
            self.request_read.set()
            if not self.handshake:
                conn.recv(1)  # Until the client goes away (or the timeout).
                return
            conn.sendall(accept_response(request).serialize())
            frames, data = FrameParser(expect_masked=True), parser.leftover
            while True:
                for piece in frames.feed(data):
                    if piece.header.opcode == Opcode.CLOSE:
                        self.close_code = parse_close(piece.data)[0] if piece.data else 1005
                        self.close_frame.set()
                data = conn.recv(65536)
                if not data:
                    return

    def stop(self) -> None:
        self.listener.close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def silent_peer() -> Iterator[type]:
    peers: List[SilentPeer] = []

    def make(**options: bool) -> SilentPeer:
        peers.append(SilentPeer(**options))
        return peers[-1]

    yield make  # type: ignore[misc]
    for peer in peers:
        peer.stop()


class PingingPeer:
    """A scripted server on 127.0.0.1 for one client: it answers pings, and echoes a text
    message only once it has answered ``pings`` pings, so the client's keepalive pings are
    sure to have happened while the message was outstanding; it echoes the close frame."""

    def __init__(self, pings: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.pings = pings
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.listener.settimeout(TIMEOUT)
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            parser, request = RequestParser(), None
            while request is None:
                request = parser.feed(conn.recv(65536))
            conn.sendall(accept_response(request).serialize())
            frames, data, answered, waiting = FrameParser(expect_masked=True), parser.leftover, 0, []
            for _ in range(10000):  # bounded; the socket timeout bounds each read
                for piece in frames.feed(data):
                    opcode = piece.header.opcode
                    if opcode == Opcode.PING:
                        conn.sendall(serialize_frame(Opcode.PONG, piece.data))
                        answered += 1
                    elif opcode == Opcode.TEXT:
                        waiting.append(piece.data)
                    elif opcode == Opcode.CLOSE:
                        conn.sendall(serialize_frame(Opcode.CLOSE, piece.data))
                        return
                if waiting and answered >= self.pings:
                    for payload in waiting:
                        conn.sendall(serialize_frame(Opcode.TEXT, payload))
                    waiting = []
                data = conn.recv(65536)
                if not data:
                    return

    def stop(self) -> None:
        self.listener.close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def pinging_peer() -> Iterator[PingingPeer]:
    peer = PingingPeer(pings=2)
    yield peer
    peer.stop()


def assert_interrupted(status: int, err: str) -> None:
    assert status == 130, err
    assert "Traceback" not in err
    assert err.strip() == "wsclient: interrupted"


def test_ctrl_c_while_connecting_exits_130_without_a_traceback(silent_peer) -> None:
    peer = silent_peer(handshake=False)
    process = start(["connect", peer.uri, "--timeout", "60"])
    assert peer.request_read.wait(TIMEOUT)  # The client waits for the handshake's answer.
    process.send_signal(signal.SIGINT)
    assert_interrupted(*finish(process)[::2])


def test_ctrl_c_while_closing_exits_130_without_a_traceback(silent_peer) -> None:
    peer = silent_peer(handshake=True)
    # End of input at once: the client closes, and the peer never answers.
    process = start(["connect", peer.uri, "--idle", "0"], stdin=subprocess.DEVNULL)
    assert peer.close_frame.wait(TIMEOUT)
    assert peer.close_code == 1000
    process.send_signal(signal.SIGINT)
    # Well before the close timeout (10 s) ran out on its own.
    assert_interrupted(*finish(process, timeout=8)[::2])


def test_ctrl_c_on_an_open_connection_closes_it_with_1001(run_server) -> None:
    codes: "queue.Queue[Optional[int]]" = queue.Queue()

    def recorder(ws: wsclient.WebSocket) -> None:
        for message in ws:
            ws.send(message)
        codes.put(ws.close_code)

    process = start(["connect", run_server(recorder).uri])
    process.stdin.write("ready\n")
    process.stdin.flush()
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGINT)
    status, _, err = finish(process)
    assert_interrupted(status, err)
    assert codes.get(timeout=TIMEOUT) == 1001


def test_ctrl_c_in_demo_exits_130_without_a_traceback() -> None:
    process = start(["demo", "--rounds", "100000000"], PYTHONUNBUFFERED="1")
    wait_for_line(process, "client: connected")
    process.send_signal(signal.SIGINT)
    status, _, err = finish(process)
    assert_interrupted(status, err)


def test_recv_n_exits_after_n_messages_while_stdin_stays_open(echo_server) -> None:
    process = start(["connect", echo_server.uri, "--recv", "1"])
    process.stdin.write("only line\n")
    process.stdin.flush()  # ... and stdin stays open.
    status, out, err = finish(process)
    assert status == 0, err
    assert out == "only line\n"


@pytest.mark.parametrize("code, status", [(1000, 0), (4000, 1)])
def test_server_close_ends_pipe_mode_while_stdin_stays_open(run_server, code: int, status: int) -> None:
    def closer(ws: wsclient.WebSocket) -> None:
        ws.send(f"bye {ws.recv(timeout=TIMEOUT)}")
        ws.close(code, "server done")

    process = start(["connect", run_server(closer).uri])
    process.stdin.write("hello\n")
    process.stdin.flush()  # ... and stdin stays open.
    returned, out, err = finish(process)
    assert (returned, out) == (status, "bye hello\n"), err
    assert ("4000 (server done)" in err) == (code == 4000)


def test_pipe_mode_sends_a_last_line_without_a_line_end(echo_server) -> None:
    result = run(["connect", echo_server.uri], stdin="first\r\nlast")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["first", "last"]


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


def test_serve_broadcast_logs_a_client_it_skipped() -> None:
    server = ServeProcess("--broadcast")
    stalled = None
    try:
        stalled, _, _ = raw_client(server.uri)  # Connects, then never reads.
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        address = stalled.getsockname()
        with wsclient.connect(server.uri, proxy=None, compression=None) as speaker:
            message = b"x" * 65536
            for _ in range(300):  # Until the stalled client's buffers are full: skipped.
                speaker.send(message)
                assert speaker.recv(timeout=10) == message
    finally:
        err = server.stop()
        if stalled is not None:
            stalled.close()
    assert f"skipped {address!r}: not reading" in err


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


@contextlib.contextmanager
def _refusing_port() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


def test_refused_connection_exits_non_zero() -> None:
    with _refusing_port() as port:
        result = run(["connect", f"ws://127.0.0.1:{port}/", "--timeout", "5"])
    assert result.returncode == 1
    assert "cannot connect" in result.stderr and "refused" in result.stderr.lower()


def test_cannot_connect_message_masks_the_uri_password() -> None:
    with _refusing_port() as port:
        result = run(["connect", f"ws://bob:s3cret@127.0.0.1:{port}/", "--timeout", "5"])
    assert result.returncode == 1
    assert "s3cret" not in result.stderr
    assert f"cannot connect to ws://bob:***@127.0.0.1:{port}/" in result.stderr


@pytest.mark.parametrize("options, message", [
    (["-H", "Bad Name: v"], "wsclient: invalid argument: invalid header name 'Bad Name'"),
    (["--subprotocol", "a b"], "wsclient: invalid argument: invalid subprotocol name 'a b'"),
    (["--origin", "a\r\nb"], "wsclient: invalid argument: "),
    (["--ping-interval", "-1"], "argument --ping-interval: must be a finite number of seconds"),
    (["--ping-timeout", "inf"], "argument --ping-timeout: must be a finite number of seconds"),
    (["--binary-format", "octal"], "argument --binary-format: invalid choice: 'octal'"),
    (["--timeout", "nan"], "argument --timeout: must be a finite number of seconds"),
    (["--timeout", "-1"], "argument --timeout: must be a finite number of seconds"),
    (["--idle", "-1"], "argument --idle: must be a finite number of seconds"),
    (["--recv", "0"], "argument --recv: must be at least 1"),
    (["--recv", "-1"], "argument --recv: must be at least 1"),
    (["--cafile", "/nonexistent/ca.pem"], "cannot load --cafile '/nonexistent/ca.pem': No such file"),
])
def test_bad_arguments_exit_2_before_connecting(options: List[str], message: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.5)
        result = run(["connect", f"ws://127.0.0.1:{listener.getsockname()[1]}/", *options])
        with pytest.raises(TimeoutError):
            listener.accept()  # Nothing was tried.
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "cannot connect" not in result.stderr and "Traceback" not in result.stderr


def test_unreadable_certfile_is_named() -> None:
    result = run(["serve", "127.0.0.1:0", "--certfile", "/nonexistent/cert.pem"])
    assert result.returncode == 2
    assert result.stderr == "wsclient: cannot load --certfile '/nonexistent/cert.pem': No such file or directory\n"


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


def test_verbose_traces_both_directions_alike_with_keepalive_pings(pinging_peer: PingingPeer) -> None:
    result = run(["connect", pinging_peer.uri, "-v", "--ping-interval", "0.1", "--recv", "1"], stdin="traced\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "traced"
    lines = [line.split(" ", 2)[2] for line in result.stderr.splitlines()]  # without the time
    assert "> text 'traced'" in lines and "< text 'traced'" in lines
    assert "> ping 8 bytes 0000000000000001 (keepalive)" in lines
    assert any(line.startswith("< pong 8 bytes 0000000000000001 after ") for line in lines)
    # The closing handshake ends the trace, in order; a pong to an earlier keepalive ping
    # may still arrive after our close frame (the peer answers until it reads it).
    closing = [line for line in lines if not line.startswith("< pong ")]
    assert closing[-2:] == ["> close 1000", "< close 1000"]


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


def test_version() -> None:
    result = run(["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"wsclient {wsclient.__version__}"


def test_a_rejected_handshake_shows_the_body_that_says_why(run_server) -> None:
    server = run_server(lambda ws: None,
                        process_request=lambda request: (401, [("Content-Type", "text/plain")],
                                                         b"token expired\nlog in again"))
    result = run(["connect", server.uri])
    assert result.returncode == 1
    assert result.stderr == (f"wsclient: cannot connect to {server.uri}: server rejected WebSocket "
                             "connection: HTTP 401\nwsclient: the server said:\n  token expired\n  log in again\n")


def test_pipe_mode_shows_pings_with_p_and_never_colours(pinging_peer: PingingPeer) -> None:
    result = run(["connect", pinging_peer.uri, "-P", "--ping-interval", "0.1", "--recv", "1"], stdin="x\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "x\n"
    assert "ping: pong after " in result.stderr
    assert "\x1b[" not in result.stdout + result.stderr


def test_pipe_mode_json_and_base64(run_server) -> None:
    def sender(ws: wsclient.WebSocket) -> None:
        ws.send('{"a": 1, "b": [true]}')
        ws.send("not json")
        ws.send(b"\x00\xff\x10")

    result = run(["connect", run_server(sender).uri, "--json", "--binary-format", "base64", "--recv", "3"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == '{\n  "a": 1,\n  "b": [\n    true\n  ]\n}\nnot json\n[binary 3 bytes] base64:AP8Q\n'


def test_record_a_session_the_server_closes(run_server, tmp_path) -> None:
    def closer(ws: wsclient.WebSocket) -> None:
        ws.send(f"bye {ws.recv(timeout=TIMEOUT)}")
        ws.close(4000, "server done")

    path = tmp_path / "session.jsonl"
    process = start(["connect", run_server(closer).uri, "--record", str(path)])
    process.stdin.write("hello\n")
    process.stdin.flush()  # ... and stdin stays open.
    status, out, err = finish(process)
    assert (status, out) == (1, "bye hello\n"), err
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert [(e["from"], e["type"], e.get("text", e.get("code"))) for e in events] == [
        ("client", "text", "hello"), ("server", "text", "bye hello"),
        ("server", "close", 4000), ("client", "close", 4000)]


def test_no_recording_is_left_when_the_connection_fails(tmp_path) -> None:
    path = tmp_path / "session.jsonl"
    with _refusing_port() as port:
        result = run(["connect", f"ws://127.0.0.1:{port}/", "--record", str(path)])
    assert result.returncode == 1
    assert not path.exists()


def test_record_to_an_unwritable_file_is_a_usage_error(echo_server, tmp_path) -> None:
    result = run(["connect", echo_server.uri, "--record", str(tmp_path / "no" / "such" / "dir.jsonl")])
    assert result.returncode == 2
    assert "cannot write --record" in result.stderr and "No such file" in result.stderr


# -- the exit status table ------------------------------------------------------------------

def _status_interrupted(run_server, tmp_path) -> int:
    process = start(["connect", run_server().uri])
    process.stdin.write("ready\n")
    process.stdin.flush()
    wait_for_line(process, "ready")
    process.send_signal(signal.SIGINT)
    return finish(process)[0]


def _status_mismatch(run_server, tmp_path) -> int:
    path = tmp_path / "r.jsonl"
    path.write_text('{"wsclient-recording": 1}\n{"t": 0, "from": "client", "type": "text", "text": "a"}\n',
                    encoding="utf-8")
    process = start(["replay", str(path), "127.0.0.1:0", "--once"], stdin=subprocess.DEVNULL)
    uri = process.stdout.readline().strip()
    with wsclient.connect(uri, proxy=None) as ws:
        ws.send("b")
    return finish(process)[0]


STATUS_SCENARIOS = {
    0: lambda run_server, tmp_path: run(["connect", run_server().uri], stdin="x\n").returncode,
    1: lambda run_server, tmp_path: run(["connect", run_server(lambda ws: ws.close(4000)).uri]).returncode,
    2: lambda run_server, tmp_path: run(["connect", "http://nowhere/"]).returncode,
    3: _status_mismatch,
    130: _status_interrupted,
}


@pytest.mark.parametrize("status", sorted(STATUS_SCENARIOS))
def test_each_exit_status_of_the_table(status: int, run_server, tmp_path) -> None:
    assert STATUS_SCENARIOS[status](run_server, tmp_path) == status


def test_the_exit_status_table_is_documented_in_help_and_readme() -> None:
    from wsclient.cli_status import EXIT_STATUSES, exit_table

    assert sorted(STATUS_SCENARIOS) == sorted(code for code, _ in EXIT_STATUSES)  # each one tested
    table = exit_table()
    for command in ([], ["connect"], ["serve"], ["replay"], ["demo"]):
        assert table in run([*command, "--help"]).stdout
    readme = (Path(__file__).parent.parent / "docs" / "cli.rst").read_text(encoding="utf-8")
    for code, meaning in EXIT_STATUSES:
        row = f"   * - {code}\n     - {meaning}\n"
        assert row in readme, row


# -- TLS options ----------------------------------------------------------------------------

@pytest.fixture
def mutual_tls_server(run_server, pki):
    """A wss:// server that requires a client certificate signed by the test CA, and greets
    the client."""
    def greet(ws: wsclient.WebSocket) -> None:
        ws.send("hello, certified client")
        ws.recv(timeout=TIMEOUT)

    context = wsclient.server_ssl_context(pki.cert_file, pki.key_file, cafile=pki.ca_file)
    return run_server(greet, ssl_context=context)


def test_cert_and_key_for_mutual_tls(mutual_tls_server, pki) -> None:
    result = run(["connect", mutual_tls_server.uri, "--cafile", pki.ca_file, "--cert", pki.client_cert_file,
                  "--key", pki.client_key_file, "--recv", "1"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello, certified client\n"


@pytest.mark.parametrize("cert", [None, "untrusted"])
def test_mutual_tls_refused_without_a_trusted_client_certificate(mutual_tls_server, pki, cert) -> None:
    options = [] if cert is None else ["--cert", pki.untrusted_client_cert_file, "--key",
                                       pki.untrusted_client_key_file]
    result = run(["connect", mutual_tls_server.uri, "--cafile", pki.ca_file, "--recv", "1", *options])
    assert result.returncode == 1
    assert "cannot connect to" in result.stderr and "Traceback" not in result.stderr


def test_system_trust_does_not_trust_the_test_ca(run_server, pki) -> None:
    server = run_server(ssl_context=wsclient.server_ssl_context(pki.cert_file, pki.key_file))
    result = run(["connect", server.uri, "--system-trust", "--recv", "1"])
    assert result.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr or "certificate" in result.stderr.lower()
    # ... while --cafile with the test CA does.
    assert run(["connect", server.uri, "--cafile", pki.ca_file], stdin="x\n").returncode == 0


@pytest.mark.parametrize("options, message", [
    (["--key", "k.pem"], "--key goes with --cert (the client certificate), which is missing"),
    (["--cert", "/nonexistent/c.pem"], "cannot load --cert '/nonexistent/c.pem': No such file or directory"),
    (["--system-trust", "--cafile", "ca.pem"], "argument --cafile: not allowed with argument --system-trust"),
])
def test_bad_tls_options_exit_2(options: List[str], message: str) -> None:
    result = run(["connect", "wss://127.0.0.1:9/", *options])
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


# -- --reconnect ----------------------------------------------------------------------------

def test_reconnect_comes_back_after_a_restart_close(run_server) -> None:
    connections: "queue.Queue[int]" = queue.Queue()
    count = iter(range(1, 100))

    def restarting(ws: wsclient.WebSocket) -> None:
        number = next(count)
        connections.put(number)
        if number == 1:
            ws.send("one")
            ws.close(1012, "service restart")  # retried by the default policy
        else:
            ws.send("two")
            ws.recv(timeout=TIMEOUT)

    result = run(["connect", run_server(restarting).uri, "--reconnect", "--recv", "2"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\ntwo\n"
    assert "connection dropped" in result.stderr and "reconnected" in result.stderr
    assert connections.qsize() == 2


def test_reconnect_gives_up_on_a_final_close(run_server) -> None:
    result = run(["connect", run_server(lambda ws: ws.close(4000, "banned")).uri, "--reconnect"])
    assert result.returncode == 1
    assert "giving up" in result.stderr and "4000" in result.stderr


def test_record_does_not_go_with_reconnect(tmp_path) -> None:
    result = run(["connect", "ws://127.0.0.1:9/", "--reconnect", "--record", str(tmp_path / "r.jsonl")])
    assert result.returncode == 2
    assert "--record records one connection; it does not go with --reconnect" in result.stderr
