"""A Flask chat with rooms by route: ``/chat/<room>`` is a WebSocket, ``/`` a web page.

Each message goes to everyone in the same room. The room's members are the process's
live WebSocket connections (``wsclient.wsgi.connections()``) whose path names the room,
and ``wsclient.broadcast`` sends without waiting for a slow client.

Werkzeug 3 (under Flask) routes an upgrade request only to a rule declared for WebSockets:
``@app.route(path, websocket=True)``; without it Werkzeug answers ``400`` before the view
runs. Run it under Werkzeug's threaded development server (as here), or under gunicorn with
threads: ``gunicorn -k gthread --threads 32 'flask_chat:make_app()'``. Try it with
``python -m wsclient connect ws://127.0.0.1:5000/chat/lobby`` in two terminals.
"""

import argparse
from typing import List
from urllib.parse import unquote

import flask
from werkzeug.serving import make_server

import wsclient
import wsclient.wsgi

PAGE = "<p>Join a room: connect a WebSocket to <code>/chat/&lt;room&gt;</code>.</p>"


def members(room: str) -> List[wsclient.WebSocket]:
    """The open connections of this process in ``room``."""
    path = f"/chat/{room}"
    return [ws for ws in wsclient.wsgi.connections() if unquote(ws.request.path.partition("?")[0]) == path]


def make_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.route("/")
    def index() -> str:
        return PAGE  # ordinary routes work as before

    @app.route("/chat/<room>", websocket=True)
    def chat(room: str):
        try:
            ws = wsclient.wsgi.accept(flask.request.environ)
        except wsclient.wsgi.HandshakeRefused as refused:
            return refused  # a WSGI application: Flask sends its 400 or 426
        with ws:  # closed (1000) when the view leaves
            name = "%s:%s" % ws.remote_address[:2]
            wsclient.broadcast(members(room), f"* {name} joined {room}")
            for message in ws:
                wsclient.broadcast(members(room), f"{name}: {message}")
        return ""  # never sent: the connection is the WebSocket's now

    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, make_app(), threaded=True)  # a thread per connection
    print(f"ws://{args.host}:{server.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
