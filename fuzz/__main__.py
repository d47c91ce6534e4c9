"""Run the fuzz targets: ``python -m fuzz --target all --time 3600`` is the long run.

Commands:

``python -m fuzz [--target NAMES] [--time SECONDS] [--runs N] [--coverage] [--compare]``
    Fuzz each target (``all``, or names separated by commas) in turn with atheris, in a
    subprocess, for ``--time`` seconds (or ``--runs`` inputs). New inputs go to
    ``$WSCLIENT_FUZZ_WORK/<target>/`` (default ``/tmp/wsclient-fuzz``, not the repository);
    a crash is written to ``$WSCLIENT_FUZZ_WORK/crashes/`` and makes the command fail. ``--coverage`` then replays what the
    run kept under coverage.py and reports the lines of wsclient reached; ``--compare`` also
    runs the seeded mutation fuzzer (``tests/reliability/fuzz.py``) on the same target for
    the same time and reports its lines.
``python -m fuzz seed``
    Rewrite ``fuzz/corpus/<target>/`` from the targets' seed inputs.
``python -m fuzz replay TARGET FILE...``
    Run inputs (a crash file, say) through a target without fuzzing: prints each result.

An input's first byte seeds the :class:`random.Random` a target draws its choices from
(chunking, options); the rest is the data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
#: Where runs keep the inputs they found and crashes: outside the repository.
WORK = Path(os.environ.get("WSCLIENT_FUZZ_WORK") or Path(tempfile.gettempdir()) / "wsclient-fuzz")
#: The largest seed input kept in the repository.
SEED_MAX = 4096


def _names(spec: str) -> List[str]:
    from .targets import TARGETS

    names = list(TARGETS) if spec == "all" else spec.split(",")
    for name in names:
        if name not in TARGETS:
            raise SystemExit(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")
    return names


def _split(data: bytes):
    return random.Random(data[0] if data else 0), data[1:]


def cmd_seed() -> None:
    from tests.reliability.fuzz import EXTREME_NUMBERS

    from .targets import TARGETS

    for name, target in TARGETS.items():
        folder = CORPUS / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        seeds = target.seeds()
        large = [seed for seed in seeds if SEED_MAX < len(seed) < target.max_len]
        for seed in seeds:
            # Keep the repository small: of the large seeds only the smallest one, for the
            # paths that only large inputs reach (masking in chunks, say).
            if len(seed) > SEED_MAX and seed is not min(large, key=len, default=None):
                continue
            data = b"\x00" + seed
            (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
        if target.tokens:
            # The mutation fuzzer's extreme numbers too (thousands of digits, 2**63...).
            tokens = [*target.tokens, *(n for n in EXTREME_NUMBERS if len(n) < 100)]
            lines = ['"' + "".join(f"\\x{b:02x}" for b in token) + '"' for token in tokens if token]
            (CORPUS / f"{name}.dict").write_text("\n".join(lines) + "\n")
        print(name, len(target.seeds()), "seeds")


def cmd_one(name: str, libfuzzer_args: List[str]) -> None:
    """The subprocess: instrument wsclient (and PySocks), then hand over to libFuzzer."""
    import atheris

    with atheris.instrument_imports(include=["wsclient", "socks"]):
        import wsclient  # noqa: F401
        from .targets import TARGETS
    target = TARGETS[name]
    fn, documented = target.fn, target.documented

    def one_input(data: bytes) -> None:
        rng, rest = _split(data)
        try:
            fn(rest, rng)
        except documented:
            pass

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


def _run_atheris(name: str, seconds: Optional[float], runs: Optional[int]) -> Dict[str, object]:
    from .targets import TARGETS

    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    crashes = WORK / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "fuzz", "one", name, "-print_final_stats=1", "-timeout=10",
            f"-max_len={TARGETS[name].max_len}", f"-artifact_prefix={crashes}/{name}-", "-rss_limit_mb=2048"]
    if (CORPUS / f"{name}.dict").exists():
        args.append(f"-dict={CORPUS / f'{name}.dict'}")
    if seconds is not None:
        args.append(f"-max_total_time={int(seconds)}")
    if runs is not None:
        args.append(f"-runs={runs}")
    args += [str(work), str(CORPUS / name)]  # new inputs go to the first folder
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=(seconds or 600) + 120)
    log = proc.stderr
    stats = dict(re.findall(r"stat::(\w+):\s*(\d+)", log))
    done = re.findall(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", log)
    result: Dict[str, object] = {
        "target": name,
        "returncode": proc.returncode,
        "inputs": int(stats.get("number_of_executed_units", done[-1][0] if done else 0)),
        "edges": int(done[-1][1]) if done else 0,
        "features": int(done[-1][2]) if done else 0,
        "corpus": int(done[-1][3]) if done else 0,
        "seconds": round(time.monotonic() - started, 1),
    }
    if proc.returncode != 0:
        result["log"] = log[-4000:]
    return result


def _inputs(name: str) -> List[bytes]:
    files = [p for folder in (CORPUS / name, WORK / name) if folder.exists() for p in sorted(folder.iterdir())]
    return [p.read_bytes() for p in files]


def cmd_cover(name: str, mode: str, seconds: float, out: str) -> None:
    """Lines of wsclient reached: by atheris's kept inputs, or by the mutation fuzzer in
    ``seconds`` (it runs that long uninstrumented, then its inputs are replayed, same seed)."""
    import coverage

    from tests.reliability.fuzz import Mutator, base_seed

    from .targets import TARGETS

    target = TARGETS[name]
    documented = target.documented
    inputs_run = 0
    seed = base_seed() * 1_000_003 + sum(name.encode())
    seeds = target.seeds()  # built outside the measurement: it runs wsclient code itself

    def generate():
        rng = random.Random(seed)
        mutator = Mutator(rng, seeds, target.tokens, target.extra_ops)
        while True:
            data = mutator.input()
            yield data, random.Random(rng.getrandbits(64))

    if mode == "mutation":

        deadline = time.monotonic() + seconds
        for data, input_rng in generate():
            if time.monotonic() > deadline:
                break
            try:
                target.fn(data, input_rng)
            except documented:
                pass
            except Exception:
                pass  # a crash; the CI test reports those
            inputs_run += 1
    cov = coverage.Coverage(source=[str(ROOT / "wsclient"), os.path.dirname(__import__("socks").__file__)],
                            data_file=None, branch=False)
    cov.start()
    if mode == "mutation":
        inputs = generate()
        for _ in range(inputs_run):
            cov.stop()  # the mutator's own calls into wsclient (extreme_frame_length) don't count
            data, input_rng = next(inputs)
            cov.start()
            try:
                target.fn(data, input_rng)
            except BaseException:
                pass
    else:
        for data in _inputs(name):
            rng, rest = _split(data)
            try:
                target.fn(rest, rng)
            except BaseException:
                pass
    cov.stop()
    data = cov.get_data()
    by_file = {Path(f).name: sorted(data.lines(f) or ()) for f in data.measured_files() if "/wsclient/" in f}
    lines = sum(map(len, by_file.values()))
    Path(out).write_text(json.dumps({"lines": lines, "inputs": inputs_run, "by_file": by_file}))


def _line_set(got: Dict[str, object]) -> set:
    return {(f, n) for f, ns in got["by_file"].items() for n in ns}  # type: ignore[union-attr]


def _cover(name: str, mode: str, seconds: float = 0) -> Dict[str, int]:
    out = WORK / f"{name}-{mode}.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-m", "fuzz", "cover", name, mode, str(seconds), str(out)],
                   cwd=ROOT, env=env, check=True, timeout=seconds * 10 + 600)
    return json.loads(out.read_text())


def cmd_run(args: argparse.Namespace) -> int:
    from .targets import TARGETS

    failed = False
    results = []
    for name in _names(args.target):
        result = _run_atheris(name, args.time, args.runs)
        if args.coverage or args.compare:
            ours = _cover(name, "atheris")
            result["lines"] = ours["lines"]
        if args.compare and TARGETS[name].mutation:
            got = _cover(name, "mutation", float(args.time or 60))
            result["mutation_lines"], result["mutation_inputs"] = got["lines"], got["inputs"]
            only = sorted(_line_set(got) - _line_set(ours))
            result["only_atheris"] = len(_line_set(ours) - _line_set(got))
            result["only_mutation"] = len(only)
            result["only_mutation_where"] = [f"{f}:{n}" for f, n in only][:40]
        failed |= result["returncode"] != 0
        log = result.pop("log", None)
        print(json.dumps(result), flush=True)
        if log:
            print(log, file=sys.stderr)
        results.append(result)
    return 1 if failed else 0


def cmd_replay(name: str, files: List[str]) -> None:
    from .targets import TARGETS

    target = TARGETS[name]
    for file in files:
        rng, rest = _split(Path(file).read_bytes())
        try:
            target.fn(rest, rng)
            print(file, "ok")
        except target.documented as exc:
            print(file, "documented:", type(exc).__name__, exc)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["one"]:
        cmd_one(argv[1], argv[2:])
        return 0
    if argv[:1] == ["seed"]:
        cmd_seed()
        return 0
    if argv[:1] == ["replay"]:
        cmd_replay(argv[1], argv[2:])
        return 0
    if argv[:1] == ["cover"]:
        cmd_cover(argv[1], argv[2], float(argv[3]), argv[4])
        return 0
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="all", help="all, or target names separated by commas")
    parser.add_argument("--time", type=float, default=None, help="seconds per target")
    parser.add_argument("--runs", type=int, default=None, help="inputs per target")
    parser.add_argument("--coverage", action="store_true", help="report the lines of wsclient reached")
    parser.add_argument("--compare", action="store_true", help="and the mutation fuzzer's in the same time")
    args = parser.parse_args(argv)
    if args.time is None and args.runs is None:
        args.time = 60
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
