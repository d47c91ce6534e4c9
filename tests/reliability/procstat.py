"""Threads, open file descriptors and memory of a process, read from ``/proc/<pid>/``.

Linux only, as the tests that use it; each figure is what the kernel reports.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Union

__all__ = ["Stats", "stats"]


@dataclasses.dataclass(frozen=True)
class Stats:
    """A process at one instant.

    Attributes:
        threads: threads in the process (``Threads:``).
        fds: open file descriptors (entries of ``/proc/<pid>/fd``).
        rss: resident memory in bytes (``VmRSS:``).
        peak_rss: the highest resident memory so far, in bytes (``VmHWM:``).
    """

    threads: int
    fds: int
    rss: int
    peak_rss: int

    def __str__(self) -> str:
        return (f"{self.threads} threads, {self.fds} fds, RSS {self.rss / 2**20:.1f} MiB "
                f"(peak {self.peak_rss / 2**20:.1f} MiB)")


def stats(pid: Union[int, str] = "self") -> Stats:
    """Read the :class:`Stats` of process ``pid`` (this process by default)."""
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.split()
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Stats(
        threads=int(fields["Threads"][0]),
        fds=fds,
        rss=int(fields["VmRSS"][0]) * 1024,
        peak_rss=int(fields["VmHWM"][0]) * 1024,
    )
