"""``python -m tests.conformance``: the cases per group and role, the NON-STRICT ones, and the
ones wsclient does not pass yet (``pending``: expected failures)."""

from __future__ import annotations

from .cases import ALL, GROUPS, counts
from .model import ROLES


def main() -> None:
    table = counts()
    print(f"{'group':<15}" + "".join(f"{role + ' role':>14}" for role in ROLES) + f"{'non-strict':>12}{'pending':>9}")
    for group, by_role in table.items():
        loose = sum(not c.strict for c in GROUPS[group])
        pending = sum(c.pending is not None for c in GROUPS[group])
        print(f"{group:<15}" + "".join(f"{by_role[role]:>14}" for role in ROLES) + f"{loose:>12}{pending:>9}")
    totals = [sum(by_role[role] for by_role in table.values()) for role in ROLES]
    loose, pending = sum(not c.strict for c in ALL), sum(c.pending is not None for c in ALL)
    print(f"{'total':<15}" + "".join(f"{n:>14}" for n in totals) + f"{loose:>12}{pending:>9}")


if __name__ == "__main__":
    main()
