"""Smoke test: ``python -m benchmarks.multiprocess`` runs end to end on a small scale.

No timing assertions (this machine is shared and noisy): only that every table row is
printed with positive figures.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

from ..conftest import need
from ..proxies import find_program
from .engines import ROOT


def test_the_multiprocess_benchmark_prints_every_figure() -> None:
    find_program("nginx", "nginx")
    find_program("redis-server", "redis-server")
    need(importlib.util.find_spec("redis") is not None, "the redis package is not installed (pip install redis)")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.multiprocess", "--processes", "1", "2", "--connections", "20",
         "--duration", "0.2", "--repeat", "1", "--messages", "20", "--receivers", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = re.findall(r"^\s+([12])\s+20\s+([\d ]+?)\s+[\d.]+\s+([\d,]+)\s", result.stdout, re.M)
    assert [row[0] for row in rows] == ["1", "2"], result.stdout
    for processes, held, rate in rows:
        assert len(held.split()) == int(processes) and int(rate.replace(",", "")) > 0, result.stdout
    latency = re.findall(r"^(same process|other process)\s+([\d.]+)\s+([\d.]+)", result.stdout, re.M)
    assert [row[0] for row in latency] == ["same process", "other process"], result.stdout
    assert all(float(median) > 0 and float(p99) >= float(median) for _, median, p99 in latency)
