"""A seeded mutation fuzzer: random bytes and mutations of valid inputs, each under a deadline.

:func:`run` feeds a target function inputs made by :class:`Mutator` from a corpus of valid
inputs: bit flips, byte changes, insertions, deletions, truncation, duplication, splicing of
two inputs, "interesting" tokens (huge numbers, line endings, extreme frame headers) and now
and then plain random bytes. Everything comes from one ``random.Random(seed)``, so a run is
reproducible from its seed. A target either returns or raises; any exception outside the
target's documented set is recorded as a crash, with the input that caused it.

Bounded time: every input runs under a ``SIGALRM`` deadline (``PER_INPUT_SECONDS``); an
input that exceeds it is recorded as a crash too. The slowest input is reported.

Environment:

* ``WSCLIENT_FUZZ_ITERATIONS``: inputs per target (default :data:`DEFAULT_ITERATIONS`,
  a few seconds per target on a 2-core machine). The long run sets it to 100000 or more.
* ``WSCLIENT_FUZZ_SEED``: the base seed (default :data:`DEFAULT_SEED`); CI always uses the
  default, so CI runs are deterministic.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Type

__all__ = [
    "DEFAULT_ITERATIONS",
    "DEFAULT_SEED",
    "PER_INPUT_SECONDS",
    "Crash",
    "Report",
    "Mutator",
    "iterations",
    "base_seed",
    "run",
    "chunks",
]

#: Inputs per target when ``WSCLIENT_FUZZ_ITERATIONS`` is unset.
DEFAULT_ITERATIONS = 8000
#: The base seed when ``WSCLIENT_FUZZ_SEED`` is unset.
DEFAULT_SEED = 6455
#: Wall-clock bound on one input (generous: CI shares 2 cores with other jobs).
PER_INPUT_SECONDS = 5.0

#: Numbers that break parsers: zero, off-by-ones around field widths, 2**63, 2**64, and
#: runs of digits longer than Python's int-from-str limit (4300 digits).
EXTREME_NUMBERS: Tuple[bytes, ...] = (
    b"0", b"-1", b"1", b"125", b"126", b"127", b"65535", b"65536", b"4294967296",
    b"9223372036854775807", b"9223372036854775808", b"18446744073709551615",
    b"18446744073709551616", b"00000000000000000001", b"9" * 5000, b"1e9", b"0x10", b"+5",
)
#: 64-bit values for binary length fields.
EXTREME_LENGTHS: Tuple[int, ...] = (
    0, 1, 125, 126, 127, 0xFFFF, 0x10000, 2**24, 2**24 + 1, 2**31, 2**32, 2**63 - 1, 2**63,
    2**64 - 1,
)
#: Single bytes that matter to the formats under test.
INTERESTING_BYTES = b"\x00\x01\x7e\x7f\x80\x81\x88\x89\x8a\xfe\xff\r\n\t :;,=\"%@[]/?#\\"


def iterations(default: int = DEFAULT_ITERATIONS) -> int:
    """Inputs per target: ``WSCLIENT_FUZZ_ITERATIONS`` or ``default``."""
    value = os.environ.get("WSCLIENT_FUZZ_ITERATIONS", "").strip()
    return int(value) if value else default


def base_seed() -> int:
    """The base seed: ``WSCLIENT_FUZZ_SEED`` or :data:`DEFAULT_SEED`."""
    value = os.environ.get("WSCLIENT_FUZZ_SEED", "").strip()
    return int(value) if value else DEFAULT_SEED


class InputTimeout(BaseException):
    """Raised by the alarm in the middle of an input that took too long.

    A ``BaseException`` so that ``except Exception`` in the code under test cannot swallow it.
    """


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block with :class:`InputTimeout` after ``seconds`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # No signals outside the main thread: the time is still measured.
        return

    def alarm(signum: int, frame: object) -> None:
        raise InputTimeout(f"input took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def chunks(data: bytes, rng: random.Random) -> List[bytes]:
    """Split ``data`` into random pieces: whole, byte by byte, or anything between."""
    mode = rng.random()
    if mode < 0.3 or len(data) < 2:
        return [data]
    if mode < 0.4 and len(data) <= 512:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


class Mutator:
    """Makes inputs from a corpus of valid ones, deterministically from ``rng``.

    Args:
        rng: the random source (seeded).
        corpus: valid inputs to mutate.
        tokens: byte strings worth inserting (keywords, separators, extreme values).
        extra_ops: format-specific mutations ``op(data, rng) -> data``.
    """

    def __init__(
        self,
        rng: random.Random,
        corpus: Sequence[bytes],
        tokens: Sequence[bytes] = (),
        extra_ops: Sequence[Callable[[bytearray, random.Random], bytearray]] = (),
    ) -> None:
        if not corpus:
            raise ValueError("the corpus is empty")
        self.rng = rng
        self.corpus = [bytes(item) for item in corpus]
        self.tokens = list(tokens) + list(EXTREME_NUMBERS)
        self.ops: List[Callable[[bytearray, random.Random], bytearray]] = [
            _flip_bit, _set_byte, _insert_random, _delete_range, _truncate, _duplicate_range,
            self._splice, self._insert_token, _replace_number, _swap_ranges,
        ]
        self.ops += list(extra_ops) * 2

    def input(self) -> bytes:
        """The next input: 5 % random bytes, else 1 to 8 mutations of a corpus entry."""
        rng = self.rng
        if rng.random() < 0.05:
            return rng.randbytes(rng.choice((0, 1, 2, rng.randrange(64), rng.randrange(4096))))
        data = bytearray(rng.choice(self.corpus))
        if rng.random() < 0.05:
            return bytes(data)  # The valid input itself, now and then.
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
            data = rng.choice(self.ops)(data, rng)
        return bytes(data)

    def _splice(self, data: bytearray, rng: random.Random) -> bytearray:
        other = rng.choice(self.corpus)
        return data[: rng.randint(0, len(data))] + other[rng.randint(0, len(other)) :]

    def _insert_token(self, data: bytearray, rng: random.Random) -> bytearray:
        at = rng.randint(0, len(data))
        token = rng.choice(self.tokens)
        if rng.random() < 0.5:  # overwrite instead of insert
            return data[:at] + token + data[at + len(token) :]
        return data[:at] + token + data[at:]


def _flip_bit(data: bytearray, rng: random.Random) -> bytearray:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return data


def _set_byte(data: bytearray, rng: random.Random) -> bytearray:
    if data:
        value = rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
        data[rng.randrange(len(data))] = value
    return data


def _insert_random(data: bytearray, rng: random.Random) -> bytearray:
    at = rng.randint(0, len(data))
    return data[:at] + rng.randbytes(rng.choice((1, 1, 2, 4, 16, 256))) + data[at:]


def _delete_range(data: bytearray, rng: random.Random) -> bytearray:
    if not data:
        return data
    start = rng.randrange(len(data))
    del data[start : start + rng.choice((1, 1, 2, 4, 16, 256))]
    return data


def _truncate(data: bytearray, rng: random.Random) -> bytearray:
    return data[: rng.randint(0, len(data))]


def _duplicate_range(data: bytearray, rng: random.Random) -> bytearray:
    if not data:
        return data
    start = rng.randrange(len(data))
    piece = data[start : start + rng.choice((1, 4, 16, 256, 4096))]
    times = rng.choice((1, 2, 16, 200))
    return data[:start] + piece * times + data[start:]


def _swap_ranges(data: bytearray, rng: random.Random) -> bytearray:
    if len(data) < 4:
        return data
    a, b = sorted(rng.sample(range(len(data)), 2))
    size = min(rng.randint(1, 16), b - a, len(data) - b)
    data[a : a + size], data[b : b + size] = data[b : b + size], data[a : a + size]
    return data


def _replace_number(data: bytearray, rng: random.Random) -> bytearray:
    """Replace a run of decimal digits with an extreme number."""
    starts = [i for i in range(len(data)) if 48 <= data[i] <= 57 and (i == 0 or not 48 <= data[i - 1] <= 57)]
    if not starts:
        return data
    start = end = rng.choice(starts)
    while end < len(data) and 48 <= data[end] <= 57:
        end += 1
    return data[:start] + rng.choice(EXTREME_NUMBERS) + data[end:]


@dataclasses.dataclass
class Crash:
    """An input that ended in an undocumented exception or overran its deadline."""

    data: bytes
    error: str
    trace: str

    def __str__(self) -> str:
        shown = self.data[:200]
        more = f"... ({len(self.data)} bytes)" if len(self.data) > 200 else ""
        return f"{self.error}\n  input: {shown!r}{more}\n{self.trace}"


@dataclasses.dataclass
class Report:
    """What one fuzz run did."""

    name: str
    seed: int
    tried: int = 0
    ok: int = 0
    rejected: int = 0  # documented exceptions
    slowest: float = 0.0
    slowest_size: int = 0  # bytes of the slowest input
    elapsed: float = 0.0
    peak_memory: Optional[int] = None  # bytes, where the target measured it
    crashes: List[Crash] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line with every figure, for the log and the issue note."""
        memory = "" if self.peak_memory is None else f", peak traced memory {self.peak_memory / 2**20:.2f} MiB"
        return (
            f"fuzz {self.name}: seed {self.seed}, {self.tried} inputs in {self.elapsed:.1f} s "
            f"({self.ok} accepted, {self.rejected} rejected with documented errors), "
            f"slowest input {self.slowest * 1000:.1f} ms ({self.slowest_size} bytes){memory}, "
            f"{len(self.crashes)} crashes"
        )


Target = Callable[[bytes, random.Random], object]


def run(
    name: str,
    target: Target,
    documented: Tuple[Type[BaseException], ...],
    mutator_factory: Callable[[random.Random], Mutator],
    *,
    count: Optional[int] = None,
    seed: Optional[int] = None,
    per_input_seconds: float = PER_INPUT_SECONDS,
    max_crashes: int = 20,
) -> Report:
    """Fuzz ``target`` with ``count`` inputs.

    Args:
        name: the target's name, for the report (mixed into the seed).
        target: ``target(data, rng)``; returns anything, or raises.
        documented: the exceptions the target may raise on bad input.
        mutator_factory: builds the :class:`Mutator` from the run's ``random.Random``.
        count: inputs to try (default: :func:`iterations`).
        seed: the base seed (default: :func:`base_seed`).
        per_input_seconds: the deadline of one input.
        max_crashes: stop after this many crashes.

    Returns:
        The :class:`Report`.
    """
    count = iterations() if count is None else count
    seed = base_seed() if seed is None else seed
    run_seed = seed * 1_000_003 + sum(name.encode())
    rng = random.Random(run_seed)
    mutator = mutator_factory(rng)
    report = Report(name, seed)
    started = time.perf_counter()
    for _ in range(count):
        data = mutator.input()
        input_rng = random.Random(rng.getrandbits(64))
        report.tried += 1
        begin = time.perf_counter()
        try:
            with _deadline(per_input_seconds):
                target(data, input_rng)
            report.ok += 1
        except documented:
            report.rejected += 1
        except (Exception, InputTimeout) as exc:
            report.crashes.append(Crash(data, f"{type(exc).__name__}: {exc}"[:500], traceback.format_exc(limit=6)))
            if len(report.crashes) >= max_crashes:
                break
        finally:
            took = time.perf_counter() - begin
            if took > report.slowest:
                report.slowest, report.slowest_size = took, len(data)
    report.elapsed = time.perf_counter() - started
    return report
