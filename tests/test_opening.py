"""The server's Opener on loopback sockets: what open() hands over, and cut_short().

The opening's rules (TLS, refusals, process_request, subprotocols...) are tested through a
whole server in test_server.py; here is the contract between the Opener and the server.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, Tuple

import pytest

from wsclient.opening import Opener
from wsclient.options import ConnectionOptions
from wsclient.watcher import Watcher

from .reliability.rawpeer import handshake_head

CONNECTION = ConnectionOptions(max_size=1 << 20, max_queue=1 << 20, ping_interval=None, ping_timeout=None,
                               close_timeout=5.0)
OPTIONS = dict(
    ssl_context=None, subprotocols=None, select_subprotocol=None, origins=None, process_request=None,
    compression=None, handshake_timeout=10.0, trusted_proxies=None,
)


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket, object]]:
    """(client, accepted server socket, its address), on 127.0.0.1."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        accepted, address = listener.accept()
    with client:
        yield client, accepted, address
    accepted.close()


def test_open_hands_over_the_connection_before_its_101_is_sent(pair) -> None:
    client, accepted, address = pair
    watcher = Watcher("test-opening")
    client.sendall(handshake_head("/chat") + b"\x81")  # and the first byte of a frame
    ws = Opener(watcher, CONNECTION, **OPTIONS).open(accepted, address)
    assert ws is not None
    assert ws.request.path == "/chat" and ws.client_address == "127.0.0.1"
    client.setblocking(False)
    with pytest.raises(BlockingIOError):  # Nothing sent yet: the server registers it first.
        client.recv(100)
    ws.flush()
    client.settimeout(10)
    assert client.recv(12) == b"HTTP/1.1 101"
    ws.abort()


def test_open_answers_and_closes_a_refused_client(pair) -> None:
    client, accepted, address = pair
    client.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")  # no Upgrade
    assert Opener(Watcher("test-opening"), CONNECTION, **OPTIONS).open(accepted, address) is None
    assert client.recv(12) == b"HTTP/1.1 426"
    assert accepted.fileno() == -1


def test_cut_short_ends_an_opening_at_once(pair) -> None:
    client, accepted, address = pair
    opener = Opener(Watcher("test-opening"), CONNECTION, **OPTIONS)
    client.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")  # ...and nothing more.
    result = []
    thread = threading.Thread(target=lambda: result.append(opener.open(accepted, address)))
    thread.start()
    deadline = time.monotonic() + 5
    while not opener._opening and time.monotonic() < deadline:  # Until its opening began.
        time.sleep(0.01)
    start = time.monotonic()
    opener.cut_short()
    thread.join(5)
    assert result == [None]
    assert time.monotonic() - start < 2  # Not the 10 s handshake_timeout.
    assert client.recv(100) == b""
