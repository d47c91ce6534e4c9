"""The open connection's public API: recv/send/ping/close semantics, timeouts, closes,
the errors a misbehaving peer causes, wait() and the option checks.

Against our own server, the `websockets` server, and scripted misbehaving peers (raw
sockets speaking bytes). How threads share the socket is tests/test_duplex.py; what the
watcher does while nobody reads is tests/test_background.py.
"""

from __future__ import annotations

import array
import os
import socket
import threading
import time

import pytest

import wsclient
from wsclient.frames import Frame, Opcode

from .reliability.rawpeer import RawServer, calling, client_frames, unsent, wait_until


def test_recv_timeout_loses_nothing(run_peer):
    timed_out = threading.Event()

    def late(conn):
        conn.recv()
        assert timed_out.wait(10)  # Only once the client's recv() has given up.
        conn.send("late")
        conn.recv()

    server = run_peer(late)
    with wsclient.connect(server.uri, proxy=None) as ws:
        ws.send("go")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.1)
        timed_out.set()
        assert ws.recv(timeout=5) == "late"
        ws.send("done")


def test_recv_timeout_zero_polls(echo_server):
    with wsclient.connect(echo_server.uri) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0)
        ws.send("x")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                assert ws.recv(timeout=0) == "x"
                break
            except TimeoutError:
                time.sleep(0.01)
        else:
            pytest.fail("message never became ready")


def test_a_timeout_of_infinity_waits_without_limit(echo_server):
    # It used to raise OverflowError: from connect(), and from send() and recv() before
    # anything was sent or read.
    forever = float("inf")
    with wsclient.connect(echo_server.uri, timeout=forever) as ws:
        ws.send("x", timeout=forever)
        assert wsclient.wait([ws], timeout=forever) == [ws]
        assert ws.recv(timeout=forever) == "x"
        ws.send("y", timeout=1e300)
        assert ws.recv_until(lambda m: m == "y", timeout=1e300) == "y"


@pytest.mark.parametrize("timeout, error", [("5", TypeError), (True, TypeError), (float("nan"), ValueError)])
def test_a_timeout_that_is_not_seconds_is_refused_and_the_connection_goes_on(echo_server, timeout, error):
    with wsclient.connect(echo_server.uri) as ws:
        with pytest.raises(error, match="timeout"):
            ws.send("never sent", timeout=timeout)
        with pytest.raises(error, match="timeout"):
            ws.recv(timeout=timeout)
        ws.send("next")
        assert ws.recv(timeout=5) == "next"


def test_close_from_another_thread_wakes_recv(echo_server):
    ws = wsclient.connect(echo_server.uri)
    errors = []

    def reader():
        try:
            ws.recv()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    wait_until(lambda: ws._duplex.read_lock.locked())  # The reader is blocked in recv().
    start = time.monotonic()
    ws.close()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - start < 2
    assert isinstance(errors[0], wsclient.ConnectionClosedOK)
    assert ws.close_code == 1000


def test_close_from_another_thread_wakes_recv_when_the_peer_never_answers():
    # With a peer that answers, the reply wakes the reader anyway; here only close()
    # itself can: at close_timeout it cuts the transport under the blocked recv().
    stop = threading.Event()
    peer = RawServer(lambda sock: stop.wait(10))  # Reads nothing, answers nothing.
    ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=0.5)
    errors = []

    def reader():
        try:
            ws.recv()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        wait_until(lambda: calling(thread, "recv") and ws._duplex.read_lock.locked(), what="recv() blocks")
        start = time.monotonic()
        ws.close()
        thread.join(5)
        assert not thread.is_alive(), "recv() still blocked after close()"
        assert time.monotonic() - start < 0.5 + 2
        assert isinstance(errors[0], wsclient.ConnectionClosed), errors
    finally:
        stop.set()
        peer.join()


def test_close_is_idempotent_and_leaves_nothing_behind(echo_server):
    threads_before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        ws = wsclient.connect(echo_server.uri)
        ws.send("x")
        ws.recv(timeout=5)
        ws.close()
        ws.close()
        assert ws.closed
        assert ws.fileno() == -1
    # The server's side finishes closing in its own threads: give it a bounded moment.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        threading.active_count() > threads_before or len(os.listdir("/proc/self/fd")) > fds_before
    ):
        time.sleep(0.02)
    assert threading.active_count() <= threads_before
    assert len(os.listdir("/proc/self/fd")) <= fds_before


def test_server_initiated_close_reports_code_and_reason(run_peer):
    server = run_peer(lambda conn: conn.close(4000, "bye now"))
    with wsclient.connect(server.uri) as ws:
        with pytest.raises(wsclient.ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.code == 4000
        assert info.value.reason == "bye now"
        assert ws.close_code == 4000
        assert ws.close_reason == "bye now"


def test_normal_close_ends_iteration_after_queued_messages(run_peer):
    def talk_then_close(conn):
        for i in range(5):
            conn.send(f"m{i}")
        conn.close(1000)

    server = run_peer(talk_then_close)
    with wsclient.connect(server.uri) as ws:
        # Everything arrives, close frame and end of stream included, and the connection
        # is closed before we read: the queued messages still come first.
        wait_until(lambda: ws.closed, what="the connection closed")
        assert list(ws) == [f"m{i}" for i in range(5)]
        with pytest.raises(wsclient.ConnectionClosedOK):
            ws.send("too late")


def test_peer_vanishing_gives_1006_promptly():
    def vanish(sock):
        sock.sendall(Frame(Opcode.TEXT, b"before").serialize())
        # In the client's kernel before the reset, which would discard it otherwise.
        wait_until(lambda: unsent(sock) == 0, what="the client has the message")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    peer = RawServer(vanish)
    ws = wsclient.connect(peer.uri)
    assert ws.recv(timeout=5) == "before"
    start = time.monotonic()
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=10)
    assert info.value.code == 1006
    assert time.monotonic() - start < 2
    peer.join()
    ws.close()


def test_protocol_error_closes_with_1002_and_chains_the_cause():
    received = []

    def masked_frame(sock):
        sock.sendall(Frame(Opcode.TEXT, b"masked").serialize(mask_key=b"abcd"))
        received.extend(client_frames(sock, 1))

    peer = RawServer(masked_frame)
    ws = wsclient.connect(peer.uri)
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1002
    assert isinstance(info.value.__cause__, wsclient.ProtocolError)
    peer.join()
    assert received[0].opcode == Opcode.CLOSE
    assert received[0].payload[:2] == (1002).to_bytes(2, "big")


def test_invalid_utf8_closes_with_1007():
    def bad_text(sock):
        sock.sendall(Frame(Opcode.TEXT, b"\xce\xba\xff").serialize())
        client_frames(sock, 1)

    peer = RawServer(bad_text)
    ws = wsclient.connect(peer.uri)
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1007
    peer.join()


def test_ping_returns_an_event_set_by_the_pong(peer_echo_server):
    with wsclient.connect(peer_echo_server.uri) as ws:
        assert ws.ping(b"one").wait(5)
        assert ws.ping("two").wait(5)
        assert ws.ping(array.array("B", b"three")).wait(5)
        with pytest.raises(ValueError):
            ws.ping(b"x" * 126)
        for bad in (5, None, [1, 2]):  # bytes(5) would have sent five NUL bytes
            with pytest.raises(TypeError):
                ws.ping(bad)
            with pytest.raises(TypeError):
                ws.pong(bad)


def test_pings_with_the_same_payload_each_get_their_pong(peer_echo_server):
    with wsclient.connect(peer_echo_server.uri, ping_interval=None) as ws:
        first, second = ws.ping(), ws.ping()  # Both b"", the default.
        assert second.wait(5)
        assert first.is_set()


def test_wait_returns_connections_with_messages(echo_server):
    with wsclient.connect(echo_server.uri) as a, wsclient.connect(echo_server.uri) as b:
        assert wsclient.wait([a, b], timeout=0.1) == []
        b.send("to b")
        assert wsclient.wait([a, b], timeout=5) == [b]
        assert b.recv(timeout=1) == "to b"


def test_send_rejects_other_types(echo_server):
    with wsclient.connect(echo_server.uri) as ws:
        for bad in [{"a": 1}, 42, None, [1, 2], [None]]:
            with pytest.raises(TypeError):
                ws.send(bad)
        ws.send("still usable")  # Nothing of those went out.
        assert ws.recv(timeout=5) == "still usable"


def test_any_bytes_like_object_is_one_binary_message(echo_server):
    # array.array is iterable too: it must not be taken for a list of fragments.
    with wsclient.connect(echo_server.uri) as ws:
        ws.send(array.array("i", [1, 2]))
        assert ws.recv(timeout=5) == array.array("i", [1, 2]).tobytes()
        ws.send(memoryview(bytes(range(8))).cast("B", (2, 4)))  # 2-D: its bytes, in order
        assert ws.recv(timeout=5) == bytes(range(8))


def test_a_fragmented_send_whose_pieces_change_type_fails_the_connection(echo_server):
    # The first piece is on the wire: the message cannot be finished, and an unfinished
    # message would block every later send.
    with wsclient.connect(echo_server.uri) as ws:
        with pytest.raises(TypeError):
            ws.send(["text", b"bytes"])
        with pytest.raises(wsclient.ConnectionClosedError) as info:
            ws.send("next")
        assert info.value.code == 1011


def test_a_fragmented_send_with_a_piece_utf8_cannot_carry_fails_the_connection(echo_server):
    # A lone surrogate after the first piece left the message open: later sends raised a
    # bare RuntimeError, and a later fragmented text send was glued onto the broken one.
    with wsclient.connect(echo_server.uri) as ws:
        with pytest.raises(UnicodeEncodeError):
            ws.send(iter(["hello ", "\ud800 world"]))
        with pytest.raises(wsclient.ConnectionClosedError) as info:
            ws.send(["later ", "message"], timeout=5)
        assert info.value.code == 1011


def test_close_rejects_codes_and_reasons_of_other_types(echo_server):
    with wsclient.connect(echo_server.uri) as ws:
        for code, reason in ((1000, b"bye"), (1000, None), (3000.5, "")):
            with pytest.raises(TypeError):
                ws.close(code, reason)
        ws.send("still open")
        assert ws.recv(timeout=5) == "still open"


def test_wait_takes_connections_only(echo_server):
    with wsclient.connect(echo_server.uri) as ws:
        for bad in ([ws, 5], "ab"):
            with pytest.raises(TypeError):
                wsclient.wait(bad, timeout=0.1)


@pytest.mark.parametrize("option, value, error", [
    ("ping_interval", -1, ValueError),  # Was accepted, and pinged in a busy loop.
    ("ping_interval", 0, ValueError),
    ("ping_timeout", "x", TypeError),  # Was accepted, and failed later in the watcher.
    ("ping_timeout", -1, ValueError),
    ("close_timeout", float("inf"), ValueError),
    ("close_timeout", float("nan"), ValueError),
    ("max_queue", 0, ValueError),
    ("max_queue", "1", TypeError),  # Was ValueError; README: the wrong type is TypeError.
    ("max_size", 1.5, TypeError),
    ("max_size", True, TypeError),
    ("max_redirects", "3", TypeError),
    ("max_redirects", -1, ValueError),
    ("sock", "x", TypeError),
    ("timeout", "5", TypeError),  # Was accepted, and failed adding a str to a float.
    ("timeout", float("nan"), ValueError),
])
def test_connect_checks_its_options_before_any_traffic(option, value, error):
    with pytest.raises(error, match=option):
        wsclient.connect("ws://127.0.0.1:9/", proxy=None, **{option: value})


def test_recv_helpers_for_harnesses(echo_server):
    with wsclient.connect(echo_server.uri) as ws:
        ws.send('{"a": [1, 2]}')
        assert ws.recv_json(timeout=5) == {"a": [1, 2]}
        ws.send("not json")
        with pytest.raises(ValueError):
            ws.recv_json(timeout=5)
        for text in ["noise 1", "noise 2", "wanted 3", "after"]:
            ws.send(text)
        skipped = []
        assert ws.recv_until(lambda m: m.startswith("wanted"), timeout=5, skipped=skipped) == "wanted 3"
        assert skipped == ["noise 1", "noise 2"]
        with pytest.raises(TimeoutError):
            ws.recv_until(lambda m: m == "never", timeout=0.5, skipped=skipped)
        assert skipped[-1] == "after"
        for i in range(3):
            ws.send(f"q{i}")
        deadline = time.monotonic() + 5
        drained = []
        while len(drained) < 3 and time.monotonic() < deadline:
            drained += ws.drain()
            time.sleep(0.01)
        assert drained == ["q0", "q1", "q2"]
        assert ws.drain() == []
