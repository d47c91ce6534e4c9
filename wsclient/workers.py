"""Several server processes on one port: a supervisor that starts, watches and stops them.

One Python process runs handlers on one core at a time (the GIL). To use more cores, the
supervisor (this process) starts N worker processes, each with its own
:class:`~wsclient.WebSocketServer` bound to the same port with ``SO_REUSEPORT``; the kernel
spreads new connections over the workers that listen. The lifecycle:

- The supervisor first *reserves* the port: it binds a socket with ``SO_REUSEPORT`` that
  never listens, so it gets no connections, yet ``port=0`` is resolved once for every
  worker and the port stays out of other programs' reach for as long as the group runs.
- Workers are started with :mod:`multiprocessing`'s ``spawn`` method (a fresh interpreter:
  no threads or locks copied from the parent), build their server with
  ``factory(host, port)`` and report ready.
- SIGINT (Ctrl-C) and SIGTERM to the supervisor stop the group: SIGTERM to each worker
  (whose server then closes its connections with 1001), a bounded wait, SIGKILL for any
  straggler. Workers ignore SIGINT themselves, so a terminal's Ctrl-C, which reaches the
  whole process group, is answered once, by the supervisor; a worker whose supervisor
  vanishes (even by SIGKILL) stops on its own.
- A worker that dies before it is ready stops the whole group with an error. One that
  dies later is replaced (its clients lose their connections, with code 1006), at most
  :data:`MAX_RESTARTS` times in :data:`RESTART_WINDOW` seconds.

Run :func:`serve_workers` or :func:`run_workers` from the main thread, under an
``if __name__ == "__main__":`` guard (the workers import the main module again), with a
handler or factory defined at module level (it is pickled by name).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .deflate import DeflateOptions
from .http11 import Request, Response
from .opening import DEFAULT_SERVER
from .options import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_QUEUE, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT
from .protocol import DEFAULT_MAX_SIZE
from .server import (
    DEFAULT_BACKLOG,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    Handler,
    WebSocketServer,
    reuse_port_option,
    serve,
    set_reuse_port,
)

__all__ = [
    "serve_workers", "run_workers", "reserve_port", "ServerFactory",
    "DEFAULT_START_TIMEOUT", "DEFAULT_STOP_TIMEOUT", "MAX_RESTARTS", "RESTART_WINDOW",
]

logger = logging.getLogger(__name__)

#: Seconds a worker has to build its server and report ready.
DEFAULT_START_TIMEOUT = 30.0
#: Seconds the workers have, in all, to exit after SIGTERM before they are killed; longer
#: than a server's own shutdown bound (10 s), so a clean shutdown is never cut short.
DEFAULT_STOP_TIMEOUT = 15.0
#: Replacements of crashed workers allowed within :data:`RESTART_WINDOW` seconds; one more
#: stops the group (a worker that keeps crashing is a bug, not bad luck).
MAX_RESTARTS = 10
RESTART_WINDOW = 60.0

#: ``factory(host, port)`` builds a worker's server, bound to ``port`` with
#: ``reuse_port=True``; it runs in the worker process.
ServerFactory = Callable[[str, int], WebSocketServer]

#: Exit statuses of :func:`run_workers`.
_OK, _FAILED = 0, 1


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind ``(host, port)`` with ``SO_REUSEPORT`` without listening, to hold the port.

    Servers bound with ``reuse_port=True`` to the same port can share it; programs without
    ``SO_REUSEPORT`` cannot. A socket that never listens receives no connections.

    Args:
        host: the address to bind.
        port: the port; 0 picks a free one (read it from ``getsockname()[1]``).

    Returns:
        The bound socket; close it to release the port.

    Raises:
        ValueError: the platform has no ``SO_REUSEPORT``.
        OSError: the port is taken by a program that does not share it.
    """
    reuse_port_option()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_reuse_port(sock)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def serve_workers(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    workers: int,
    on_ready: Optional[Callable[[int, List[int]], Any]] = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ssl_context: None = None,
    subprotocols: Optional[Sequence[str]] = None,
    select_subprotocol: Optional[Callable[[Request, List[str]], Optional[str]]] = None,
    origins: Optional[Sequence[Optional[str]]] = None,
    process_request: Optional[Callable[[Request], Any]] = None,
    process_response: Optional[Callable[[Request, Response], Any]] = None,
    server_header: Optional[str] = DEFAULT_SERVER,
    compression: Union[str, DeflateOptions, None] = "deflate",
    max_size: Optional[int] = DEFAULT_MAX_SIZE,
    max_queue: Optional[int] = DEFAULT_MAX_QUEUE,
    ping_interval: Optional[float] = DEFAULT_PING_INTERVAL,
    ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT,
    close_timeout: Optional[float] = DEFAULT_CLOSE_TIMEOUT,
    handshake_timeout: Optional[float] = DEFAULT_HANDSHAKE_TIMEOUT,
    max_connections: Optional[int] = DEFAULT_MAX_CONNECTIONS,
    backlog: int = DEFAULT_BACKLOG,
    trusted_proxies: Optional[Sequence[str]] = None,
) -> int:
    """Serve ``handler`` from ``workers`` processes sharing one port, until SIGINT or SIGTERM.

    Args:
        handler: a module-level function (it is pickled by name), run as with
            :func:`wsclient.serve` in each worker.
        host: the address to bind.
        port: the port; 0 picks a free one, the same for every worker.
        workers: how many processes.
        on_ready: called in the supervisor as ``on_ready(port, pids)`` once every worker
            listens.
        start_timeout: seconds each worker has to start.
        stop_timeout: seconds the workers have, in all, to exit once stopped.
        ssl_context: only None: a TLS context does not pickle, so build it in a factory
            and use :func:`run_workers` instead.
        subprotocols, select_subprotocol, origins, process_request, process_response, server_header, compression, max_size, max_queue, ping_interval, ping_timeout, close_timeout, handshake_timeout, max_connections, backlog, trusted_proxies:
            as :class:`~wsclient.WebSocketServer` documents them, for each worker's server
            (bound with ``reuse_port=True``); they must pickle (hooks defined at module
            level).

    Returns:
        The exit status (0 after a requested stop; 1 when a worker failed to start, kept
        crashing, or had to be killed).

    Raises:
        TypeError: an ``ssl_context`` other than None.
        ValueError: ``workers`` below 1, or no ``SO_REUSEPORT`` on this platform.
        OSError: the port is taken.
    """
    if ssl_context is not None:
        raise TypeError("serve_workers() cannot send an ssl_context to its workers (it does not pickle): "
                        "build it in a factory and use run_workers()")
    options: Dict[str, Any] = dict(
        subprotocols=subprotocols, select_subprotocol=select_subprotocol, origins=origins,
        process_request=process_request, process_response=process_response,
        server_header=server_header, compression=compression, max_size=max_size,
        max_queue=max_queue, ping_interval=ping_interval, ping_timeout=ping_timeout,
        close_timeout=close_timeout, handshake_timeout=handshake_timeout,
        max_connections=max_connections, backlog=backlog, trusted_proxies=trusted_proxies,
    )
    factory = functools.partial(_serve_reusing_port, handler, options)
    return run_workers(factory, host, port, workers=workers, on_ready=on_ready,
                       start_timeout=start_timeout, stop_timeout=stop_timeout)


def _serve_reusing_port(handler: Handler, options: Dict[str, Any], host: str, port: int) -> WebSocketServer:
    return serve(handler, host, port, reuse_port=True, **options)


def run_workers(factory: ServerFactory, host: str = "127.0.0.1", port: int = 0, *, workers: int,
                on_ready: Optional[Callable[[int, List[int]], Any]] = None,
                start_timeout: float = DEFAULT_START_TIMEOUT,
                stop_timeout: float = DEFAULT_STOP_TIMEOUT) -> int:
    """Run ``workers`` processes, each serving ``factory(host, port)``, until SIGINT or SIGTERM.

    Args:
        factory: a module-level callable (pickled by name, or a :func:`functools.partial`
            of one) that builds a worker's server bound to ``(host, port)`` with
            ``reuse_port=True``; it runs in the worker.
        host, port, workers, on_ready, start_timeout, stop_timeout: as for
            :func:`serve_workers`.

    Returns:
        The exit status, as for :func:`serve_workers`.

    Raises:
        ValueError: ``workers`` below 1, or no ``SO_REUSEPORT`` on this platform; also
            when not called from the main thread (signal handlers need it).
        OSError: the port is taken.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    with reserve_port(host, port) as reserved:
        group = _Group(factory, host, reserved.getsockname()[1], workers, start_timeout)
        return group.run(on_ready, stop_timeout)


class _Worker:
    """One worker process and the pipe it reports on."""

    def __init__(self, process: Any, conn: Any, deadline: float, replacing: Optional[int]) -> None:
        self.process = process
        self.conn = conn
        self.deadline = deadline
        self.replacing = replacing  # The pid of the worker this one replaces.
        self.ready = False


class _Group:
    """The supervisor's state: the workers, the wake-up pipe its signal handler writes to."""

    def __init__(self, factory: ServerFactory, host: str, port: int, count: int,
                 start_timeout: float) -> None:
        self.factory = factory
        self.host = host
        self.port = port
        self.count = count
        self.start_timeout = start_timeout
        self.context = multiprocessing.get_context("spawn")
        self.workers: List[_Worker] = []
        self.restarts: List[float] = []
        self.stop_signal: Optional[int] = None

    def run(self, on_ready: Optional[Callable[[int, List[int]], Any]], stop_timeout: float) -> int:
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("run the workers from the main thread (it answers SIGINT and SIGTERM)")
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        status = _FAILED
        try:
            for _ in range(self.count):
                self._start()
            status = self._watch(on_ready)
        finally:
            if not self._stop_all(stop_timeout):
                status = _FAILED
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.wake_r.close()
            self.wake_w.close()
        return status

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_signal = signum
        try:
            self.wake_w.send(b"\0")
        except OSError:
            pass

    def _start(self, replacing: Optional[int] = None) -> None:
        parent_end, child_end = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=_worker_main, args=(self.factory, self.host, self.port, child_end),
            name=f"wsclient-worker-{len(self.workers) + 1}",
        )
        process.start()
        child_end.close()
        self.workers.append(_Worker(process, parent_end, time.monotonic() + self.start_timeout, replacing))

    def _watch(self, on_ready: Optional[Callable[[int, List[int]], Any]]) -> int:
        """Wait for signals, reports and deaths; the exit status once the group must stop."""
        announced = False
        while self.stop_signal is None:
            starting = [w for w in self.workers if not w.ready]
            timeout = None
            if starting:
                timeout = max(0.0, min(w.deadline for w in starting) - time.monotonic())
            waitables: List[Any] = [self.wake_r] + [w.conn for w in starting]
            waitables += [w.process.sentinel for w in self.workers]
            multiprocessing.connection.wait(waitables, timeout)
            for worker in starting:
                if not self._check_start(worker):
                    return _FAILED
            for worker in [w for w in self.workers if w.ready and not w.process.is_alive()]:
                if not self._replace(worker):
                    return _FAILED
            if not announced and all(w.ready for w in self.workers):
                announced = True
                if on_ready is not None:
                    on_ready(self.port, self.pids)
        logger.info("signal %d: stopping %d workers", self.stop_signal, len(self.workers))
        return _OK

    @property
    def pids(self) -> List[int]:
        return [w.process.pid for w in self.workers]

    def _check_start(self, worker: _Worker) -> bool:
        """Read a starting worker's report; False when it failed to start."""
        if worker.conn.poll():
            try:
                kind, detail = worker.conn.recv()
            except EOFError:  # It died without a word: its exit status tells more.
                worker.process.join(self.start_timeout)
            else:
                if kind == "ready":
                    worker.ready = True
                    worker.conn.close()
                    if worker.replacing is not None:
                        logger.info("worker %d is ready, replacing %d", worker.process.pid, worker.replacing)
                    return True
                logger.error("worker %d failed to start: %s", worker.process.pid, detail)
                return False
        if not worker.process.is_alive():
            logger.error("worker %d exited with %s before it was ready", worker.process.pid,
                         worker.process.exitcode)
            return False
        if time.monotonic() >= worker.deadline:
            logger.error("worker %d did not start within %s s", worker.process.pid, self.start_timeout)
            return False
        return True

    def _replace(self, worker: _Worker) -> bool:
        """Start a replacement for a worker that died; False when they keep dying."""
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW] + [now]
        worker.process.join()
        self.workers.remove(worker)
        if len(self.restarts) > MAX_RESTARTS:
            logger.error("worker %d exited with %s; %d workers died within %s s: giving up",
                         worker.process.pid, worker.process.exitcode, len(self.restarts), RESTART_WINDOW)
            return False
        logger.warning("worker %d exited with %s; starting a replacement",
                       worker.process.pid, worker.process.exitcode)
        self._start(replacing=worker.process.pid)
        return True

    def _stop_all(self, timeout: float) -> bool:
        """SIGTERM every worker, wait up to ``timeout`` in all, SIGKILL the rest.

        Returns:
            True when every worker exited on its own.
        """
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + timeout
        clean = True
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                logger.error("worker %d did not stop within %s s: killing it", worker.process.pid, timeout)
                worker.process.kill()
                worker.process.join(5.0)
                clean = False
            if not worker.conn.closed:
                worker.conn.close()
        return clean


# -- in the worker process -----------------------------------------------------------------


def _worker_main(factory: ServerFactory, host: str, port: int, conn: Any) -> None:
    """A worker: build the server, report, serve until SIGTERM or the supervisor's death."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # The supervisor alone answers Ctrl-C.
    try:
        server = factory(host, port)
        if server.port != port:
            server.server_close()
            raise RuntimeError(f"the factory bound port {server.port}, not {port}")
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        conn.close()
        sys.exit(1)
    signal.signal(signal.SIGTERM, _interrupt_once)
    try:
        _watch_supervisor()
        conn.send(("ready", os.getpid()))
        conn.close()
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # serve_forever() has closed the connections with 1001.
    finally:
        server.shutdown()
        server.server_close()


def _interrupt_once(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _watch_supervisor() -> None:
    """Stop this worker (SIGTERM to itself) when the supervisor process goes away."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="wsclient-supervisor-watch", daemon=True).start()
