"""``connect`` at a terminal: a prompt with line editing and history kept across sessions,
commands (``/help``), and messages shown as they arrive without breaking the line being typed.

History lives in ``wsclient/history`` under the user's data directory: ``$XDG_DATA_HOME``
(default ``~/.local/share``), or ``%APPDATA%`` on Windows; line editing and history need
:mod:`readline` (absent on Windows without pyreadline3: the prompt then still works).

When the server closes the connection, a prompt waiting for a line must give up: where the
main thread can be signalled (``signal.pthread_kill``, SIGUSR1), it reads the lines itself and
SIGUSR1 interrupts ``input()``; elsewhere (Windows) a daemon thread reads them and the main
thread waits for each in bounded waits, leaving that thread behind once the connection ends.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, List, Optional, Union

from .cli_session import Receiver, Session
from .cli_show import Formatter, Palette, parse_binary
from .cli_status import EXIT_INTERRUPTED, describe_close, shorten_close, status_after_close
from .exceptions import ConnectionClosed
from .uri import redact

try:
    import readline
except ImportError:  # pragma: no cover - Windows
    readline = None  # type: ignore[assignment]  # None marks the module missing

try:
    import termios
except ImportError:  # pragma: no cover - Windows
    termios = None  # type: ignore[assignment]  # None marks the module missing

__all__ = ["interactive", "history_path", "HELP", "HISTORY_LENGTH"]

#: Lines kept in the history file.
HISTORY_LENGTH = 1000

HELP = """\
  TEXT                      send TEXT as a text message
  //TEXT                    send /TEXT (a leading / doubled is sent as one)
  /ping [DATA]              send a ping and show the round trip to its pong
  /binary DATA              send a binary message (hex, e.g. /binary 00ff10; base64 with
                            --binary-format base64)
  /close [CODE [REASON]]    close the connection (default 1000) and exit
  /help                     this list
  Ctrl-D                    close normally and exit; Ctrl-C: close with 1001, exit 130"""

_PROMPT = "> "

#: Seconds the main thread waits at a time for a line read by another thread: Python acts
#: on a pending Ctrl-C between two waits (on Windows Ctrl-C does not interrupt a lock's wait).
_WAKE_INTERVAL = 0.2


def history_path() -> Path:
    """Where the prompt's history is kept.

    Returns:
        ``%APPDATA%\\wsclient\\history`` on Windows, else ``$XDG_DATA_HOME/wsclient/history``
        (``~/.local/share`` when ``XDG_DATA_HOME`` is unset, empty or relative).
    """
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        base = Path(os.environ["APPDATA"])
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "wsclient" / "history"


def _load_history(path: Path) -> None:
    if readline is None:
        return
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(str(path))
    except OSError:  # None yet, or unreadable: start empty.
        pass


def _save_history(path: Path, palette: Palette) -> None:
    if readline is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        readline.write_history_file(str(path))
        os.chmod(path, 0o600)  # Typed lines may hold tokens: for the user's eyes only.
    except OSError as exc:
        print(palette.paint("error", f"wsclient: cannot save the history in {path}: {exc.strerror or exc}"),
              file=sys.stderr)


class _Woken(Exception):
    """Raised in the main thread to end the wait for a line once the connection has closed."""


class _Screen:
    """Prints lines above the prompt, redrawing the half-typed line under them."""

    def __init__(self, palette: Palette) -> None:
        self.palette = palette
        #: The prompt as drawn, in the colour of what we send.
        self.prompt = palette.paint("sent", _PROMPT)
        #: The same for input(): readline is told which characters take no room on screen.
        self.input_prompt = palette.paint("sent", _PROMPT, invisible=("\001", "\002"))
        self.lock = threading.Lock()
        self.reading = False  # The main thread waits in input(): the prompt is on screen.

    def show(self, role: str, text: str) -> None:
        with self.lock:
            buffer = readline.get_line_buffer() if readline is not None else ""
            tail = self.prompt + buffer if self.reading else ""
            lines = self.palette.paint(role, text)
            sys.stdout.write(f"\r\x1b[K{lines}\n{tail}" if self.reading else f"{lines}\n")
            sys.stdout.flush()


def interactive(session: Session, *, formatter: Formatter, palette: Palette, show_pings: bool, uri: str) -> int:
    """Run the connection at the terminal until it ends.

    Args:
        session: the open connection.
        formatter: how messages are shown.
        palette: colours.
        show_pings: show keepalive pings and their round trips (``-P``).
        uri: what was connected to (for the banner; its password is not shown).

    Returns:
        The exit status.
    """
    ws = session.ws
    screen = _Screen(palette)
    ended = threading.Event()  # The connection has closed: input() must not wait any more.

    def pong(rtt: Optional[float], keepalive: bool) -> None:
        if keepalive and not show_pings:
            return
        what = "keepalive ping" if keepalive else "ping"
        if rtt is None:
            screen.show("error", f"{what}: no pong")
        else:
            screen.show("control", f"{what}: pong after {rtt * 1000:.2f} ms")

    def received(message: Union[str, bytes]) -> None:
        screen.show("received", "< " + formatter.format(message).replace("\n", "\n  "))

    session.on_pong = pong
    history = history_path()
    _load_history(history)
    extensions = ws.response.headers["Sec-WebSocket-Extensions"] if ws.response is not None else None
    # The banner first, then the receiver: a server that speaks first comes after it.
    print(palette.paint("info", f"connected to {redact(uri)} (subprotocol: {ws.subprotocol}, extensions: "
                                f"{extensions or 'none'}); /help for commands, Ctrl-D to quit"), flush=True)
    receiver = Receiver(session, received)
    receiver.start()
    lines = _SignalledInput(screen) if _can_signal_main_thread() else _ThreadedInput()
    threading.Thread(target=_wake_on_close, name="wsclient-waker", daemon=True,
                     args=(receiver, screen, ended, lines)).start()
    status: Optional[int] = None
    try:
        while True:
            try:
                with screen.lock:
                    if ended.is_set():
                        break
                    screen.reading = True
                line = lines.read(screen.input_prompt)
            except EOFError:
                print()
                break
            finally:
                with screen.lock:
                    screen.reading = False
            try:
                if _command(session, line, screen, formatter):
                    break
            except ConnectionClosed:
                break
            except (ValueError, TypeError) as exc:
                screen.show("error", f"error: {exc}")
    except KeyboardInterrupt:
        print()
        status = EXIT_INTERRUPTED
        if not ws.closed:
            shorten_close(ws)
            try:
                session.close(1001)
            except (KeyboardInterrupt, OSError):
                pass
    except _Woken:  # _wake_on_close after the peer closed
        print()
    finally:
        lines.close()
        _save_history(history, palette)
    try:
        receiver.close_and_wait()
    except KeyboardInterrupt:  # A second Ctrl-C while waiting for the peer's close frame.
        status = EXIT_INTERRUPTED
    if status is None:
        status = status_after_close(ws)
    print(palette.paint("info" if status == 0 else "error", describe_close(ws)), flush=True)
    return status


def _can_signal_main_thread() -> bool:
    """Whether a thread can interrupt the main thread's ``input()`` with SIGUSR1: not on
    Windows (no ``pthread_kill``, no SIGUSR1), nor when not called from the main thread."""
    return (hasattr(signal, "pthread_kill") and hasattr(signal, "SIGUSR1")
            and threading.current_thread() is threading.main_thread())


class _SignalledInput:
    """Lines read by ``input()`` in the main thread, which SIGUSR1 interrupts once the
    connection has closed (:meth:`wake`)."""

    def __init__(self, screen: _Screen) -> None:
        self._screen = screen
        self._previous = signal.signal(signal.SIGUSR1, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:  # in the main thread, between bytecodes
        if self._screen.reading:  # only input() is interrupted, and only once
            self._screen.reading = False
            raise _Woken

    def read(self, prompt: str) -> str:
        """A line typed at the prompt.

        Raises:
            EOFError: Ctrl-D.
            KeyboardInterrupt: Ctrl-C.
            _Woken: the connection has closed.
        """
        return input(prompt)

    def wake(self) -> None:
        """End a wait in :meth:`read`, from another thread, once the connection has closed.

        The signal is repeated while input() still waits: one that lands just before
        readline blocks in select() is only seen at the next interruption.
        """
        main = threading.main_thread().ident or 0
        for _ in range(50):  # at most about 10 s
            if not self._screen.reading:
                return
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.2)

    def close(self) -> None:
        """Put the previous SIGUSR1 handler back."""
        signal.signal(signal.SIGUSR1, self._previous)


#: What the reading thread hands over: a line, or the exception input() raised; None from
#: :meth:`_ThreadedInput.wake`.
_Result = Union[str, BaseException, None]


class _ThreadedInput:
    """Lines read by ``input()`` in a daemon thread, one per :meth:`read`, for where nothing
    can interrupt the main thread's ``input()`` (Windows). The main thread waits for each line
    in bounded waits, so Ctrl-C reaches it there too, and gives up once the connection has
    closed (:meth:`wake`); the reading thread is then left waiting, and ends with the process.
    A terminal that readline left in its line-editing mode meanwhile is put back as it was.
    """

    def __init__(self) -> None:
        self._prompts: "queue.SimpleQueue[str]" = queue.SimpleQueue()
        self._results: "queue.SimpleQueue[_Result]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._terminal: Optional[List[Any]] = None  # The terminal's modes, to restore.
        if termios is not None and sys.stdin.isatty():
            try:
                self._terminal = termios.tcgetattr(sys.stdin.fileno())
            except (termios.error, OSError, ValueError):
                pass

    def _run(self) -> None:
        while True:
            prompt = self._prompts.get()
            try:
                self._results.put(input(prompt))
            except BaseException as exc:  # EOFError, KeyboardInterrupt...: the main thread's to raise.
                self._results.put(exc)
                return

    def read(self, prompt: str) -> str:
        """A line typed at the prompt.

        Raises:
            EOFError: Ctrl-D (Ctrl-Z then Enter on Windows).
            KeyboardInterrupt: Ctrl-C.
            _Woken: the connection has closed.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wsclient-input", daemon=True)
            self._thread.start()
        self._prompts.put(prompt)
        while True:
            try:
                result = self._results.get(timeout=_WAKE_INTERVAL)
            except queue.Empty:  # Python acts on a pending Ctrl-C here (Windows).
                continue
            if result is None:
                raise _Woken
            if isinstance(result, BaseException):
                raise result
            return result

    def wake(self) -> None:
        """End a wait in :meth:`read` (now or the next one) once the connection has closed."""
        self._results.put(None)

    def close(self) -> None:
        """Put the terminal's modes back (echo, lines), which readline may have changed in a
        read left waiting; the reading thread itself is a daemon."""
        if termios is not None and self._terminal is not None:
            try:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._terminal)
            except (termios.error, OSError, ValueError):
                pass


def _wake_on_close(receiver: Receiver, screen: _Screen, ended: threading.Event,
                   lines: Union[_SignalledInput, _ThreadedInput]) -> None:
    """Once the connection has closed, end the wait for a line, if any."""
    receiver.join()
    with screen.lock:
        ended.set()
    lines.wake()


def _command(session: Session, line: str, screen: _Screen, formatter: Formatter) -> bool:
    """Run one typed line; True when it closed the connection.

    Raises:
        ValueError: a command used wrongly (the message says how to use it).
        ConnectionClosed: the connection is closed.
    """
    if not line.startswith("/") or line.startswith("//"):
        session.send(line[1:] if line.startswith("//") else line)
        return False
    name, _, rest = line.partition(" ")
    rest = rest.strip()
    if name == "/help":
        screen.show("info", HELP)
    elif name == "/ping":
        data = rest.encode()
        if len(data) > 125:
            raise ValueError(f"a ping carries at most 125 bytes, not {len(data)}")
        session.ping(data)  # The round trip is shown by the on_pong callback.
    elif name == "/binary":
        session.send(parse_binary(rest, formatter.binary_format))
    elif name == "/close":
        code_text, _, reason = rest.partition(" ")
        if code_text and not code_text.isdigit():
            raise ValueError(f"/close takes a close code such as 1000 or 4000, then a reason; not {code_text!r}")
        code = int(code_text) if code_text else 1000
        try:
            session.close(code, reason.strip())
        except ValueError as exc:
            raise ValueError(f"/close {code}: {exc} (use 1000, 1001, 1003, 1007-1014 or 3000-4999)") from None
        return True
    else:
        raise ValueError(f"unknown command {name!r}: /help lists them; type //{name[1:]} to send {name!r} as text")
    return False
