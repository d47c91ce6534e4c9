"""Every conformance case, by group, in Autobahn's order."""

from __future__ import annotations

from collections import Counter
from typing import Dict, List

from ..model import ROLES, Case
from . import closing, compression, fragmentation, framing, limits, misc, opcodes, pingpong, rsv, strict, utf8

GROUPS = {
    "framing": framing.CASES,
    "pingpong": pingpong.CASES,
    "rsv": rsv.CASES,
    "opcodes": opcodes.CASES,
    "fragmentation": fragmentation.CASES,
    "utf8": utf8.CASES,
    "closing": closing.CASES,
    "limits": limits.CASES,
    "misc": misc.CASES,
    "compression": compression.CASES,
    "strict": strict.CASES,
}

ALL: List[Case] = [c for cases in GROUPS.values() for c in cases]

_dupes = [k for k, n in Counter(c.id for c in ALL).items() if n > 1]
assert not _dupes, f"repeated case ids: {_dupes}"


def for_role(role: str) -> List[Case]:
    """The cases that run against wsclient in ``role`` (``"server"`` or ``"client"``)."""
    return [c for c in ALL if role in c.roles]


def counts() -> Dict[str, Dict[str, int]]:
    """Cases per group and role."""
    return {g: {r: sum(r in c.roles for c in cases) for r in ROLES} for g, cases in GROUPS.items()}
