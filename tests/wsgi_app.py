"""A plain WSGI application for tests/test_wsgi.py, served by the real gunicorn (a
subprocess: ``gunicorn tests.wsgi_app:app``) and by Werkzeug's server (a thread).

Routes:
    /                  ordinary HTTP: ``hello``
    /count             ordinary HTTP: how many connections wsclient.wsgi.connections() lists
    /echo              wsclient.wsgi.accept() in a view: echoes; ``busy N`` blocks the view
                       N seconds without reading (pings must still be answered), then says
                       ``done``; ``broadcast X`` sends X to every connection of the process
    /handoff           accept(), then the view returns at once; another thread echoes once
                       the server has finished with the view's response (its close())
    /app/...           a WebSocketApp: echoes with a ``app:`` prefix; ``raise`` raises
    /auth              a WebSocketApp with process_request: 401 without ``?token=yes``
    /keepalive         the same, pinging every 0.2 s and closing 1011 without a pong in 0.5 s
    /room/{name}       a WebSocketApp with wsclient.route(): says the room
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, List

import wsclient
import wsclient.wsgi


def echo(ws: wsclient.WebSocket) -> None:
    for message in ws:
        if isinstance(message, str) and message.startswith("busy "):
            threading.Event().wait(float(message.split()[1]))  # busy with something else
            ws.send("done")
        elif isinstance(message, str) and message.startswith("broadcast "):
            wsclient.broadcast(wsclient.wsgi.connections(), message[len("broadcast "):])
        else:
            ws.send(message)


def app_echo(ws: wsclient.WebSocket) -> None:
    for message in ws:
        if message == "raise":
            raise ValueError("the handler failed")
        ws.send(f"app:{message}")


def room(ws: wsclient.WebSocket, name: str) -> None:
    ws.send(f"room {name}")
    for message in ws:
        ws.send(f"{name}:{message}")


class Finished(List[bytes]):
    """A response body that says when the server is done with it (WSGI calls close())."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


def handoff(ws: wsclient.WebSocket, finished: Finished) -> None:
    """Echo on a connection whose view has returned, once the server wrote its response."""
    with ws:
        if finished.closed.wait(10):
            for message in ws:
                ws.send(message)


def handoff_view(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Finished:
    """The view hands the connection to a thread and returns at once."""
    ws = wsclient.wsgi.accept(environ)
    finished = Finished()
    threading.Thread(target=handoff, args=(ws, finished), daemon=True).start()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    finished.append(b"view is done")  # never reaches the client
    return finished


websocket_app = wsclient.wsgi.WebSocketApp(app_echo, subprotocols=["chat"])
def token_required(request: wsclient.Request) -> Any:
    return None if request.path.endswith("?token=yes") else (401, [("WWW-Authenticate", "Token")], "no token")


auth_app = wsclient.wsgi.WebSocketApp(app_echo, process_request=token_required)
keepalive_app = wsclient.wsgi.WebSocketApp(app_echo, ping_interval=0.2, ping_timeout=0.5)
rooms_app = wsclient.wsgi.WebSocketApp(wsclient.route({"/room/{name}": room}))


def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    if path == "/count":
        body = str(len(wsclient.wsgi.connections())).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/echo":
        try:
            ws = wsclient.wsgi.accept(environ, ping_interval=None)
        except wsclient.wsgi.HandshakeRefused as refused:
            return refused(environ, start_response)
        with ws:
            try:
                wsclient.wsgi.accept(environ)
            except RuntimeError as twice:  # a second accept() of one request is refused
                assert "already accepted" in str(twice)
            else:
                raise AssertionError("accepted twice")
            echo(ws)
        start_response("200 OK", [("Content-Length", "0")])
        return []
    if path == "/handoff":
        return handoff_view(environ, start_response)
    if path == "/auth":
        return auth_app(environ, start_response)
    if path == "/keepalive":
        return keepalive_app(environ, start_response)
    if path.startswith("/app"):
        return websocket_app(environ, start_response)
    if path.startswith("/room/") or path == "/room":
        return rooms_app(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]
