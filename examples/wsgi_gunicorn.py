"""A plain WSGI application with WebSocket routes, under gunicorn's threaded worker.

``/`` is an ordinary HTTP page; ``/ws/echo`` echoes; ``/ws/shout/{name}`` answers in capitals,
prefixed with the name from the path. The WebSocket part is a ``wsclient.wsgi.WebSocketApp``
around a ``wsclient.route()`` router, so an unknown ``/ws/...`` path gets ``404`` and a plain
GET ``426``. Run it with gunicorn itself::

    gunicorn --worker-class gthread --threads 32 --chdir examples wsgi_gunicorn:app

or with ``python examples/wsgi_gunicorn.py --port 8000``, which starts the same gunicorn
in-process. Each open WebSocket holds one of a gthread worker's threads for its lifetime.
"""

import argparse
import socket

from gunicorn.app.base import BaseApplication

import wsclient
import wsclient.wsgi


def echo(ws: wsclient.WebSocket) -> None:
    for message in ws:
        ws.send(message)


def shout(ws: wsclient.WebSocket, name: str) -> None:
    for message in ws:
        ws.send(f"{name}: {str(message).upper()}")


websockets = wsclient.wsgi.WebSocketApp(wsclient.route({"/ws/echo": echo, "/ws/shout/{name}": shout}))


def app(environ, start_response):
    """The WSGI application: WebSockets under /ws/, a page elsewhere."""
    if environ.get("PATH_INFO", "").startswith("/ws/"):
        return websockets(environ, start_response)
    body = b"WebSocket endpoints: /ws/echo and /ws/shout/{name}\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--threads", type=int, default=32, help="WebSockets open at once, and some")
    args = parser.parse_args(argv)
    # Bind first, so that port 0 can be printed; gunicorn takes the socket by descriptor.
    listener = socket.create_server((args.host, args.port))
    listener.set_inheritable(True)

    class Gunicorn(BaseApplication):
        def load_config(self):
            settings = {"bind": [f"fd://{listener.fileno()}"], "worker_class": "gthread",
                        "threads": args.threads, "workers": 1, "control_socket_disable": True}
            for key, value in settings.items():
                if key in self.cfg.settings:  # control_socket_disable: gunicorn 24 and later
                    self.cfg.set(key, value)

        def load(self):
            return app

    print(f"ws://{args.host}:{listener.getsockname()[1]}/", flush=True)
    Gunicorn().run()  # until Ctrl-C (SIGINT) or SIGTERM


if __name__ == "__main__":
    main()
