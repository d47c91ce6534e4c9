"""The watcher's side of a connection: pings answered and messages queued while the
application does not read, keepalive deadlines, the queue bound, the end of the stream.

Against the `websockets` server and scripted raw-socket peers.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

import wsclient
from wsclient.frames import Opcode

from .reliability.rawpeer import RawServer, client_frames, read_upload, wait_until


def test_pings_are_answered_while_the_application_does_not_read(run_peer):
    # The peer pings every 0.2 s and gives up after 0.3 s without a pong; it sends 200
    # messages meanwhile. We don't read for 2 s: the connection must survive.
    def chatty(conn):
        for i in range(200):
            conn.send(f"message {i}")
        conn.recv()

    server = run_peer(chatty, ping_interval=0.2, ping_timeout=0.3)
    with wsclient.connect(server.uri, ping_interval=None) as ws:
        time.sleep(2)  # The behaviour under test: the application does not read.
        assert [ws.recv(timeout=5) for _ in range(200)] == [f"message {i}" for i in range(200)]
        ws.send("still alive")


def test_pings_are_answered_once_the_application_stops_reading(run_peer):
    # The watcher takes a socket that an application thread reads out of its selector;
    # that thread tells it when it lets go. If it did not, a handler that read once and
    # then stopped would leave pings unanswered for good: the peer closes with 1011.
    def peer(conn):
        assert conn.recv() == "detached"
        conn.send("wake")
        assert conn.recv() == "alive"
        conn.send("bye")
        conn.recv()

    server = run_peer(peer, ping_interval=0.2, ping_timeout=0.3)
    with wsclient.connect(server.uri, ping_interval=None) as ws:
        got = []
        reader = threading.Thread(target=lambda: got.append(ws.recv(timeout=10)))
        reader.start()
        wait_until(lambda: ws._duplex.background.report_release,
                   what="the watcher found the socket read by the application and left it")
        ws.send("detached")
        reader.join(10)
        assert got == ["wake"]
        time.sleep(2)  # The behaviour under test: the application no longer reads.
        ws.send("alive")
        assert ws.recv(timeout=5) == "bye"


def test_keepalive_closes_with_1011_when_no_pong_comes():
    def ignore_pings(sock):
        frames = client_frames(sock, 0, timeout=10, until_close=True)  # pings, then a close
        assert frames[0].opcode == Opcode.PING
        assert frames[-1].payload[:2] == (1011).to_bytes(2, "big")

    peer = RawServer(ignore_pings)
    ws = wsclient.connect(peer.uri, ping_interval=0.2, ping_timeout=0.3)
    start = time.monotonic()
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1011
    assert time.monotonic() - start < 2
    peer.join()


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
        wait_until(lambda: ws._duplex.inbox.paused, what="the watcher paused at max_queue")
        assert ws._duplex.inbox.size <= 256 * 1024 + size
        for i in range(count):
            assert ws.recv(timeout=10) == bytes([i]) * size
        ws.send("done")


def test_the_watcher_stays_idle_when_the_stream_ends_under_a_long_send():
    """The same with no thread in recv(): the watcher thread, which reads while the
    application does not, must not spin on the ended stream until the send is over."""
    upload = 16 << 20

    def half_close_mid_upload(sock):
        assert read_upload(sock, 1 << 20) == 1 << 20
        sock.shutdown(socket.SHUT_WR)
        read_upload(sock, upload, slow_for=1.5)

    peer = RawServer(half_close_mid_upload)
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
