"""wsclient against the Python peers: ``websockets`` (asyncio and sync) and ``websocket-client``.

Their clients against our server, and our client against ``websockets``' asyncio and sync
servers (``websocket-client`` has no server), with permessage-deflate on and off where the
peer speaks it; messages up to 1 MiB and a 4001 close seen by the other side.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

import wsclient

from . import peers
from .peers import pattern

MiB = 1 << 20

#: Messages each connection carries: (kind, size).
MESSAGES: List[Tuple[str, int]] = [("text", 1), ("binary", 64 * 1024), ("text", MiB), ("binary", MiB)]

COMPRESSIONS = pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])


def _messages() -> Iterator[Any]:
    for seed, (kind, size) in enumerate(MESSAGES):
        data = pattern(size, seed)
        yield data.decode("ascii") if kind == "text" else data


def _negotiated(header: Optional[str], compression: Optional[str]) -> bool:
    return ("permessage-deflate" in (header or "")) == (compression is not None)


class Recorder(peers.Recorder):
    """The shared recorder, with the checks these tests make."""

    def check(self, compression: Optional[str], close: Tuple[int, str]) -> None:
        assert self.done.wait(10), "the handler did not see the close"
        assert len(self.extensions) == 1 and _negotiated(self.extensions[0], compression)
        assert self.closes == [close]


@COMPRESSIONS
def test_websockets_sync_client(run_server, compression) -> None:
    from websockets.sync.client import connect

    recorder = Recorder()
    server = run_server(recorder, compression=compression)
    with connect(server.uri, compression=compression, max_size=None, proxy=None) as ws:
        assert _negotiated(ws.response.headers.get("Sec-WebSocket-Extensions"), compression)
        for message in _messages():
            ws.send(message)
            assert ws.recv(timeout=10) == message
        ws.close(4001, "bye")
    recorder.check(compression, (4001, "bye"))


@COMPRESSIONS
def test_websockets_asyncio_client(run_server, compression) -> None:
    from websockets.asyncio.client import connect

    recorder = Recorder()
    server = run_server(recorder, compression=compression)

    async def talk() -> Optional[str]:
        async with connect(server.uri, compression=compression, max_size=None, proxy=None) as ws:
            header = ws.response.headers.get("Sec-WebSocket-Extensions")
            for message in _messages():
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), 10) == message
            await ws.close(4001, "bye")
            return header

    header = asyncio.run(asyncio.wait_for(talk(), 30))
    assert _negotiated(header, compression)
    recorder.check(compression, (4001, "bye"))


def test_websocket_client(run_server) -> None:
    import websocket  # websocket-client, a test dependency

    recorder = Recorder()
    server = run_server(recorder)  # compression offered by us; websocket-client offers none
    ws = websocket.create_connection(server.uri, timeout=10)
    try:
        for message in _messages():
            if isinstance(message, str):
                ws.send(message)
            else:
                ws.send_binary(message)
            assert ws.recv() == message
        ws.close(status=4001, reason=b"bye", timeout=5)
    finally:
        ws.shutdown()
    recorder.check(None, (4001, "bye"))


def _talk_as_client(uri: str, compression: Optional[str], close_code: int = 4001) -> None:
    with wsclient.connect(uri, proxy=None, compression=compression, max_size=None) as ws:
        assert _negotiated(ws.response.headers["Sec-WebSocket-Extensions"], compression)
        for message in _messages():
            ws.send(message)
            assert ws.recv(timeout=10) == message
        ws.close(close_code, "bye")
        assert (ws.close_code, ws.close_reason) == (close_code, "bye")


class PeerCloses:
    """A websockets handler (sync or asyncio alike in what it records) that echoes."""

    def __init__(self) -> None:
        self.closes: List[Tuple[Optional[int], str]] = []
        self.extensions: List[Optional[str]] = []
        self.done = threading.Event()


@COMPRESSIONS
def test_client_against_websockets_sync_server(run_peer, compression) -> None:
    from websockets.exceptions import ConnectionClosed

    seen = PeerCloses()

    def handler(ws) -> None:
        seen.extensions.append(ws.response.headers.get("Sec-WebSocket-Extensions"))
        try:
            for message in ws:
                ws.send(message)
        except ConnectionClosed:
            pass
        seen.closes.append((ws.close_code, ws.close_reason))
        seen.done.set()

    peer = run_peer(handler, compression=compression)
    _talk_as_client(peer.uri, compression)
    assert seen.done.wait(10)
    assert _negotiated(seen.extensions[0], compression)
    assert seen.closes == [(4001, "bye")]


@pytest.fixture
def asyncio_peer() -> Iterator[Callable[..., str]]:
    """Start a ``websockets`` asyncio server in a thread with its own loop; returns its URI."""
    started: List[Tuple[asyncio.AbstractEventLoop, asyncio.Event, threading.Thread]] = []

    def start(handler: Callable, **options: Any) -> str:
        from websockets.asyncio.server import serve

        ready = threading.Event()
        box: dict = {}

        async def main() -> None:
            box["stop"] = asyncio.Event()
            async with serve(handler, "127.0.0.1", 0, max_size=None, **options) as server:
                box["port"] = server.sockets[0].getsockname()[1]
                ready.set()
                await box["stop"].wait()

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="asyncio-peer")
        thread.start()
        assert ready.wait(5), "websockets asyncio server did not start"
        started.append((loop, box["stop"], thread))
        return f"ws://127.0.0.1:{box['port']}/"

    yield start
    for loop, stop, thread in started:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        assert not thread.is_alive(), "websockets asyncio server did not stop"
        loop.close()


@COMPRESSIONS
def test_client_against_websockets_asyncio_server(asyncio_peer, compression) -> None:
    from websockets.exceptions import ConnectionClosed

    seen = PeerCloses()

    async def handler(ws) -> None:
        seen.extensions.append(ws.response.headers.get("Sec-WebSocket-Extensions"))
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass
        seen.closes.append((ws.close_code, ws.close_reason))
        seen.done.set()

    uri = asyncio_peer(handler, compression=compression)
    _talk_as_client(uri, compression)
    assert seen.done.wait(10)
    assert _negotiated(seen.extensions[0], compression)
    assert seen.closes == [(4001, "bye")]


def test_websockets_server_closes_with_4002(run_peer) -> None:
    def handler(ws) -> None:
        ws.close(4002, "server bye")

    peer = run_peer(handler)
    with wsclient.connect(peer.uri, proxy=None) as ws:
        with pytest.raises(wsclient.ConnectionClosedError) as caught:
            ws.recv(timeout=10)
    assert (caught.value.code, caught.value.reason) == (4002, "server bye")


def test_websockets_tls_client(run_server, pki) -> None:
    from websockets.sync.client import connect

    recorder = Recorder()
    server = run_server(recorder, ssl_context=pki.server_context())
    assert server.uri.startswith("wss://")
    with connect(server.uri, ssl=pki.client_context(), max_size=None, proxy=None) as ws:
        for message in _messages():
            ws.send(message)
            assert ws.recv(timeout=10) == message
        ws.close(4001, "bye")
    recorder.check("deflate", (4001, "bye"))
