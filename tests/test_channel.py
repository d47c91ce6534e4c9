"""The channel's contract, on real sockets: a socketpair, loopback TCP, and TLS over it.

Reads give bytes, ``b""`` at the end (or on a reset), None when nothing is there yet; a
write that meets its deadline keeps the rest in ``unsent``, which goes out first next time;
TLS bytes OpenSSL has already decrypted are read in full and count as readable; shutdown
wakes a thread that is waiting.
"""

from __future__ import annotations

import linecache
import select
import selectors
import socket
import ssl
import struct
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

from wsclient.channel import DEFAULT_READ_SIZE, Channel
from wsclient.gate import Gate

from .conftest import needs_parking
from .pki import Pki
from .reliability.rawpeer import calling, wait_until

DEADLINE = 10.0  # seconds any single step of a test may take, at most


def read_exactly(sock: socket.socket, size: int) -> bytes:
    """Read ``size`` bytes from a blocking peer socket within DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    chunks: List[bytes] = []
    got = 0
    while got < size:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(min(1 << 20, size - got))
        assert chunk, f"the stream ended after {got} of {size} bytes"
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_within(channel: Channel, size: int = DEFAULT_READ_SIZE) -> bytes:
    """Wait for the channel to be readable and read once (not None) within DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        assert channel.wait_readable(deadline)
        data = channel.recv_nowait(size)
        if data is not None:
            return data
    raise AssertionError("nothing to read within the deadline")


class Background(threading.Thread):
    """Runs ``work()`` in a thread; ``result()`` joins (within DEADLINE) and re-raises."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(name="test-background")
        self.work = work
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.work()
        except BaseException as exc:  # surfaced by result()
            self.error = exc

    def result(self) -> Any:
        self.join(DEADLINE)
        assert not self.is_alive(), "still running after the deadline"
        if self.error is not None:
            raise self.error
        return self.value


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    """(ours, peer): a connected unix socketpair; ours goes to a Channel, peer stays blocking."""
    ours, peer = socket.socketpair()
    with ours, peer:
        yield ours, peer


def tcp_pair(*, small_buffers: bool = False) -> Tuple[socket.socket, socket.socket]:
    """(client, server) over loopback TCP; small buffers make a big write stall sooner."""
    with socket.socket() as listener:
        if small_buffers:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.socket()
        if small_buffers:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        client.settimeout(DEADLINE)
        client.connect(listener.getsockname())
        listener.settimeout(DEADLINE)
        server, _ = listener.accept()
    server.settimeout(DEADLINE)
    return client, server


@pytest.fixture
def tls_pair(pki: Pki) -> Iterator[Callable[..., Tuple[ssl.SSLSocket, ssl.SSLSocket]]]:
    """Make (client, server) TLS sockets over loopback TCP, handshakes done, both blocking."""
    made: List[socket.socket] = []

    def make(*, small_buffers: bool = False) -> Tuple[ssl.SSLSocket, ssl.SSLSocket]:
        client_raw, server_raw = tcp_pair(small_buffers=small_buffers)
        made.extend((client_raw, server_raw))
        server: List[ssl.SSLSocket] = []
        accept = threading.Thread(
            target=lambda: server.append(pki.server_context().wrap_socket(server_raw, server_side=True)))
        accept.start()
        client = pki.client_context().wrap_socket(client_raw, server_hostname="localhost")
        accept.join(DEADLINE)
        assert server, "the TLS handshake did not finish"
        made.extend((client, server[0]))
        return client, server[0]

    yield make
    for sock in made:
        sock.close()


# -- reading ---------------------------------------------------------------------------


def test_nothing_yet_is_none_and_the_end_is_empty_bytes(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    assert channel.recv_nowait() is None
    peer.sendall(b"hello")
    assert recv_within(channel) == b"hello"
    assert channel.recv_nowait() is None
    peer.shutdown(socket.SHUT_WR)
    assert channel.wait_readable(time.monotonic() + DEADLINE)
    assert channel.recv_nowait() == b""
    assert channel.error is None  # a clean end is not an error


def test_recv_nowait_takes_at_most_size(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    peer.sendall(b"abcdef")
    assert recv_within(channel, 4) == b"abcd"
    assert channel.recv_nowait(4) == b"ef"


def test_a_reset_reads_as_the_end_and_keeps_the_error() -> None:
    client, server = tcp_pair()
    with client, server:
        channel = Channel(client)
        # SO_LINGER 0: close() sends a RST instead of a FIN.
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()
        assert channel.wait_readable(time.monotonic() + DEADLINE)
        assert channel.recv_nowait() == b""
        assert isinstance(channel.error, ConnectionResetError)


def test_tls_reads_whole_records_and_leaves_nothing_hidden(tls_pair) -> None:
    client, server = tls_pair()
    channel = Channel(client)
    record = bytes(range(256)) * 40  # 10,240 bytes: one TLS record
    server.sendall(record)
    # Asking for 100 bytes decrypts the whole record; the rest is taken from OpenSSL's
    # buffer too, so nothing is left where poll() cannot see it.
    assert recv_within(channel, 100) == record
    assert client.pending() == 0
    assert not channel.wait_readable(time.monotonic() + 0.05)


def test_tls_bytes_already_decrypted_count_as_readable(tls_pair) -> None:
    client, server = tls_pair()
    channel = Channel(client)
    server.sendall(b"x" * 1000)
    assert channel.wait_readable(time.monotonic() + DEADLINE)
    deadline = time.monotonic() + DEADLINE
    while True:  # Read past the channel, leaving decrypted bytes in OpenSSL's buffer.
        try:
            first = client.recv(10)
            break
        except ssl.SSLWantReadError:
            assert channel.wait_readable(deadline) and time.monotonic() < deadline
    assert client.pending() == 990
    # The kernel's buffer is empty now, so only the pending() check can say "readable".
    assert channel.wait_readable(time.monotonic() - 1.0)
    assert first + channel.recv_nowait() == b"x" * 1000


# -- waiting ---------------------------------------------------------------------------


def test_wait_readable_returns_false_at_the_deadline(pair) -> None:
    ours, _ = pair
    channel = Channel(ours)
    start = time.monotonic()
    assert not channel.wait_readable(start + 0.3)
    assert 0.25 <= time.monotonic() - start < DEADLINE


def test_a_deadline_already_past_still_reports_readiness(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    assert not channel.wait_readable(time.monotonic() - 1.0)
    peer.sendall(b"x")
    assert channel.wait_readable(time.monotonic() + DEADLINE)
    assert channel.wait_readable(time.monotonic() - 1.0)
    assert channel.wait_writable(time.monotonic() - 1.0)


def test_a_deadline_further_off_than_one_poll_can_wait_still_works(pair) -> None:
    # poll() takes at most 2**31 - 1 ms (about 24.8 days); a 30-day deadline used to raise
    # OverflowError from recv(timeout=) and send(timeout=).
    ours, peer = pair
    channel = Channel(ours)
    far = time.monotonic() + 30 * 86400
    assert channel.wait_writable(far)
    sender = threading.Timer(0.1, peer.sendall, (b"x",))
    sender.start()
    try:
        assert channel.wait_readable(far)
    finally:
        sender.join(DEADLINE)
    assert channel.recv_nowait() == b"x"


def test_shutdown_wakes_a_waiting_reader(pair) -> None:
    ours, _ = pair
    channel = Channel(ours)
    woke: List[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(channel.wait_readable(time.monotonic() + 60)))
    waiter.start()
    start = time.monotonic()
    channel.shutdown()
    channel.shutdown()  # idempotent
    waiter.join(DEADLINE)
    assert woke == [True]
    assert time.monotonic() - start < DEADLINE
    assert channel.recv_nowait() == b""


needs_dontwait = pytest.mark.skipif(
    not hasattr(socket, "MSG_DONTWAIT"), reason="no MSG_DONTWAIT here: reads always poll first"
)


@needs_dontwait
def test_a_reader_without_deadline_waits_in_recv_and_shutdown_wakes_it(pair) -> None:
    ours, _ = pair
    channel = Channel(ours)
    assert ours.getblocking()  # plain sockets stay blocking; other calls pass MSG_DONTWAIT
    reader = Background(lambda: channel.recv(None))
    wait_until(lambda: blocked_in_socket_recv(reader), DEADLINE, "the reader blocks in the socket's recv()")
    assert reader.is_alive()
    channel.shutdown()
    assert reader.result() == b""


def blocked_in_socket_recv(thread: threading.Thread) -> bool:
    """True if ``thread``'s innermost Python frame is ``Channel.recv`` (or its parked
    reading, when the gate cannot park) on a line that calls the socket's ``recv()``: it
    waits in that system call, not in a poll first."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None or frame.f_code.co_name not in ("recv", "_recv_parked"):
        return False
    return "self._sock.recv(" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)


@needs_dontwait
def test_a_waiting_reader_never_holds_up_a_writer(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    reader = Background(lambda: channel.recv(None))
    pieces = [bytes(1_000_000) for _ in range(4)]  # more than the socket buffers hold
    # The peer is not reading: the write's deadline must hold although the socket blocks.
    writer = Background(lambda: channel.write(pieces, time.monotonic() + 0.3))
    writer.join(DEADLINE)
    if writer.is_alive():
        channel.shutdown()  # unblock it, so the failure below is a failure and not a hang
    with pytest.raises(TimeoutError):
        writer.result()
    assert channel.recv_nowait() is None
    peer.sendall(b"hello")
    assert reader.result() == b"hello"


@needs_dontwait
def test_a_blocking_read_asks_for_little_but_takes_same_sized_messages_in_one_read(pair) -> None:
    """CPython allocates a blocking recv()'s whole buffer before it waits, so an idle
    reader asks for 256 bytes; after a larger read, for that size rounded up to a power
    of two; after a read that came back full, for much more."""
    ours, peer = pair
    channel = Channel(ours)
    peer.sendall(bytes(600))
    assert len(channel.recv(None)) == 256  # idle: little asked
    assert len(channel.recv(None)) == 344  # that read came back full: the rest in one
    for _ in range(3):
        peer.sendall(bytes(500))
        assert len(channel.recv(None)) == 500  # 512 asked each time
    peer.sendall(bytes(40))
    assert len(channel.recv(None)) == 40
    peer.sendall(bytes(600))
    assert len(channel.recv(None)) == 256  # small reads again: little asked


@needs_parking
def test_past_the_gates_direct_readers_a_reader_parks_and_reads_each_message(pair) -> None:
    ours, peer = pair
    gate = Gate(direct=0)
    try:
        channel = Channel(ours, gate=gate)
        for message in (b"first", bytes(600), b"third"):
            reader = Background(lambda: channel.recv(None))
            wait_until(lambda: gate.parked == 1, DEADLINE, "the reader parks in the gate")
            assert not blocked_in_socket_recv(reader)
            peer.sendall(message)
            assert reader.result() == message[:256]  # An idle read asks for 256 bytes.
            if len(message) > 256:
                assert channel.recv(None) == message[256:]  # Came back full: more asked.
        reader = Background(lambda: channel.recv(None))
        wait_until(lambda: gate.parked == 1, DEADLINE, "the reader parks in the gate")
        channel.shutdown()
        assert reader.result() == b""
        assert gate.parked == 0 and gate.waiting == 0
    finally:
        gate.close()


@needs_parking
def test_a_gate_with_room_leaves_the_reader_in_recv_and_a_closed_gate_too(pair) -> None:
    ours, peer = pair
    gate = Gate(direct=1)
    channel = Channel(ours, gate=gate)
    reader = Background(lambda: channel.recv(None))
    wait_until(lambda: blocked_in_socket_recv(reader), DEADLINE, "the reader blocks in recv()")
    assert not gate.enter()  # The reader holds the one direct place...
    peer.sendall(b"hello")
    assert reader.result() == b"hello"
    assert gate.enter()  # ...and gave it back.
    reader = Background(lambda: channel.recv(None))
    wait_until(lambda: gate.parked == 1, DEADLINE, "the reader parks in the gate")
    gate.close()  # A server closing: its parked readers wait in recv() themselves.
    wait_until(lambda: blocked_in_socket_recv(reader), DEADLINE, "the reader blocks in recv()")
    peer.sendall(b"after")
    assert reader.result() == b"after"


@needs_dontwait
def test_where_nothing_can_park_a_reader_past_the_gates_limit_waits_in_recv(pair, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "DefaultSelector", selectors.SelectSelector)  # As on Windows.
    ours, peer = pair
    gate = Gate(direct=0)
    channel = Channel(ours, gate=gate)
    reader = Background(lambda: channel.recv(None))
    wait_until(lambda: blocked_in_socket_recv(reader), DEADLINE, "the reader blocks in recv()")
    peer.sendall(b"hello")
    assert reader.result() == b"hello"
    assert gate.thread is None and gate.parked == 0
    peer.close()
    assert channel.recv(None) == b""


def test_recv_without_deadline_reads_a_large_stream_in_full(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    payload = bytes(range(256)) * 8192  # 2 MiB
    writer = Background(lambda: peer.sendall(payload))
    got = bytearray()
    while len(got) < len(payload):
        data = channel.recv(None)
        assert data, "the stream ended early"
        got += data
    writer.result()
    assert got == payload
    peer.sendall(b"next")
    assert channel.recv(time.monotonic() + DEADLINE) == b"next"
    assert channel.recv(time.monotonic() + 0.05) is None  # the deadline passed, nothing read


# -- writing ---------------------------------------------------------------------------


def test_buffers_go_out_in_order_and_the_list_is_left_alone(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    buffers = [b"one ", bytearray(b"two "), memoryview(b"three")]
    channel.write(buffers, time.monotonic() + DEADLINE)
    assert read_exactly(peer, 13) == b"one two three"
    assert [bytes(b) for b in buffers] == [b"one ", b"two ", b"three"]
    assert channel.unsent == b""


def test_more_buffers_than_one_sendmsg_takes_go_out_in_order(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    buffers = [struct.pack("!I", n) for n in range(5000)]  # IOV_MAX is 1024 on Linux
    reader = Background(lambda: read_exactly(peer, 4 * 5000))
    channel.write(buffers, time.monotonic() + DEADLINE)
    assert reader.result() == b"".join(buffers)


def test_the_initial_unsent_bytes_go_out_first(pair) -> None:
    ours, peer = pair
    channel = Channel(ours, unsent=b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    channel.write([b"frame"], time.monotonic() + DEADLINE)
    assert read_exactly(peer, 41) == b"HTTP/1.1 101 Switching Protocols\r\n\r\nframe"


def test_a_stalled_write_keeps_the_rest_and_sends_it_first(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    pieces = [bytes([n]) * 1_000_000 for n in range(4)]  # more than the socket buffers hold
    payload = b"".join(pieces)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        channel.write(pieces, start + 0.3)
    assert 0.25 <= time.monotonic() - start < DEADLINE
    # What the socket took is not kept again: the leftover is exactly the tail.
    assert 0 < len(channel.unsent) < len(payload)
    assert payload.endswith(channel.unsent)
    reader = Background(lambda: read_exactly(peer, len(payload) + 4))
    channel.write([b"next"], time.monotonic() + DEADLINE)
    assert reader.result() == payload + b"next"
    assert channel.unsent == b""


def test_a_stalled_tls_write_keeps_the_rest_and_sends_it_first(tls_pair) -> None:
    client, server = tls_pair(small_buffers=True)
    channel = Channel(client)
    payload = bytes(range(256)) * 32768  # 8 MiB
    with pytest.raises(TimeoutError):
        channel.write([payload[:100], payload[100:]], time.monotonic() + 0.3)
    assert channel.unsent and payload.endswith(channel.unsent)
    reader = Background(lambda: read_exactly(server, len(payload) + 4))
    channel.write([b"next"], time.monotonic() + DEADLINE)
    assert reader.result() == payload + b"next"


def test_wait_writable_returns_false_while_the_peer_does_not_read(pair) -> None:
    ours, _ = pair
    channel = Channel(ours)
    assert channel.wait_writable(time.monotonic() + DEADLINE)
    with pytest.raises(TimeoutError):
        channel.write([b"x" * 4_000_000], time.monotonic() + 0.2)
    start = time.monotonic()
    assert not channel.wait_writable(start + 0.3)
    assert 0.25 <= time.monotonic() - start < DEADLINE


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_shutdown_ends_a_stalled_write_with_a_connection_error(kind, pair) -> None:
    """Also where select() alone waits (it does not see a unix socket shut down while it
    waits to write; the channel looks every readiness.SHUTDOWN_SLICE)."""
    if kind == "unix":
        ours, _ = pair
    else:
        ours, peer = tcp_pair(small_buffers=True)
        ours.settimeout(None)
    channel = Channel(ours)
    writer = Background(lambda: channel.write([b"x" * 8_000_000], time.monotonic() + 60))
    # Shut down only once the socket is full and the writer waits for it to drain.
    wait_until(lambda: calling(writer, "wait_writable") and not select.select([], [ours], [], 0)[1],
               DEADLINE, "the writer waits for the full socket")
    channel.shutdown()
    with pytest.raises(ConnectionError):  # not a wait until the 60 s deadline
        writer.result()
    if kind == "tcp":
        ours.close()
        peer.close()


def test_tls_reads_and_writes_from_two_threads_at_once(tls_pair) -> None:
    client, server = tls_pair()
    channel = Channel(client)
    payload = bytes(range(256)) * 4096  # 1 MiB each way

    def echo() -> None:  # the peer sends back what it reads
        got = 0
        while got < len(payload):
            chunk = server.recv(65536)
            assert chunk, "the channel's side ended the stream"
            server.sendall(chunk)
            got += len(chunk)

    def write() -> None:
        for i in range(0, len(payload), 16384):
            channel.write([payload[i:i + 16384]], time.monotonic() + DEADLINE)

    peer, writer = Background(echo), Background(write)
    received = bytearray()
    deadline = time.monotonic() + DEADLINE * 3
    while len(received) < len(payload) and time.monotonic() < deadline:
        if channel.wait_readable(deadline):
            data = channel.recv_nowait()
            assert data != b"", channel.error
            received += data or b""
    writer.result()
    peer.result()
    assert bytes(received) == payload


# -- closing ---------------------------------------------------------------------------


def test_close_releases_the_descriptor_once(pair) -> None:
    ours, _ = pair
    fd = ours.fileno()
    channel = Channel(ours)
    assert channel.fileno() == fd and not channel.closed
    channel.close()
    channel.close()  # idempotent
    assert channel.closed and channel.fileno() == -1 and ours.fileno() == -1
    # Nothing waits on a closed socket; a read says "the end" and keeps why.
    assert channel.wait_readable(None) and channel.wait_writable(None)
    assert channel.recv_nowait() == b""
    assert isinstance(channel.error, OSError)
    with pytest.raises(OSError):
        channel.write([b"x"], time.monotonic() + DEADLINE)


# -- writing a message that may be skipped (broadcast) ----------------------------------


def test_write_nowait_writes_all_when_the_socket_takes_it(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    assert channel.write_nowait([b"head", b"body"]) is True
    assert read_exactly(peer, 8) == b"headbody"
    assert channel.unsent == b""


def test_write_nowait_keeps_nothing_when_the_socket_takes_nothing(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    with pytest.raises(TimeoutError):  # Fill the socket: the peer does not read.
        channel.write([b"x" * 4_000_000], time.monotonic())
    filled = len(channel.unsent)
    channel.unsent = b""  # What a caller does once it gave up on that message.
    assert channel.write_nowait([b"skipped"]) is False
    assert channel.unsent == b""
    # The peer then reads everything: the skipped message never reaches it.
    peer.settimeout(DEADLINE)
    ours.shutdown(socket.SHUT_WR)
    received = bytearray()
    while chunk := peer.recv(1 << 20):
        received += chunk
    assert len(received) == 4_000_000 - filled
    assert not received.endswith(b"skipped")


def test_write_nowait_keeps_the_rest_of_a_message_taken_in_part(pair) -> None:
    ours, peer = pair
    channel = Channel(ours)
    payload = bytes(range(256)) * 16384  # 4 MiB: more than the socket takes at once
    with pytest.raises(TimeoutError):
        channel.write_nowait([payload[:10], payload[10:]])
    assert channel.unsent and payload.endswith(channel.unsent)
    assert len(channel.unsent) < len(payload)
    reader = Background(lambda: read_exactly(peer, len(payload)))
    channel.write([], time.monotonic() + DEADLINE)
    assert reader.result() == payload
