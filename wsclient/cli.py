"""What the ``wsclient`` subcommands do: demo, connect (interactive or piped) and serve.

Built on the public API (:func:`wsclient.connect`, :func:`wsclient.serve`,
:func:`wsclient.broadcast`), plus the worker supervisor of :mod:`wsclient.workers` for
``serve --workers`` and :func:`wsclient.forwarded.parse_trusted` to check
``--trusted-proxy`` early; the argument parser is in :mod:`wsclient.__main__`.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import queue
import signal
import ssl
import statistics
import sys
import threading
import time
from typing import Any, List, Optional, TextIO, Tuple

from .client import connect as ws_connect
from .connection import Message, WebSocket
from .exceptions import ConnectionClosed, InvalidURI
from .forwarded import parse_trusted
from .server import WebSocketServer, broadcast, serve as ws_serve
from .uri import redact
from .workers import run_workers

__all__ = ["demo", "connect", "serve", "format_message", "parse_address", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE",
           "EXIT_INTERRUPTED", "interrupted"]

#: Exit statuses: a normal close; a failed or abnormally closed connection; bad arguments.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: Exit status after Ctrl-C (SIGINT), as shells report a process killed by it (128 + 2).
EXIT_INTERRUPTED = 130

#: Seconds an interrupted command still waits for the peer to answer its 1001 close frame.
INTERRUPT_CLOSE_TIMEOUT = 2.0

_OK_CODES = (1000, 1001)


def interrupted(ws: Optional[WebSocket] = None) -> int:
    """After Ctrl-C: one line on stderr, and an open connection closed with 1001 (going away).

    The close waits at most :data:`INTERRUPT_CLOSE_TIMEOUT` seconds for the peer, and a
    second Ctrl-C stops that wait.

    Args:
        ws: the connection, if one was opened.

    Returns:
        :data:`EXIT_INTERRUPTED`.
    """
    print("wsclient: interrupted", file=sys.stderr, flush=True)
    if ws is not None and not ws.closed:
        ws.close_timeout = min(ws.close_timeout or INTERRUPT_CLOSE_TIMEOUT, INTERRUPT_CLOSE_TIMEOUT)
        try:
            ws.close(1001)  # While closing already, this only waits (bounded) for the end.
        except (KeyboardInterrupt, OSError):
            pass
    return EXIT_INTERRUPTED


# -- demo ------------------------------------------------------------------------------


def _echo(ws: WebSocket) -> None:
    for message in ws:
        ws.send(message)


def demo(*, rounds: int = 100, out: TextIO = sys.stdout) -> int:
    """Echo a few messages over loopback and print what happened and the round-trip time.

    Args:
        rounds: how many small round trips to time.
        out: where to print.

    Returns:
        0 when every message came back intact, else 1.
    """
    server = ws_serve(_echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="wsclient-demo-server", daemon=True)
    thread.start()
    print(f"server: echoing on {server.uri}", file=out)
    ok = True
    try:
        with ws_connect(server.uri, proxy=None, timeout=10) as ws:
            extension = ws.response.headers["Sec-WebSocket-Extensions"] or "none"
            print(f"client: connected to {server.uri} (extensions: {extension})", file=out)
            big = bytes(range(256)) * 4096
            checks: List[Tuple[str, Any, Any]] = [
                ("text", "Hello, WebSocket!", "Hello, WebSocket!"),
                ("binary", b"\x00\x01\x02\xff", b"\x00\x01\x02\xff"),
                ("1 MiB binary", big, big),
                ("fragmented text (3 frames)", ["frag", "ment", "ed"], "fragmented"),
            ]
            for label, sent, expected in checks:
                ws.send(sent)
                got = ws.recv(timeout=10)
                ok &= got == expected
                print(f"  {label:<28} {'echoed' if got == expected else 'MISMATCH'} ({len(got)} {'chars' if isinstance(got, str) else 'bytes'})", file=out)
            start = time.perf_counter()
            pong = ws.ping(b"demo").wait(10)
            ok &= pong
            print(f"  {'ping':<28} {'pong after %.3f ms' % ((time.perf_counter() - start) * 1000) if pong else 'NO PONG'}", file=out)
            times = []
            for i in range(rounds):
                start = time.perf_counter()
                ws.send(f"round {i}")
                ok &= ws.recv(timeout=10) == f"round {i}"
                times.append(time.perf_counter() - start)
            if times:
                print(f"round-trip time: median {statistics.median(times) * 1e6:.0f} us over {rounds} messages", file=out)
        print(f"client: closed with code {ws.close_code}", file=out)
    finally:
        server.shutdown(timeout=5)
        server.server_close()
        thread.join(5)
    print("server: shut down", file=out)
    return EXIT_OK if ok else EXIT_FAILED


# -- connect ---------------------------------------------------------------------------


def format_message(message: Message) -> str:
    """One line for a received message: text with CR and LF escaped, binary as hex.

    Args:
        message: a received message.

    Returns:
        The line, without its newline.
    """
    if isinstance(message, str):
        return message.replace("\r", "\\r").replace("\n", "\\n")
    return f"[binary {len(message)} bytes] {message.hex()}"


def _ssl_context(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    if args.insecure:
        # Deliberately unverified, and only on request (--insecure): a fresh context,
        # never a default one changed behind the user's back.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if args.cafile:
        try:
            return ssl.create_default_context(cafile=args.cafile)
        except OSError as exc:  # ssl.SSLError too
            raise ValueError(f"cannot load --cafile {args.cafile!r}: {_reason(exc)}") from None
    return None


def _reason(exc: OSError) -> str:
    """An OSError's message without the file name that the caller shows its own way."""
    return exc.strerror if exc.strerror and not isinstance(exc, ssl.SSLError) else str(exc)


def _headers(values: List[str]) -> List[Tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"a header is NAME:VALUE, not {value!r}")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def _describe_close(ws: WebSocket) -> str:
    reason = f" ({ws.close_reason})" if ws.close_reason else ""
    return f"connection closed with code {ws.close_code}{reason}"


def connect(args: argparse.Namespace) -> int:
    """The ``connect`` subcommand: open a connection, then run it interactively or as a pipe.

    Args:
        args: the parsed arguments (see ``python -m wsclient connect --help``).

    Returns:
        The exit status.
    """
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(threadName)s %(name)s %(message)s")
    try:
        headers = _headers(args.header)
        context = _ssl_context(args)
    except ValueError as exc:
        print(f"wsclient: invalid argument: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        ws = ws_connect(
            args.uri, timeout=args.timeout, headers=headers, subprotocols=args.subprotocol or None,
            origin=args.origin, proxy=args.proxy, ssl_context=context,
            compression=None if args.no_compression else "deflate",
            ping_interval=args.ping_interval or None,
        )
    except KeyboardInterrupt:
        return interrupted()
    except InvalidURI as exc:
        print(f"wsclient: invalid URI: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # WebSocketError and TimeoutError are OSErrors.
        print(f"wsclient: cannot connect to {redact(args.uri)}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, TypeError) as exc:  # Refused before any traffic: misuse, not failure.
        print(f"wsclient: invalid argument: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if sys.stdin.isatty() and args.recv is None:
            return _interactive(ws)
        return _pipe(ws, recv=args.recv, timeout=args.timeout, idle=args.idle)
    except KeyboardInterrupt:  # Ctrl-C while sending, waiting or closing
        return interrupted(ws)


class _Printer(threading.Thread):
    """Prints every message as it arrives until the connection closes."""

    def __init__(self, ws: WebSocket, *, limit: Optional[int], on_line: Any = None,
                 on_stop: Any = None) -> None:
        super().__init__(name="wsclient-printer", daemon=True)
        self.ws = ws
        self.limit = limit
        self.count = 0
        self.reached = threading.Event()
        self.activity = threading.Event()
        self.error: Optional[BaseException] = None
        self.on_line = on_line
        self.on_stop = on_stop

    def run(self) -> None:
        try:
            while True:
                message = self.ws.recv()
                if self.on_line is not None:
                    self.on_line(format_message(message))
                else:
                    print(format_message(message), flush=True)
                self.count += 1
                self.activity.set()
                if self.limit is not None and self.count >= self.limit:
                    self.reached.set()
                    return
        except ConnectionClosed as exc:
            self.error = exc
        except BaseException as exc:  # Reported by the main thread.
            self.error = exc
        finally:
            self.reached.set()
            if self.on_stop is not None:
                self.on_stop()


def _finish(ws: WebSocket, printer: _Printer) -> int:
    ws.close()
    printer.join(max(5.0, (ws.close_timeout or 10.0) + 1))
    code = ws.close_code
    if code in _OK_CODES:
        return EXIT_OK
    print(f"wsclient: {_describe_close(ws)}", file=sys.stderr)
    return EXIT_FAILED


def _quiet(printer: _Printer, idle: float, timeout: Optional[float]) -> None:
    """Wait until no message has arrived for ``idle`` seconds (at most ``timeout`` in all)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not printer.reached.is_set():
        printer.activity.clear()
        wait = idle if deadline is None else min(idle, deadline - time.monotonic())
        if wait <= 0 or not printer.activity.wait(wait):
            return


#: Lines read ahead of the connection in pipe mode (the reader then waits for the sender).
_READ_AHEAD = 64

#: Queue items of pipe mode besides lines: end of input, and the printer has stopped.
_EOF, _STOPPED = object(), object()


def _read_stdin(events: "queue.Queue[Any]", room: threading.Semaphore) -> None:
    """Put each line of standard input (decoded, without its line end) on ``events``, then _EOF.

    Runs in a daemon thread, so that the main thread waits for input and for the printer at
    once. It reads file descriptor 0 with ``os.read``, not through ``sys.stdin``: a daemon
    thread still blocked in ``sys.stdin`` holds its lock at interpreter shutdown.
    """
    encoding = getattr(sys.stdin, "encoding", None) or "utf-8"
    errors = getattr(sys.stdin, "errors", None) or "strict"
    buffered = b""
    try:
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            *lines, buffered = (buffered + chunk).split(b"\n")
            for line in lines:
                room.acquire()
                events.put(line.rstrip(b"\r").decode(encoding, errors))
        if buffered:
            events.put(buffered.rstrip(b"\r").decode(encoding, errors))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError.
        events.put(exc)
    events.put(_EOF)


def _pipe(ws: WebSocket, *, recv: Optional[int], timeout: Optional[float], idle: float) -> int:
    """Send each line of stdin until its end, the N-th message (--recv N) or the peer's close,
    whichever comes first: stdin left open does not keep a finished connection waiting."""
    events: "queue.Queue[Any]" = queue.Queue()
    room = threading.Semaphore(_READ_AHEAD)
    printer = _Printer(ws, limit=recv, on_stop=lambda: events.put(_STOPPED))
    printer.start()
    threading.Thread(target=_read_stdin, args=(events, room), name="wsclient-stdin", daemon=True).start()
    try:
        while True:
            event = events.get()
            if event is _STOPPED or event is _EOF:
                break
            if isinstance(event, Exception):
                print(f"wsclient: cannot read standard input: {event}", file=sys.stderr)
                ws.close()
                return EXIT_FAILED
            room.release()
            ws.send(event)
        if event is _EOF and recv is not None and not printer.reached.wait(timeout):
            print(f"wsclient: timed out waiting for {recv} messages ({printer.count} received)", file=sys.stderr)
            ws.close()
            return EXIT_FAILED
        if event is _EOF and recv is None and idle > 0:
            # A peer that answers messages (an echo server, an RPC endpoint) must get the
            # chance to answer the last lines before our close frame: once it has our close
            # frame it may not send anything more (RFC 6455 section 5.5.1).
            _quiet(printer, idle, timeout)
    except ConnectionClosed:
        pass  # Reported below from the close code.
    return _finish(ws, printer)


class _Woken(Exception):
    """Raised in the main thread (by SIGUSR1) to end input() once the connection has closed."""


def _interactive(ws: WebSocket) -> int:
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:  # pragma: no cover - Windows
        readline = None  # type: ignore[assignment]  # None marks the module missing
    prompt = "> "
    # ``reading``: the main thread waits in input(), so the prompt is on screen (guarded by
    # ``lock``); ``ended``: the connection has closed and input() must not wait any more.
    lock, reading, ended = threading.Lock(), [False], threading.Event()

    def show(line: str) -> None:
        with lock:
            buffer = readline.get_line_buffer() if readline is not None else ""
            tail = prompt + buffer if reading[0] else ""
            sys.stdout.write(f"\r\x1b[K< {line}\n{tail}")
            sys.stdout.flush()

    def wake(signum: int, frame: Any) -> None:  # runs in the main thread, between bytecodes
        if reading[0]:  # only input() is interrupted, and only once
            reading[0] = False
            raise _Woken

    printer = _Printer(ws, limit=None, on_line=show)
    printer.start()
    previous = _set_wake_handler(wake)
    threading.Thread(target=_wake_on_close, name="wsclient-waker", daemon=True,
                     args=(printer, lock, reading, ended, previous is not None)).start()
    print(f"connected (subprotocol: {ws.subprotocol}); /ping, /binary HEX, /close [CODE [REASON]], Ctrl-D to quit")
    try:
        while True:
            try:
                with lock:
                    if ended.is_set():
                        break
                    reading[0] = True
                line = input(prompt)
            except EOFError:
                print()
                break
            finally:
                with lock:
                    reading[0] = False
            try:
                if _command(ws, line):
                    break
            except ConnectionClosed:
                break
            except ValueError as exc:
                print(f"error: {exc}")
    except (KeyboardInterrupt, _Woken):  # Ctrl-C, or _wake_on_close after the peer closed
        print()
        ws.close(1001)  # nothing to do when the connection is already closed
    finally:
        if previous is not None:
            signal.signal(signal.SIGUSR1, previous)
    status = _finish(ws, printer)
    print(_describe_close(ws))
    return status


def _set_wake_handler(wake: Any) -> Any:
    """Install ``wake`` for SIGUSR1 where threads can be signalled; the previous handler, or
    None where that cannot be done (Windows, or not in the main thread)."""
    if not hasattr(signal, "pthread_kill"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGUSR1, wake)


def _wake_on_close(printer: _Printer, lock: threading.Lock, reading: List[bool],
                   ended: threading.Event, can_signal: bool) -> None:
    """Once the connection has closed, interrupt an input() still waiting for a line.

    The signal is repeated while input() still waits: one that lands just before readline
    blocks in select() is only seen at the next interruption.
    """
    printer.join()
    with lock:
        ended.set()
    main = threading.main_thread().ident or 0
    for _ in range(50):  # at most about 10 s
        if not (can_signal and reading[0]):
            return
        signal.pthread_kill(main, signal.SIGUSR1)
        time.sleep(0.2)


def _command(ws: WebSocket, line: str) -> bool:
    """Run one interactive line; True when it closed the connection."""
    if line.startswith("/ping"):
        data = line[5:].strip().encode()
        start = time.perf_counter()
        if ws.ping(data).wait(ws.ping_timeout or 20.0):
            print(f"pong after {(time.perf_counter() - start) * 1000:.2f} ms")
        else:
            print("no pong")
    elif line.startswith("/binary"):
        ws.send(bytes.fromhex(line[7:].strip()))
    elif line.startswith("/close"):
        parts = line[6:].strip().split(None, 1)
        code = int(parts[0]) if parts else 1000
        ws.close(code, parts[1] if len(parts) > 1 else "")
        return True
    else:
        ws.send(line)
    return False


# -- serve -----------------------------------------------------------------------------


def parse_address(text: str) -> Tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` -> ``(host, port)``; HOST defaults to 127.0.0.1.

    Raises:
        ValueError: not an address.
    """
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"not a [HOST:]PORT: {text!r}")
    return host or "127.0.0.1", int(port)


def _server_handler(mode: str, holder: List[WebSocketServer], *, tag: str = "", show_client: bool = False) -> Any:
    def handler(ws: WebSocket) -> None:
        peer = ws.remote_address
        client = f" client={ws.client_address}" if show_client else ""
        print(f"{tag}opened {peer} {ws.request.path}{client}", file=sys.stderr, flush=True)
        try:
            for message in ws:
                if mode == "broadcast":
                    broadcast(holder[0].connections, message)
                else:
                    ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            if not ws.closed:
                ws.close()
            print(f"{tag}closed {peer} code={ws.close_code} reason={ws.close_reason!r}", file=sys.stderr, flush=True)

    return handler


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _server_context(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.certfile, args.keyfile)
        except OSError as exc:  # ssl.SSLError too
            files = f"--certfile {args.certfile!r}" + (f" or --keyfile {args.keyfile!r}" if args.keyfile else "")
            raise ValueError(f"cannot load {files}: {_reason(exc)}") from None
        return context
    if args.keyfile:
        raise ValueError("--keyfile needs --certfile")
    return None


def _build_server(args: argparse.Namespace, host: str, port: int, *, reuse_port: bool = False,
                  tag: str = "") -> WebSocketServer:
    """The server ``serve`` runs, in this process or in each worker."""
    holder: List[WebSocketServer] = []
    handler = _server_handler(args.mode, holder, tag=tag, show_client=bool(args.trusted_proxy))
    server = ws_serve(handler, host, port, ssl_context=_server_context(args),
                      compression=None if args.no_compression else "deflate",
                      trusted_proxies=args.trusted_proxy or None, reuse_port=reuse_port)
    holder.append(server)
    return server


def _worker_server(args: argparse.Namespace, host: str, port: int) -> WebSocketServer:
    """A worker's server (runs in the worker process): shares the port, tags its lines."""
    return _build_server(args, host, port, reuse_port=True, tag=f"[pid {os.getpid()}] ")


def _uri(args: argparse.Namespace, host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{'wss' if args.certfile else 'ws'}://{host}:{port}/"


def serve(args: argparse.Namespace) -> int:
    """The ``serve`` subcommand: an echo or broadcast server until Ctrl-C (or SIGTERM).

    With ``--workers N`` (N > 1), N processes share the port (see :mod:`wsclient.workers`).

    Args:
        args: the parsed arguments (see ``python -m wsclient serve --help``).

    Returns:
        The exit status.
    """
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    try:
        host, port = parse_address(args.address)
        _server_context(args)
        parse_trusted(args.trusted_proxy)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {args.workers}")
        if args.workers > 1 and args.mode == "broadcast":
            raise ValueError("--broadcast reaches the clients of one process only: use one worker "
                             "(or relay messages between processes, as docs/deployment.rst shows)")
    except (ValueError, OSError) as exc:
        print(f"wsclient: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.workers > 1:
        return _serve_workers(args, host, port)
    try:
        server = _build_server(args, host, port)
    except OSError as exc:
        print(f"wsclient: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(server.uri, flush=True)
    print(f"serving ({args.mode}) on {server.uri}; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("shutting down", file=sys.stderr, flush=True)
    finally:
        server.shutdown(timeout=5)
        server.server_close()
    return EXIT_OK


def _serve_workers(args: argparse.Namespace, host: str, port: int) -> int:
    """``serve --workers N``: a supervisor (this process) and N workers on one port."""

    def ready(bound: int, pids: List[int]) -> None:
        uri = _uri(args, host, bound)
        print(f"serving ({args.mode}) on {uri} with {len(pids)} workers "
              f"(pids {' '.join(map(str, pids))}); Ctrl-C to stop", file=sys.stderr, flush=True)
        print(uri, flush=True)  # Last: whoever reads it finds the pids on stderr already.

    if not logging.getLogger().handlers:  # The supervisor's notices: worker deaths, restarts.
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="wsclient: %(message)s")
    try:
        status = run_workers(functools.partial(_worker_server, args), host, port,
                             workers=args.workers, on_ready=ready)
    except (ValueError, OSError) as exc:
        print(f"wsclient: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print("shut down" if status == 0 else "stopped after a failure", file=sys.stderr, flush=True)
    return EXIT_OK if status == 0 else EXIT_FAILED
