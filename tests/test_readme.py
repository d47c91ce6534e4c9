"""The examples in README.rst and docs/, run as they are written, against real servers on loopback.

Every literal block of README.rst (``.. code-block:: python`` and paragraphs ending in ``::``)
is listed in :data:`BLOCKS` under a line that identifies it, with what runs it: a Python block
is executed, a shell block has each of its commands run or listed in :data:`NOT_RUN` with the
reason it cannot run here. A block the table does not know, or an entry whose block has gone,
fails :func:`test_every_block_is_covered`: a new example in the README needs a test. An
example may also live in (or be repeated, identically, in) a page of ``docs/``, where the same
table finds it; the docs' other Python blocks are run by test_docs_build.py (which also
checks that every Python block of README.rst and docs/ is run by some test), and their
``testcode`` examples by Sphinx's doctest builder. The README's links must be absolute URLs
(PyPI shows the README, where a relative link leads nowhere).

Addresses in a block stand for the reader's own; the test swaps each one for a local server's
through :func:`substitute`, an explicit mapping of strings that must all occur in the block
(so a changed README cannot silently stop being tested). Blocks run with ``no_proxy=*`` so a
proxy in the environment does not get between the client and the loopback server, and with
``wsclient`` already imported, as the README's later blocks assume.
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

import wsclient

from .pki import Pki

README = Path(__file__).resolve().parent.parent / "README.rst"
DOCS = README.parent / "docs"
WAIT = 30.0

# What identifies each README block (a string only that block contains), and its test.
CLIENT = 'wsclient.connect("wss://example.com/feed"'
UNIX = 'unix_path="/run/app.sock"'
SERVER = 'wsclient.serve(handler, "127.0.0.1", 8765)'
TLS = 'cafile="my-ca.pem"'
QUICK_START = 'pip install -e ".[test]"'
INSTALL = "pip install wsclient-sync"
COMMAND_LINE = "python -m wsclient serve 127.0.0.1:8765"
LONG_FUZZ = "WSCLIENT_FUZZ_ITERATIONS=300000"
BLOCKS = {
    CLIENT: "test_client_block",
    UNIX: "test_unix_socket_block",
    SERVER: "test_server_block",
    TLS: "test_tls_block",
    QUICK_START: "test_quick_start_block",
    INSTALL: "test_install_block",
    COMMAND_LINE: "test_command_line_block",
    LONG_FUZZ: "test_long_fuzz_block",
}


@dataclasses.dataclass
class Block:
    """A literal block: where it starts, its language (``None`` for ``::``), its text, and
    the file it is in (relative to the checkout)."""

    line: int
    language: Optional[str]
    code: str
    source: str = "README.rst"


def literal_blocks(text: str, source: str = "README.rst") -> List[Block]:
    """The literal blocks of an RST document (the file ``source``), dedented, in order."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        stripped = line.rstrip()
        directive = re.match(r"\s*\.\. code-block::\s*(\S*)", stripped)
        if not directive and not stripped.endswith("::"):
            continue
        if not directive and stripped.lstrip().startswith(".."):
            continue  # another directive (a comment, say)
        indent = len(line) - len(line.lstrip())
        body = []
        for following in lines[number + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        code = textwrap.dedent("\n".join(body)).strip("\n")
        if code:
            blocks.append(Block(number + 1, directive.group(1) if directive else None, code,
                                source))
    return blocks


def readme_blocks() -> List[Block]:
    return literal_blocks(README.read_text(encoding="utf-8"))


def substitute(code: str, replacements: Dict[str, str]) -> str:
    """``code`` with each key replaced by its value; every key must occur in it."""
    for old, new in replacements.items():
        assert old in code, f"{old!r} is no longer in the block:\n{code}"
        code = code.replace(old, new)
    return code


def run_python(block: Block, replacements: Dict[str, str],
               namespace: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Execute a Python block (after :func:`substitute`) in ``namespace`` (a new one by
    default, which another thread may watch as it fills); return the namespace."""
    code = compile(substitute(block.code, replacements), f"{block.source}:{block.line}", "exec")
    namespace = {} if namespace is None else namespace
    namespace.update({"__name__": "readme", "wsclient": wsclient})
    exec(code, namespace)
    return namespace


def all_blocks() -> List[Block]:
    """The blocks of README.rst, then those of every page of docs/."""
    found = readme_blocks()
    for page in sorted(DOCS.rglob("*.rst")):
        found += literal_blocks(page.read_text(encoding="utf-8"),
                                str(page.relative_to(README.parent)))
    return found


def find(key: str) -> Block:
    """The block of README.rst or docs/ that contains ``key`` (an example shown on several
    pages must be the same on each)."""
    matches = [block for block in all_blocks() if key in block.code]
    assert matches, f"no block of README.rst or docs/ contains {key!r}"
    assert len({block.code for block in matches}) == 1, f"different blocks contain {key!r}"
    return matches[0]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


# -- Python blocks -------------------------------------------------------------------------


def test_client_block(ws_server) -> None:
    """The Client section: sends three messages, reads a reply, then iterates to the end."""
    received: List[Any] = []

    def feed(ws: wsclient.WebSocket) -> None:
        for _ in range(3):
            received.append(ws.recv(timeout=WAIT))
        ws.send("the reply")
        ws.send("first update")
        ws.send("second update")  # then the handler returns: a normal close (1000)

    server = ws_server(feed)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        namespace = run_python(find(CLIENT), {"wss://example.com/feed": server.uri})
    assert received == ["hello", b"\x00\x01", "one message in fragments"]
    assert namespace["reply"] == "the reply"
    assert output.getvalue() == "first update\nsecond update\n"
    assert namespace["ws"].close_code == 1000


def test_unix_socket_block(ws_server, tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    ws_server(unix_path=path)
    namespace = run_python(find(UNIX), {"/run/app.sock": path})
    with namespace["ws"] as ws:
        assert ws.request.path == "/events"
        assert ws.request.headers["Host"] == "localhost"
        ws.send("over a unix socket")
        assert ws.recv(timeout=WAIT) == "over a unix socket"


def test_server_block() -> None:
    """The Server section: serve_forever() in a thread, a client, then shutdown()."""
    namespace: Dict[str, Any] = {}
    errors: List[BaseException] = []
    block = find(SERVER)

    def run() -> None:
        try:
            run_python(block, {", 8765)": ", 0)"}, namespace)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="readme-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while "server" not in namespace:
        assert thread.is_alive() and time.monotonic() < deadline, f"no server: {errors}"
        time.sleep(0.01)
    server = namespace["server"]
    try:
        with wsclient.connect(server.uri, timeout=WAIT) as ws:
            ws.send("echo me")
            assert ws.recv(timeout=WAIT) == "echo me"
    finally:
        server.shutdown()
        thread.join(WAIT)
    assert not thread.is_alive() and not errors


def test_tls_block(ws_server, pki: Pki) -> None:
    server = ws_server(ssl_context=pki.server_context())
    namespace = run_python(find(TLS), {
        '"my-ca.pem"': repr(pki.ca_file),
        "wss://internal.example/": f"wss://localhost:{server.port}/",
    })
    with namespace["ws"] as ws:
        ws.send("verified")
        assert ws.recv(timeout=WAIT) == "verified"


# -- shell blocks --------------------------------------------------------------------------

#: Shell commands of the README that are not run here, and why.
NOT_RUN = {
    'pip install -e ".[test]"': "installs the package; it has been installed to run these tests",
    "python -m pytest": "runs this test suite itself",
    "pip install wsclient-sync": "installs from PyPI; tests/test_packaging.py installs the wheel "
                                 "this checkout builds, in a fresh venv, and runs its demo",
    "python -m wsclient connect wss://example.com/":
        "interactive, against a server on the internet; interactive mode is tested under a "
        "pseudo-terminal in test_cli_interactive.py",
}


def commands(block: Block) -> List[str]:
    """The commands of a shell block, without their comments."""
    found = []
    for line in block.code.splitlines():
        command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
        if command:
            found.append(command)
    return found


def python_command(command: str) -> str:
    """``command`` running this interpreter where it says ``python``."""
    return re.sub(r"(^|\s)python ", lambda m: m.group(1) + shlex.quote(sys.executable) + " ",
                  command)


def run_shell(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(python_command(command), shell=True, executable="/bin/bash",
                          capture_output=True, text=True, timeout=WAIT)


def test_quick_start_block() -> None:
    block = find(QUICK_START)
    run = [command for command in commands(block) if command not in NOT_RUN]
    assert run == ["python -m wsclient demo"]
    result = run_shell(run[0])
    assert result.returncode == 0, result.stderr
    assert "round-trip time: median" in result.stdout
    assert "client: closed with code 1000" in result.stdout


def test_install_block() -> None:
    """The README installs the distribution setup.cfg names (not PyPI's unrelated
    ``wsclient``), and says the import name is ``wsclient``."""
    (command,) = commands(find(INSTALL))
    config = configparser.ConfigParser()
    config.read(README.parent / "setup.cfg", encoding="utf-8")
    assert command == f"pip install {config['metadata']['name']}" == INSTALL
    install = section("Install")
    assert "the module you import is ``wsclient``" in install
    assert "unrelated" in install and "``wsclient``" in install


@contextlib.contextmanager
def serve_command(command: str) -> Iterator[str]:
    """Run a ``serve`` command; yield its URI (the first line on stdout); SIGTERM at the end."""
    process = subprocess.Popen(shlex.split(python_command(command)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        uri = process.stdout.readline().strip()  # type: ignore[union-attr]
        assert uri.startswith("ws://127.0.0.1:"), process.stderr.read()  # type: ignore[union-attr]
        yield uri
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.communicate(timeout=WAIT)
            pytest.fail("serve did not stop on SIGTERM")
    assert process.returncode == 0


def test_command_line_block() -> None:
    block = find(COMMAND_LINE)
    run = [command for command in commands(block) if command not in NOT_RUN]
    demo, pipe, serve = run
    assert demo == "python -m wsclient demo"  # run by test_quick_start_block
    # The server is started on port 0 instead of 8765, and the pipe goes to its port.
    with serve_command(substitute(serve, {":8765": ":0"})) as uri:
        result = run_shell(substitute(pipe, {"ws://127.0.0.1:8765/": uri}))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a\nb\n"


def test_long_fuzz_block() -> None:
    """The long fuzzing run of *Reliability*, at 200 inputs per target instead of 300,000."""
    (command,) = commands(find(LONG_FUZZ))
    result = run_shell(substitute(command, {LONG_FUZZ: "WSCLIENT_FUZZ_ITERATIONS=200"}))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


# -- coverage ------------------------------------------------------------------------------

def test_every_block_is_covered() -> None:
    """Each README block is run by exactly one test above, and each test finds its block
    (in the README or in docs/)."""
    blocks = readme_blocks()
    assert len(blocks) >= 4  # the install, the quick start, a client, a server
    for block in blocks:
        keys = [key for key in BLOCKS if key in block.code]
        assert len(keys) == 1, f"README.rst line {block.line}: no test runs this block:\n{block.code}"
        assert block.language in (None, "python"), block
    for key, test in BLOCKS.items():
        find(key)
        assert callable(globals().get(test)), test
    text = README.read_text(encoding="utf-8") + "".join(
        page.read_text(encoding="utf-8") for page in DOCS.rglob("*.rst"))
    for command, reason in NOT_RUN.items():
        assert command in text and reason.strip(), command


def test_readme_is_a_landing_page() -> None:
    """README.rst stays a landing page (issue 29): the reference lives in docs/, and every
    page it links to exists."""
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 20 * 1024, len(text.encode("utf-8"))
    files = [path for path in map(repository_file, link_targets(text)) if path is not None]
    docs = [path for path in files if path.startswith("docs/") and path.endswith(".rst")]
    assert len(set(docs)) >= 15, docs
    for path in files:
        assert (README.parent / path).is_file(), path


def project_urls() -> Dict[str, str]:
    """setup.cfg's ``project_urls``: label -> URL."""
    config = configparser.ConfigParser()
    config.read(README.parent / "setup.cfg", encoding="utf-8")
    urls = {}
    for line in config["metadata"]["project_urls"].strip().splitlines():
        label, _, url = line.partition("=")
        urls[label.strip()] = url.strip()
    return urls


def link_targets(text: str) -> List[str]:
    """Where the links of an RST document lead: embedded ``<target>`_`` URIs, hyperlink
    targets (``.. _name: target``) and anonymous ones (``__ target``)."""
    embedded = re.findall(r"`[^`]*<([^<>`]+)>`__?", text)
    named = re.findall(r"^\.\. _[^:]+:\s*(\S.*)$", text, re.MULTILINE)
    anonymous = re.findall(r"^(?:\.\. __:|__)\s+(\S.*)$", text, re.MULTILINE)
    return [target.strip() for target in embedded + named + anonymous]


def repository_file(url: str) -> Optional[str]:
    """The checkout's path ``url`` shows on the repository's site (``Source/blob/main/PATH``),
    or None for a URL elsewhere."""
    prefix = project_urls()["Source"].rstrip("/") + "/blob/main/"
    return url[len(prefix):] if url.startswith(prefix) else None


def test_readme_links_are_absolute() -> None:
    """PyPI shows README.rst as the project's page, where a relative link (``docs/api.rst``)
    leads nowhere: every link is an absolute http(s) URL, and those into the repository are
    under setup.cfg's Source URL (as are its Documentation and Changelog URLs)."""
    urls = project_urls()
    assert urls["Source"].startswith("https://"), urls
    for label in ("Documentation", "Changelog"):
        path = repository_file(urls[label])
        assert path is not None and (README.parent / path).is_file(), (label, urls[label])
    targets = link_targets(README.read_text(encoding="utf-8"))
    assert len(targets) >= 15, targets
    for target in targets:
        assert re.match(r"https?://[^/\s]+/", target), f"README.rst links to {target!r}: not an absolute URL"
    # The relative links the README once had would fail here.
    assert link_targets("`api <docs/api.rst>`_") == ["docs/api.rst"]
    assert not any(re.match(r"https?://", target) for target in link_targets(".. _api: docs/api.rst"))


# -- the comparison table ------------------------------------------------------------------


def section(title: str, path: Path = README) -> str:
    """The text of the section of README.rst (or ``path``) with this title (up to the next
    title)."""
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(title)}\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", text,
                      re.MULTILINE | re.DOTALL)
    assert match, f"no section {title!r} in README.rst"
    return match.group(1)


def table_row(text: str, label: str) -> List[str]:
    """The cells of the simple-table row that starts with ``label``."""
    for line in text.splitlines():
        if line.startswith(label + "  "):
            return re.split(r"\s{2,}", line.strip())[1:]
    raise AssertionError(f"no row {label!r}")


def test_comparison_figures_are_the_performance_figures() -> None:
    """The benchmark rows of the README's comparison repeat the performance report
    (docs/performance.rst), so they cannot drift apart."""
    performance = (DOCS / "performance.rst").read_text(encoding="utf-8")
    comparison = section("Compared with websocket-client and websockets")
    assert "python -m benchmarks" in performance and "python -m benchmarks" in comparison
    # The comparison gives the ratios to raw (Performance adds the CPU per operation after
    # a ";"), for the libraries it compares (not Node's last column).
    for label in ("client round trips, 32 B", "server round trips, 32 B",
                  "server, 1,000 connections"):
        ratios = [cell.split(";")[0] for cell in table_row(performance, label)]
        assert table_row(comparison, label) == ratios[:len(table_row(comparison, label))], label
    # The comparison gives the 1 MiB half of Performance's "1 MiB / 16 MiB" cells.
    echo = [re.sub(r" / \S+", "", cell) for cell in
            table_row(performance, "client echo, 1 MiB / 16 MiB")]
    assert [cell.split(" (CPU")[0] for cell in table_row(comparison, "client echo, 1 MiB")] == echo[:3]
    # The memory row rounds Performance's "1,000 connections" figures (30.2 KiB -> 30 KiB).
    ours, _, theirs = table_row(comparison, "server memory per idle connection")
    measured = table_row(performance, "server, 1,000 connections")
    kib = [float(re.search(r"([0-9.]+) KiB", measured[i]).group(1)) for i in (0, 2)]
    assert [ours, theirs] == [f"{round(kib[0])} KiB", f"{round(kib[1])} KiB"]
