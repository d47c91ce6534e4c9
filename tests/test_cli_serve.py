"""The signals that stop ``python -m wsclient serve`` (and ``replay``, which shares
:func:`wsclient.cli_serve.stop_on_signals`): SIGTERM everywhere, Ctrl-Break (SIGBREAK)
where the platform has it, each ending the process as Ctrl-C does, with status 0 and every
connection closed with 1001."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Iterator, List

import pytest

import wsclient
from wsclient.cli_serve import raise_interrupt, stop_on_signals, stop_signals

TIMEOUT = 30

# This Linux given a Ctrl-Break signal: SIGBREAK is SIGUSR2 here, set before wsclient is
# imported, as Windows' signal module has it. The command line itself is the real one.
_WITH_CTRL_BREAK = """
import signal, sys
signal.SIGBREAK = signal.SIGUSR2
from wsclient.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def restore_handlers() -> Iterator[None]:
    names = ("SIGTERM", "SIGBREAK")
    saved = {getattr(signal, n): signal.getsignal(getattr(signal, n)) for n in names if hasattr(signal, n)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_every_stop_signal_this_platform_has_gets_the_handler(restore_handlers) -> None:
    expected = [signal.SIGTERM] + ([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else [])
    assert stop_signals() == expected
    assert stop_on_signals() == expected
    for signum in expected:
        assert signal.getsignal(signum) is raise_interrupt


def test_ctrl_break_is_a_stop_signal_where_signal_has_it(monkeypatch, restore_handlers) -> None:
    # A platform with SIGBREAK (Windows): its number, here one Linux does not otherwise use.
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR2, raising=False)
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        assert stop_on_signals() == [signal.SIGTERM, signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is raise_interrupt
    finally:
        signal.signal(signal.SIGUSR2, previous)


def _serve(argv: List[str]) -> subprocess.Popen:
    return subprocess.Popen(argv + ["serve", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-Break"])
def test_a_stop_signal_closes_with_1001_and_exits_0(how: str) -> None:
    """As docs/cli.rst says: stopped by Ctrl-C or SIGTERM (or Ctrl-Break), status 0."""
    if how == "SIGTERM":
        process, signum = _serve([sys.executable, "-m", "wsclient"]), signal.SIGTERM
    else:
        process, signum = _serve([sys.executable, "-c", _WITH_CTRL_BREAK]), signal.SIGUSR2
    try:
        uri = process.stdout.readline().strip()
        assert uri.startswith("ws://127.0.0.1:"), process.stderr.read()
        with wsclient.connect(uri, proxy=None, timeout=TIMEOUT) as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"  # Serving: the handler runs.
            os.kill(process.pid, signum)
            with pytest.raises(wsclient.ConnectionClosed):
                ws.recv(timeout=TIMEOUT)
            assert ws.close_code == 1001
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "shutting down" in err and "Traceback" not in err
