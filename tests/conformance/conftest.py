"""Fixtures of the conformance suite: wsclient echo servers, one per set of options."""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, Tuple

import pytest

import wsclient

from .endpoints import ApiResult, echo_loop


class EchoServers:
    """wsclient servers that echo every message (the server role's wsclient end).

    One server per distinct set of options, started on first use; each handler records
    how its connection ended, keyed by the client's port, for the test to collect.
    """

    def __init__(self) -> None:
        self._servers: Dict[Tuple[Tuple[str, Any], ...], Tuple[wsclient.WebSocketServer, threading.Thread]] = {}
        self._results: Dict[int, ApiResult] = {}
        self._cond = threading.Condition()

    def port(self, options: Tuple[Tuple[str, Any], ...]) -> int:
        if options not in self._servers:
            server = wsclient.serve(self._handler, host="127.0.0.1", port=0, ping_interval=None, **dict(options))
            thread = threading.Thread(target=server.serve_forever, name="conformance-server", daemon=True)
            thread.start()
            self._servers[options] = (server, thread)
        port = self._servers[options][0].port
        assert port is not None
        return port

    def _handler(self, ws: wsclient.WebSocket) -> None:
        port = ws.remote_address[1]
        result = echo_loop(ws)
        with self._cond:
            self._results[port] = result
            self._cond.notify_all()

    def result(self, port: int, timeout: float) -> ApiResult:
        """How the connection from ``port`` ended for the wsclient server's handler."""
        with self._cond:
            if not self._cond.wait_for(lambda: port in self._results, timeout):
                return ApiResult(None, None, note=f"the handler did not finish within {timeout} s")
            return self._results.pop(port)

    def stop(self) -> None:
        for server, thread in self._servers.values():
            server.shutdown()
            server.server_close()
            thread.join(10)
            assert not thread.is_alive(), "a conformance server did not stop"


@pytest.fixture(scope="module")
def echo_servers() -> Iterator[EchoServers]:
    servers = EchoServers()
    yield servers
    servers.stop()
