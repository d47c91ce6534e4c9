"""The documentation in ``docs/`` builds clean, covers the public API, and its examples run.

- ``python -m sphinx -W -n -b html``: every warning is an error and every cross-reference
  must resolve (``-n``, nitpicky), as in CI.
- Every name in ``wsclient.__all__`` (and in ``wsclient.wsgi.__all__``) has an entry in the
  built inventory (``objects.inv``), on the API reference page.
- ``-b doctest`` runs the ``testcode`` examples (the tutorial's: a server and clients on
  loopback) and compares their output.
- Every other Python block of ``docs/`` and README.rst (``.. code-block:: python``, and a
  ``::`` block that is valid Python) runs as it is written against real components on
  loopback: a test here (:data:`DOC_BLOCKS`) or in ``tests/test_readme.py`` (its
  ``BLOCKS``) finds it by a string only it contains, swaps the addresses that stand for the
  reader's own for local ones (an explicit mapping whose keys must all occur), and runs it:
  in this process, or as a script in a subprocess where it starts processes of its own
  (``serve_workers``). Peers are the real thing: websocket-client and websockets run the
  migration guides' "before" halves, redis-server (on a free loopback port) the Redis
  relay. A Python block no test runs fails :func:`test_every_python_example_runs`, unless
  :data:`NOT_RUN_PYTHON` lists it with the reason (it is empty).

With ``CI=true`` a missing Sphinx (or furo, or redis-server) fails these tests instead of
skipping them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

import wsclient
import wsclient.wsgi

from .multiprocess.engines import run_redis
from .pki import Pki
from .proxies import free_port
from .test_readme import BLOCKS as README_BLOCKS
from .test_readme import (README, Block, commands, find, literal_blocks, run_python, serve_command,
                          substitute)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
WAIT = 600.0
#: Seconds any one step of an example may take (a connection, a reply, a process's start).
STEP = 30.0


def require_sphinx() -> None:
    for module in ("sphinx", "furo"):
        if importlib.util.find_spec(module) is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{module} is not installed (pip install -e \".[docs]\")")
            pytest.skip(f"{module} is not installed")


def sphinx(builder: str, out: Path) -> subprocess.CompletedProcess:
    """Build ``docs/`` with ``builder``, warnings as errors, nitpicky."""
    require_sphinx()
    env = dict(os.environ, PYTHONPATH=str(ROOT), no_proxy="*", NO_PROXY="*")
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", builder,
         "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT)


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    result = sphinx("html", out)
    assert result.returncode == 0, f"the docs do not build clean:\n{result.stderr[-6000:]}"
    return out


def inventory(out: Path) -> Dict[str, str]:
    """``objects.inv``'s Python entries: full name to the page (and anchor) documenting it."""
    data = (out / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four text lines, then the zlib-compressed entries
        header_end = data.index(b"\n", header_end) + 1
    entries = {}
    for line in zlib.decompress(data[header_end:]).decode("utf-8").splitlines():
        match = re.match(r"(.+?)\s+(py:\w+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if match:
            entries[match.group(1)] = match.group(4)
    return entries


def test_docs_build_clean_and_every_page_is_there(html: Path) -> None:
    for page in ("index", "tutorial", "api", "cli", "design", "deployment", "performance",
                 "changelog", "release", "migrate-websocket-client", "migrate-websockets",
                 "guide/client", "guide/threads", "guide/tls", "guide/proxies",
                 "guide/compression", "guide/reconnecting", "guide/server", "guide/wsgi",
                 "guide/testing"):
        assert (html / f"{page}.html").is_file(), page


@pytest.mark.parametrize("name", wsclient.__all__)
def test_every_public_name_has_a_reference_entry(html: Path, name: str) -> None:
    entries = inventory(html)
    assert f"wsclient.{name}" in entries, f"wsclient.{name} has no entry in the API reference"
    assert entries[f"wsclient.{name}"].startswith("api.html"), entries[f"wsclient.{name}"]


def test_wsgi_module_has_reference_entries(html: Path) -> None:
    entries = inventory(html)
    missing = [name for name in wsclient.wsgi.__all__ if f"wsclient.wsgi.{name}" not in entries]
    assert "wsclient.wsgi" in entries and not missing, missing


def test_methods_users_call_are_documented(html: Path) -> None:
    entries = inventory(html)
    for name in ("WebSocket.send", "WebSocket.recv", "WebSocket.close", "WebSocket.ping",
                 "WebSocketServer.serve_forever", "WebSocketServer.shutdown",
                 "ReconnectingWebSocket.recv", "Headers.get_all"):
        assert f"wsclient.{name}" in entries, name


def test_cli_reference_is_the_parsers_help(html: Path) -> None:
    page = (html / "cli.html").read_text(encoding="utf-8")
    for option in ("--record", "--any-client-messages", "--workers", "--reconnect", "--cafile"):
        assert option in page, option


def test_tutorial_examples_run(tmp_path: Path) -> None:
    result = sphinx("doctest", tmp_path)
    output = (tmp_path / "output.txt").read_text(encoding="utf-8") if (
        tmp_path / "output.txt").exists() else ""
    assert result.returncode == 0, output[-6000:] + result.stderr[-3000:]
    tests = re.search(r"^\s+(\d+) tests?$", output, re.M)
    assert tests and int(tests.group(1)) >= 6, output
    assert "0 failures in tests" in output


def docs_pages() -> List[Path]:
    return sorted(DOCS.rglob("*.rst"))


def test_every_python_block_in_the_docs_compiles() -> None:
    """A ``.. code-block:: python`` is valid Python (and is run: see below)."""
    blocks = 0
    for page in docs_pages():
        for block in literal_blocks(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT))):
            if block.language == "python":
                blocks += 1
                compile(block.code, f"{page.relative_to(ROOT)}:{block.line}", "exec")
    assert blocks >= 3
    assert any(".. testcode::" in page.read_text(encoding="utf-8") for page in docs_pages())


# -- the other pages' Python examples, run -------------------------------------------------

# What identifies each Python block of docs/ that tests/test_readme.py does not run (a string
# only that block contains), and the test here that runs it.
WORKERS = 'serve_workers(handler, "0.0.0.0", 8765'
TLS_WORKERS = 'run_workers(make_server, "0.0.0.0", 8443'
TRUSTED_PROXIES = 'trusted_proxies=["127.0.0.1", "10.0.0.0/8"])'
REDIS = 'RedisRelay("redis://127.0.0.1:6379/0", "chat")'
WEBSOCKET_APP = "websocket.WebSocketApp(url"
WEBSOCKETS_CLIENT = "from websockets.sync.client import connect"
WEBSOCKETS_SERVER = "from websockets.sync.server import serve"
DOC_BLOCKS = {
    WORKERS: "test_serve_workers_block",
    TLS_WORKERS: "test_run_workers_tls_block",
    TRUSTED_PROXIES: "test_trusted_proxies_block",
    REDIS: "test_redis_relay_block",
    WEBSOCKET_APP: "test_websocket_client_migration_block",
    WEBSOCKETS_CLIENT: "test_websockets_client_migration_block",
    WEBSOCKETS_SERVER: "test_websockets_server_migration_block",
}

#: Python blocks that no test runs, each with the reason (a string only that block
#: contains -> why). Empty: prefer making an example runnable to listing it here.
NOT_RUN_PYTHON: Dict[str, str] = {}


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the environment between the examples and loopback."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


def is_python(block: Block) -> bool:
    """A ``python`` code block, or a ``::`` block that is valid Python (not a shell command,
    a configuration file or a diagram)."""
    if block.language is not None:
        return block.language == "python"
    try:
        compile(block.code, block.source, "exec")
    except SyntaxError:
        return False
    return True


#: A line only Python code starts with (no shell command, configuration or diagram does).
PYTHON_LINE = re.compile(r"^\s*(import \w|from [\w.]+ import |def \w+\(|class \w+|with .+:$"
                         r"|for .+ in .+:$|\w+ = \w+[.(])")


def all_literal_blocks() -> List[Block]:
    found = literal_blocks(README.read_text(encoding="utf-8"))
    for page in docs_pages():
        found += literal_blocks(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))
    return found


def python_blocks() -> List[Block]:
    return [block for block in all_literal_blocks() if is_python(block)]


def test_no_python_example_hides_in_a_plain_block() -> None:
    """A ``::`` block that reads like Python but does not compile is a broken example that
    :func:`is_python` would take for a shell block: it fails here instead."""
    for block in all_literal_blocks():
        if block.language is None and not is_python(block):
            lines = [line for line in block.code.splitlines() if PYTHON_LINE.match(line)]
            assert not lines, f"{block.source}:{block.line}: Python that does not compile: {lines}"
    assert PYTHON_LINE.match("ws = wsclient.connect(uri") and PYTHON_LINE.match("import wsclient")


def test_every_python_example_runs() -> None:
    """Each Python block of README.rst and docs/ is run by exactly one test (here or in
    test_readme.py), or listed, with a reason, in NOT_RUN_PYTHON; each entry finds its
    block."""
    blocks = python_blocks()
    assert len(blocks) >= 10, [f"{block.source}:{block.line}" for block in blocks]
    keys = list(README_BLOCKS) + list(DOC_BLOCKS) + list(NOT_RUN_PYTHON)
    for block in blocks:
        matched = [key for key in keys if key in block.code]
        assert len(matched) == 1, (
            f"{block.source}:{block.line}: no test runs this Python example (add one to "
            f"DOC_BLOCKS, or a reason to NOT_RUN_PYTHON):\n{block.code}")
    for key, test in DOC_BLOCKS.items():
        assert is_python(find(key)), key
        assert callable(globals().get(test)), test
    for key, reason in NOT_RUN_PYTHON.items():
        assert is_python(find(key)) and reason.strip(), key


def wait_for(condition: Callable[[], object], what: str, timeout: float = STEP) -> None:
    """Poll ``condition`` (bounded in time) until it is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)


def settle_in_select() -> None:
    """Before stopping a websockets server whose ``serve_forever()`` runs in a block's thread,
    where the selector is ``select()`` (the no-poll step): wait until that thread sleeps in
    the kernel's ``select()``, at most :data:`STEP` seconds.

    websockets' ``Server.shutdown()`` closes the listening socket before it wakes
    ``serve_forever()``, which calls ``select()`` outside its ``try``: a thread that comes back
    to ``select()`` only after the close (it has just accepted the last connection) gets
    EBADF and raises. epoll drops a closed socket instead. Where the kernel does not say
    where a thread sleeps (``/proc/self/task/ID/wchan``), this returns at once.
    """
    if selectors.DefaultSelector is not selectors.SelectSelector:
        return
    threads = [t for t in threading.enumerate() if t.name.startswith("example-")]
    if len(threads) != 1 or threads[0].native_id is None:
        return
    path = f"/proc/self/task/{threads[0].native_id}/wchan"
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                where = f.read()
        except OSError:
            return
        if "poll_schedule" in where or not where.strip("0\n"):
            return  # In select() (or poll()); or the kernel does not tell.
        time.sleep(0.001)


@contextlib.contextmanager
def running_block(block: Block, replacements: Dict[str, str],
                  namespace: Dict[str, Any]) -> Iterator[List[BaseException]]:
    """Run a block that serves forever in a thread; yield the list its exception would go
    to. The caller stops its server(s); the thread must then end."""
    errors: List[BaseException] = []

    def run() -> None:
        try:
            run_python(block, replacements, namespace)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"example-{block.source}:{block.line}",
                              daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        thread.join(STEP)
    assert not thread.is_alive(), f"{block.source}:{block.line} did not end"
    assert not errors, errors


def run_bounded(block: Block, replacements: Dict[str, str]) -> str:
    """Run a block that ends by itself, in a thread given :data:`STEP` seconds to end (a
    broken example fails instead of hanging the suite); return what it printed."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output), running_block(block, replacements, {}):
        pass
    return output.getvalue()


def server_named(namespace: Dict[str, Any], kind: type, errors: List[BaseException]) -> Any:
    """The object the block bound to ``server``, once it is a ``kind``."""
    wait_for(lambda: errors or isinstance(namespace.get("server"), kind), f"a {kind.__name__}")
    assert not errors, errors
    return namespace["server"]


@contextlib.contextmanager
def script(code: str, directory: Path) -> Iterator[subprocess.Popen]:
    """``code`` run as ``directory/example.py`` (a main module, as a reader runs it); stopped
    with SIGTERM by its PID at the end (SIGKILL after a bounded wait, and the test fails);
    its output is in ``directory/example.log``."""
    path = directory / "example.py"
    path.write_text(code, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT), no_proxy="*", NO_PROXY="*")
    with open(directory / "example.log", "wb") as log:
        process = subprocess.Popen([sys.executable, str(path)], cwd=directory, env=env,
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(STEP)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STEP)
            pytest.fail("the example did not stop on SIGTERM")


def log_of(directory: Path) -> str:
    return (directory / "example.log").read_text(encoding="utf-8", errors="replace")[-4000:]


def connect_when_listening(uri: str, process: subprocess.Popen, directory: Path,
                           **options: Any) -> wsclient.WebSocket:
    """A connection to the example's server, retried (bounded) while nothing listens yet."""
    deadline = time.monotonic() + STEP
    while True:
        assert process.poll() is None, f"the example exited:\n{log_of(directory)}"
        try:
            return wsclient.connect(uri, timeout=STEP, **options)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, f"nothing listens at {uri}:\n{log_of(directory)}"
            time.sleep(0.05)


def test_serve_workers_block(tmp_path: Path) -> None:
    """*Deployment*'s serve_workers script: its workers echo; SIGTERM stops it with 0.
    On a free loopback port instead of 0.0.0.0:8765, and 2 workers instead of 4 (2 cores)."""
    port = free_port()
    code = substitute(find(WORKERS).code, {'"0.0.0.0", 8765': f'"127.0.0.1", {port}',
                                           "workers=4": "workers=2"})
    with script(code, tmp_path) as process:
        for number in range(4):
            with connect_when_listening(f"ws://127.0.0.1:{port}/", process, tmp_path) as ws:
                ws.send(f"message {number}")
                assert ws.recv(timeout=STEP) == f"message {number}"
    assert process.returncode == 0, log_of(tmp_path)


def test_serve_workers_command() -> None:
    """*Deployment*'s command line (a shell block, run too): ``serve --workers`` prints its
    URI, its workers echo, SIGTERM stops it with 0 (2 workers on a free loopback port)."""
    (command,) = commands(find("python -m wsclient serve 0.0.0.0:8765 --workers 4"))
    with serve_command(substitute(command, {"0.0.0.0:8765": "127.0.0.1:0",
                                            "--workers 4": "--workers 2"})) as uri:
        for number in range(4):
            with wsclient.connect(uri, timeout=STEP) as ws:
                ws.send(f"message {number}")
                assert ws.recv(timeout=STEP) == f"message {number}"


def test_run_workers_tls_block(tmp_path: Path, pki: Pki) -> None:
    """*Deployment*'s run_workers script, with cert.pem and key.pem in its directory (a
    certificate for localhost from the test CA): it serves wss:// from its workers."""
    shutil.copy(pki.cert_file, tmp_path / "cert.pem")
    shutil.copy(pki.key_file, tmp_path / "key.pem")
    port = free_port()
    code = substitute(find(TLS_WORKERS).code, {'"0.0.0.0", 8443': f'"127.0.0.1", {port}',
                                               "workers=4": "workers=2"})
    with script(code, tmp_path) as process:
        with connect_when_listening(f"wss://localhost:{port}/", process, tmp_path,
                                    ssl_context=pki.client_context()) as ws:
            ws.send("over TLS")
            assert ws.recv(timeout=STEP) == "over TLS"
    assert process.returncode == 0, log_of(tmp_path)


def test_trusted_proxies_block() -> None:
    """*The client's address behind a proxy*: behind a trusted proxy (the test's 127.0.0.1)
    the handler sees the address X-Forwarded-For gives, read from the right."""
    namespace = run_python(find(TRUSTED_PROXIES), {"8001,": "0,"})
    server = namespace["server"]
    thread = threading.Thread(target=server.serve_forever, name="trusted-proxies", daemon=True)
    thread.start()
    try:
        forwarded = {"X-Forwarded-For": "1.1.1.1, 203.0.113.7, 10.0.0.2"}
        with wsclient.connect(server.uri, timeout=STEP, headers=forwarded) as ws:
            assert ws.recv(timeout=STEP) == "hello, 203.0.113.7"
        with wsclient.connect(server.uri, timeout=STEP) as ws:
            assert ws.recv(timeout=STEP) == "hello, 127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STEP)
    assert not thread.is_alive()


def test_redis_relay_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """*Broadcast to every process through Redis*, against a real redis-server: a message
    from one client reaches every client through Redis, and so does one another process
    publishes on the channel."""
    import redis  # the test extra's; the example's dependency, not wsclient's

    monkeypatch.syspath_prepend(str(EXAMPLES))  # where "from redis_chat import" finds it
    monkeypatch.setitem(sys.modules, "redis_chat", None)  # restored (removed) afterwards,
    del sys.modules["redis_chat"]                          # imported afresh by the example
    with run_redis(str(tmp_path)) as port:
        namespace: Dict[str, Any] = {}
        replacements = {"redis://127.0.0.1:6379/0": f"redis://127.0.0.1:{port}/0",
                        '"127.0.0.1", 8001)': '"127.0.0.1", 0)'}
        with running_block(find(REDIS), replacements, namespace) as errors:
            server = server_named(namespace, wsclient.WebSocketServer, errors)
            try:
                with wsclient.connect(server.uri, timeout=STEP) as first, \
                        wsclient.connect(server.uri, timeout=STEP) as second:
                    wait_for(lambda: len(server.connections) == 2, "both clients")
                    other = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
                    listener = other.pubsub()
                    try:
                        listener.subscribe("chat")  # another process's view of the channel
                        confirmed = listener.get_message(timeout=STEP)
                        assert confirmed and confirmed["type"] == "subscribe", confirmed
                        first.send("hello from first")
                        assert first.recv(timeout=STEP) == "hello from first"
                        assert second.recv(timeout=STEP) == "hello from first"
                        # It went through Redis, where every process sees it.
                        seen = listener.get_message(timeout=STEP)
                        assert seen and seen["data"] == "hello from first", seen
                        assert other.publish("chat", "from another process") == 2
                    finally:
                        listener.close()
                        other.close()
                    assert first.recv(timeout=STEP) == "from another process"
                    assert second.recv(timeout=STEP) == "from another process"
            finally:
                server.shutdown()
        namespace["relay"].close()


def test_websocket_client_migration_block(ws_server) -> None:
    """*Moving from websocket-client*: the WebSocketApp half (websocket-client itself) and the
    wsclient half each subscribe once and print the echoed reply."""
    received: List[str] = []

    def echo(ws: wsclient.WebSocket) -> None:
        for message in ws:
            received.append(message)
            ws.send(message)

    server = ws_server(echo)
    output = run_bounded(find(WEBSOCKET_APP), {"ws://127.0.0.1:8765/": server.uri})
    assert output == "got subscribe: prices\n" * 2
    assert received == ["subscribe: prices"] * 2


def test_websockets_client_migration_block(ws_server) -> None:
    """*Moving from websockets' threading API*, the client: both libraries send the header
    and print the echo."""
    tokens: List[str] = []

    def echo(ws: wsclient.WebSocket) -> None:
        tokens.append(ws.request.headers["Authorization"])
        for message in ws:
            ws.send(message)

    server = ws_server(echo)
    output = run_bounded(find(WEBSOCKETS_CLIENT), {"ws://127.0.0.1:8765/": server.uri})
    assert output == "websockets: hello\nwsclient: hello\n"
    assert tokens == ["Bearer s3cret"] * 2


def check_token_server(uri: str) -> None:
    """With the token, an echo; without it, a 401 response."""
    with wsclient.connect(uri, timeout=STEP, headers={"Authorization": "Bearer s3cret"}) as ws:
        ws.send("let me in")
        assert ws.recv(timeout=STEP) == "let me in"
    with pytest.raises(wsclient.InvalidStatus) as refused:
        wsclient.connect(uri, timeout=STEP)
    assert refused.value.response.status == 401


def test_websockets_server_migration_block() -> None:
    """*Moving from websockets' threading API*, the server: the websockets server (the real
    library), then the wsclient one, each checking the token and echoing."""
    from websockets.sync.server import Server

    namespace: Dict[str, Any] = {}
    replacements = {'"127.0.0.1", 8765,': '"127.0.0.1", 0,',
                    '"127.0.0.1", 8766,': '"127.0.0.1", 0,'}
    with running_block(find(WEBSOCKETS_SERVER), replacements, namespace) as errors:
        theirs = server_named(namespace, Server, errors)
        try:
            check_token_server(f"ws://127.0.0.1:{theirs.socket.getsockname()[1]}/")
        finally:
            settle_in_select()
            theirs.shutdown()
        ours = server_named(namespace, wsclient.WebSocketServer, errors)
        try:
            check_token_server(ours.uri)
        finally:
            ours.shutdown()
