"""End-to-end tests of ``python -m wsclient connect`` in interactive mode, under a real terminal.

The client runs in a subprocess whose stdin, stdout and stderr are the slave side of a
pseudo-terminal (:func:`os.openpty`), so ``sys.stdin.isatty()`` is true and ``input()`` goes
through readline, as for a person at a shell. The test types on the master side and reads
what the terminal shows. The peer is a wsclient echo server on 127.0.0.1 whose handler
records what it receives, the close code and reason it sees, and lets the test push a message
at a chosen moment (while a line is half typed, say).

The client reads its lines in one of two ways (wsclient/cli_interactive.py): ``input()`` in
the main thread, which SIGUSR1 interrupts when the server closes; or, where
``signal.pthread_kill`` is missing (Windows), ``input()`` in a thread of its own. The
suite's Windows emulation (tests/no_poll, ``WSCLIENT_TEST_NO_POLL=1``) removes
``pthread_kill`` from the client's Python, so the second way runs in that mode, and in the
tests that ask for it with ``windows=True``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import wsclient

from .conftest import NO_POLL
from .no_poll import sitecustomize as no_poll

WAIT = 15.0  # generous: other test runs share this 2-core machine

# Escape sequences readline may add around a prompt (bracketed paste on and off).
_NOISE = re.compile(rb"\x1b\[\?2004[hl]")


class Peer:
    """What the server's handler saw: messages, the connection, the close code and reason."""

    def __init__(self) -> None:
        self.received: List[Any] = []
        self.connections: List[wsclient.WebSocket] = []
        self.closes: List[tuple] = []
        self.changed = threading.Condition()

    def handler(self, ws: wsclient.WebSocket) -> None:
        with self.changed:
            self.connections.append(ws)
            self.changed.notify_all()
        try:
            for message in ws:
                with self.changed:
                    self.received.append(message)
                    self.changed.notify_all()
                ws.send(message)
        except wsclient.ConnectionClosed:
            pass
        finally:
            with self.changed:
                self.closes.append((ws.close_code, ws.close_reason))
                self.changed.notify_all()

    def wait_for(self, predicate: Any, what: str) -> None:
        with self.changed:
            if not self.changed.wait_for(predicate, WAIT):
                pytest.fail(f"the server never saw {what}: received={self.received!r}, "
                            f"closes={self.closes!r}")


class Terminal:
    """``python -m wsclient connect URI`` on a pseudo-terminal: type, read, wait for exit."""

    def __init__(self, uri: str, *args: str, data_home: str, colour: bool = False, windows: bool = False) -> None:
        master, slave = os.openpty()
        env = dict(os.environ, TERM="xterm", INPUTRC=os.devnull, PYTHONUNBUFFERED="1", XDG_DATA_HOME=data_home)
        env.pop("NO_COLOR", None)
        if not colour:
            env["NO_COLOR"] = "1"
        if windows:  # The client's Python without poll() and pthread_kill (tests/no_poll).
            folder = str(Path(no_poll.__file__).parent)
            env[no_poll.VARIABLE] = "1"
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, env.get("PYTHONPATH")]))
        self.master = master
        self.data_home = data_home
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wsclient", "connect", uri, "--no-proxy", *args],
                stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
            )
        finally:
            os.close(slave)
        self.output = bytearray()
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO once the child has exited and the slave is closed
                data = b""
            with self.changed:
                if not data:
                    self.changed.notify_all()
                    return
                self.output += data
                self.changed.notify_all()

    @property
    def screen(self) -> str:
        """Everything the terminal showed so far (without bracketed-paste noise)."""
        with self.changed:
            return _NOISE.sub(b"", bytes(self.output)).decode("utf-8", "replace")

    def expect(self, text: str, start: int = 0) -> int:
        """Wait until ``text`` shows at or after ``start``; return where it ends.

        A run of spaces in ``text`` matches one or more spaces: when a message lands just
        as readline draws its prompt, the prompt can be drawn with one space more.
        """
        pattern = re.compile(" +".join(re.escape(part) for part in text.split(" ")))
        deadline = time.monotonic() + WAIT
        with self.changed:
            while True:
                screen = _NOISE.sub(b"", bytes(self.output)).decode("utf-8", "replace")
                found = pattern.search(screen, start)
                if found:
                    return found.end()
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"the terminal never showed {text!r}; it shows:\n{screen!r}")
                self.changed.wait(left)

    def wait_reading(self) -> int:
        """Wait until a thread of the client sleeps in readline's ``select()`` on the
        terminal (fd 0, so ``nfds`` is 1), as a person waits for the prompt before typing;
        return that thread's id (the process id for the main thread).

        Keys typed earlier, while the terminal is between two lines in cooked mode, are
        handled by the terminal driver instead (a Ctrl-D there is lost when readline
        switches modes), and a SIGINT that lands just before ``select()`` is only acted on
        at the next interruption: that is how any readline program behaves.
        """
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for task in sorted(os.listdir(f"/proc/{self.process.pid}/task"), key=int):
                try:
                    with open(f"/proc/{self.process.pid}/task/{task}/wchan") as file:
                        where = file.read()
                    with open(f"/proc/{self.process.pid}/task/{task}/syscall") as file:
                        call = file.read().split()
                except (FileNotFoundError, ProcessLookupError):  # A thread that just ended.
                    continue
                if ("poll" in where or "select" in where) and call[1:2] == ["0x1"]:
                    return int(task)
            time.sleep(0.01)
        pytest.fail(f"the client never waited for input; the terminal shows:\n{self.screen!r}")

    def type(self, keys: str) -> None:
        """Type ``keys`` once the client waits for them."""
        self.wait_reading()
        os.write(self.master, keys.encode())

    def wait(self) -> int:
        try:
            return self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the client did not exit; the terminal shows:\n{self.screen!r}")
            raise

    def close(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(WAIT)
        self.reader.join(WAIT)
        os.close(self.master)


@pytest.fixture
def peer(ws_server) -> Iterator[tuple]:
    recorder = Peer()
    running = ws_server(recorder.handler)
    yield recorder, running.uri


@pytest.fixture
def open_terminal(tmp_path) -> Iterator[Any]:
    """Factory: ``open_terminal(uri, *args, colour=False, windows=False)`` starts the client on a
    pseudo-terminal (``windows``: its Python without poll() and pthread_kill),
    its data directory (history) in ``tmp_path``, and waits for its banner."""
    terminals: List[Terminal] = []

    def start(uri: str, *args: str, colour: bool = False, banner: bool = True, windows: bool = False) -> Terminal:
        term = Terminal(uri, *args, data_home=str(tmp_path / "data"), colour=colour, windows=windows)
        terminals.append(term)
        if banner:
            term.expect("Ctrl-D to quit")
        return term

    yield start
    for term in terminals:
        term.close()


@pytest.fixture
def terminal(peer, open_terminal) -> Terminal:
    return open_terminal(peer[1])


def test_a_session(peer, terminal: Terminal) -> None:
    server, _ = peer
    # A line is a text message; the echo is printed as "< ...".
    terminal.type("hello\r")
    at = terminal.expect("< hello\r\n")
    server.wait_for(lambda: "hello" in server.received, "'hello'")

    # A message that arrives while the user is typing shows on a line of its own, and the
    # half-typed line is redrawn under it and still sent whole.
    terminal.type("partial")
    at = terminal.expect("> partial", at)
    server.connections[0].send("pushed by the server")
    at = terminal.expect("\r\x1b[K< pushed by the server\r\n> partial", at)
    terminal.type(" line\r")
    at = terminal.expect("< partial line\r\n", at)
    server.wait_for(lambda: "partial line" in server.received, "'partial line'")

    terminal.type("/ping\r")
    at = terminal.expect("pong after ", at)

    terminal.type("/binary 00ff10\r")
    at = terminal.expect("< [binary 3 bytes] 00ff10\r\n", at)
    server.wait_for(lambda: b"\x00\xff\x10" in server.received, "the binary message")

    terminal.type("/binary zz\r")
    at = terminal.expect("error: /binary takes hexadecimal bytes, e.g. /binary 00ff10, not 'zz'\r\n", at)
    terminal.type("/close x\r")
    at = terminal.expect("error: /close takes a close code such as 1000 or 4000, then a reason; not 'x'\r\n", at)
    terminal.type("/close 999\r")
    at = terminal.expect("error: /close 999: invalid close code 999", at)
    terminal.type("/foo\r")
    at = terminal.expect("error: unknown command '/foo': /help lists them; type //foo to send '/foo' as text\r\n", at)
    terminal.type("//ping\r")
    at = terminal.expect("< /ping\r\n", at)
    terminal.type("/help\r")
    at = terminal.expect("/close [CODE [REASON]]", at)

    terminal.type("/close 4000 bye\r")
    server.wait_for(lambda: server.closes, "a close")
    assert server.closes == [(4000, "bye")]
    # 4000 is not a normal close (1000 or 1001): exit status 1, as --help says.
    assert terminal.wait() == 1
    terminal.expect("connection closed with code 4000", at)
    assert terminal.screen.count("connection closed with code") == 1
    assert server.received == ["hello", "partial line", b"\x00\xff\x10", "/ping"]


def test_ctrl_d_closes_normally(peer, terminal: Terminal) -> None:
    server, _ = peer
    terminal.type("last words\r")
    at = terminal.expect("< last words\r\n")
    terminal.type("\x04")  # Ctrl-D at an empty prompt
    assert terminal.wait() == 0
    terminal.expect("connection closed with code 1000", at)
    server.wait_for(lambda: server.closes, "a close")
    assert server.closes == [(1000, "")]
    assert server.received == ["last words"]


def test_server_close_ends_the_session(peer, terminal: Terminal) -> None:
    """The client does not sit at its prompt after the server has gone: it reports the
    close and exits, even with a line half typed."""
    server, _ = peer
    terminal.type("never sent")
    terminal.expect("> never sent")
    server.connections[0].close(4001, "going away now")
    assert terminal.wait() == 1
    terminal.expect("connection closed with code 4001 (going away now)")
    assert server.received == []
    assert [code for code, _ in server.closes] == [4001]  # the client's reply, code echoed


@pytest.mark.parametrize("windows", [False, True], ids=["input-in-main-thread", "input-in-own-thread"])
def test_server_close_at_an_empty_prompt_ends_the_session_at_once(peer, open_terminal, windows: bool) -> None:
    """The user has typed nothing and the server closes: the client reports the close and
    exits within a few seconds, with the status --help gives (0 after a 1000), whether
    input() runs in the main thread (SIGUSR1 ends it) or, as on Windows, in its own."""
    server, uri = peer
    term = open_terminal(uri, windows=windows)
    reading = term.wait_reading()
    # Which way ran: without pthread_kill (Windows, emulated) lines are read in a thread of
    # their own, else in the main thread, whose id is the process id.
    assert (reading != term.process.pid) == (windows or NO_POLL)
    server.wait_for(lambda: server.connections, "the connection")
    closed = time.monotonic()
    server.connections[0].close(1000, "done")
    assert term.wait() == 0
    assert time.monotonic() - closed < 5.0
    term.expect("connection closed with code 1000 (done)")
    assert "Traceback" not in term.screen and "Fatal Python error" not in term.screen
    # The terminal is left as the shell needs it: lines and echo on, even with a read
    # abandoned while readline had it in its own mode (the master side reads the modes).
    modes = termios.tcgetattr(term.master)[3]
    assert modes & termios.ICANON and modes & termios.ECHO
    server.wait_for(lambda: server.closes, "a close")
    assert [code for code, _ in server.closes] == [1000]  # the client's reply, code echoed


@pytest.mark.parametrize("windows", [False, True], ids=["input-in-main-thread", "input-in-own-thread"])
def test_interrupt_at_the_prompt_either_way(peer, open_terminal, windows: bool) -> None:
    """Ctrl-C (SIGINT, as the terminal sends it) closes with 1001, "going away", and exits
    with 130, as --help says; also while another thread reads the line (no pthread_kill)."""
    server, uri = peer
    term = open_terminal(uri, windows=windows)
    term.type("half")
    term.expect("> half")
    term.wait_reading()
    os.kill(term.process.pid, signal.SIGINT)
    assert term.wait() == 130
    term.expect("connection closed with code 1001")
    server.wait_for(lambda: server.closes, "a close")
    assert server.closes == [(1001, "")]
    modes = termios.tcgetattr(term.master)[3]
    assert modes & termios.ICANON and modes & termios.ECHO  # Left as the shell needs it.


def test_close_without_a_code_is_normal_and_reported_once(peer, terminal: Terminal) -> None:
    server, _ = peer
    terminal.type("/close 1005\r")
    assert terminal.wait() == 0
    terminal.expect("connection closed with code 1005")
    assert terminal.screen.count("connection closed") == 1
    assert "wsclient:" not in terminal.screen
    server.wait_for(lambda: server.closes, "a close")
    assert server.closes == [(1005, "")]


def test_banner_comes_before_a_server_that_speaks_first(ws_server, open_terminal) -> None:
    def greeter(ws: wsclient.WebSocket) -> None:
        ws.send("welcome")  # At once, before the client could print anything.
        for message in ws:
            ws.send(message)

    term = open_terminal(ws_server(greeter).uri, banner=False)
    at = term.expect("< welcome")
    assert term.screen.index("connected to ws://127.0.0.1:") < term.screen.index("< welcome") < at
    term.type("\x04")
    assert term.wait() == 0


def test_history_is_kept_across_two_runs(peer, open_terminal) -> None:
    server, uri = peer
    first = open_terminal(uri)
    first.type("remember me\r")
    first.expect("< remember me")
    first.type("\x04")
    assert first.wait() == 0

    second = open_terminal(uri)
    second.type("\x1b[A")  # Up arrow: the line typed in the first run.
    second.expect("> remember me")
    second.type("\r")
    second.expect("< remember me")
    second.type("\x04")
    assert second.wait() == 0
    server.wait_for(lambda: server.received.count("remember me") == 2, "the line twice")
    # Where --help says it is: under XDG_DATA_HOME.
    history = Path(second.data_home) / "wsclient" / "history"
    assert "remember me" in history.read_text()
    assert history.stat().st_mode & 0o077 == 0  # typed lines may hold secrets


def test_colours_on_a_terminal_unless_no_color(peer, open_terminal) -> None:
    _, uri = peer
    coloured = open_terminal(uri, colour=True)
    coloured.type("hue\r")
    coloured.expect("\x1b[36m< hue\x1b[0m")  # received: cyan
    coloured.expect("\x1b[32m> \x1b[0m")  # the prompt, what we send: green
    coloured.type("/nope\r")
    coloured.expect("\x1b[31merror: unknown command")  # errors: red
    coloured.type("\x04")
    assert coloured.wait() == 0

    plain = open_terminal(uri)  # NO_COLOR=1
    plain.type("hue\r")
    plain.expect("< hue")
    plain.type("\x04")
    assert plain.wait() == 0
    assert "\x1b[3" not in plain.screen and "\x1b[2m" not in plain.screen


def test_binary_as_base64_json_pretty_and_pings_shown(peer, open_terminal) -> None:
    server, uri = peer
    term = open_terminal(uri, "--binary-format", "base64", "--json", "-P", "--ping-interval", "0.2")
    term.type("/binary AP8Q\r")
    at = term.expect("< [binary 3 bytes] base64:AP8Q\r\n")
    term.type('{"a": [1, 2]}\r')
    at = term.expect('< {\r\n    "a": [\r\n      1,\r\n      2\r\n    ]\r\n  }\r\n', at)
    term.expect("keepalive ping: pong after ")
    term.type("\x04")
    assert term.wait() == 0
    assert server.received == [b"\x00\xff\x10", '{"a": [1, 2]}']


def test_record_an_interactive_session(peer, open_terminal, tmp_path) -> None:
    _, uri = peer
    path = tmp_path / "session.jsonl"
    term = open_terminal(uri, "--record", str(path))
    term.type("hi\r")
    at = term.expect("< hi\r\n")
    term.type("/ping x\r")
    term.expect("ping: pong after ", at)
    term.type("\x04")
    assert term.wait() == 0
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert [(e["from"], e["type"], e.get("text", e.get("base64", e.get("code")))) for e in events] == [
        ("client", "text", "hi"), ("server", "text", "hi"), ("client", "ping", "eA=="),
        ("server", "pong", "eA=="), ("client", "close", 1000), ("server", "close", 1000)]
