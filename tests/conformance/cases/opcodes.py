"""Group 4, opcodes (Autobahn 4.x): the reserved opcodes 3-7 (data) and 11-15 (control).

RFC 6455 section 5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail
the WebSocket Connection_" (1002, section 7.4.1). For each reserved opcode: the frame alone,
and a text message (echoed first), the frame with a payload, then a ping that must not
be answered.
"""

from __future__ import annotations

from ..model import Send, Sync, Text, case, fail, ping, text

G = "opcodes"
R = "5.2: an unknown opcode MUST fail the connection (7.4.1 1002)"


def _cases() -> list:
    cases = []
    for group, opcodes in (("4.1", (3, 4, 5, 6, 7)), ("4.2", (11, 12, 13, 14, 15))):
        for n, op in enumerate(opcodes, 1):
            cases.append(case(f"{group}.{n}", G, f"frame with reserved opcode {op}", [Send(op)], fail(1002), rfc=R))
            cases.append(
                case(f"{group}.{n + 5}", G, f"text, then reserved opcode {op} with a payload, then ping",
                     [text("Hello, world!"), Sync(1), Send(op, b"reserved opcode"), ping(b"")],
                     fail(1002, Text("Hello, world!")), rfc=R)
            )
            cases.append(
                case(f"{group}.{n + 10}", G, f"reserved opcode {op} with FIN=0 in one-byte segments",
                     [Send(op, b"abc", fin=False, chop=1)], fail(1002), rfc=R)
            )
    return cases


CASES = _cases()
