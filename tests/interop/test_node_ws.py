"""wsclient against Node's ``ws`` (from npm, pinned in node/package-lock.json), both ways.

Our client against a ``ws`` echo server (node/echo_server.js), and a ``ws`` client
(node/echo_client.js) against our server: text and binary up to 1 MiB, permessage-deflate
off, on, without context takeover and with reduced window bits; close codes as each side saw
them.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest

import wsclient

from ..conftest import need
from .peers import NODE_DIR, Peer, Recorder, node_ws_available, pattern

MiB = 1 << 20

#: (name, Node ws perMessageDeflate option, our compression option, expected params).
CONFIGS: List[Tuple[str, Any, Union[str, wsclient.DeflateOptions, None], Tuple[str, ...]]] = [
    ("off", False, None, ()),
    ("deflate", {"threshold": 0}, "deflate", ("permessage-deflate",)),
    (
        "no-context-takeover",
        {"threshold": 0, "serverNoContextTakeover": True, "clientNoContextTakeover": True},
        wsclient.DeflateOptions(client_no_context_takeover=True, server_no_context_takeover=True),
        ("permessage-deflate", "server_no_context_takeover", "client_no_context_takeover"),
    ),
    (
        "window-bits",
        {"threshold": 0, "serverMaxWindowBits": 10, "clientMaxWindowBits": 9},
        wsclient.DeflateOptions(server_max_window_bits=10, client_max_window_bits=9),
        ("permessage-deflate", "server_max_window_bits=10", "client_max_window_bits=9"),
    ),
]
CONFIG_IDS = [config[0] for config in CONFIGS]

#: Messages each connection carries, several of each kind so a shared window is exercised.
MESSAGES: List[Tuple[str, int]] = [
    ("text", 1), ("binary", 200), ("text", 64 * 1024), ("binary", 64 * 1024),
    ("text", MiB), ("binary", MiB), ("text", MiB),
]


def _require_node() -> None:
    need(node_ws_available(), "node or the npm package ws is missing (run `npm ci --prefix tests/interop/node`)")


def _check_extensions(header: Optional[str], expected: Tuple[str, ...]) -> None:
    header = header or ""
    if not expected:
        assert "permessage-deflate" not in header
    for part in expected:
        assert part in header, f"{part!r} not negotiated in {header!r}"


@pytest.fixture
def node_server():
    """Start ``node echo_server.js`` with a perMessageDeflate option; returns its ws:// URI."""
    peers: List[Peer] = []

    def start(per_message_deflate: Any) -> Tuple[Peer, str]:
        _require_node()
        options = json.dumps({"perMessageDeflate": per_message_deflate})
        peer = Peer(["node", os.path.join(NODE_DIR, "echo_server.js"), options], cwd=NODE_DIR)
        peers.append(peer)
        port = peer.event("listening")["port"]
        return peer, f"ws://127.0.0.1:{port}/"

    yield start
    for peer in peers:
        peer.stop()


@pytest.mark.parametrize("name, node_option, ours, expected", CONFIGS, ids=CONFIG_IDS)
def test_client_against_node_server(node_server, name, node_option, ours, expected) -> None:
    peer, uri = node_server(node_option)
    with wsclient.connect(uri, proxy=None, compression=ours) as ws:
        _check_extensions(ws.response.headers["Sec-WebSocket-Extensions"], expected)
        assert peer.event("open")["extensions"] or not expected
        for seed, (kind, size) in enumerate(MESSAGES):
            data = pattern(size, seed)
            message = data.decode("ascii") if kind == "text" else data
            ws.send(message)
            assert ws.recv(timeout=20) == message, f"{kind} {size} bytes"
        ws.close(4001, "bye")
        assert ws.close_code == 4001
        assert ws.close_reason == "bye"
    seen = peer.event("close")
    assert (seen["code"], seen["reason"]) == (4001, "bye")


@pytest.mark.parametrize("name, node_option, ours, expected", CONFIGS, ids=CONFIG_IDS)
def test_node_server_closes_with_4002(node_server, name, node_option, ours, expected) -> None:
    peer, uri = node_server(node_option)
    with wsclient.connect(uri, proxy=None, compression=ours) as ws:
        ws.send(pattern(4096).decode("ascii"))
        assert ws.recv(timeout=10) == pattern(4096).decode("ascii")
        ws.send("close 4002 server bye")
        with pytest.raises(wsclient.ConnectionClosedError) as caught:
            ws.recv(timeout=10)
    assert (caught.value.code, caught.value.reason) == (4002, "server bye")
    assert (ws.close_code, ws.close_reason) == (4002, "server bye")
    seen = peer.event("close")
    assert seen["code"] == 4002


def _run_node_client(uri: str, options: Dict[str, Any]) -> List[Dict[str, Any]]:
    _require_node()
    peer = Peer(["node", os.path.join(NODE_DIR, "echo_client.js"), uri, json.dumps(options)], cwd=NODE_DIR)
    try:
        events = list(peer.events(timeout=30))
        assert peer.process.wait(5) == 0, peer.describe()
    finally:
        peer.stop()
    assert not [event for event in events if event["event"] == "error"], events
    return events


@pytest.mark.parametrize("name, node_option, ours, expected", CONFIGS, ids=CONFIG_IDS)
def test_node_client_against_server(run_server, name, node_option, ours, expected) -> None:
    recorder = Recorder()
    server = run_server(recorder, compression=ours)
    messages = [{"type": kind, "size": size} for kind, size in MESSAGES]
    events = _run_node_client(server.uri, {
        "perMessageDeflate": node_option, "messages": messages,
        "closeCode": 4001, "closeReason": "bye",
    })
    _check_extensions(events[0].get("extensions"), expected)
    echoes = [event for event in events if event["event"] == "echo"]
    assert [(e["type"], e["size"], e["ok"]) for e in echoes] == [(k, s, True) for k, s in MESSAGES]
    # RFC 6455 section 5.5.1: the answering close frame echoes the code; a reason is optional.
    assert events[-1]["event"] == "close" and events[-1]["code"] == 4001
    assert recorder.done.wait(10)
    _check_extensions(recorder.extensions[0], expected)
    assert recorder.closes == [(4001, "bye")]


@pytest.mark.parametrize("name, node_option, ours, expected", CONFIGS, ids=CONFIG_IDS)
def test_server_closes_node_client_with_4002(run_server, name, node_option, ours, expected) -> None:
    recorder = Recorder()
    server = run_server(recorder, compression=ours)
    events = _run_node_client(server.uri + "close", {"perMessageDeflate": node_option, "waitClose": True})
    assert events[-1] == {"event": "close", "code": 4002, "reason": "server bye"}
    assert recorder.done.wait(10)
