"""The documentation in ``docs/`` builds clean, covers the public API, and its examples run.

- ``python -m sphinx -W -n -b html``: every warning is an error and every cross-reference
  must resolve (``-n``, nitpicky), as in CI.
- Every name in ``wsclient.__all__`` (and in ``wsclient.wsgi.__all__``) has an entry in the
  built inventory (``objects.inv``), on the API reference page.
- ``-b doctest`` runs the ``testcode`` examples (the tutorial's: a server and clients on
  loopback) and compares their output; the Python blocks of the other pages are compiled
  here, and those that stand for a reader's own server are run by ``tests/test_readme.py``
  against local servers.

With ``CI=true`` a missing Sphinx (or furo) fails these tests instead of skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Dict, List

import pytest

import wsclient
import wsclient.wsgi

from .test_readme import literal_blocks

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WAIT = 600.0


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
    """A Python block that is not a ``testcode`` is at least valid Python (those that need a
    server of the reader's own are run by test_readme.py, wherever they live)."""
    blocks = 0
    for page in docs_pages():
        for block in literal_blocks(page.read_text(encoding="utf-8")):
            if block.language == "python":
                blocks += 1
                compile(block.code, f"{page.relative_to(ROOT)}:{block.line}", "exec")
    assert blocks >= 3
    assert any(".. testcode::" in page.read_text(encoding="utf-8") for page in docs_pages())
