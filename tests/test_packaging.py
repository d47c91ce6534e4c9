"""The distribution as a user gets it: ``python -m build`` makes an sdist and a wheel that
pass ``twine check --strict``, and the wheel, installed into a fresh virtual environment
(no access to this checkout), runs ``python -m wsclient demo`` and the ``wsclient`` command.

The build runs on a copy of the checkout's files (tracked and new, not ignored), so the
checkout gets no ``egg-info`` or ``build/``. It needs ``build`` and ``twine`` (the test
extra) and an index pip can install setuptools, certifi and PySocks from; with ``CI=true``
a missing tool fails the test instead of skipping it.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List

import pytest

import wsclient

ROOT = Path(__file__).resolve().parent.parent
WAIT = 600.0


def require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is not installed (pip install -e \".[test]\")")
        pytest.skip(f"{module} is not installed")


def run(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def source_copy(target: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored) copied under ``target``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("build")
    require("twine")
    shutil.which("git") or pytest.fail("git is needed to list the checkout's files")
    base = tmp_path_factory.mktemp("package")
    source = source_copy(base / "src")
    out = base / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=base)
    return out


def test_distribution_name_and_single_version() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    # "wsclient" on PyPI is another project; the import name stays wsclient.
    assert config["metadata"]["name"] == "wsclient-sync"
    assert config["metadata"]["version"] == "attr: wsclient.version.__version__"
    version_file = (ROOT / "wsclient" / "version.py").read_text(encoding="utf-8")
    assert re.search(rf'^__version__ = "{re.escape(wsclient.__version__)}"$', version_file, re.M)
    # Nowhere else in the package is a version literal written.
    for path in (ROOT / "wsclient").glob("*.py"):
        if path.name != "version.py":
            assert f'"{wsclient.__version__}"' not in path.read_text(encoding="utf-8"), path


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    version = wsclient.__version__
    wheel = dist / f"wsclient_sync-{version}-py3-none-any.whl"
    sdist = dist / f"wsclient_sync-{version}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())
    result = run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                 cwd=dist)
    assert result.stdout.count("PASSED") == 2, result.stdout
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"wsclient_sync-{version}.dist-info/METADATA").decode()
    assert "wsclient/py.typed" in names and "wsclient/version.py" in names
    assert not [name for name in names if name.startswith(("tests/", "examples/"))]
    assert "Name: wsclient-sync" in metadata and f"Version: {version}" in metadata
    assert "Requires-Dist: certifi" in metadata and "Requires-Dist: PySocks" in metadata


def test_installed_wheel_runs_the_demo(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path)
    # Run from an empty directory: the checkout must not be what gets imported.
    where = run([str(python), "-c", "import wsclient; print(wsclient.__file__, wsclient.__version__)"],
                cwd=tmp_path).stdout.split()
    assert where[0].startswith(str(venv)) and where[1] == wsclient.__version__, where
    demo = run([str(python), "-m", "wsclient", "demo"], cwd=tmp_path)
    assert "round-trip time: median" in demo.stdout
    assert "client: closed with code 1000" in demo.stdout
    command = run([str(venv / "bin" / "wsclient"), "--version"], cwd=tmp_path)
    assert command.stdout.strip() == f"wsclient {wsclient.__version__}"
