"""One socket shared by threads: concurrent senders, control frames between fragments,
sends that time out or stall, closes behind a stalled send, resets in the middle of a send.

Against our own server, the `websockets` server, and scripted raw-socket peers.
"""

from __future__ import annotations

import random
import socket
import threading
import time
import zlib

import pytest

import wsclient
from wsclient.frames import Frame, Opcode
from wsclient.protocol import COMPRESSED_SLICE

from .reliability.rawpeer import RawServer, client_frames, read_frames as read_raw_frames, read_upload, reset, unsent, wait_until, calling


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
        frames.extend(client_frames(sock, 4, timeout=10))

    peer = RawServer(collect)
    ws = wsclient.connect(peer.uri, ping_interval=None)

    def slow_fragments():
        yield "first "
        first_sent.set()  # The sender asks for the next piece once the first is written.
        pinged.wait(5)
        yield "second"

    first_sent, pinged = threading.Event(), threading.Event()
    sender = threading.Thread(target=ws.send, args=(slow_fragments(),))
    sender.start()
    assert first_sent.wait(5)
    pinger = threading.Thread(target=lambda: (ws.ping(b"mid"), pinged.set()))
    pinger.start()
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
    """Make the write lock go to another thread once the frame ``ws._duplex.proto.<method>``
    builds is written; returns the lock (set ``lock.free`` to give it back)."""
    ws._duplex.outbox.write_lock = lock = _TakenAfterNextRelease()
    build = getattr(ws._duplex.proto, method)

    def armed(*args, **kwargs):
        lock.armed = True
        return build(*args, **kwargs)

    setattr(ws._duplex.proto, method, armed)
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


def _peer_that_never_reads():
    """(peer, stop): a peer with a 4 KiB receive buffer that reads nothing until ``stop``."""
    stop = threading.Event()

    def never_read(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stop.wait(10)

    return RawServer(never_read), stop


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


def test_a_send_that_times_out_before_any_byte_left_keeps_the_connection():
    # A peer that stops reading fills the socket's buffers. A send() whose timeout expires
    # before any byte of its message could go sent nothing: the connection stays open, and
    # once the peer reads again it gets every message whose send() returned, then the next.
    resume = threading.Event()
    received = []

    def slow_reader(sock):
        resume.wait(20)
        received.extend(client_frames(sock, until_close=True, timeout=20))

    peer = RawServer(slow_reader)
    ws = wsclient.connect(peer.uri, ping_interval=None, compression=None)
    chunk, sent = b"x" * 16384, 0
    with pytest.raises(TimeoutError):
        for _ in range(10_000):
            ws.send(chunk, timeout=0.2)
            sent += 1
    assert not ws.closed
    resume.set()
    ws.send("after", timeout=10)
    ws.close()
    peer.join()
    assert [f.payload for f in received if f.opcode != Opcode.CLOSE] == [chunk] * sent + [b"after"]


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
        # The peer's 4 KiB buffer is full: the sender is stuck mid-write.
        wait_until(lambda: ws._duplex.channel.stalled, what="the sender waits for the peer to read")
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

    peer = RawServer(refuse)
    ws = wsclient.connect(peer.uri, ping_interval=None, close_timeout=1)
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.send(b"x" * (64 << 20), timeout=10)
    assert info.value.code == 1009
    assert ws.recv(timeout=1) == "too big"
    with pytest.raises(wsclient.ConnectionClosedError):
        ws.recv(timeout=1)
    peer.join()
    ws.close()


def test_recv_waits_quietly_while_another_thread_finishes_a_send_after_the_peer_half_closed():
    """Mid-way through a large upload that another thread is sending, the peer sends a
    message and ends its stream (FIN, no close frame) but goes on reading the upload,
    slowly. recv() returns the message, then waits for the send to finish without spinning
    on the ended stream, then reports the abnormal close."""
    upload = 16 << 20
    slow_until = []

    def half_close_mid_upload(sock):
        assert read_upload(sock, 1 << 20) == 1 << 20
        sock.sendall(Frame(Opcode.TEXT, b"before the end").serialize())
        sock.shutdown(socket.SHUT_WR)
        slow_until.append(time.monotonic() + 1.5)
        read_upload(sock, upload, slow_for=1.5)

    peer = RawServer(half_close_mid_upload)
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


def test_a_reset_after_the_peer_half_closed_ends_a_waiting_send_at_once():
    """The peer ends its stream mid-upload, then resets the connection. The send fails at
    once with 1006, and so does the recv() that was waiting for the close: nothing waits
    for a read that cannot bring anything more."""
    reset_at = []

    def half_close_then_reset(sock):
        assert read_upload(sock, 1 << 20) == 1 << 20
        sock.sendall(Frame(Opcode.TEXT, b"bye").serialize())
        sock.shutdown(socket.SHUT_WR)
        # The client's recv() is waiting for the close.
        wait_until(lambda: received and calling(reader, "recv"), what="the second recv() waits")
        reset_at.append(time.monotonic())
        reset(sock)

    peer = RawServer(half_close_then_reset)
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
            assert read_upload(sock, 1 << 20) == 1 << 20
            sock.sendall(Frame(Opcode.CLOSE, b"\x03\xf0").serialize())  # 1008
            reset_at.append(time.monotonic())
            reset(sock)

        peer = RawServer(refuse_then_reset)
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
        wait_until(lambda: unsent(sock) == 0, 5, "all in the client's buffer")
        read_upload(sock, 1 << 20)
        reset(sock)

    peer = RawServer(flood_then_reset)
    host, port = peer.listener.getsockname()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # Room for all of it.
    sock.connect((host, port))
    ws = wsclient.connect(peer.uri, sock=sock, ping_interval=None, close_timeout=3,
                          compression=None, max_queue=128 << 10)
    wait_until(lambda: ws._duplex.inbox.paused, what="not reading: the watcher fills the queue and pauses")
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


def _result_or_error(call, *args, **kwargs):
    """What ``call`` returns, or the exception it raises (for calls made in a thread)."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        return exc


def _bad_data_after(text: bytes) -> bytes:
    """A text message, then a frame with RSV2 set (1002), a ping, in one write."""
    bad = bytearray(Frame(Opcode.TEXT, b"bad").serialize())
    bad[0] |= 0x20
    return Frame(Opcode.TEXT, text).serialize() + bytes(bad) + Frame(Opcode.PING, b"p").serialize()


def test_bad_data_fails_the_connection_only_after_the_message_before_it_was_answered():
    got = []

    def peer(sock):
        sock.sendall(_bad_data_after(b"question"))
        got.extend(client_frames(sock, until_close=True))

    raw = RawServer(peer)
    ws = wsclient.connect(raw.uri, ping_interval=None, compression=None)
    assert ws.recv(timeout=5) == "question"
    ws.send("answer")  # Still allowed: the application has not asked past the message.
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    raw.join()
    assert info.value.code == 1002 and isinstance(info.value.__cause__, wsclient.ProtocolError)
    # The answer left before the close frame, and the ping behind the bad frame was never
    # answered (nothing after bad data is parsed).
    assert [f.opcode for f in got] == [Opcode.TEXT, Opcode.CLOSE]
    assert got[0].payload == b"answer" and got[1].payload[:2] == (1002).to_bytes(2, "big")


@pytest.mark.parametrize("with_the_101", [False, True], ids=["after-the-101", "with-the-101"])
def test_bad_data_fails_the_connection_after_the_grace_when_nobody_reads(with_the_101):
    from wsclient.duplex import FAILURE_GRACE
    from wsclient.handshake import accept_response

    closed_at = []

    def peer(sock):
        if not with_the_101:
            sock.sendall(_bad_data_after(b"unread"))
        frames = client_frames(sock, until_close=True)
        closed_at.append(time.monotonic())
        assert frames[-1].payload[:2] == (1002).to_bytes(2, "big")

    # With the 101: the bytes are read with the response and processed as the connection
    # is made (before it used to be watched, which lost the timer).
    response = (lambda request: accept_response(request).serialize() + _bad_data_after(b"unread")) if with_the_101 else None
    raw = RawServer(peer, response=response)
    ws = wsclient.connect(raw.uri, ping_interval=None, compression=None)
    sent_at = time.monotonic()
    raw.join()  # The application never calls recv(): the watcher fails it after the grace.
    assert FAILURE_GRACE - 0.1 <= closed_at[0] - sent_at <= FAILURE_GRACE + 3
    assert ws.recv(timeout=5) == "unread"  # Nothing received before it is lost.
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1002
