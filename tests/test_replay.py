"""Recording a session with ``connect --record`` against a real server (websockets'), and
replaying it (:mod:`wsclient.replay`, ``python -m wsclient replay``, the ``ws_replay_server``
fixture) to three client libraries: wsclient, websockets and websocket-client."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Union

import pytest
import websocket
from websockets.sync.client import connect as websockets_connect

import wsclient
from wsclient.recording import read
from wsclient.replay import ReplayServer

pytest_plugins = ["pytester"]

TIMEOUT = 30
ENV = {**os.environ, "NO_PROXY": "*", "no_proxy": "*", "NO_COLOR": "1"}
Message = Union[str, bytes]

#: What the websockets server of the recording sends, in order, for the client's lines.
CLIENT_LINES = ["hello", "world"]
SERVER_MESSAGES: List[Message] = ["welcome", "HELLO", b"olleh", "WORLD", b"dlrow"]


def shouting_server(ws: Any) -> None:
    """websockets handler: a greeting, then each text back in capitals and reversed as bytes."""
    ws.send("welcome")
    for message in ws:
        ws.send(message.upper())
        ws.send(message.encode()[::-1])


@pytest.fixture
def recording(run_peer, tmp_path: Path) -> Path:
    """A recording of ``connect --record`` in pipe mode against a websockets server."""
    server = run_peer(shouting_server)
    path = tmp_path / "session.jsonl"
    # --recv waits for all five server messages (the client then closes normally), so the
    # recording holds the whole exchange whatever the machine's speed.
    result = subprocess.run(
        [sys.executable, "-m", "wsclient", "connect", server.uri, "--record", str(path),
         "--recv", str(len(SERVER_MESSAGES))],
        input="\n".join(CLIENT_LINES) + "\n", capture_output=True, text=True, timeout=TIMEOUT, env=ENV)
    assert result.returncode == 0, result.stderr
    return path


def test_the_recording_holds_every_frame_both_ways_in_order(recording: Path) -> None:
    lines = [json.loads(line) for line in recording.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["wsclient-recording"] == 1 and lines[0]["uri"].startswith("ws://127.0.0.1:")
    events = lines[1:]
    times = [event["t"] for event in events]
    assert times == sorted(times) and times[0] >= 0
    messages = [(e["from"], e.get("text", e.get("base64"))) for e in events if e["type"] in ("text", "binary")]
    assert [m for m in messages if m[0] == "client"] == [("client", "hello"), ("client", "world")]
    assert [m for m in messages if m[0] == "server"] == [
        ("server", "welcome"), ("server", "HELLO"), ("server", "b2xsZWg="), ("server", "WORLD"), ("server", "ZGxyb3c=")]
    # hello comes before HELLO, world before WORLD: the order the client saw.
    flat = [m[1] for m in messages]
    assert flat.index("hello") < flat.index("HELLO") and flat.index("world") < flat.index("WORLD")
    closes = [(e["from"], e["code"]) for e in events if e["type"] == "close"]
    assert closes == [("client", 1000), ("server", 1000)]
    assert events[-1]["type"] == "close"
    # And the reader gives the same.
    parsed = read(str(recording))
    assert [e.data for e in parsed.events if e.sender == "server" and e.type != "close"] == SERVER_MESSAGES


# -- three client libraries against the replay -------------------------------------------


def with_wsclient(uri: str, count: int) -> List[Message]:
    with wsclient.connect(uri, proxy=None) as ws:
        for line in CLIENT_LINES:
            ws.send(line)
        return [ws.recv(timeout=TIMEOUT) for _ in range(count)]


def with_websockets(uri: str, count: int) -> List[Message]:
    with websockets_connect(uri, proxy=None, open_timeout=TIMEOUT) as ws:
        for line in CLIENT_LINES:
            ws.send(line)
        return [ws.recv(timeout=TIMEOUT) for _ in range(count)]


def with_websocket_client(uri: str, count: int) -> List[Message]:
    ws = websocket.create_connection(uri, timeout=TIMEOUT)
    try:
        for line in CLIENT_LINES:
            ws.send(line)
        return [ws.recv() for _ in range(count)]
    finally:
        ws.close()


CLIENTS = [with_wsclient, with_websockets, with_websocket_client]


@pytest.mark.parametrize("client", CLIENTS, ids=lambda f: f.__name__)
def test_replay_to_each_client_library(recording: Path, client: Callable[[str, int], List[Message]]) -> None:
    with ReplayServer(str(recording), fast=True) as server:
        assert client(server.uri, len(SERVER_MESSAGES)) == SERVER_MESSAGES
        assert server.wait_finished(1, TIMEOUT)
    assert server.mismatches == []


def test_one_replay_server_plays_to_the_three_libraries_in_turn(recording: Path, ws_replay_server) -> None:
    server = ws_replay_server(recording, fast=True)
    seen = [client(server.uri, len(SERVER_MESSAGES)) for client in CLIENTS]
    assert seen == [SERVER_MESSAGES] * 3
    assert server.wait_finished(3)
    server.stop()  # Raises on a mismatch.


def test_replay_keeps_the_recorded_timing(tmp_path: Path) -> None:
    path = tmp_path / "slow.jsonl"
    path.write_text("\n".join([
        '{"wsclient-recording": 1, "uri": "ws://example/", "subprotocol": null, "started": ""}',
        '{"t": 0.0, "from": "client", "type": "text", "text": "go"}',
        '{"t": 0.6, "from": "server", "type": "text", "text": "late"}',
        '{"t": 0.7, "from": "server", "type": "close", "code": 1000, "reason": "done"}',
    ]) + "\n", encoding="utf-8")
    for fast, low, high in [(False, 0.55, 5.0), (True, 0.0, 0.4)]:
        with ReplayServer(str(path), fast=fast) as server, wsclient.connect(server.uri, proxy=None) as ws:
            ws.send("go")
            start = time.monotonic()
            assert ws.recv(timeout=TIMEOUT) == "late"
            assert low <= time.monotonic() - start <= high, fast
            with pytest.raises(wsclient.ConnectionClosedOK):
                ws.recv(timeout=TIMEOUT)
            assert (ws.close_code, ws.close_reason) == (1000, "done")


def test_replay_offers_the_recorded_subprotocol(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text('{"wsclient-recording": 1, "uri": "ws://example/", "subprotocol": "chat.v2"}\n'
                    '{"t": 0, "from": "server", "type": "text", "text": "hi"}\n', encoding="utf-8")
    with ReplayServer(path, fast=True) as server:
        with wsclient.connect(server.uri, proxy=None, subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert ws.recv(timeout=TIMEOUT) == "hi"


# -- mismatches ----------------------------------------------------------------------------


def test_a_mismatch_is_reported_and_closes_the_client_with_1008(recording: Path) -> None:
    seen = []
    with ReplayServer(str(recording), fast=True, on_mismatch=seen.append) as server:
        with wsclient.connect(server.uri, proxy=None) as ws:
            ws.send("hullo")
            received = []
            with pytest.raises(wsclient.ConnectionClosedError) as info:
                for _ in range(10):
                    received.append(ws.recv(timeout=TIMEOUT))
        assert server.wait_finished(1, TIMEOUT)
    assert info.value.code == 1008
    line = next(e.line for e in read(str(recording)).events if e.data == "hello")
    assert info.value.reason == f"replay mismatch at recording line {line}"
    assert [str(m) for m in server.mismatches] == [str(m) for m in seen]
    assert str(seen[0]) == (f"replay mismatch in session 1 at recording line {line}: "
                            "expected the client to send text 'hello', got text 'hullo'")
    with pytest.raises(AssertionError):
        server.check()


def test_a_binary_message_where_text_was_recorded_is_a_mismatch(recording: Path) -> None:
    with ReplayServer(str(recording), fast=True, compare=False) as server:
        with wsclient.connect(server.uri, proxy=None) as ws:
            ws.send(b"hello")
            with pytest.raises(wsclient.ConnectionClosedError):
                for _ in range(10):
                    ws.recv(timeout=TIMEOUT)
        assert server.wait_finished(1, TIMEOUT)
    assert "expected the client to send text 'hello', got binary 5 bytes 68656c6c6f" in str(server.mismatches[0])


@pytest.mark.parametrize("sends, close, got", [
    (["a"], 4000, "expected the client to send close 1000, got close 4000"),
    ([], 1000, "expected the client to send text 'a', got a close (1000)"),
    (["a", "extra"], 1000, "expected the client to send close 1000, got text 'extra'"),
])
def test_the_client_close_is_compared_too(tmp_path: Path, sends: List[str], close: int, got: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"wsclient-recording": 1}\n{"t": 0, "from": "client", "type": "text", "text": "a"}\n'
                    '{"t": 0.1, "from": "client", "type": "close", "code": 1000, "reason": ""}\n'
                    '{"t": 0.1, "from": "server", "type": "close", "code": 1000, "reason": ""}\n', encoding="utf-8")
    with ReplayServer(path, fast=True) as server:
        ws = wsclient.connect(server.uri, proxy=None)
        for message in sends:
            ws.send(message)
        ws.close(close)
        assert server.wait_finished(1, TIMEOUT)
    assert [m.got for m in server.mismatches] == [got.split(", got ")[1]]
    assert str(server.mismatches[0]).endswith(got)


def test_compare_false_accepts_any_message(recording: Path) -> None:
    with ReplayServer(str(recording), fast=True, compare=False) as server:
        with wsclient.connect(server.uri, proxy=None) as ws:
            ws.send("anything")
            ws.send("at all")
            assert [ws.recv(timeout=TIMEOUT) for _ in SERVER_MESSAGES] == SERVER_MESSAGES
        assert server.wait_finished(1, TIMEOUT)
    assert server.mismatches == []


# -- python -m wsclient replay ---------------------------------------------------------------


def start_replay(*args: str) -> tuple:
    process = subprocess.Popen([sys.executable, "-m", "wsclient", "replay", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV)
    return process, process.stdout.readline().strip()


@pytest.mark.parametrize("first, status", [("hello", 0), ("hullo", 3)])
def test_cli_replay_once(recording: Path, first: str, status: int) -> None:
    process, uri = start_replay(str(recording), "127.0.0.1:0", "--fast", "--once")
    try:
        assert uri.startswith("ws://127.0.0.1:")
        with wsclient.connect(uri, proxy=None) as ws:
            try:
                ws.send(first)
                ws.send("world")  # Refused once the mismatch closed the connection.
                received = [ws.recv(timeout=TIMEOUT) for _ in SERVER_MESSAGES]
            except wsclient.ConnectionClosedError as exc:
                received = [exc.code]
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == status, err
    if status == 0:
        assert received == SERVER_MESSAGES
        assert "session 1: played to the end, every client message matched" in err
    else:
        assert received == [1008]
        assert "wsclient: replay mismatch in session 1 at recording line" in err
        assert "expected the client to send text 'hello', got text 'hullo'" in err


def test_cli_replay_serves_every_client_until_ctrl_c(recording: Path) -> None:
    process, uri = start_replay(str(recording), "127.0.0.1:0", "--fast")
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if text in lines.get(timeout=max(0.0, deadline - time.monotonic())):
                    return
            except queue.Empty:
                pytest.fail(f"replay never wrote {text!r}")

    try:
        for session in (1, 2):
            assert with_wsclient(uri, len(SERVER_MESSAGES)) == SERVER_MESSAGES
            wait_for(f"session {session}: played to the end")
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


# _thread.interrupt_main() marks SIGINT pending without interrupting a wait: on Linux this is
# what Ctrl-C does to a Windows process waiting on a lock. The command line is the real one.
_INTERRUPTED_ON_REQUEST = """
import _thread, sys, threading
from wsclient.cli import main

def interrupt_on_request():
    sys.stdin.readline()
    _thread.interrupt_main()

threading.Thread(target=interrupt_on_request, daemon=True).start()
sys.exit(main(["replay", *sys.argv[1:]]))
"""


def test_cli_replay_once_stops_on_a_pending_ctrl_c(recording: Path) -> None:
    """``--once`` waits for its session in bounded waits: a Ctrl-C that does not interrupt
    the wait (Windows) still ends it, the session closed with 1001, status 0."""
    process = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_ON_REQUEST, str(recording), "127.0.0.1:0",
                                "--fast", "--once"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        uri = process.stdout.readline().strip()
        with wsclient.connect(uri, proxy=None, timeout=TIMEOUT) as ws:
            assert ws.recv(timeout=TIMEOUT) == "welcome"  # The session plays: --once waits for its end.
            process.stdin.write("interrupt\n")
            process.stdin.flush()
            with pytest.raises(wsclient.ConnectionClosed):
                ws.recv(timeout=TIMEOUT)
            assert ws.close_code == 1001
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("replay --once never acted on the pending Ctrl-C")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "shutting down" in err and "Traceback" not in err


@pytest.mark.parametrize("content, message", [
    ("", "empty, not a wsclient recording"),
    ('{"hello": 1}\n', 'line 1: not a wsclient recording: the first line has no "wsclient-recording" key'),
    ('{"wsclient-recording": 1}\n{"t": 0, "from": "me", "type": "text", "text": "x"}\n',
     'line 2: "from" must be "client" or "server", not \'me\''),
])
def test_cli_replay_refuses_a_bad_file_with_status_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "wsclient", "replay", str(path), "0"], capture_output=True,
                            text=True, timeout=TIMEOUT, env=ENV)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


# -- the pytest fixture ---------------------------------------------------------------------


def test_the_fixture_turns_a_mismatch_into_a_test_failure(recording: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(textwrap.dedent(f"""
        import pytest
        import wsclient

        RECORDING = {str(recording)!r}

        def talk(uri, first):
            with wsclient.connect(uri, proxy=None) as ws:
                ws.send(first)
                with pytest.raises(wsclient.ConnectionClosedError):
                    for _ in range(10):
                        ws.recv(timeout=10)

        def test_stop_reports_it(ws_replay_server):
            server = ws_replay_server(RECORDING, fast=True)
            talk(server.uri, "hullo")
            server.stop()

        def test_teardown_reports_it(ws_replay_server):
            server = ws_replay_server(RECORDING, fast=True)
            talk(server.uri, "hallo")
            assert server.wait_finished(1)

        def test_a_match_passes(ws_replay_server):
            server = ws_replay_server(RECORDING, fast=True)
            with wsclient.connect(server.uri, proxy=None) as ws:
                ws.send("hello")
                ws.send("world")
                assert len([ws.recv(timeout=10) for _ in range(5)]) == 5
            assert server.wait_finished(1)
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_teardown_reports_it*",
        "replay mismatch in session 1 at recording line *: expected the client to send text 'hello', got text 'hallo'",
    ])
    result.stdout.fnmatch_lines([
        "*_ test_stop_reports_it _*",
        "E *ReplayMismatch: replay mismatch in session 1 at recording line *: "
        "expected the client to send text 'hello', got text 'hullo'",
    ])
    result.stdout.fnmatch_lines(["FAILED *::test_stop_reports_it*", "ERROR *::test_teardown_reports_it*"])
