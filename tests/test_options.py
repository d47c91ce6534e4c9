"""The options of a connection: one checked value, and signatures that list every keyword.

``connect()``, ``serve()``, ``WebSocketServer(...)`` and ``serve_workers()`` spell out
each keyword (no ``**options``), so a misspelt one is a type checker's error and, at run
time, a ``TypeError`` that names the function the user called.
"""

from __future__ import annotations

import dataclasses
import inspect
import ssl
import typing
from typing import Any, Callable, Dict

import pytest

import wsclient
from wsclient.options import ConnectionOptions
from wsclient.server import WebSocketServer, serve
from wsclient.workers import serve_workers


def handler(ws: wsclient.WebSocket) -> None:
    """A module-level handler (serve_workers pickles it by name)."""


MISSPELT: Dict[str, Callable[[], Any]] = {
    "connect": lambda: wsclient.connect("ws://127.0.0.1:9/", ssl_contxt=None),
    "serve": lambda: wsclient.serve(handler, ssl_contxt=None),
    "WebSocketServer": lambda: wsclient.WebSocketServer(("127.0.0.1", 0), handler, ssl_contxt=None),
    "serve_workers": lambda: serve_workers(handler, workers=1, ping_intervall=None),
}


@pytest.mark.parametrize("name", list(MISSPELT))
def test_a_misspelt_keyword_raises_type_error_naming_the_function_called(name: str) -> None:
    with pytest.raises(TypeError) as caught:
        MISSPELT[name]()
    message = str(caught.value)
    assert message.startswith(f"{name}(") or message.startswith(f"{name}.__init__("), message
    assert "unexpected keyword argument" in message


PUBLIC = {"connect": wsclient.connect, "serve": serve, "WebSocketServer": WebSocketServer.__init__,
          "serve_workers": serve_workers}


@pytest.mark.parametrize("name", list(PUBLIC))
def test_no_public_signature_takes_arbitrary_keywords(name: str) -> None:
    kinds = [p.kind for p in inspect.signature(PUBLIC[name]).parameters.values()]
    assert inspect.Parameter.VAR_KEYWORD not in kinds
    assert inspect.Parameter.VAR_POSITIONAL not in kinds


def _keywords(function: Callable[..., Any]) -> Dict[str, Any]:
    """Each keyword-only parameter: (its resolved type, its default)."""
    hints = typing.get_type_hints(function)
    return {name: (hints[name], p.default) for name, p in inspect.signature(function).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_serve_lists_every_keyword_of_the_server_with_its_type_and_default() -> None:
    server = _keywords(WebSocketServer.__init__)
    assert _keywords(serve) == {**server, "unix_path": (typing.Optional[str], None)}


def test_serve_workers_lists_every_keyword_of_the_server_a_worker_can_take() -> None:
    server = _keywords(WebSocketServer.__init__)
    workers = _keywords(serve_workers)
    own = {"workers", "on_ready", "start_timeout", "stop_timeout"}
    # reuse_port is always True in a worker; a TLS context does not pickle (run_workers then).
    assert set(workers) - own == set(server) - {"reuse_port"}
    assert workers["ssl_context"] == (type(None), None)
    for name in set(server) - {"reuse_port", "ssl_context"}:
        assert workers[name] == server[name], name


def test_connect_and_serve_share_the_connection_options_and_their_defaults() -> None:
    defaults = {field.name: field.default for field in dataclasses.fields(ConnectionOptions)}
    for function in (wsclient.connect, serve, WebSocketServer.__init__, serve_workers):
        parameters = inspect.signature(function).parameters
        assert {name: parameters[name].default for name in defaults} == defaults


def test_serve_workers_refuses_a_tls_context_at_once() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(TypeError, match="run_workers"):
        serve_workers(handler, workers=1, ssl_context=context)  # type: ignore[arg-type]  # the point


@pytest.mark.parametrize("options, error", [
    (dict(max_size=0), ValueError),
    (dict(max_queue=1.5), TypeError),
    (dict(max_size=True), TypeError),
    (dict(ping_interval=0), ValueError),
    (dict(ping_timeout=-1), ValueError),
    (dict(close_timeout=float("inf")), ValueError),
    (dict(close_timeout="10"), TypeError),
])
def test_connection_options_are_checked_when_made(options: Dict[str, Any], error: type) -> None:
    name = next(iter(options))
    with pytest.raises(error, match=name):
        ConnectionOptions(**options)
    with pytest.raises(error, match=name):  # ... which connect() does before any traffic.
        wsclient.connect("ws://127.0.0.1:9/", **options)
    with pytest.raises(error, match=name):
        serve(handler, **options)


def test_connection_options_are_frozen_and_none_means_unbounded() -> None:
    options = ConnectionOptions(max_size=None, max_queue=None, ping_interval=None, ping_timeout=None,
                                close_timeout=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_size = 1  # type: ignore[misc]  # the point: it cannot change
    assert ConnectionOptions() == ConnectionOptions(max_size=2**24, max_queue=2**24, ping_interval=20.0,
                                                    ping_timeout=20.0, close_timeout=10.0)
