"""``python -m benchmarks``: measure wsclient against its peers and a raw-socket baseline.

Prints one table: each scenario, each library, the median of several alternating runs,
the spread (min-max) and the ratio of the median to the raw-socket baseline's median in
the same scenario, measured in the same run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from typing import List, Optional

from .scenarios import BULK, NODE_WS, PING_PONG, SCENARIOS, Config, Layout, Row, neutral_name

NOTES = [
    "All on loopback 127.0.0.1. Peers (servers or neutral clients) run in separate processes.",
    "Scenarios 1-5: compression disabled for every client and server (wsclient's default is",
    "  permessage-deflate), so all do the same work. Neutral server: {neutral}.",
    "  Neutral client: benchmarks/raw.py in its own process.",
    "MB/s counts payload bytes both ways (sent + received). 'vs raw': this row / raw's row in the",
    "  same repetition, median over repetitions. Higher is better except KiB/conn and latencies.",
    "Placement: round trips and handshakes (1, 3, 5) run the process under test and its peer on",
    "  one CPU ({ping_pong}); the bulk scenarios (2, 4, 6, 8-10) on two ({bulk}).",
    "Descriptor limit: RLIMIT_NOFILE raised to its hard limit ({nofile}) for every process.",
]


def _cpus(layout: Layout) -> str:
    if layout.measured == layout.peer:
        return f"CPU {layout.measured}"
    return f"measured on CPU {layout.measured}, peer on CPU {layout.peer}"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(rows: List[Row]) -> str:
    """The result table as text."""
    raw_values = {r.scenario: r.values for r in rows if r.library == "raw" and r.values}
    table = [("scenario", "library", "median", "unit", "spread (min-max)", "vs raw", "notes")]
    for r in rows:
        if r.error or not r.values:
            table.append((r.scenario, r.library, "-", r.unit, "-", "-", f"failed: {r.error or 'no result'}"))
            continue
        med = statistics.median(r.values)
        base = raw_values.get(r.scenario)
        # The ratio to raw within each repetition (same moment, same machine load), then
        # the median of those ratios.
        ratios = [v / b for v, b in zip(r.values, base) if b] if base else []
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
        notes = ", ".join(
            f"{k} {_fmt(statistics.median(v))}" if v else k for k, v in r.notes.items()
        )
        spread = f"{_fmt(min(r.values))}-{_fmt(max(r.values))}"
        table.append((r.scenario, r.library, _fmt(med), r.unit, spread, ratio, notes))
    widths = [max(len(row[i]) for row in table) for i in range(6)]
    lines = []
    for i, row in enumerate(table):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[j].rjust(widths[j]) for j in (2,)] + [row[3].ljust(widths[3])]
        cells += [row[4].rjust(widths[4]), row[5].rjust(widths[5]), row[6]]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _prepare() -> None:
    # Loopback only: no proxy from the environment may get in the way of any library.
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            del os.environ[name]
    os.environ["no_proxy"] = "*"
    if shutil.which("node") and shutil.which("npm") and not os.path.isdir(NODE_WS):
        # Node's ws is the neutral echo server where Node is installed.
        print("installing Node's ws for the neutral server (npm ci)", file=sys.stderr, flush=True)
        subprocess.run(["npm", "ci", "--prefix", os.path.dirname(os.path.dirname(NODE_WS)),
                        "--no-audit", "--no-fund", "--loglevel=error"], check=False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # 1,000 connections need more than 1,024 descriptors; children inherit.
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (under a minute in all)")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="run only this scenario (repeatable); default: all")
    parser.add_argument("--repeat", type=int, default=None, help="runs per library (default 5, quick 3)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per run (default 1, quick 0.2)")
    parser.add_argument("--connections", type=int, default=10_000,
                        help="connections in the c10k scenario (default 10,000)")
    parser.add_argument("--keepalive", type=float, default=20.0,
                        help="the wsclient server's ping interval in c10k (default 20 s, its default)")
    parser.add_argument("--clients", type=int, default=None,
                        help="clients in broadcast (default 1,000) and load (default 100)")
    args = parser.parse_args(argv)
    cfg = Config(
        duration=args.duration if args.duration is not None else (0.2 if args.quick else 1.0),
        repeat=args.repeat if args.repeat is not None else (3 if args.quick else 5),
        quick=args.quick,
        heavy_repeat=args.repeat if args.repeat is not None else 1,
        connections=args.connections,
        keepalive=args.keepalive,
        clients=args.clients,
    )
    if cfg.repeat < 1 or cfg.duration <= 0 or cfg.connections < 1 or cfg.keepalive <= 0 or (cfg.clients or 1) < 1:
        parser.error("--repeat, --duration, --connections, --keepalive and --clients must be positive")
    _prepare()
    names = args.scenario or list(SCENARIOS)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"{cfg.repeat} runs of {cfg.duration:g} s per library, libraries alternating", flush=True)
    rows: List[Row] = []
    start = time.monotonic()
    for name in names:
        t0 = time.monotonic()
        rows += SCENARIOS[name](cfg)
        print(f"  {name}: {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    print()
    print(render(rows))
    print()
    for line in NOTES:
        print(line.format(neutral=neutral_name(), ping_pong=_cpus(PING_PONG), bulk=_cpus(BULK),
                          nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    print(f"total {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
