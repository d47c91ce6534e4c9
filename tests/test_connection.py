"""The open connection: recv/send/ping/close semantics, threads, keepalive, backpressure.

Against our own server, the `websockets` server, and scripted misbehaving peers (raw
sockets speaking bytes).
"""

from __future__ import annotations

import array
import base64
import fcntl
import hashlib
import os
import random
import socket
import struct
import termios
import threading
import time
import zlib

import pytest

import wsclient
from wsclient.frames import Frame, Opcode, parse_frames
from wsclient.protocol import COMPRESSED_SLICE

from .reliability.rawpeer import RawServer, read_frames as read_raw_frames, reset


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ScriptedPeer:
    """A raw-socket server: answers the opening handshake, then runs ``script(sock)``."""

    def __init__(self, script) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.uri = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.script = script
        self.error = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(10)
            sock, _ = self.listener.accept()
            with sock:
                sock.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += sock.recv(4096)
                key = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:")][0]
                accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                self.script(sock)
        except Exception as exc:  # surfaced by join()
            self.error = exc

    def join(self) -> None:
        self.thread.join(15)
        self.listener.close()
        assert not self.thread.is_alive()
        if self.error:
            raise self.error


def read_frames(sock, count, timeout=10, until_close=False):
    """Read ``count`` whole client frames (or up to a close frame) from a raw socket."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = parse_frames(data, expect_masked=True)
        if len(frames) >= count and not until_close:
            return frames
        if until_close and any(f.opcode == Opcode.CLOSE for f in frames):
            return frames
        chunk = sock.recv(65536)
        if not chunk:
            return parse_frames(data, expect_masked=True)
        data += chunk
    raise TimeoutError


def test_recv_timeout_loses_nothing(run_peer):
    def late(conn):
        conn.recv()
        time.sleep(0.5)
        conn.send("late")
        conn.recv()

    server = run_peer(late)
    with wsclient.connect(server.uri, proxy=None) as ws:
        ws.send("go")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.1)
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
    time.sleep(0.1)
    start = time.monotonic()
    ws.close()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - start < 2
    assert isinstance(errors[0], wsclient.ConnectionClosedOK)
    assert ws.close_code == 1000


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
        time.sleep(0.3)  # Everything, close frame included, arrives before we read.
        assert list(ws) == [f"m{i}" for i in range(5)]
        with pytest.raises(wsclient.ConnectionClosedOK):
            ws.send("too late")


def test_peer_vanishing_gives_1006_promptly():
    def vanish(sock):
        sock.sendall(Frame(Opcode.TEXT, b"before").serialize())
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    peer = ScriptedPeer(vanish)
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
        received.extend(read_frames(sock, 1))

    peer = ScriptedPeer(masked_frame)
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
        read_frames(sock, 1)

    peer = ScriptedPeer(bad_text)
    ws = wsclient.connect(peer.uri)
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1007
    peer.join()


def test_pings_are_answered_while_the_application_does_not_read(run_peer):
    # The peer pings every 0.2 s and gives up after 0.3 s without a pong; it sends 200
    # messages meanwhile. We don't read for 2 s: the connection must survive.
    def chatty(conn):
        for i in range(200):
            conn.send(f"message {i}")
        conn.recv()

    server = run_peer(chatty, ping_interval=0.2, ping_timeout=0.3)
    with wsclient.connect(server.uri, ping_interval=None) as ws:
        time.sleep(2)
        assert [ws.recv(timeout=5) for _ in range(200)] == [f"message {i}" for i in range(200)]
        ws.send("still alive")


def test_keepalive_closes_with_1011_when_no_pong_comes():
    def ignore_pings(sock):
        frames = read_frames(sock, 0, timeout=10, until_close=True)  # pings, then a close
        assert frames[0].opcode == Opcode.PING
        assert frames[-1].payload[:2] == (1011).to_bytes(2, "big")

    peer = ScriptedPeer(ignore_pings)
    ws = wsclient.connect(peer.uri, ping_interval=0.2, ping_timeout=0.3)
    start = time.monotonic()
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1011
    assert time.monotonic() - start < 2
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


def test_eight_threads_sending_on_one_connection(echo_server):
    with wsclient.connect(echo_server.uri) as ws:
        def sender(n):
            for i in range(1000):
                ws.send(f"{n}:{i}:" + "p" * (i % 50))

        received = []

        def receiver():
            for _ in range(8000):
                received.append(ws.recv(timeout=30))

        reader = threading.Thread(target=receiver)
        reader.start()
        senders = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(60)
        reader.join(60)
        assert len(received) == 8000
        for n in range(8):
            mine = [m for m in received if m.startswith(f"{n}:")]
            assert mine == [f"{n}:{i}:" + "p" * (i % 50) for i in range(1000)]


def test_control_frames_go_between_fragments():
    frames = []

    def collect(sock):
        frames.extend(read_frames(sock, 4, timeout=10))

    peer = ScriptedPeer(collect)
    ws = wsclient.connect(peer.uri, ping_interval=None)

    def slow_fragments():
        yield "first "
        pinged.wait(5)
        yield "second"

    pinged = threading.Event()
    sender = threading.Thread(target=ws.send, args=(slow_fragments(),))
    sender.start()
    time.sleep(0.1)
    pinger = threading.Thread(target=lambda: (ws.ping(b"mid"), pinged.set()))
    pinger.start()
    time.sleep(0.2)
    pinged.set()
    sender.join(5)
    pinger.join(5)
    peer.join()
    ws.close()
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.PING, Opcode.CONT, Opcode.CONT]
    assert [f.fin for f in frames] == [False, True, False, True]


def _compressible(size, seed):
    """JSON-like text that zlib turns out bit by bit (not all held back to the end)."""
    rng = random.Random(seed)
    return ", ".join(f'{{"id": {i}, "v": {rng.randrange(10**6)}}}' for i in range(size // 20))[:size]


def test_a_large_compressed_message_goes_out_a_slice_per_frame():
    message = _compressible(COMPRESSED_SLICE * 3, seed=1)
    frames = []

    def collect(sock):
        frames.extend(read_raw_frames(sock, expect_masked=True, until=lambda got: bool(got) and got[-1].fin))

    peer = RawServer(collect, extensions="permessage-deflate")
    with wsclient.connect(peer.uri, ping_interval=None) as ws:
        ws.send(message)
        peer.join()
    assert [(f.opcode, f.rsv1) for f in frames[:2]] == [(Opcode.TEXT, True), (Opcode.CONT, False)]
    assert 3 <= len(frames) <= 4 and [f.fin for f in frames].count(True) == 1
    inflated = zlib.decompressobj(-15).decompress(b"".join(f.payload for f in frames) + b"\x00\x00\xff\xff")
    assert inflated.decode() == message


class _TakenAfterNextRelease:
    """A lock that, once armed, is taken by another thread at its next release (as a
    writer of control frames might take the socket) and held until ``free`` is set."""

    def __init__(self):
        self._lock = threading.Lock()
        self.armed = False
        self.taken, self.free = threading.Event(), threading.Event()

    def acquire(self, blocking=True, timeout=-1):
        return self._lock.acquire(blocking, timeout)

    def release(self):
        self._lock.release()
        if self.armed:
            self.armed = False
            threading.Thread(target=self._hold).start()
            assert self.taken.wait(5)

    def _hold(self):
        with self._lock:
            self.taken.set()
            self.free.wait(10)

    def locked(self):
        return self._lock.locked()

    def __enter__(self):
        self.acquire()

    def __exit__(self, *exc_info):
        self.release()


def _line_taken_after(ws, method):
    """Make the write lock go to another thread once the frame ``ws._proto.<method>``
    builds is written; returns the lock (set ``lock.free`` to give it back)."""
    ws._write_lock = lock = _TakenAfterNextRelease()
    build = getattr(ws._proto, method)

    def armed(*args, **kwargs):
        lock.armed = True
        return build(*args, **kwargs)

    setattr(ws._proto, method, armed)
    return lock


def test_a_sliced_send_that_times_out_between_frames_aborts_the_connection(echo_server):
    ws = wsclient.connect(echo_server.uri, ping_interval=None)
    lock = _line_taken_after(ws, "send_message")
    with pytest.raises(TimeoutError):
        ws.send(_compressible(COMPRESSED_SLICE * 2, seed=2), timeout=0.5)
    lock.free.set()
    # Half a message went out: the connection cannot go on, and says so.
    with pytest.raises(wsclient.ConnectionClosedError):
        ws.send("next")
    assert ws.closed


@pytest.mark.parametrize("pieces", [["first ", "second"], ["same", "same"]])
def test_a_fragmented_send_that_times_out_between_frames_aborts_the_connection(echo_server, pieces):
    # ["same", "same"]: the second piece, the same object as the first, was taken for the
    # first, and its timeout left the message open.
    ws = wsclient.connect(echo_server.uri, ping_interval=None)
    lock = _line_taken_after(ws, "send_fragment")
    with pytest.raises(TimeoutError):
        ws.send(pieces, timeout=0.5)
    lock.free.set()
    with pytest.raises(wsclient.ConnectionClosedError):
        ws.send("next")
    assert ws.closed


def test_wait_returns_connections_with_messages(echo_server):
    with wsclient.connect(echo_server.uri) as a, wsclient.connect(echo_server.uri) as b:
        assert wsclient.wait([a, b], timeout=0.1) == []
        b.send("to b")
        assert wsclient.wait([a, b], timeout=5) == [b]
        assert b.recv(timeout=1) == "to b"


def test_max_queue_pushes_back_and_loses_nothing(run_peer):
    count, size = 64, 64 * 1024

    def flood(conn):
        for i in range(count):
            conn.send(bytes([i]) * size)
        conn.recv()

    server = run_peer(flood)
    # Without compression the bound is exact to a read; with it, one small read may
    # inflate past the mark (documented).
    with wsclient.connect(server.uri, max_queue=256 * 1024, compression=None) as ws:
        time.sleep(1)
        assert ws._queued <= 256 * 1024 + size
        for i in range(count):
            assert ws.recv(timeout=10) == bytes([i]) * size
        ws.send("done")


def _peer_that_never_reads():
    """(peer, stop): a peer with a 4 KiB receive buffer that reads nothing until ``stop``."""
    stop = threading.Event()

    def never_read(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stop.wait(10)

    return ScriptedPeer(never_read), stop


def test_send_timeout_on_a_peer_that_stops_reading():
    peer, stop = _peer_that_never_reads()
    ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=1)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        for _ in range(1000):
            ws.send(b"x" * (1 << 20), timeout=0.5)
    assert time.monotonic() - start < 5
    stop.set()
    peer.join()
    ws.close()


def test_a_close_that_never_got_past_a_stalled_send_reports_1006():
    # The close frame waited behind a send to a peer that stopped reading, and never went
    # out; the connection reported a normal 1000 close all the same (ConnectionClosedOK).
    peer, stop = _peer_that_never_reads()
    ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=1)
    outcome = []

    def send_until_it_fails():
        try:
            for _ in range(1000):
                ws.send(b"x" * (1 << 20))
        except Exception as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send_until_it_fails)
    sender.start()
    try:
        deadline = time.monotonic() + 5
        while not ws._write_lock.locked() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # The peer's 4 KiB buffer is long full: the sender is stuck mid-write.
        ws.close()
        sender.join(5)
        assert ws.close_code == 1006 and ws.close_reason == ""
        assert isinstance(outcome[0], wsclient.ConnectionClosedError), outcome
        with pytest.raises(wsclient.ConnectionClosedError):
            ws.recv(timeout=1)
    finally:
        stop.set()
        peer.join()


def test_a_peer_that_refuses_a_message_mid_send_reports_its_close_code():
    """The peer reads the header of a message it will not take, says why (a message, then
    close 1009) and closes with our bytes unread, which resets TCP under the send. What it
    sent first is still readable: the send reports 1009, not a bare 1006, and the message
    is not lost."""

    def refuse(sock):
        sock.recv(14)  # The frame header: 2 + 8 bytes of length + 4 of mask key.
        refusal = Frame(Opcode.CLOSE, b"\x03\xf1")  # 1009
        sock.sendall(Frame(Opcode.TEXT, b"too big").serialize() + refusal.serialize())

    peer = ScriptedPeer(refuse)
    ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=1)
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.send(b"x" * (64 << 20), timeout=10)
    assert info.value.code == 1009
    assert ws.recv(timeout=1) == "too big"
    with pytest.raises(wsclient.ConnectionClosedError):
        ws.recv(timeout=1)
    peer.join()
    ws.close()


def _read_upload(sock, count, *, slow_for=0.0):
    """Read ``count`` bytes of the client's upload (fewer at its end), within 10 s; for
    the first ``slow_for`` seconds, slowly (64 KiB every 20 ms). Returns the bytes read."""
    got, start = 0, time.monotonic()
    while got < count and time.monotonic() < start + 10:
        try:
            chunk = sock.recv(min(1 << 16, count - got))
        except OSError:
            break
        if not chunk:
            break
        got += len(chunk)
        if time.monotonic() < start + slow_for:
            time.sleep(0.02)
    return got


def test_recv_waits_quietly_while_another_thread_finishes_a_send_after_the_peer_half_closed():
    """Mid-way through a large upload that another thread is sending, the peer sends a
    message and ends its stream (FIN, no close frame) but goes on reading the upload,
    slowly. recv() returns the message, then waits for the send to finish without spinning
    on the ended stream, then reports the abnormal close."""
    upload = 16 << 20
    slow_until = []

    def half_close_mid_upload(sock):
        assert _read_upload(sock, 1 << 20) == 1 << 20
        sock.sendall(Frame(Opcode.TEXT, b"before the end").serialize())
        sock.shutdown(socket.SHUT_WR)
        slow_until.append(time.monotonic() + 1.5)
        _read_upload(sock, upload, slow_for=1.5)

    peer = ScriptedPeer(half_close_mid_upload)
    ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=5)
    sent = []
    sender = threading.Thread(target=lambda: sent.append(_result_or_error(ws.send, b"x" * upload, timeout=10)))
    sender.start()
    assert ws.recv(timeout=5) == "before the end"
    cpu = time.process_time()  # Every thread: recv(), the sender, the watcher, the peer.
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=10)
    spent = time.process_time() - cpu
    sender.join(10)
    assert info.value.code == 1006
    assert sent == [None], "the upload the peer went on reading was sent whole"
    assert time.monotonic() >= slow_until[0] - 0.1, "recv() reported the close before the send ended"
    assert spent < 0.5, f"{spent:.2f} s of CPU burnt in 1.5 s of waiting for the close"
    peer.join()
    ws.close()


def test_the_watcher_stays_idle_when_the_stream_ends_under_a_long_send():
    """The same with no thread in recv(): the watcher thread, which reads while the
    application does not, must not spin on the ended stream until the send is over."""
    upload = 16 << 20

    def half_close_mid_upload(sock):
        assert _read_upload(sock, 1 << 20) == 1 << 20
        sock.shutdown(socket.SHUT_WR)
        _read_upload(sock, upload, slow_for=1.5)

    peer = ScriptedPeer(half_close_mid_upload)
    ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=5)
    cpu, start = time.process_time(), time.monotonic()
    ws.send(b"x" * upload, timeout=10)
    spent, took = time.process_time() - cpu, time.monotonic() - start
    assert took > 1.0, "the peer read slowly for 1.5 s"
    assert spent < 0.5, f"{spent:.2f} s of CPU burnt in a {took:.2f} s send"
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1006
    peer.join()
    ws.close()


def test_a_reset_after_the_peer_half_closed_ends_a_waiting_send_at_once():
    """The peer ends its stream mid-upload, then resets the connection. The send fails at
    once with 1006, and so does the recv() that was waiting for the close: nothing waits
    for a read that cannot bring anything more."""
    reset_at = []

    def half_close_then_reset(sock):
        assert _read_upload(sock, 1 << 20) == 1 << 20
        sock.sendall(Frame(Opcode.TEXT, b"bye").serialize())
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.3)  # The client's recv() is waiting for the close by now.
        reset_at.append(time.monotonic())
        reset(sock)

    peer = ScriptedPeer(half_close_then_reset)
    ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=5)
    received = []

    def read_to_the_end():
        received.append(ws.recv(timeout=5))
        received.append(_result_or_error(ws.recv, timeout=10))

    reader = threading.Thread(target=read_to_the_end)
    reader.start()
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.send(b"x" * (64 << 20), timeout=10)
    failed_after = time.monotonic() - reset_at[0]
    reader.join(10)
    assert info.value.code == 1006
    assert received[0] == "bye"
    assert isinstance(received[1], wsclient.ConnectionClosedError) and received[1].code == 1006
    assert failed_after < 0.25, f"send() failed {failed_after:.2f} s after the reset"
    peer.join()
    ws.close()


def test_a_reset_mid_send_ends_the_send_and_a_blocked_recv_at_once():
    """A thread is blocked in recv() while another sends; the peer says why (close 1008)
    and resets. Both calls end at once with 1008. (Which of the two threads sees the
    reset first is a race: five rounds.)"""
    for _ in range(5):
        reset_at = []

        def refuse_then_reset(sock):
            assert _read_upload(sock, 1 << 20) == 1 << 20
            sock.sendall(Frame(Opcode.CLOSE, b"\x03\xf0").serialize())  # 1008
            reset_at.append(time.monotonic())
            reset(sock)

        peer = ScriptedPeer(refuse_then_reset)
        ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=5)
        received = []
        reader = threading.Thread(target=lambda: received.append(_result_or_error(ws.recv, timeout=10)))
        reader.start()
        with pytest.raises(wsclient.ConnectionClosedError) as info:
            ws.send(b"x" * (64 << 20), timeout=10)
        failed_after = time.monotonic() - reset_at[0]
        reader.join(10)
        peer.join()
        ws.close()
        assert info.value.code == 1008
        assert isinstance(received[0], wsclient.ConnectionClosedError) and received[0].code == 1008
        assert failed_after < 0.25, f"send() failed {failed_after:.2f} s after the reset"


def test_a_reset_mid_send_loses_nothing_the_peer_sent_before_it():
    """The application reads slowly, so the watcher has filled ``max_queue`` and stopped
    reading; more messages and the peer's close frame (1009) wait in the kernel's buffer.
    The peer then resets under a large send. Every message is still returned, then 1009."""
    count, size = 40, 16 << 10

    def flood_then_reset(sock):
        for i in range(count):
            sock.sendall(Frame(Opcode.BINARY, bytes([i]) * size).serialize())
        sock.sendall(Frame(Opcode.TEXT, b"last").serialize() + Frame(Opcode.CLOSE, b"\x03\xf1").serialize())
        deadline = time.monotonic() + 5
        while _unsent(sock) and time.monotonic() < deadline:  # All in the client's buffer.
            time.sleep(0.005)
        assert _unsent(sock) == 0
        _read_upload(sock, 1 << 20)
        reset(sock)

    peer = ScriptedPeer(flood_then_reset)
    host, port = peer.listener.getsockname()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # Room for all of it.
    sock.connect((host, port))
    ws = wsclient.connect(peer.uri, sock=sock, ping_interval=None, close_timeout=3,
                          compression=None, max_queue=128 << 10)
    time.sleep(0.3)  # Not reading: the watcher fills the queue and pauses.
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.send(b"x" * (64 << 20), timeout=10)
    peer.join()
    assert info.value.code == 1009
    messages = [ws.recv(timeout=2) for _ in range(count + 1)]
    assert messages == [bytes([i]) * size for i in range(count)] + ["last"]
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=2)
    assert info.value.code == 1009
    ws.close()


def _unsent(sock):
    """Bytes the kernel has not yet delivered to the other end (Linux: TIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


def _result_or_error(call, *args, **kwargs):
    """What ``call`` returns, or the exception it raises (for calls made in a thread)."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        return exc


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
