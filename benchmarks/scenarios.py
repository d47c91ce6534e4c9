"""The seven benchmark scenarios, each measured side by side, alternating libraries.

Every scenario returns :class:`Row` values: one per (scenario, library), holding one figure
per repeat. Libraries are run in turn within each repeat (the starting library rotates), so
a burst of noise on this small shared machine hits every library rather than one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import peers, raw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
MIB = 1 << 20


@dataclasses.dataclass
class Config:
    """How long and how often to measure."""

    duration: float = 1.0
    repeat: int = 5
    quick: bool = False
    #: Runs per library of the heavy scenarios (c10k, broadcast): --repeat when given, else 1.
    heavy_repeat: int = 1
    #: Connections in the c10k scenario (--connections).
    connections: int = 10_000
    #: The wsclient server's keepalive interval in the c10k scenario (--keepalive).
    keepalive: float = 20.0
    #: Clients in the broadcast and load scenarios (--clients); None: 1,000 and 100.
    clients: Optional[int] = None


@dataclasses.dataclass
class Row:
    """One library in one scenario: a figure per repeat (higher is better)."""

    scenario: str
    library: str
    unit: str
    values: List[float] = dataclasses.field(default_factory=list)
    notes: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
    error: Optional[str] = None


# -- CPU placement ------------------------------------------------------------------------

#: The CPUs this process may use, lowest first.
CPUS = sorted(os.sched_getaffinity(0))


@dataclasses.dataclass
class Layout:
    """Where the process under test and its peer run (CPU numbers)."""

    measured: int
    peer: int


#: Ping-pong (round trips, handshakes): both on one CPU, so a wake-up is a context switch on
#: that CPU rather than an inter-processor wake-up (about 50 us on this 2-vCPU VM, more than
#: the 15-60 us of CPU a round trip costs, which would pull every ratio towards 1.0).
PING_PONG = Layout(CPUS[0], CPUS[0])
#: Bulk work (large messages, deflate, many connections): one CPU each, so they run at once.
BULK = Layout(CPUS[0], CPUS[-1])

#: The layout of the scenario running now (set by :func:`placed`).
LAYOUT = PING_PONG


def pin(pid: int, cpu: int) -> None:
    """Pin process ``pid`` (0: this one) to ``cpu``. Threads started later inherit it."""
    os.sched_setaffinity(pid, {cpu})


def placed(layout: Layout, scenario: Callable[["Config"], List["Row"]]) -> Callable[["Config"], List["Row"]]:
    """Run ``scenario`` with this process on ``layout.measured`` and peers placed by ``layout``."""

    @functools.wraps(scenario)
    def run(cfg: "Config") -> List["Row"]:
        global LAYOUT
        saved = os.sched_getaffinity(0)
        LAYOUT = layout
        pin(0, layout.measured)
        try:
            return scenario(cfg)
        finally:
            os.sched_setaffinity(0, saved)

    return run


# -- processes --------------------------------------------------------------------------


class Peer:
    """A ``python -m benchmarks.peers`` process (a server or a driver)."""

    def __init__(self, *args: str, ready: str, timeout: float = 60.0, measured: bool = False,
                 command: Optional[List[str]] = None) -> None:
        self.log = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "benchmarks.peers", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT, env=env,
        )
        self.pid = self.proc.pid
        # Placed before it does anything measured; its threads inherit the CPU.
        pin(self.pid, LAYOUT.measured if measured else LAYOUT.peer)
        self.first = self.readline(timeout)
        if not self.first.startswith(ready):
            raise RuntimeError(f"{args[0]} {args[1]} did not start: {self.first!r} {self._log_tail()}")

    def readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"peer {self.pid} silent for {timeout} s {self._log_tail()}")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"peer {self.pid} exited {self._log_tail()}")
        return line.strip()

    def _log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-600:]

    @property
    def port(self) -> int:
        return int(self.first.split()[1])

    def run(self, duration: float, timeout: float = 120.0) -> dict:
        return self.command(f"run {duration}", duration + timeout)

    def send(self, line: str) -> None:
        """Write one command line to the peer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def command(self, line: str, timeout: float) -> dict:
        """Send one command line and read the JSON line that answers it."""
        self.send(line)
        return json.loads(self.readline(timeout))

    def _stat(self) -> List[str]:
        """The fields of /proc/PID/stat after the command name (the state is [0])."""
        with open(f"/proc/{self.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far (all its threads)."""
        fields = self._stat()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def minor_faults(self) -> int:
        """Minor page faults of the process so far (all its threads)."""
        return int(self._stat()[7])

    def status(self) -> Dict[str, int]:
        """VmRSS and VmHWM (KiB) and Threads from /proc/PID/status."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.log.close()

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def server(lib: str, deflate: bool = False, *extra: str, measured: bool = False) -> Peer:
    return Peer("serve", lib, *(["--deflate"] if deflate else []), *extra, ready="PORT", measured=measured)


#: The Node driver holding many client connections (see benchmarks/node_driver.js).
NODE_DRIVER = os.path.join(ROOT, "benchmarks", "node_driver.js")


def node_driver(port: int) -> Peer:
    """The Node many-connection driver, on the peer CPU."""
    return Peer(ready="READY", command=["node", NODE_DRIVER, str(port)])


def driver(mode: str, port: int, *extra: str, timeout: float = 60.0) -> Peer:
    return Peer("drive", mode, "--port", str(port), *extra, ready="READY", timeout=timeout)


# -- measuring --------------------------------------------------------------------------


def alternate(rows: Dict[str, Row], runs: Dict[str, Callable[[], float]], repeat: int) -> None:
    """Run each library once per repeat, rotating the order; record figures or the error."""
    names = list(runs)
    for rep in range(repeat):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            row = rows[name]
            if row.error:
                continue
            try:
                row.values.append(runs[name]())
            except Exception as exc:  # a library failing is a result, not a crash
                row.error = f"{type(exc).__name__}: {exc}"[:120]


def _url(port: int) -> str:
    return f"ws://{HOST}:{port}/"


# -- clients under test ---------------------------------------------------------------


def open_client(lib: str, port: int, *, deflate: bool = False) -> Tuple[Callable[[Any], Any], Callable[[], None]]:
    """Connect ``lib`` to the server on ``port``: (echo(message) -> reply, close)."""
    if lib == "raw":
        conn = raw.raw_connect(HOST, port, deflate=deflate)

        def echo(message: Any) -> Any:
            if isinstance(message, str):
                conn.send(message.encode(), raw.TEXT)
                return conn.recv()[1].decode()
            conn.send(message, raw.BINARY)
            return conn.recv()[1]

        return echo, conn.close
    if lib in ("wsclient", "wsclient+numpy"):
        import wsclient

        ws = wsclient.connect(_url(port), proxy=None, compression="deflate" if deflate else None, max_size=None)

        def echo_wsclient(message: Any) -> Any:
            ws.send(message)
            return ws.recv()

        return echo_wsclient, ws.close
    elif lib == "websocket-client":
        import websocket

        ws = websocket.create_connection(_url(port))
        if deflate:
            raise RuntimeError("websocket-client has no permessage-deflate")

        def echo_wc(message: Any) -> Any:
            if isinstance(message, str):
                ws.send(message)
            else:
                ws.send_binary(message)
            return ws.recv()

        return echo_wc, ws.close
    elif lib == "websockets":
        from websockets.sync.client import connect

        ws = connect(_url(port), compression="deflate" if deflate else None, max_size=None, proxy=None)
    else:
        raise ValueError(lib)

    def echo_ws(message: Any) -> Any:
        ws.send(message)
        return ws.recv()

    return echo_ws, ws.close


def _mask_with_numpy(on: bool) -> None:
    """Switch wsclient's masking between pure Python and numpy, within this process."""
    from wsclient import frames

    frames._numpy = None if on else False
    if on and not frames._load_numpy():
        raise RuntimeError("numpy is not installed")


def _numpy_installed() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


CLIENTS = ["raw", "wsclient", "websocket-client", "websockets"]
SERVERS = ["raw", "wsclient", "websockets"]
#: Where ``npm ci --prefix tests/interop/node`` puts Node's ws.
NODE_WS = os.path.join(ROOT, "tests", "interop", "node", "node_modules", "ws")


def node_available() -> bool:
    """Whether Node and its ws package are installed (see :data:`NODE_WS`)."""
    return shutil.which("node") is not None and os.path.isdir(NODE_WS)


def neutral(large: bool = False) -> str:
    """The neutral echo server for a client scenario: the faster one for the workload.

    Measured here: Node's ws answers small messages and handshakes 1.5 to 1.8 times as fast
    as the websockets asyncio server, which is faster on 1 MiB and compressed messages (its
    C extension masks; Node's ws without its optional native addon masks in JavaScript).
    """
    return "node" if node_available() and not large else "neutral"


def neutral_name() -> str:
    """The neutral servers as the table's notes name them."""
    if node_available():
        return "Node's ws in 1 and 5, websockets asyncio in 2 and 6 (the faster for each)"
    return "websockets asyncio"


#: The note with the CPU time one operation cost the process being measured.
CPU_NOTE = "cpu µs/op"

#: The note with the minor page faults per operation of the process being measured, for
#: large messages: memory malloc gave back to the kernel and takes again costs each time
#: (about 3 µs a fault on this virtual machine), and it depends on how a library allocates.
FAULTS_NOTE = "page faults/op"


def _client_run(row: Row, step: Callable[[], Any], duration: float, per_op: float,
                setup: Optional[Callable[[], Any]] = None, faults: bool = False) -> float:
    """Time ``step`` in this process: the rate, and the process CPU time per step as a note.

    The CPU time is steadier than the rate on a noisy machine, and it is the client's own
    cost: the peer's time, and waiting for it, are not in it. ``setup`` runs first, untimed.
    With ``faults``, the minor page faults per step are a note too.
    """
    if setup is not None:
        setup()
    cpu = time.process_time()
    faulted = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ops, elapsed = peers.timed(step, duration)
    row.notes.setdefault(CPU_NOTE, []).append((time.process_time() - cpu) / ops * 1e6)
    if faults:
        faulted = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faulted
        row.notes.setdefault(FAULTS_NOTE, []).append(faulted / ops)
    return ops * per_op / elapsed


def _client_echo_rows(cfg: Config, title: str, unit: str, message: Any, per_op: float,
                      port: int, libs: List[str], deflate: bool = False, faults: bool = False) -> List[Row]:
    rows = {lib: Row(title, lib, unit) for lib in libs}
    runs = {}
    closers = []
    for lib in libs:
        try:
            echo, close = open_client(lib, port, deflate=deflate)
        except Exception as exc:
            rows[lib].error = f"{type(exc).__name__}: {exc}"[:120]
            continue
        closers.append(close)
        # The masking path a wsclient row measures, chosen before each of its runs.
        setup = functools.partial(_mask_with_numpy, lib == "wsclient+numpy") if lib.startswith("wsclient") else None
        if setup:
            setup()
        if echo(message) != message:
            rows[lib].error = "echo mismatch"
            continue
        runs[lib] = (lambda e=echo, row=rows[lib], f=setup:
                     _client_run(row, lambda: e(message), cfg.duration, per_op, f, faults))
    try:
        alternate(rows, runs, cfg.repeat)
    finally:
        for close in closers:
            try:
                close()
            except Exception:
                pass
    return list(rows.values())


# -- the scenarios ------------------------------------------------------------------------


def s1_client_rtt(cfg: Config) -> List[Row]:
    """Client round trips/s, 32-byte text, against the neutral server (no compression)."""
    with server(neutral()) as srv:
        return _client_echo_rows(cfg, "1 client rtt 32 B", "rt/s", "x" * 32, 1.0, srv.port, CLIENTS)


def s2_client_throughput(cfg: Config) -> List[Row]:
    """Client echo throughput, 1 MiB and 16 MiB binary, MB/s counting both directions."""
    rows: List[Row] = []
    with server(neutral(large=True)) as srv:
        for size in (MIB, 16 * MIB):
            message = os.urandom(size)
            title = f"2 client echo {size // MIB} MiB"
            libs = CLIENTS + (["wsclient+numpy"] if _numpy_installed() else [])
            rows += _client_echo_rows(cfg, title, "MB/s", message, 2 * size / 1e6, srv.port, libs, faults=True)
    return rows


def _server_rows(cfg: Config, title: str, unit: str, per_op: float, mode: str, *extra: str,
                 deflate: bool = False, libs: List[str] = SERVERS, faults: bool = False) -> List[Row]:
    rows = {lib: Row(title, lib, unit) for lib in libs}
    peers_: List[Peer] = []
    runs = {}
    try:
        for lib in libs:
            try:
                srv = server("node" if lib == "node ws" else lib, deflate, measured=True)
                peers_.append(srv)
                drv = driver(mode, srv.port, *extra)
                peers_.append(drv)
            except Exception as exc:
                rows[lib].error = f"{type(exc).__name__}: {exc}"[:120]
                continue
            runs[lib] = (lambda d=drv, s=srv, row=rows[lib]: _server_run(row, s, d, cfg.duration, per_op, faults))
        alternate(rows, runs, cfg.repeat)
    finally:
        for p in peers_:
            p.stop()
    return list(rows.values())


def _server_run(row: Row, srv: Peer, drv: Peer, duration: float, per_op: float, faults: bool = False) -> float:
    """One driver run: the rate, and the server process's CPU time per operation as a note
    (and its minor page faults per operation, with ``faults``)."""
    cpu, faulted = srv.cpu_seconds(), srv.minor_faults()
    result = drv.run(duration)
    row.notes.setdefault(CPU_NOTE, []).append((srv.cpu_seconds() - cpu) / result["ops"] * 1e6)
    if faults:
        row.notes.setdefault(FAULTS_NOTE, []).append((srv.minor_faults() - faulted) / result["ops"])
    return result["ops"] * per_op / result["elapsed"]


def s3_server_rtt(cfg: Config) -> List[Row]:
    """Server round trips/s, 32-byte text, from a neutral raw client in another process."""
    libs = SERVERS + (["node ws"] if node_available() else [])
    return _server_rows(cfg, "3 server rtt 32 B", "rt/s", 1.0, "rtt", "--size", "32", libs=libs)


def _many_once(lib: str, n: int, duration: float) -> Tuple[float, Dict[str, float]]:
    with server(lib, measured=True) as srv:
        time.sleep(0.3)
        before = srv.status()
        with driver("many", srv.port, "--n", str(n), timeout=max(60.0, n * 0.1)) as drv:
            time.sleep(0.5)
            idle = srv.status()
            result = drv.run(duration)
            after = srv.status()
    notes = {
        "peak MiB": after["VmHWM"] / 1024,
        "KiB/idle conn": (idle["VmRSS"] - before["VmRSS"]) / n,
        "threads/conn": (idle["Threads"] - before["Threads"]) / n,
    }
    return result["ops"] / result["elapsed"], notes


def s4_server_many(cfg: Config) -> List[Row]:
    """Servers with 100 and 1,000 connections: aggregate rt/s, memory, threads."""
    out: List[Row] = []
    for n in (100, 1000):
        rows = {lib: Row(f"4 server {n} conns", lib, "rt/s") for lib in SERVERS}

        def run(lib: str, n: int = n) -> float:
            rate, notes = _many_once(lib, n, cfg.duration)
            for key, value in notes.items():
                rows[lib].notes.setdefault(key, []).append(value)
            return rate

        alternate(rows, {lib: (lambda lib=lib: run(lib)) for lib in SERVERS}, max(1, cfg.repeat // 2 if cfg.quick else cfg.repeat))
        out += rows.values()
    return out


def handshake_client(lib: str, port: int) -> Callable[[], None]:
    url = _url(port)
    if lib == "raw":
        return lambda: raw.raw_connect(HOST, port).close()
    if lib == "wsclient":
        import wsclient

        return lambda: wsclient.connect(url, proxy=None, compression=None).close()
    if lib == "websocket-client":
        import websocket

        return lambda: websocket.create_connection(url).close()
    from websockets.sync.client import connect

    return lambda: connect(url, compression=None, proxy=None).close()


def s5_handshakes(cfg: Config) -> List[Row]:
    """Opening (and closing) handshakes/s: clients vs the neutral server; servers vs a raw client."""
    rows = {lib: Row("5 client handshakes", lib, "conn/s") for lib in CLIENTS}
    with server(neutral()) as srv:
        runs = {}
        for lib in CLIENTS:
            step = handshake_client(lib, srv.port)
            step()
            runs[lib] = (lambda s=step, row=rows[lib]: _client_run(row, s, cfg.duration, 1.0))
        alternate(rows, runs, cfg.repeat)
    return list(rows.values()) + _server_rows(cfg, "5 server handshakes", "conn/s", 1.0, "handshake")


def s6_deflate(cfg: Config) -> List[Row]:
    """permessage-deflate echo of a 1 MiB compressible JSON text, MB/s of JSON both ways."""
    message = peers.json_message(MIB)
    per_op = 2 * len(message) / 1e6
    libs = ["raw", "wsclient", "websockets"]
    with server(neutral(large=True), deflate=True) as srv:
        rows = _client_echo_rows(cfg, "6 client deflate 1 MiB JSON", "MB/s", message, per_op, srv.port, libs,
                                 deflate=True, faults=True)
    return rows + _server_rows(cfg, "6 server deflate 1 MiB JSON", "MB/s", per_op, "rtt",
                               "--json", "--size", str(MIB), "--deflate", deflate=True, faults=True) + _deflate_memory()


#: Connections for the compressed idle-memory figure.
IDLE_DEFLATE_CONNECTIONS = 200


def _deflate_memory() -> List[Row]:
    """Server memory per idle compressed connection (context takeover, after one message)."""
    rows = []
    n = IDLE_DEFLATE_CONNECTIONS
    for lib in ("wsclient", "websockets"):
        row = Row(f"6 server {n} idle deflate conns", lib, "KiB/conn")
        try:
            with server(lib, deflate=True, measured=True) as srv:
                time.sleep(0.3)
                before = srv.status()["VmRSS"]
                with driver("idle-deflate", srv.port, "--n", str(n), timeout=120.0):
                    time.sleep(0.5)
                    row.values.append((srv.status()["VmRSS"] - before) / n)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"[:120]
        rows.append(row)
    return rows


def _mask_functions() -> Dict[str, Tuple[Callable[[bytes, bytes], Any], str]]:
    from wsclient.frames import apply_mask, mask_for_sending

    def pure(data: bytes, key: bytes) -> Any:
        _mask_with_numpy(False)
        return mask_for_sending(data, key)

    def pure_joined(data: bytes, key: bytes) -> bytes:
        _mask_with_numpy(False)
        return apply_mask(data, key)

    funcs: Dict[str, Tuple[Callable[[bytes, bytes], Any], str]] = {
        "raw": (raw.mask, "int XOR, 16 KiB chunks"),
        "wsclient": (pure, "pure Python: the send path (16 KiB pieces sendmsg gathers)"),
        "wsclient joined": (pure_joined, "pure Python, one bytes: the receive path (apply_mask)"),
    }
    if _numpy_installed():
        def with_numpy(data: bytes, key: bytes) -> Any:
            _mask_with_numpy(True)
            return mask_for_sending(data, key)

        funcs["wsclient+numpy"] = (with_numpy, "numpy installed: the send path (no copy to bytes)")
    try:
        from websocket._abnf import ABNF

        funcs["websocket-client"] = (lambda data, key: ABNF.mask(key, data), "pure Python, one int")
    except ImportError:
        pass
    try:
        from websockets.frames import apply_mask as ws_mask

        kind = "C extension" if type(ws_mask).__name__ == "builtin_function_or_method" else "pure Python"
        funcs["websockets"] = (lambda data, key: ws_mask(data, key), kind)
    except ImportError:
        pass
    try:
        import numpy

        def np_mask(data: bytes, key: bytes) -> bytes:
            words = numpy.frombuffer(data, dtype="<u4", count=len(data) // 4)
            out = (words ^ numpy.frombuffer(key, dtype="<u4")[0]).tobytes()
            tail = len(data) & 3
            return out + bytes(a ^ b for a, b in zip(data[len(data) - tail:], key)) if tail else out

        funcs["numpy (reference)"] = (np_mask, "numpy, not a library here")
    except ImportError:
        pass
    return funcs


def s7_masking(cfg: Config) -> List[Row]:
    """Masking MB/s on 1 MiB and 16 MiB, the functions called directly."""
    funcs = _mask_functions()
    out: List[Row] = []
    key = b"\x12\x34\x56\x78"
    for size in (MIB, 16 * MIB):
        data = os.urandom(size)
        expected = raw.mask(data, key)
        rows = {name: Row(f"7 masking {size // MIB} MiB", name, "MB/s") for name in funcs}
        runs = {}
        for name, (fn, kind) in funcs.items():
            rows[name].notes[kind] = []
            result = fn(data, key)
            if (b"".join(result) if isinstance(result, list) else bytes(result)) != expected:
                rows[name].error = "wrong result"
                continue
            runs[name] = (lambda f=fn: (lambda r: r[0] * size / 1e6 / r[1])(peers.timed(lambda: f(data, key), cfg.duration / 2)))
        alternate(rows, runs, cfg.repeat)
        out += rows.values()
    return out


# -- many connections: C10K, broadcast, latency under load ---------------------------------

#: Handshakes in flight at once from the Node driver while it opens the C10K connections.
C10K_CONCURRENCY = 200
#: The longest the C10K round trips, or the closing, may take before the run records them
#: as unfinished (seconds).
C10K_PHASE_LIMIT = 300.0


def _need_node(libs: List[str], title: str, unit: str) -> Optional[List[Row]]:
    if node_available():
        return None
    return [Row(title, lib, unit, error="needs Node and its ws (npm ci --prefix tests/interop/node)") for lib in libs]


def _note(row: Row, key: str, value: float) -> None:
    row.notes.setdefault(key, []).append(value)


def s8_c10k(cfg: Config) -> List[Row]:
    """N idle connections (keepalive on) on one server process, from a Node driver; then N x 10
    round trips; then closing them all."""
    n = cfg.connections
    libs = ["raw", "wsclient", "node ws"]
    titles = {"open": f"8 c10k {n:,} handshakes", "idle": f"8 c10k {n:,} idle", "rtt": f"8 c10k {n:,} x 10 rt"}
    missing = _need_node(libs, titles["open"], "conn/s")
    if missing:
        return missing
    rows = {(k, lib): Row(titles[k], lib, unit) for lib in libs
            for k, unit in (("open", "conn/s"), ("idle", "KiB/conn"), ("rtt", "rt/s"))}
    timeout = max(60.0, n / 100)

    def once(lib: str) -> float:
        keepalive = ["--keepalive", str(cfg.keepalive)] if lib == "wsclient" else []
        with server("node" if lib == "node ws" else lib, False, *keepalive, measured=True) as srv, \
                node_driver(srv.port) as drv:
            time.sleep(0.3)
            before, cpu = srv.status(), srv.cpu_seconds()
            opened = drv.command(f"open {n} {C10K_CONCURRENCY}", timeout)
            if opened["opened"] != n:
                raise RuntimeError(f"opened {opened['opened']} of {n} ({opened['failed']} failed)")
            _note(rows[("open", lib)], CPU_NOTE, (srv.cpu_seconds() - cpu) / n * 1e6)
            time.sleep(1.0)
            idle = srv.status()
            row = rows[("idle", lib)]
            row.values.append((idle["VmRSS"] - before["VmRSS"]) / n)
            _note(row, "threads/conn", (idle["Threads"] - before["Threads"]) / n)
            if keepalive:
                # Every connection's first ping is due one interval after it opened.
                pinged = drv.command(f"pings {cfg.keepalive + 15}", cfg.keepalive + 60)
                _note(row, "pinged", pinged["pinged"])
                _note(row, "unpinged", pinged["unpinged"])
                _note(row, "closed", pinged["closed"])
            row = rows[("rtt", lib)]
            cpu, start = srv.cpu_seconds(), time.monotonic()
            try:
                result = drv.command("rtt 10 30", C10K_PHASE_LIMIT)
            except TimeoutError:
                # Recorded, not raised: the figures so far stand, and this is the finding.
                row.error = (f"round trips unfinished after {C10K_PHASE_LIMIT:.0f} s, "
                             f"server CPU {srv.cpu_seconds() - cpu:.0f} s")
                return opened["opened"] / opened["seconds"]
            _note(row, CPU_NOTE, (srv.cpu_seconds() - cpu) / max(1, result["done"]) * 1e6)
            _note(row, "lost", result["lost"])
            _note(row, "closed", result["closed"])
            row.values.append(result["done"] / result["seconds"])
            try:
                closed = drv.command("close 30", C10K_PHASE_LIMIT)
                _note(row, "close s", closed["seconds"])
                _note(row, "closes", closed["closed"])
            except TimeoutError:
                row.notes[f"closing unfinished after {C10K_PHASE_LIMIT:.0f} s"] = []
            return opened["opened"] / opened["seconds"]

    alternate({lib: rows[("open", lib)] for lib in libs}, {lib: (lambda lib=lib: once(lib)) for lib in libs},
              cfg.heavy_repeat)
    for lib in libs:  # A failure to open is the whole library's.
        if rows[("open", lib)].error:
            rows[("idle", lib)].error = rows[("rtt", lib)].error = rows[("open", lib)].error
    return [rows[(k, lib)] for k in ("open", "idle", "rtt") for lib in libs]


#: Reading clients in the broadcast scenario, and how long it broadcasts (seconds).
BROADCAST_CLIENTS = 1000
BROADCAST_SECONDS = 5.0


def s9_broadcast(cfg: Config) -> List[Row]:
    """1 KiB texts broadcast back to back to 1,000 (--clients) reading clients of a Node
    driver, for 5 s (five times --duration, at most 5 s)."""
    libs = ["raw", "wsclient", "websockets-asyncio"]
    n = cfg.clients or BROADCAST_CLIENTS
    seconds = min(BROADCAST_SECONDS, cfg.duration * 5)
    title = f"9 broadcast 1 KiB to {n:,}"
    missing = _need_node(libs, title, "msg/s")
    if missing:
        return missing
    rows = {lib: Row(title, lib, "deliv/s") for lib in libs}

    def once(lib: str) -> float:
        row = rows[lib]
        with server(lib, False, "--broadcaster", measured=True) as srv, node_driver(srv.port) as drv:
            opened = drv.command(f"open {n} 100", max(120.0, n / 10))
            if opened["opened"] != n:
                raise RuntimeError(f"opened {opened['opened']} of {n}")
            drv.send(f"listen {seconds + 10}")
            cpu = srv.cpu_seconds()
            sent = srv.command(f"broadcast {seconds} {n}", seconds + 120)
            cpu = srv.cpu_seconds() - cpu
            got = json.loads(drv.readline(60))
        deliveries = got["deliveries"]
        _note(row, "cpu µs/delivery", cpu / max(1, deliveries) * 1e6)
        _note(row, "lost", sent["sent"] * sent["connections"] - deliveries)
        _note(row, "skipped", sent["skipped"])
        _note(row, "p50 ms", (got["p50"] or 0) / 1e3)
        _note(row, "p99 ms", (got["p99"] or 0) / 1e3)
        return deliveries / sent["elapsed"]

    alternate(rows, {lib: (lambda lib=lib: once(lib)) for lib in libs}, cfg.heavy_repeat)
    return list(rows.values())


#: Clients ping-ponging at once in the latency-under-load scenario.
LOAD_CLIENTS = 100


def s10_load(cfg: Config) -> List[Row]:
    """100 clients (--clients) ping-ponging 32-byte texts at once: round-trip time p50/p99."""
    libs = ["raw", "wsclient", "websockets"] + (["node ws"] if node_available() else [])
    n = cfg.clients or LOAD_CLIENTS
    title = f"10 load {n} clients rtt"
    missing = _need_node(libs, title, "rt/s")
    if missing:
        return missing
    rows = {lib: Row(title, lib, "rt/s") for lib in libs}
    peers_: List[Peer] = []
    runs = {}
    try:
        for lib in libs:
            srv = server("node" if lib == "node ws" else lib, measured=True)
            peers_.append(srv)
            drv = node_driver(srv.port)
            peers_.append(drv)
            drv.command(f"open {n} {n}", 60)

            def run(srv: Peer = srv, drv: Peer = drv, row: Row = rows[lib]) -> float:
                cpu = srv.cpu_seconds()
                got = drv.command(f"load {cfg.duration * 2}", cfg.duration * 2 + 60)
                _note(row, CPU_NOTE, (srv.cpu_seconds() - cpu) / max(1, got["ops"]) * 1e6)
                _note(row, "p50 µs", got["p50"])
                _note(row, "p99 µs", got["p99"])
                return got["ops"] / got["seconds"]

            runs[lib] = run
        alternate(rows, runs, cfg.repeat)
    finally:
        for p in peers_:
            p.stop()
    return list(rows.values())


SCENARIOS: Dict[str, Callable[[Config], List[Row]]] = {
    "client-rtt": placed(PING_PONG, s1_client_rtt),
    "client-throughput": placed(BULK, s2_client_throughput),
    "server-rtt": placed(PING_PONG, s3_server_rtt),
    "server-many": placed(BULK, s4_server_many),
    "handshakes": placed(PING_PONG, s5_handshakes),
    "deflate": placed(BULK, s6_deflate),
    "masking": placed(PING_PONG, s7_masking),
    "c10k": placed(BULK, s8_c10k),
    "broadcast": placed(BULK, s9_broadcast),
    "load": placed(BULK, s10_load),
}
