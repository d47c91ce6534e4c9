"""Type checking as a user meets it: a script that calls the API, checked by mypy --strict.

The script is checked against the *installed* package (no ``PYTHONPATH``, in a fresh
directory), as after the README's ``pip install -e ".[test]"``: an editable install that
hides the package from mypy (setuptools' import hook) fails here, and so does a signature
that takes ``**options``, since a misspelt keyword must be mypy's error. ``.ci/run`` checks
the package itself (``python -m mypy wsclient``); the rules on ``# type: ignore`` are
checked below.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Set, Tuple

import pytest

from .conftest import need

ROOT = Path(__file__).resolve().parent.parent

#: A user's script. Each ``# E:`` comment is an error mypy must report on that line (a
#: substring of its message); every other line must pass.
SCRIPT = '''\
from typing import List, Union

import wsclient
from wsclient import WebSocket, WebSocketServer
from wsclient.workers import serve_workers


def echo(ws: WebSocket) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    with wsclient.serve(echo, "127.0.0.1", 0, ping_interval=None, max_size=2**20) as server:
        ws = wsclient.connect(server.uri, timeout=5.0, compression=None, max_queue=None)
        ws.send("hello")
        ready: List[WebSocket] = wsclient.wait([ws], timeout=1.0)
        message: Union[str, bytes] = ws.recv()
        skipped: List[WebSocket] = wsclient.broadcast(server.connections, "to all")
        ws.close()
        count: int = ws.recv()  # E: Incompatible types in assignment
    wsclient.serve(echo, ssl_contxt=None)  # E: Unexpected keyword argument "ssl_contxt" for "serve"
    wsclient.connect("ws://localhost/", max_sise=1)  # E: Unexpected keyword argument "max_sise" for overloaded function "connect"
    WebSocketServer(("127.0.0.1", 0), echo, ping_intervall=1.0)  # E: Unexpected keyword argument "ping_intervall"
    serve_workers(echo, workers=2, close_timout=1.0)  # E: Unexpected keyword argument "close_timout" for "serve_workers"
'''


def _expected(script: str) -> Set[Tuple[int, str]]:
    return {(number, line.split("# E: ", 1)[1])
            for number, line in enumerate(script.splitlines(), 1) if "# E: " in line}


def test_a_users_script_type_checks_against_the_installed_package(tmp_path: Path) -> None:
    need(_has_mypy(), "mypy is not installed (it is in the test extra)")
    (tmp_path / "user.py").write_text(SCRIPT)
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "MYPYPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-error-codes",
         "--cache-dir", str(tmp_path / "cache"), "user.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    where = _installed_location(tmp_path, env)
    found = {(int(line.split(":")[1]), line) for line in errors}
    for number, wanted in _expected(SCRIPT):
        assert any(n == number and wanted in line for n, line in found), (
            f"mypy did not report {wanted!r} on line {number} (wsclient from {where}):\n{result.stdout}")
    unexpected = [line for n, line in found if n not in {number for number, _ in _expected(SCRIPT)}]
    assert not unexpected, f"wsclient as installed at {where}:\n" + "\n".join(unexpected)
    assert result.returncode == 1, result.stdout + result.stderr


def _has_mypy() -> bool:
    try:
        import mypy  # noqa: F401
    except ImportError:
        return False
    return True


def _installed_location(cwd: Path, env: dict) -> str:
    """Where the interpreter imports wsclient from without PYTHONPATH (for messages)."""
    probe = subprocess.run([sys.executable, "-c", "import wsclient; print(wsclient.__file__)"],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    return (probe.stdout or probe.stderr).strip()


# -- the package's own rules ------------------------------------------------------------

_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")

#: Modules being rewritten (issue 21, item 1), whose few ignores do not say why yet.
_PENDING: Set[str] = set()


def _ignores() -> List[Tuple[str, int, str]]:
    found = []
    for path in sorted((ROOT / "wsclient").glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _IGNORE.search(line):
                found.append((path.name, number, line))
    return found


def test_every_type_ignore_is_narrow_and_says_why() -> None:
    assert _ignores(), "the scan finds nothing: the pattern is broken"
    for name, number, line in _ignores():
        match = _IGNORE.search(line)
        assert match is not None
        where = f"wsclient/{name}:{number}: {line.strip()}"
        assert match["codes"], f"a type: ignore without an error code: {where}"
        assert line.index("#") > len(line) - len(line.lstrip()), f"a type: ignore alone on its line: {where}"
        if name not in _PENDING:
            assert re.match(r"\s*#\s*\S", match["rest"]), f"a type: ignore that does not say why: {where}"


def test_nothing_turns_mypy_off_for_a_whole_module() -> None:
    for path in sorted((ROOT / "wsclient").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"^#\s*(mypy:|type:\s*ignore)", text, re.MULTILINE), path.name
    config = (ROOT / "pyproject.toml").read_text()
    section = config.split("[tool.mypy]", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^strict\s*=\s*true$", section, re.MULTILINE)
    assert "ignore_errors" not in section and "ignore_missing_imports" not in section
    assert "[mypy" not in (ROOT / "setup.cfg").read_text()


def test_ci_runs_mypy_on_the_package_before_the_tests() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert "python -m mypy wsclient" in run
    assert run.index("python -m mypy wsclient") < run.index('eval "$TEST"')
