"""The coverage-guided fuzz targets (``fuzz/``) in CI: a short atheris run of each, and
every input kept in ``fuzz/corpus/`` (seeds and past findings) replayed exactly.

Each target runs in its own subprocess for :data:`SECONDS` seconds (about two minutes
for all of them); a crash, an undocumented exception or a hang fails the test with the
fuzzer's log. The long run is ``python -m fuzz --target all --time 3600`` (README).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
#: Seconds of fuzzing per target in CI.
SECONDS = int(os.environ.get("WSCLIENT_ATHERIS_SECONDS", "8"))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_corpus_replays(name: str) -> None:
    """Every kept input gives a result or a documented exception, never a crash."""
    target = TARGETS[name]
    files = sorted((CORPUS / name).iterdir())
    assert files, f"no seed corpus for {name}: run python -m fuzz seed"
    for file in files:
        data = file.read_bytes()
        try:
            target.fn(data[1:], random.Random(data[0] if data else 0))
        except target.documented:
            pass


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_fuzz_run(name: str, tmp_path: Path) -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        if sys.version_info < (3, 11):  # setup.cfg's test extra leaves it out there.
            pytest.skip("atheris publishes no wheel for CPython 3.10; the fuzz runs are on 3.11+")
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and atheris is not installed (pip install -e '.[test]')")
        pytest.skip("atheris is not installed")
    env = dict(os.environ, WSCLIENT_FUZZ_WORK=str(tmp_path),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "fuzz", "--target", name, "--time", str(SECONDS)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=SECONDS + 180)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stdout + proc.stderr
    result = json.loads(lines[-1])
    crashes = list((tmp_path / "crashes").glob("*")) if (tmp_path / "crashes").exists() else []
    assert proc.returncode == 0 and not crashes, f"{result}\n{proc.stderr[-4000:]}\n{crashes}"
    assert result["inputs"] >= 200 and result["edges"] > 0, result
