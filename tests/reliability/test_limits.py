"""Limits: every bound on what a peer can make us hold, its default, and what happens past it.

The defaults are read from the code and compared with the README's table (so neither can
change alone); then each limit is exercised end to end at its default value: heads of the
opening handshake in both directions, ``max_size`` both ways, the decompressed size (a
256 MiB deflate bomb), ``max_queue``, and the server's ``handshake_timeout`` against
slowloris clients (plain and TLS) and ``max_connections``. (``tests/test_http11.py`` tests
the head parsers' limits in memory with small values; ``tests/test_server.py`` the 503 at
``max_connections=2``.)
"""

from __future__ import annotations

import inspect
import socket
import threading
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any, Callable, List

import pytest

import wsclient
from wsclient import http11
from wsclient.connection import DEFAULT_MAX_QUEUE
from wsclient.frames import Frame, Opcode
from wsclient.handshake import accept_response
from wsclient.protocol import DEFAULT_MAX_SIZE
from wsclient.server import DEFAULT_MAX_CONNECTIONS, DEFAULT_SHUTDOWN_TIMEOUT, WebSocketServer

from .rawpeer import MASK, RawServer, handshake_head, raw_client, read_frames, status_of, tls_client_hello

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "docs" / "reliability.rst"  # the limits table

MiB = 2**20


def _default(function: Callable[..., Any], name: str) -> Any:
    return inspect.signature(function).parameters[name].default


#: (README name, value in the code, how the README writes it).
LIMITS = [
    ("request or status line", http11.DEFAULT_MAX_LINE, "8,192 bytes"),
    ("header fields", http11.DEFAULT_MAX_HEADERS, "128"),
    ("head size", http11.DEFAULT_MAX_HEAD, "64 KiB"),
    ("response body kept", http11.DEFAULT_MAX_BODY, "1 MiB"),
    ("``max_size``", _default(wsclient.connect, "max_size"), "16 MiB"),
    ("``max_size``", _default(WebSocketServer, "max_size"), "16 MiB"),
    ("``max_queue``", _default(wsclient.connect, "max_queue"), "16 MiB"),
    ("``max_queue``", _default(WebSocketServer, "max_queue"), "16 MiB"),
    ("``handshake_timeout``", _default(WebSocketServer, "handshake_timeout"), "10 s"),
    ("``max_connections``", _default(WebSocketServer, "max_connections"), "2,048"),
    ("``timeout``", _default(wsclient.connect, "timeout"), "10 s"),
    ("``close_timeout``", _default(wsclient.connect, "close_timeout"), "10 s"),
    ("``shutdown(timeout)``", DEFAULT_SHUTDOWN_TIMEOUT, "10 s"),
    ("``max_redirects``", _default(wsclient.connect, "max_redirects"), "10"),
    ("``ping_interval``", _default(wsclient.connect, "ping_interval"), "20 s"),
    ("``ping_timeout``", _default(WebSocketServer, "ping_timeout"), "20 s"),
]
_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "s": 1}


def _value(text: str) -> float:
    number, _, unit = text.partition(" ")
    return float(number.replace(",", "")) * _UNITS.get(unit, 1)


@pytest.mark.parametrize("name, value, written", LIMITS, ids=[f"{n}-{w}" for n, _, w in LIMITS])
def test_defaults_match_the_readme(name: str, value: Any, written: str) -> None:
    assert value == _value(written), (name, value, written)
    section = README.read_text(encoding="utf-8").partition("Reliability and security\n")[2]
    rows = [line for line in section.splitlines() if line.startswith(name + " ")]
    assert rows and any(f" {written} " in row + " " for row in rows), (name, written, rows)


def test_defaults_are_the_constants_they_name() -> None:
    assert _default(wsclient.connect, "max_size") == DEFAULT_MAX_SIZE == 2**24
    assert _default(WebSocketServer, "max_queue") == DEFAULT_MAX_QUEUE == 2**24
    assert _default(WebSocketServer, "max_connections") == DEFAULT_MAX_CONNECTIONS


# -- heads of the opening handshake --------------------------------------------------------


def test_server_head_limits_at_their_defaults(run_server) -> None:
    server = run_server(compression=None)
    port = server.port
    # 5 handshake fields + 123 = 128 fields: accepted; one more: 431.
    assert status_of(port, handshake_head(extra=123)) == 101
    assert status_of(port, handshake_head(extra=124)) == 431
    # A request line of exactly 8,192 bytes is accepted; one byte more is 414.
    path = "/" + "a" * (8192 - len("GET / HTTP/1.1"))
    assert len(f"GET {path} HTTP/1.1") == 8192
    assert status_of(port, handshake_head(path)) == 101
    assert status_of(port, handshake_head(path + "a")) == 414
    # A header line over 8,192 bytes; a head over 64 KiB made of legal lines: 431.
    assert status_of(port, handshake_head(extra=1, size=8192)) == 431
    assert status_of(port, handshake_head(extra=100, size=700)) == 431
    # Every connection is over (its thread may stay idle for the next one a while).
    deadline = time.monotonic() + 10
    while server.server._active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.server._active


def _answer(extra: int, size: int = 10) -> Callable[[Any], bytes]:
    def respond(request: Any) -> bytes:
        response = accept_response(request, server=None)
        for i in range(extra):
            response.headers.add(f"X-{i}", "v" * size)
        return response.serialize()
    return respond


@pytest.mark.parametrize("extra, size, ok", [(125, 10, True), (126, 10, False), (1, 8193, False),
                                             (100, 700, False)],
                         ids=["128-fields", "129-fields", "long-line", "70-KB-head"])
def test_client_head_limits_at_their_defaults(extra: int, size: int, ok: bool) -> None:
    server = RawServer(lambda sock: sock.recv(1024), response=_answer(extra, size))
    if ok:
        wsclient.connect(server.uri, proxy=None, ping_interval=None, close_timeout=1).close()
    else:
        with pytest.raises(wsclient.InvalidHTTP) as info:
            wsclient.connect(server.uri, proxy=None)
        assert info.value.status == 431
    server.join()


# -- max_size, decompressed size, max_queue ---------------------------------------------------


def test_max_size_default_server_to_client(run_server) -> None:
    def handler(ws: wsclient.WebSocket) -> None:
        ws.send(b"s" * 2**24)  # exactly max_size: delivered
        ws.send(b"s" * (2**24 + 1))
        ws.recv(timeout=30)

    server = run_server(handler, compression=None)
    with wsclient.connect(server.uri, proxy=None, compression=None) as ws:
        assert len(ws.recv(timeout=30)) == 2**24
        with pytest.raises(wsclient.ConnectionClosedError) as info:
            ws.recv(timeout=30)
        assert info.value.code == 1009
        assert isinstance(info.value.__cause__, wsclient.PayloadTooBig)


def test_max_size_default_client_to_server(run_server) -> None:
    outcome: dict = {}
    done = threading.Event()

    def handler(ws: wsclient.WebSocket) -> None:
        try:
            outcome["got"] = len(ws.recv(timeout=30))
            ws.recv(timeout=30)
        except wsclient.ConnectionClosedError as exc:
            outcome["code"] = exc.code
        finally:
            done.set()

    server = run_server(handler, compression=None)
    with wsclient.connect(server.uri, proxy=None, compression=None) as ws:
        ws.send(b"c" * 2**24)
        with pytest.raises(wsclient.ConnectionClosedError) as info:
            # The server refuses at the frame header: the send may fail half-way through.
            ws.send(b"c" * (2**24 + 1))
            ws.recv(timeout=30)
        assert info.value.code == 1009
    assert done.wait(10)
    assert outcome == {"got": 2**24, "code": 1009}


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """256 MiB of zeros deflated (RFC 7692 framing: the final 00 00 ff ff removed): 255 KiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MiB)
    data = b"".join(compressor.compress(zeros) for _ in range(256)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff") and len(data) < 300_000
    return data[:-4]


def test_deflate_bomb_at_the_server_ends_with_1009_in_bounded_memory(run_server, bomb: bytes) -> None:
    server = run_server(lambda ws: ws.recv(timeout=30))
    sock, response, _ = raw_client(server.uri, extensions="permessage-deflate")
    assert response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
    tracemalloc.start()
    try:
        started = time.monotonic()
        sock.sendall(Frame(Opcode.BINARY, bomb, rsv1=True).serialize(mask_key=MASK))
        frames = read_frames(sock, expect_masked=False, until=lambda f: bool(f), timeout=30)
        took = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        sock.close()
    assert frames[0].opcode == Opcode.CLOSE and frames[0].payload[:2] == (1009).to_bytes(2, "big")
    # The message may grow to max_size (16 MiB) and is joined once: never the 256 MiB.
    assert peak < 2 * 2**24 + 4 * len(bomb) + 8 * MiB, peak
    print(f"\n256 MiB bomb ({len(bomb)} bytes) at the server: 1009 after {took * 1000:.0f} ms, "
          f"peak traced memory {peak / MiB:.1f} MiB")


def test_deflate_bomb_at_the_client_ends_with_1009(bomb: bytes) -> None:
    def send_bomb(sock: socket.socket) -> None:
        sock.sendall(Frame(Opcode.BINARY, bomb, rsv1=True).serialize())
        frames = read_frames(sock, expect_masked=True, until=lambda f: bool(f))
        assert frames[0].payload[:2] == (1009).to_bytes(2, "big")

    server = RawServer(send_bomb, extensions="permessage-deflate")
    ws = wsclient.connect(server.uri, proxy=None)
    with pytest.raises(wsclient.ConnectionClosedError) as info:
        ws.recv(timeout=30)
    assert info.value.code == 1009
    assert isinstance(info.value.__cause__, wsclient.PayloadTooBig)
    server.join()


def test_max_queue_default_stops_reading_and_loses_nothing() -> None:
    count, size = 48, MiB
    sent: List[int] = []
    release = threading.Event()

    def flood(sock: socket.socket) -> None:
        for i in range(count):
            sock.sendall(Frame(Opcode.BINARY, bytes([i]) * size).serialize())
            sent.append(i)
        release.wait(30)

    server = RawServer(flood)
    ws = wsclient.connect(server.uri, proxy=None, compression=None, ping_interval=None)
    # The application does not read: wait until the flood stalls.
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() - since < 1.0 and time.monotonic() < deadline:
        time.sleep(0.05)
        if len(sent) != last:
            last, since = len(sent), time.monotonic()
    queued = ws._duplex.inbox.size
    assert len(sent) < count, "the peer could write everything: no backpressure"
    assert 2**24 - MiB <= queued <= 2**24 + MiB, queued  # 16 MiB, give or take one read
    print(f"\nmax_queue default: {queued / MiB:.1f} MiB queued, the peer stalled after "
          f"{len(sent)} of {count} MiB (the rest in TCP buffers or unsent)")
    for i in range(count):
        assert ws.recv(timeout=30) == bytes([i]) * size
    release.set()
    server.join()
    ws.close()


# -- handshake_timeout, slowloris, max_connections --------------------------------------------


def _slowloris(port: int, data: bytes, *, every: float, results: List[float]) -> None:
    """Send ``data`` one byte every ``every`` seconds; record when the server hung up."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(every)
                if not sock.recv(4096):
                    break  # the server hung up
            except socket.timeout:
                continue  # nothing yet: the next byte
            except OSError:
                break  # reset: hung up too
    results.append(time.monotonic() - started)


def test_slowloris_is_dropped_at_the_handshake_timeout(run_server, pki) -> None:
    timeout, every = 3.0, 1.0
    plain = run_server(handshake_timeout=timeout)
    secure = run_server(handshake_timeout=timeout, ssl_context=pki.server_context())
    results: dict = {"plain": [], "tls": []}
    threads = [
        threading.Thread(target=_slowloris, args=(plain.port, b"GET / HTTP/1.1\r\nHost: x\r\n" * 10),
                         kwargs=dict(every=every, results=results["plain"])),
        threading.Thread(target=_slowloris, args=(secure.port, tls_client_hello()),
                         kwargs=dict(every=every, results=results["tls"])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for kind in ("plain", "tls"):
        assert results[kind] and timeout - 0.5 <= results[kind][0] <= timeout + 2.0, (kind, results)
    for server in (plain, secure):
        deadline = time.monotonic() + 10
        while server.server._active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not server.server._active
    print(f"\nslowloris (a byte every {every} s): dropped after {results['plain'][0]:.2f} s (HTTP) "
          f"and {results['tls'][0]:.2f} s (TLS) with handshake_timeout={timeout}")


def test_slowloris_holds_max_connections_only_until_the_handshake_timeout(run_server) -> None:
    server = run_server(handshake_timeout=2.0, max_connections=4)
    stalled = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(4)]
    for sock in stalled:
        sock.sendall(b"G")  # ...and nothing more
    deadline = time.monotonic() + 5
    while len(server.server._threads) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(wsclient.InvalidStatus) as info:
        wsclient.connect(server.uri, proxy=None)
    assert info.value.response.status == 503  # every slot is taken by a stalled handshake
    started = time.monotonic()
    while True:  # the slots come back once the stalled handshakes time out
        try:
            wsclient.connect(server.uri, proxy=None).close()
            break
        except wsclient.InvalidStatus:
            assert time.monotonic() - started < 2.0 + 3.0
            time.sleep(0.1)
    for sock in stalled:
        assert sock.recv(4096) == b""
        sock.close()
