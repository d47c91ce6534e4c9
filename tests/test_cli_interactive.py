"""End-to-end tests of ``python -m wsclient connect`` in interactive mode, under a real terminal.

The client runs in a subprocess whose stdin, stdout and stderr are the slave side of a
pseudo-terminal (:func:`os.openpty`), so ``sys.stdin.isatty()`` is true and ``input()`` goes
through readline, as for a person at a shell. The test types on the master side and reads
what the terminal shows. The peer is a wsclient echo server on 127.0.0.1 whose handler
records what it receives, the close code and reason it sees, and lets the test push a message
at a chosen moment (while a line is half typed, say).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Iterator, List

import pytest

import wsclient

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

    def __init__(self, uri: str) -> None:
        master, slave = os.openpty()
        env = dict(os.environ, TERM="xterm", INPUTRC=os.devnull, PYTHONUNBUFFERED="1")
        self.master = master
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wsclient", "connect", uri, "--no-proxy"],
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

    def wait_reading(self) -> None:
        """Wait until the client's main thread sleeps in readline's ``select()`` on the
        terminal (fd 0, so ``nfds`` is 1), as a person waits for the prompt before typing.

        Keys typed earlier, while the terminal is between two lines in cooked mode, are
        handled by the terminal driver instead (a Ctrl-D there is lost when readline
        switches modes), and a SIGINT that lands just before ``select()`` is only acted on
        at the next interruption: that is how any readline program behaves.
        """
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with open(f"/proc/{self.process.pid}/wchan") as file:
                where = file.read()
            with open(f"/proc/{self.process.pid}/syscall") as file:
                call = file.read().split()
            if ("poll" in where or "select" in where) and call[1:2] == ["0x1"]:
                return
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
def terminal(peer) -> Iterator[Terminal]:
    _, uri = peer
    term = Terminal(uri)
    try:
        term.expect("Ctrl-D to quit")
        yield term
    finally:
        term.close()


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

    terminal.type("/binary not-hex\r")
    at = terminal.expect("error: ", at)

    terminal.type("/close 4000 bye\r")
    server.wait_for(lambda: server.closes, "a close")
    assert server.closes == [(4000, "bye")]
    # 4000 is not a normal close (1000 or 1001): exit status 1, as --help says.
    assert terminal.wait() == 1
    terminal.expect("connection closed with code 4000", at)
    assert server.received == ["hello", "partial line", b"\x00\xff\x10"]


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


def test_interrupt_closes_with_1001(peer, terminal: Terminal) -> None:
    """Ctrl-C (SIGINT, as the terminal sends it) closes with 1001, "going away"."""
    server, _ = peer
    terminal.type("half")
    terminal.expect("> half")
    terminal.wait_reading()
    os.kill(terminal.process.pid, signal.SIGINT)
    assert terminal.wait() == 0
    terminal.expect("connection closed with code 1001")
    server.wait_for(lambda: server.closes, "a close")
    assert server.closes == [(1001, "")]
