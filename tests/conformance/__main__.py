"""``python -m tests.conformance``: the cases per group and role, and the NON-STRICT ones."""

from __future__ import annotations

from .cases import ALL, GROUPS, counts
from .model import ROLES


def main() -> None:
    table = counts()
    print(f"{'group':<15}" + "".join(f"{role + ' role':>14}" for role in ROLES) + f"{'non-strict':>12}")
    for group, by_role in table.items():
        loose = sum(not c.strict for c in GROUPS[group])
        print(f"{group:<15}" + "".join(f"{by_role[role]:>14}" for role in ROLES) + f"{loose:>12}")
    totals = [sum(by_role[role] for by_role in table.values()) for role in ROLES]
    print(f"{'total':<15}" + "".join(f"{n:>14}" for n in totals) + f"{sum(not c.strict for c in ALL):>12}")


if __name__ == "__main__":
    main()
