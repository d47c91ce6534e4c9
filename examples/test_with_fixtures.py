"""Testing your own WebSocket code with wsclient's pytest fixtures.

The fixtures come with the package (pytest11 entry point): no conftest needed.
Run with ``python -m pytest examples/test_with_fixtures.py``.
"""

import pytest

import wsclient


def shout(ws):
    """The code under test: a handler that answers in capitals."""
    for message in ws:
        ws.send(message.upper())


def test_shout(ws_server, ws_connect):
    server = ws_server(shout)
    ws = ws_connect(server.uri)
    ws.send("hello")
    assert ws.recv(timeout=5) == "HELLO"


def test_client_survives_a_reset(ws_faulty_server, ws_connect):
    ws = ws_connect(ws_faulty_server(reset=True, after=1).uri)
    ws.send("one")
    assert ws.recv(timeout=5) == "one"
    with pytest.raises(wsclient.ConnectionClosedError):
        ws.recv(timeout=5)


def main():
    raise SystemExit(pytest.main([__file__, "-q"]))


if __name__ == "__main__":
    main()
