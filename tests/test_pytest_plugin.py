"""Tests of the pytest plugin's fixtures, used as a user would (and through pytester)."""

from __future__ import annotations

import threading
import time

import pytest

import wsclient
from wsclient.pytest_plugin import DEFAULT_TEARDOWN_TIMEOUT, Faults, FaultyServer

pytest_plugins = ["pytester"]


def test_ws_echo_server_and_ws_connect(ws_echo_server, ws_connect) -> None:
    ws = ws_connect(ws_echo_server.uri)
    ws.send("hello")
    assert ws.recv(timeout=5) == "hello"
    ws.send(b"\x00\x01")
    assert ws.recv(timeout=5) == b"\x00\x01"


def test_ws_server_runs_the_handler_with_options(ws_server, ws_connect) -> None:
    server = ws_server(lambda ws: ws.send(ws.request.path), subprotocols=["chat"])
    assert server.uri.startswith("ws://127.0.0.1:") and server.port
    ws = ws_connect(server.uri + "room?x=1", subprotocols=["chat"])
    assert ws.subprotocol == "chat"
    assert ws.recv(timeout=5) == "/room?x=1"


def test_faulty_server_without_faults_echoes(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server().uri, compression=None)
    ws.send(["frag", "mented"])
    assert ws.recv(timeout=5) == "fragmented"
    assert ws.ping(b"p").wait(5)


def test_ignore_pings(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server(ignore_pings=True).uri)
    pong = ws.ping(b"anyone?")
    ws.send("still echoes")
    assert ws.recv(timeout=5) == "still echoes"
    assert not pong.is_set()


def test_keepalive_times_out_against_ignored_pings(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server(ignore_pings=True).uri, ping_interval=0.1, ping_timeout=0.3)
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=10)
    assert info.value.code == 1011


def test_slow_answers(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server(delay=1.0).uri)
    ws.send("slow")
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.1)
    assert ws.recv(timeout=5) == "slow"


def test_tiny_fragments_reassemble(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server(fragment_size=1).uri)
    ws.send("κόσμε")  # Multi-byte characters split across frames.
    assert ws.recv(timeout=5) == "κόσμε"
    ws.send(bytes(range(200)))
    assert ws.recv(timeout=5) == bytes(range(200))


def test_invalid_utf8_closes_with_1007(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server(invalid_utf8=True).uri)
    ws.send("text")
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1007


def test_close_with_a_chosen_code_after_n_messages(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server(close_code=4001, close_reason="bye", after=1).uri)
    ws.send("one")
    assert ws.recv(timeout=5) == "one"
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert (info.value.code, info.value.reason) == (4001, "bye")


def test_reset_gives_1006(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server(reset=True).uri)
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1006
    assert ws.close_code == 1006


def test_faults_are_validated() -> None:
    with pytest.raises(ValueError):
        Faults(fragment_size=0)
    with pytest.raises(ValueError):
        Faults(close_code=999)


def test_plugin_is_registered_and_cleans_up(pytester: pytest.Pytester) -> None:
    """In a fresh pytest run, the fixtures come from the entry point and tear down."""
    pytester.makepyfile(
        """
        import wsclient
        seen = {}

        def test_use(ws_echo_server, ws_connect):
            ws = ws_connect(ws_echo_server.uri)
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
            seen["ws"], seen["server"] = ws, ws_echo_server

        def test_after():
            assert seen["ws"].closed
            try:
                wsclient.connect(seen["server"].uri, proxy=None, timeout=2)
            except OSError:
                pass
            else:
                raise AssertionError("the server still accepts connections")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=2)


def _faulty_threads() -> list:
    return [thread for thread in threading.enumerate() if thread.name.startswith("ws-faulty")]


def test_delay_still_answers_the_close_and_stop_ends_it() -> None:
    server = FaultyServer(Faults(delay=60))
    try:
        ws = wsclient.connect(server.uri, proxy=None, close_timeout=30)
        ws.send("anyone?")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
        ws.close()  # During the delay: the server answers the close frame all the same.
        assert ws.close_code == 1000
    finally:
        server.stop()
    assert not _faulty_threads()


def test_stop_cuts_a_delay_short() -> None:
    server = FaultyServer(Faults(delay=60))
    ws = wsclient.connect(server.uri, proxy=None)
    try:
        ws.send("anyone?")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
        start = time.monotonic()
        server.stop()  # Raises if a thread is still alive after DEFAULT_TEARDOWN_TIMEOUT.
        assert time.monotonic() - start < DEFAULT_TEARDOWN_TIMEOUT
        assert not _faulty_threads()
    finally:
        ws.close()


def test_delay_keeps_messages_that_arrive_meanwhile(ws_faulty_server, ws_connect) -> None:
    ws = ws_connect(ws_faulty_server(delay=0.2).uri)
    for word in ("one", "two", "three"):
        ws.send(word)
    assert [ws.recv(timeout=10) for _ in range(3)] == ["one", "two", "three"]
    assert ws.ping(b"p").wait(10)
