"""``python -m benchmarks.multiprocess``: several wsclient processes behind nginx, and Redis.

Two measurements, the figures of docs/deployment.rst:

1. **Scaling behind nginx.** ``python -m wsclient serve --workers N`` (N = 1, 2, 4: one
   port shared with ``SO_REUSEPORT``) behind nginx; neutral raw clients
   (``python -m benchmarks.peers drive many``, in ``--drivers`` processes) hold
   ``--connections`` connections through nginx, each with one 32-byte text message in
   flight at all times. Each run starts the whole stack afresh, and the worker counts take
   turns within each of ``--repeat`` rounds. Printed: the sockets each worker opened for
   the connections (from ``/proc/PID/fd``: its connections, plus the two wake-up sockets
   its watcher opens with the first one), the aggregate round trips per second (median
   and spread of the runs), and the CPU each part used (``/proc/PID/stat``; 100% = one
   core), the kernel's interrupt time (where loopback packets are moved; some kernels also
   count it in the process that was interrupted, so the parts need not add up) and the
   whole machine's busy time (``/proc/stat``, other programs included).
2. **Broadcast latency through Redis.** redis-server and two ``examples/redis_chat.py``
   processes; one client of process A sends ``--messages`` messages, one at a time, each
   relayed by Redis to the clients of both processes; the time from ``send()`` to each
   receiver's ``recv()`` (all clients in this process, one clock): median and p99, for the
   receivers on the sender's process and on the other one.

Needs nginx and redis-server (Debian packages) and the ``redis`` package. Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Tuple

import wsclient

from .scenarios import Peer as DriverPeer, driver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            proxy_pass http://{host}:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


# -- processes ---------------------------------------------------------------------------


def program(name: str) -> str:
    """The path of a system program (also looked for in sbin directories)."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/local/sbin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit(f"{name} is not installed (apt-get install {name})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout} s") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process we started, by PID; SIGKILL after 20 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(20)


def first_line(process: subprocess.Popen, timeout: float = 30.0) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"{process.args} printed nothing in {timeout} s")
    return process.stdout.readline().strip()


def children(pid: int) -> List[int]:
    """The direct children of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as file:
                    fields = file.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> Tuple[float, float]:
    """Busy and interrupt CPU seconds of the whole machine so far, summed over its cores.

    Interrupt time (irq and softirq) is where the kernel processes loopback packets; it is
    charged to no process.
    """
    with open("/proc/stat") as file:
        fields = [int(value) for value in file.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # up to steal; guest time is already counted in user
    return (total - idle) / TICKS, (fields[5] + fields[6]) / TICKS


def sockets(pid: int) -> int:
    """How many sockets a process has open."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


@contextlib.contextmanager
def workers(count: int) -> Iterator[Tuple[int, List[int]]]:
    """``python -m wsclient serve --workers count``; yields its port and the serving pids."""
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "wsclient", "serve", f"{HOST}:0", "--workers", str(count), "--no-compression"],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True, cwd=ROOT)
    try:
        uri = first_line(process)
        port = int(uri.rsplit(":", 1)[1].rstrip("/"))
        pids = [process.pid]
        if count > 1:  # "serving (echo) on URI with N workers (pids A B ...)", before the URI.
            log.seek(0)
            line = next(line for line in log if "(pids " in line)
            pids = [int(pid) for pid in line.split("(pids ", 1)[1].split(")")[0].split()]
        yield port, pids
    finally:
        stop(process)
        log.close()


@contextlib.contextmanager
def nginx(upstream: int, nginx_workers: int) -> Iterator[Tuple[int, List[int]]]:
    """nginx in front of ``upstream``; yields its port and the pids of its workers."""
    binary = program("nginx")
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        conf = os.path.join(directory, "nginx.conf")
        with open(conf, "w") as file:
            file.write(NGINX_CONF.format(dir=directory, host=HOST, port=port, upstream=upstream,
                                         workers=nginx_workers))
        process = subprocess.Popen([binary, "-p", directory, "-c", conf, "-e", os.path.join(directory, "error.log")],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, process)
            yield port, [process.pid] + children(process.pid)
        finally:
            stop(process)


# -- 1. scaling behind nginx -----------------------------------------------------------


def run_drivers(drivers: List[DriverPeer], duration: float) -> float:
    """All drivers at once for ``duration`` seconds; aggregate round trips per second."""
    for peer in drivers:
        assert peer.proc.stdin is not None
        peer.proc.stdin.write(f"run {duration}\n")
        peer.proc.stdin.flush()
    total = 0.0
    for peer in drivers:
        result = json.loads(peer.readline(duration + 120))
        total += result["ops"] / result["elapsed"]
    return total


def measure_once(count: int, connections: int, n_drivers: int, duration: float,
                 nginx_workers: int) -> Dict[str, object]:
    """A fresh stack (workers, nginx, clients), a warm-up, one run: its figures."""
    with workers(count) as (upstream, worker_pids), nginx(upstream, nginx_workers) as (port, nginx_pids):
        base = {pid: sockets(pid) for pid in worker_pids}
        per_driver = [connections // n_drivers + (i < connections % n_drivers) for i in range(n_drivers)]
        started = time.perf_counter()
        drivers = [driver("many", port, "--n", str(n), timeout=max(60.0, n * 0.1)) for n in per_driver]
        opened = time.perf_counter() - started
        try:
            held = [sockets(pid) - base[pid] for pid in worker_pids]
            run_drivers(drivers, min(0.5, duration))  # Warm up.
            groups = {"workers": worker_pids, "nginx": nginx_pids, "clients": [d.pid for d in drivers]}
            before = {name: sum(cpu_seconds(p) for p in pids) for name, pids in groups.items()}
            busy_before, irq_before = machine_cpu()
            clock = time.perf_counter()
            rate = run_drivers(drivers, duration)
            wall = time.perf_counter() - clock
            cpu = {name: (sum(cpu_seconds(p) for p in pids) - before[name]) / wall * 100
                   for name, pids in groups.items()}
            busy_after, irq_after = machine_cpu()
            cpu["kernel irq"] = (irq_after - irq_before) / wall * 100
            cpu["machine"] = (busy_after - busy_before) / wall * 100
        finally:
            for peer in drivers:
                peer.stop()
    return {"held": held, "opened": opened, "rate": rate, "cpu": cpu}


def scaling(counts: List[int], connections: int, n_drivers: int, duration: float, repeat: int,
            nginx_workers: int) -> List[Dict[str, object]]:
    """``repeat`` rounds; in each, every worker count in turn (the first one rotates), so a
    burst of noise from other programs hits every count rather than one."""
    runs: Dict[int, List[Dict[str, object]]] = {count: [] for count in counts}
    for round_ in range(repeat):
        for count in counts[round_ % len(counts):] + counts[:round_ % len(counts)]:
            result = measure_once(count, connections, n_drivers, duration, nginx_workers)
            runs[count].append(result)
            print(f"  round {round_ + 1}: {count} process(es): {result['rate']:,.0f} rt/s", file=sys.stderr, flush=True)
    rows = []
    for count, results in runs.items():
        cpu = {key: statistics.median(r["cpu"][key] for r in results) for key in results[0]["cpu"]}  # type: ignore[index]
        rows.append({"processes": count, "connections": connections, "held": results[-1]["held"],
                     "opened": statistics.median(r["opened"] for r in results),  # type: ignore[misc]
                     "rates": [r["rate"] for r in results], "cpu": cpu})
    return rows


def print_scaling(rows: List[Dict[str, object]], nginx_workers: int, n_drivers: int) -> None:
    print(f"1. Behind nginx ({nginx_workers} nginx worker(s)), {n_drivers} client process(es), "
          f"32-byte text echo, one message in flight per connection; medians of the runs")
    parts = ["workers", "nginx", "clients", "kernel irq", "machine"]
    header = (f"{'processes':>9}  {'connections':>11}  {'sockets/worker':<20}  {'open s':>6}  "
              f"{'rt/s median':>11}  {'spread':>15}  CPU% {' / '.join(parts)} (of {100 * (os.cpu_count() or 1)})")
    print(header)
    print("-" * len(header))
    for row in rows:
        rates = row["rates"]
        cpu = row["cpu"]
        per = " ".join(str(h) for h in row["held"])  # type: ignore[union-attr]
        print(f"{row['processes']:>9}  {row['connections']:>11}  {per:<20}  {row['opened']:>6.1f}  "
              f"{statistics.median(rates):>11,.0f}  {min(rates):>7,.0f}-{max(rates):<7,.0f}  "  # type: ignore[arg-type]
              f"{' / '.join(f'{cpu[part]:.0f}' for part in parts)}")  # type: ignore[index]


# -- 2. broadcast latency through Redis ------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    binary = program("redis-server")
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        process = subprocess.Popen([binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                                    "--dir", directory], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, process)
            yield port
        finally:
            stop(process)


@contextlib.contextmanager
def chat_server(redis_port: int) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "examples", "redis_chat.py"), "--port", "0",
         "--redis", f"redis://{HOST}:{redis_port}/0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    try:
        yield first_line(process)
    finally:
        stop(process)


def percentile(values: List[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def broadcast_latency(messages: int, receivers: int) -> Dict[str, List[float]]:
    """Seconds from send() to each receiver's recv(), for receivers on each process."""
    with redis_server() as port, chat_server(port) as first, chat_server(port) as second:
        sender = wsclient.connect(first, proxy=None, compression=None)
        name = "%s:%s" % sender.local_address[:2]
        sender.recv(timeout=10)  # Its own "joined".
        groups = {"same process": [], "other process": []}  # type: Dict[str, List[wsclient.WebSocket]]
        for _ in range(receivers):
            for label, uri in (("same process", first), ("other process", second)):
                ws = wsclient.connect(uri, proxy=None, compression=None)
                groups[label].append(ws)
        time.sleep(0.5)
        everyone = [sender] + [ws for clients in groups.values() for ws in clients]
        for ws in everyone:  # The "joined" notices.
            while True:
                try:
                    ws.recv(timeout=0.5)
                except TimeoutError:
                    break
        latencies: Dict[str, List[float]] = {label: [] for label in groups}
        for i in range(messages):
            arrived: Dict[wsclient.WebSocket, float] = {}
            expected = f"{name}: m{i}"
            sent = time.perf_counter()
            sender.send(f"m{i}")
            for ws in everyone:
                message = ws.recv(timeout=10)
                assert message == expected, (message, expected)
                arrived[ws] = time.perf_counter()
            for label, clients in groups.items():
                latencies[label] += [arrived[ws] - sent for ws in clients]
        for ws in everyone:
            ws.close()
    return latencies


def print_latency(latencies: Dict[str, List[float]], messages: int, receivers: int) -> None:
    print(f"2. Broadcast through Redis pub/sub (examples/redis_chat.py, 2 processes), {messages} messages "
          f"one at a time, {receivers} receiver(s) on each process")
    print(f"{'receivers':<14}  {'median ms':>9}  {'p99 ms':>7}  {'max ms':>7}")
    for label, values in latencies.items():
        print(f"{label:<14}  {statistics.median(values) * 1e3:>9.2f}  {percentile(values, 0.99) * 1e3:>7.2f}  "
              f"{max(values) * 1e3:>7.2f}")


def idle_check(seconds: float = 2.0) -> float:
    """How busy the machine is (CPU %, 100 per core) over ``seconds``, before we add load."""
    busy = machine_cpu()[0]
    start = time.perf_counter()
    time.sleep(seconds)
    return (machine_cpu()[0] - busy) / (time.perf_counter() - start) * 100


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multiprocess", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    parser.add_argument("--connections", type=int, default=200, help="connections through nginx (default 200)")
    parser.add_argument("--drivers", type=int, default=1, help="client processes (default 1)")
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker processes (default 1)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per worker count (default 3)")
    parser.add_argument("--messages", type=int, default=500, help="broadcast messages (default 500)")
    parser.add_argument("--receivers", type=int, default=5, help="receivers on each chat process (default 5)")
    parser.add_argument("--skip", choices=["scaling", "redis"], action="append", default=[])
    args = parser.parse_args(argv)
    os.environ["no_proxy"] = "*"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"{os.cpu_count()} CPU(s); Python {sys.version.split()[0]}; wsclient {wsclient.__version__}; "
          f"machine busy before the start: {idle_check():.0f}% of {100 * (os.cpu_count() or 1)}% "
          f"(other programs skew the figures)")
    if "scaling" not in args.skip:
        rows = scaling(args.processes, args.connections, args.drivers, args.duration, args.repeat, args.nginx_workers)
        print_scaling(rows, args.nginx_workers, args.drivers)
    if "redis" not in args.skip:
        print_latency(broadcast_latency(args.messages, args.receivers), args.messages, args.receivers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
