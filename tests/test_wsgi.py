"""wsclient.wsgi against the real WSGI servers: Flask under Werkzeug's threaded development
server (a thread), gunicorn's sync and gthread workers (subprocesses serving
tests/wsgi_app.py), with wsclient, websockets and websocket-client as clients."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

import pytest

import wsclient
import wsclient.wsgi

from . import wsgi_app
from .conftest import need

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 10.0

try:
    import flask
    import werkzeug.serving
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
except ImportError:  # pragma: no cover - reported by need() in the fixture
    flask = None  # type: ignore[assignment]

try:
    import gunicorn
except ImportError:  # pragma: no cover
    gunicorn = None  # type: ignore[assignment]


class Server:
    """A running WSGI server: ``http`` and ``ws`` base URLs, ``kind``, ``stop()``."""

    def __init__(self, kind: str, port: int, stop: Callable[[], str]) -> None:
        self.kind = kind
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"
        self.stop = stop


# -- Flask under Werkzeug's development server ---------------------------------------------------


def flask_app() -> Any:
    app = flask.Flask(__name__)

    @app.route("/")
    def index() -> str:
        return "hello"

    @app.route("/count")
    def count() -> str:
        return str(len(wsclient.wsgi.connections()))

    @app.route("/echo", websocket=True)  # Werkzeug 3 routes an upgrade only to such rules.
    def echo() -> Any:
        try:
            ws = wsclient.wsgi.accept(flask.request.environ, ping_interval=None)
        except wsclient.wsgi.HandshakeRefused as refused:
            return refused
        with ws:
            wsgi_app.echo(ws)
        return ""

    @app.route("/plain")  # Not declared for WebSockets: an upgrade is refused by Werkzeug.
    def plain() -> Any:
        try:
            ws = wsclient.wsgi.accept(flask.request.environ)
        except wsclient.wsgi.HandshakeRefused as refused:
            return refused
        ws.close()
        return ""

    @app.route("/handoff", websocket=True)
    def handoff() -> Any:
        return wsgi_app.handoff_view  # a WSGI application, which Flask runs

    # A WebSocketApp and a router mounted beside the Flask app, as gunicorn serves them.
    return DispatcherMiddleware(app, {"/app": wsgi_app.websocket_app, "/room": wsgi_app.rooms_app,
                                      "/keepalive": wsgi_app.keepalive_app, "/auth": wsgi_app.auth_app})


def start_werkzeug() -> Server:
    need(flask is not None, "flask and werkzeug are not installed (pip install -e .[test])")
    server = werkzeug.serving.make_server("127.0.0.1", 0, flask_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> str:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        return ""

    return Server("werkzeug", server.port, stop)


# -- gunicorn --------------------------------------------------------------------------------------


def start_gunicorn(worker: str, *options: str) -> Server:
    need(gunicorn is not None, "gunicorn is not installed (pip install -e .[test])")
    args = [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "--worker-class", worker,
            "--config", os.devnull, "--log-level", "info", *options]
    if "--no-control-socket" in subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True,
                                               text=True, timeout=60).stdout:
        args.append("--no-control-socket")  # gunicorn 24+: no shared unix socket in $HOME.
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen([*args, "tests.wsgi_app:app"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log: List[str] = []
    port = None
    deadline = time.monotonic() + 60
    assert process.stderr is not None
    while port is None and time.monotonic() < deadline:  # gunicorn logs the bound port
        line = process.stderr.readline()
        if not line:
            break
        log.append(line)
        if "Listening at: http://127.0.0.1:" in line:
            port = int(line.split("127.0.0.1:")[1].split()[0])
    booted = False
    while port is not None and not booted and time.monotonic() < deadline:
        line = process.stderr.readline()
        log.append(line)
        booted = "Booting worker" in line or not line
    if port is None:
        process.kill()
        pytest.fail("gunicorn did not start:\n" + "".join(log) + process.stderr.read())
    collected: List[str] = []
    reader = threading.Thread(target=lambda: collected.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()

    def stop() -> str:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(60)
        reader.join(TIMEOUT)
        return "".join(log + collected)

    server = Server(f"gunicorn-{worker}", port, stop)
    wait_until_serving(server)
    return server


def wait_until_serving(server: Server) -> None:
    """The worker booted: its first HTTP answer (a bounded poll)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(server.http + "/", timeout=TIMEOUT) as response:
                assert response.read() == b"hello"
                return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # polling a subprocess's readiness, bounded above


SERVERS = ["werkzeug", "sync", "gthread"]


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "werkzeug":
        running = start_werkzeug()
    elif request.param == "sync":
        running = start_gunicorn("sync", "--workers", "2", "--timeout", "60")
    else:
        running = start_gunicorn("gthread", "--workers", "1", "--threads", "64")
    try:
        yield running
    finally:
        log = running.stop()
    # The server logged no error of its own about the connections it handed over (the
    # traceback of test_a_failing_handler_closes_with_1011 is wsclient's, and expected).
    assert log.count("Traceback") == log.count("WebSocket handler failed"), log
    for bad in ("[ERROR]", "Error handling request", "Socket error"):
        assert bad not in log, log


def http_get(url: str) -> tuple:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# -- the three clients ---------------------------------------------------------------------------


def echo_with_wsclient(uri: str) -> Optional[str]:
    with wsclient.connect(uri, proxy=None, timeout=TIMEOUT) as ws:
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "hello"
        big = "compressible " * 10_000
        ws.send(big)
        assert ws.recv(timeout=TIMEOUT) == big
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=TIMEOUT) == b"\x00\xff"
        return ws.response.headers["Sec-WebSocket-Extensions"]


def echo_with_websockets(uri: str) -> Optional[str]:
    from websockets.sync.client import connect

    with connect(uri, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "hello"
        big = "compressible " * 10_000
        ws.send(big)
        assert ws.recv(timeout=TIMEOUT) == big
        return ws.response.headers.get("Sec-WebSocket-Extensions")


def echo_with_websocket_client(uri: str) -> Optional[str]:
    import websocket

    ws = websocket.create_connection(uri, timeout=TIMEOUT)
    try:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send_binary(b"\x00\xff")
        assert ws.recv() == b"\x00\xff"
        return None  # websocket-client offers no compression
    finally:
        ws.close()


CLIENTS = {"wsclient": echo_with_wsclient, "websockets": echo_with_websockets,
           "websocket-client": echo_with_websocket_client}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_echo_with_each_client(server: Server, client: str) -> None:
    extensions = CLIENTS[client](server.ws + "/echo")
    if client != "websocket-client":
        assert extensions is not None and extensions.startswith("permessage-deflate")


@pytest.mark.parametrize("client", list(CLIENTS))
def test_websocket_app_mounted(server: Server, client: str) -> None:
    if client == "wsclient":
        with wsclient.connect(server.ws + "/app/chat", subprotocols=["chat"], proxy=None, timeout=TIMEOUT) as ws:
            assert ws.subprotocol == "chat"
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "app:hi"
    elif client == "websockets":
        from websockets.sync.client import connect

        with connect(server.ws + "/app/chat", subprotocols=["chat"], open_timeout=TIMEOUT) as ws2:
            assert ws2.subprotocol == "chat"
            ws2.send("hi")
            assert ws2.recv(timeout=TIMEOUT) == "app:hi"
    else:
        import websocket

        ws3 = websocket.create_connection(server.ws + "/app/chat", timeout=TIMEOUT)
        ws3.send("hi")
        assert ws3.recv() == "app:hi"
        ws3.close()


def test_route_under_wsgi(server: Server) -> None:
    with wsclient.connect(server.ws + "/room/blue%20sky", proxy=None, timeout=TIMEOUT) as ws:
        assert ws.recv(timeout=TIMEOUT) == "room blue sky"
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "blue sky:x"
    with pytest.raises(wsclient.InvalidStatus) as refused:
        wsclient.connect(server.ws + "/room/a/b", proxy=None, timeout=TIMEOUT)
    assert refused.value.status == 404


def test_websocket_app_process_request(server: Server) -> None:
    with pytest.raises(wsclient.InvalidStatus) as refused:
        wsclient.connect(server.ws + "/auth", proxy=None, timeout=TIMEOUT)
    assert refused.value.status == 401
    assert refused.value.response.headers["WWW-Authenticate"] == "Token"
    assert refused.value.response.body == b"no token"
    with wsclient.connect(server.ws + "/auth?token=yes", proxy=None, timeout=TIMEOUT) as ws:
        ws.send("in")
        assert ws.recv(timeout=TIMEOUT) == "app:in"


def test_pings_answered_while_the_handler_is_busy(server: Server) -> None:
    with wsclient.connect(server.ws + "/echo", proxy=None, timeout=TIMEOUT, ping_interval=None) as ws:
        ws.send("busy 3")  # the view blocks 3 s without reading
        started = time.monotonic()
        assert ws.ping(b"are you there").wait(TIMEOUT)
        assert time.monotonic() - started < 2.0, "the pong waited for the busy view"
        assert ws.recv(timeout=TIMEOUT) == "done"


def test_ordinary_http_routes(server: Server) -> None:
    assert http_get(server.http + "/")[::2] == (200, b"hello")
    if server.kind == "gunicorn-sync":
        return  # a sync worker serves nothing else while it holds a WebSocket
    with wsclient.connect(server.ws + "/echo", proxy=None, timeout=TIMEOUT) as ws:
        assert http_get(server.http + "/")[::2] == (200, b"hello")
        ws.send("still here")
        assert ws.recv(timeout=TIMEOUT) == "still here"


def test_non_upgrade_request_answered(server: Server) -> None:
    status, headers, body = http_get(server.http + "/app/x")
    assert status == 426
    assert headers["Upgrade"] == "websocket" and headers["Sec-WebSocket-Version"] == "13"
    assert b"WebSocket endpoint" in body
    status, headers, body = http_get(server.http + "/echo")
    if server.kind == "werkzeug":
        assert status == 400  # Werkzeug refuses it before the view: the rule is websocket=True
    else:
        assert status == 426 and b"WebSocket endpoint" in body


def test_werkzeug_routes_upgrades_only_to_websocket_rules() -> None:
    running = start_werkzeug()
    try:
        with pytest.raises(wsclient.InvalidStatus) as refused:
            wsclient.connect(running.ws + "/plain", proxy=None, timeout=TIMEOUT)
        assert refused.value.status == 400
        status, _, body = http_get(running.http + "/plain")
        assert status == 426 and b"WebSocket endpoint" in body  # a GET reaches the view
    finally:
        running.stop()


def raw_handshake(uri_host: str, port: int, path: str) -> socket.socket:
    sock = socket.create_connection((uri_host, port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {uri_host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    pytest.fail(f"the server kept the connection open after the close: {data!r}")


def test_server_writes_nothing_after_the_websocket(server: Server) -> None:
    """After the handler, the WSGI server neither writes its own response onto the
    connection nor reads another request from it: the client sees the 101, the close
    frame, then the end of the stream."""
    port = int(server.http.rsplit(":", 1)[1])
    for path in ("/echo", "/app/x"):
        sock = raw_handshake("127.0.0.1", port, path)
        with sock:
            assert read_head(sock).startswith(b"HTTP/1.1 101 ")
            mask = b"\x01\x02\x03\x04"
            payload = (1000).to_bytes(2, "big")
            sock.sendall(b"\x88\x82" + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            rest = read_to_end(sock)
        assert rest == b"\x88\x02\x03\xe8", rest  # the close frame, and nothing after it


@pytest.mark.parametrize("client", ["wsclient", "websockets"])
def test_connection_outlives_the_view(server: Server, client: str) -> None:
    """The view returns at once, the server writes its response (which goes nowhere) and
    finishes the request; the connection goes on in another thread, its stream intact."""
    if client == "wsclient":
        with wsclient.connect(server.ws + "/handoff", proxy=None, timeout=TIMEOUT) as ws:
            for n in range(3):
                ws.send(f"message {n}")
                assert ws.recv(timeout=TIMEOUT) == f"message {n}"
        assert ws.close_code == 1000
    else:
        from websockets.sync.client import connect

        with connect(server.ws + "/handoff", open_timeout=TIMEOUT) as ws2:
            for n in range(3):
                ws2.send(f"message {n}")
                assert ws2.recv(timeout=TIMEOUT) == f"message {n}"


def read_head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:  # a client waits for the 101 (RFC 6455 section 4.1)
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    return head


def test_keepalive_closes_a_silent_client(server: Server) -> None:
    """The process's watcher pings WSGI connections; a client that never answers is
    closed with 1011 after ping_timeout, while the handler waits in recv()."""
    port = int(server.http.rsplit(":", 1)[1])
    with raw_handshake("127.0.0.1", port, "/keepalive") as sock:
        assert read_head(sock).startswith(b"HTTP/1.1 101 ")
        started = time.monotonic()
        data = read_to_end(sock)
    frames = []
    while data:  # the server's frames: unmasked control frames (payload < 126 bytes)
        length = data[1] & 0x7F
        frames.append((data[0] & 0x0F, data[2:2 + length]))
        data = data[2 + length:]
    assert frames[0][0] == 0x9, frames  # a ping first, never answered
    assert frames[-1][0] == 0x8 and frames[-1][1][:2] == (1011).to_bytes(2, "big"), frames
    assert time.monotonic() - started < 5


def test_a_failing_handler_closes_with_1011(server: Server) -> None:
    with wsclient.connect(server.ws + "/app/x", proxy=None, timeout=TIMEOUT) as ws:
        ws.send("raise")
        with pytest.raises(wsclient.ConnectionClosedError):
            ws.recv(timeout=TIMEOUT)
    assert ws.close_code == 1011


def test_broadcast_to_the_process_registry(server: Server) -> None:
    if server.kind == "gunicorn-sync":
        return  # one connection per sync worker process: nothing to broadcast to
    with wsclient.connect(server.ws + "/echo", proxy=None, timeout=TIMEOUT) as alice, \
            wsclient.connect(server.ws + "/echo", proxy=None, timeout=TIMEOUT) as bob:
        alice.send("ready?")
        assert alice.recv(timeout=TIMEOUT) == "ready?"
        bob.send("ready?")
        assert bob.recv(timeout=TIMEOUT) == "ready?"
        assert http_get(server.http + "/count")[2] == b"2"
        alice.send("broadcast news")
        assert alice.recv(timeout=TIMEOUT) == "news"
        assert bob.recv(timeout=TIMEOUT) == "news"


def test_fifty_concurrent_connections_under_gthread() -> None:
    running = start_gunicorn("gthread", "--workers", "1", "--threads", "60")
    try:
        clients: List[wsclient.WebSocket] = []
        errors: List[BaseException] = []
        lock = threading.Lock()

        def open_one(n: int) -> None:
            try:
                ws = wsclient.connect(running.ws + "/echo", proxy=None, timeout=30)
                ws.send(f"client {n}")
                assert ws.recv(timeout=30) == f"client {n}"
                with lock:
                    clients.append(ws)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=open_one, args=(n,)) for n in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors[:3]
        assert len(clients) == 50
        assert http_get(running.http + "/count")[2] == b"50"  # all open at once
        clients[0].send("broadcast to all")
        for ws in clients:
            assert ws.recv(timeout=TIMEOUT) == "to all"
        for ws in clients:
            ws.close()
    finally:
        log = running.stop()
    assert "Traceback" not in log and "[ERROR]" not in log, log


def test_a_server_without_its_socket_is_named() -> None:
    """wsgiref (the standard library's server) does not hand over its socket."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    failures: List[str] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            wsclient.wsgi.accept(environ)
        except RuntimeError as exc:
            failures.append(str(exc))
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return []

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=httpd.handle_request, daemon=True)
    thread.start()
    try:
        with pytest.raises(wsclient.InvalidStatus) as refused:
            wsclient.connect(f"ws://127.0.0.1:{httpd.server_port}/", proxy=None, timeout=TIMEOUT)
        assert refused.value.status == 500
    finally:
        thread.join(TIMEOUT)
        httpd.server_close()
    assert len(failures) == 1
    assert "WSGIServer/" in failures[0] and "does not hand over" in failures[0]


def test_refused_request_is_a_wsgi_app() -> None:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/x", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "h"}
    with pytest.raises(wsclient.wsgi.HandshakeRefused) as refused:
        wsclient.wsgi.accept(environ)
    assert refused.value.status == 405
    assert isinstance(refused.value, wsclient.InvalidHandshake)
    started: List[Any] = []
    body = b"".join(refused.value(environ, lambda status, headers: started.append((status, headers))))
    assert started[0][0] == "405 Method Not Allowed"
    assert ("Allow", "GET") in started[0][1]
    assert b"GET" in body


def test_request_from_environ() -> None:
    environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/mount", "PATH_INFO": "/a b", "QUERY_STRING": "x=1",
               "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "example.com", "HTTP_SEC_WEBSOCKET_KEY": "k"}
    request = wsclient.wsgi.request_from_environ(environ)
    assert request.path == "/mount/a%20b?x=1"
    assert request.headers["Host"] == "example.com"
    assert request.headers["sec-websocket-key"] == "k"
    environ["RAW_URI"] = "/raw?y"
    assert wsclient.wsgi.request_from_environ(environ).path == "/raw?y"


def test_options_checked_at_once() -> None:
    with pytest.raises(TypeError):
        wsclient.wsgi.WebSocketApp(lambda ws: None, subprotocols="chat")
    with pytest.raises(ValueError):
        wsclient.wsgi.WebSocketApp(lambda ws: None, max_size=0)
    with pytest.raises(TypeError):
        wsclient.wsgi.WebSocketApp("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wsclient.wsgi.WebSocketApp(lambda ws: None, unknown=1)  # type: ignore[call-arg]


def test_a_tls_socket_is_refused_with_a_clear_error(pki) -> None:
    """Werkzeug serving TLS hands over an SSLSocket, whose TLS state cannot change hands."""
    need(flask is not None, "werkzeug is not installed (pip install -e .[test])")
    failures: List[str] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            wsclient.wsgi.accept(environ)
        except RuntimeError as exc:
            failures.append(str(exc))
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return []

    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True, ssl_context=pki.server_context())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(wsclient.InvalidStatus) as refused:
            wsclient.connect(f"wss://localhost:{server.port}/", ssl_context=pki.client_context(), proxy=None,
                             timeout=TIMEOUT)
        assert refused.value.status == 500
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
    assert len(failures) == 1
    assert "Werkzeug/" in failures[0] and "TLS" in failures[0]


def test_handshake_refused_docstring_example_runs_under_werkzeug() -> None:
    """The snippet of :class:`wsclient.wsgi.HandshakeRefused`'s docstring (shown on the API
    page), taken from the docstring and run as the body of a plain WSGI application under
    Werkzeug's server: an upgrade becomes a WebSocket, a plain GET gets the 426 the refusal
    sends, a POST its 405."""
    import inspect
    import textwrap

    from .test_readme import literal_blocks

    need(flask is not None, "werkzeug is not installed (pip install -e .[test])")
    doc = inspect.cleandoc(wsclient.wsgi.HandshakeRefused.__doc__ or "")
    (snippet,) = [block.code for block in literal_blocks(doc, "HandshakeRefused.__doc__")]
    assert "return refused(environ, start_response)" in snippet, snippet
    source = ("def app(environ, start_response):\n" + textwrap.indent(snippet, "    ") + "\n"
              "    with ws:\n"
              "        for message in ws:\n"
              "            ws.send(message)\n"
              "    start_response('200 OK', [('Content-Length', '0')])\n"
              "    return []\n")
    namespace: Dict[str, Any] = {"wsclient": wsclient}
    exec(compile(source, "HandshakeRefused.__doc__", "exec"), namespace)
    server = werkzeug.serving.make_server("127.0.0.1", 0, namespace["app"], threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    try:
        with wsclient.connect(f"ws://127.0.0.1:{server.port}/", proxy=None, timeout=TIMEOUT) as ws:
            ws.send("through the docstring's app")
            assert ws.recv(timeout=TIMEOUT) == "through the docstring's app"
        with pytest.raises(urllib.error.HTTPError) as plain:
            direct.open(f"http://127.0.0.1:{server.port}/", timeout=TIMEOUT)
        assert plain.value.code == 426
        assert plain.value.headers["Upgrade"] == "websocket"
        with pytest.raises(urllib.error.HTTPError) as posted:
            direct.open(f"http://127.0.0.1:{server.port}/", data=b"x", timeout=TIMEOUT)
        assert posted.value.code == 405
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
