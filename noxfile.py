"""nox sessions: the test suite on every CPython that setup.cfg's classifiers list.

    python -m nox -s tests               # each listed version this machine has
    python -m nox -s tests-3.12          # one of them
    python -m nox -s tests_no_poll       # as on a system without poll() (Windows)

Each session makes a virtual environment, installs the project as the README says
(``pip install -e ".[test]"``) and runs ``python -m pytest`` (arguments after ``--`` go to
pytest). Interpreters are found on ``PATH`` (``python3.X``) and where pyenv keeps them
(``$PYENV_ROOT/versions/3.X.Y/bin``). With ``CI=true`` a listed version that cannot be found
fails the run (nox's ``--error-on-missing-interpreters``, which .ci/run passes).
"""

from __future__ import annotations

import configparser
import glob
import os
import pathlib
import re
from typing import List

import nox

ROOT = pathlib.Path(__file__).resolve().parent

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = False


def supported_versions() -> List[str]:
    """The ``3.X`` versions setup.cfg's classifiers list, oldest first."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    versions = re.findall(r"^Programming Language :: Python :: (3\.\d+)$",
                          config["metadata"]["classifiers"], re.MULTILINE)
    return sorted(set(versions), key=lambda v: tuple(int(part) for part in v.split(".")))


def _add_pyenv_versions_to_path() -> None:
    """Append pyenv's interpreters to PATH, newest patch release of each version first,
    so that nox finds ``python3.X`` without shims or ``pyenv global``."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = glob.glob(os.path.join(root, "versions", "3.*.*", "bin"))

    def release(path: str) -> tuple:
        match = re.search(r"(\d+)\.(\d+)\.(\d+)", os.path.basename(os.path.dirname(path)))
        return tuple(int(part) for part in match.groups()) if match else (0,)

    folders = sorted((path for path in found if release(path) != (0,)), key=release, reverse=True)
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(path + [folder for folder in folders if folder not in path])


_add_pyenv_versions_to_path()


def _run_suite(session: nox.Session, env: dict) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs, env=env)


@nox.session(python=supported_versions())
def tests(session: nox.Session) -> None:
    """The whole suite on one CPython."""
    _run_suite(session, {})


@nox.session(python=supported_versions()[-1:])
def tests_no_poll(session: nox.Session) -> None:
    """The whole suite as without poll(), epoll() and kqueue() (see tests/conftest.py)."""
    _run_suite(session, {"WSCLIENT_TEST_NO_POLL": "1"})
