"""Group 5, fragmentation (Autobahn 5.x): RFC 6455 section 5.4.

The rules: a fragmented message is a first frame with FIN=0 and an opcode, continuation
frames (opcode 0), and a last frame with FIN=1; control frames MUST NOT be fragmented but
MAY be injected between fragments; fragments of one message MUST NOT be interleaved with
another message; a continuation frame with no message to continue is a protocol error.
"""

from __future__ import annotations

from ..driver import CONT, Chop
from ..model import Batch, Binary, PongOf, Send, Sync, Text, binary, case, cont, echo, fail, ping, pong, text


G = "fragmentation"
R = "5.4"
A, B = "fragment1", "fragment2"


def _three(chop: Chop = None, batch: bool = False) -> list:
    """text fragment, ping, last fragment (5.6-5.8 shapes)."""
    frames = (text(A, fin=False), ping(b"ping payload"), cont(B))
    if batch:
        return [Batch(frames)]
    first, p, last = (f if chop is None else Send(f.opcode, f.payload, fin=f.fin, chop=chop) for f in frames)
    return [first, p, Sync(1), last]


def _orphan(fin: bool, chop: Chop = None, batch: bool = False) -> list:
    frames = (Send(CONT, b"non-continuation payload", fin=fin), text("Hello, world!"))
    if batch:
        return [Batch(frames)]
    return [Send(f.opcode, f.payload, fin=f.fin, chop=chop) for f in frames]


CASES = [
    case("5.1", G, "ping in 2 fragments", [ping(b"ping", fin=False), cont(b"payload")], fail(1002),
         rfc="5.4: control frames MUST NOT be fragmented; 5.5"),
    case("5.2", G, "pong in 2 fragments", [pong(b"pong", fin=False), cont(b"payload")], fail(1002), rfc="5.4, 5.5"),
    case("5.3", G, "text in 2 fragments", [text(A, fin=False), cont(B)], echo(Text(A + B)), rfc=R),
    case("5.4", G, "text in 2 fragments, one-byte segments", [text(A, fin=False, chop=1), cont(B, chop=1)], echo(Text(A + B)), rfc=R),
    case("5.5", G, "text in 2 fragments, both in one write", [Batch((text(A, fin=False), cont(B)))], echo(Text(A + B)), rfc=R),
    case("5.6", G, "text in 2 fragments, ping in between (answered before the message ends)", _three(),
         echo(PongOf(b"ping payload"), Text(A + B)), rfc="5.4: control frames MAY be injected between fragments; 5.5.2"),
    case("5.7", G, "text in 2 fragments, ping in between, one-byte segments", _three(chop=1),
         echo(PongOf(b"ping payload"), Text(A + B)), rfc="5.4, 5.5.2"),
    case("5.8", G, "text in 2 fragments, ping in between, all in one write", _three(batch=True),
         echo(PongOf(b"ping payload"), Text(A + B)), rfc="5.4, 5.5.2"),
    case("5.9", G, "continuation (FIN=1) with nothing to continue, then text", _orphan(True), fail(1002), rfc=R),
    case("5.10", G, "as 5.9, one-byte segments", _orphan(True, chop=1), fail(1002), rfc=R),
    case("5.11", G, "as 5.9, one write", _orphan(True, batch=True), fail(1002), rfc=R),
    case("5.12", G, "continuation (FIN=0) with nothing to continue, then text", _orphan(False), fail(1002), rfc=R),
    case("5.13", G, "as 5.12, one-byte segments", _orphan(False, chop=1), fail(1002), rfc=R),
    case("5.14", G, "as 5.12, one write", _orphan(False, batch=True), fail(1002), rfc=R),
    case("5.15", G, "text in 2 fragments, then continuation FIN=0 with nothing to continue, then text",
         [text(A, fin=False), cont(B), Sync(1), cont("fragment3", fin=False), cont("fragment4"), text("Hello")],
         fail(1002, Text(A + B)), rfc=R),
    case("5.16", G, "twice: continuation FIN=0 with nothing to continue, text in 2 fragments",
         [cont("fragment1", fin=False), cont("fragment2"), text("fragment3", fin=False), cont("fragment4")] * 2,
         fail(1002), rfc=R),
    case("5.17", G, "twice: continuation FIN=1 with nothing to continue, text in 2 fragments",
         [cont("fragment1"), cont("fragment2"), text("fragment3", fin=False), cont("fragment4")] * 2, fail(1002), rfc=R),
    case("5.18", G, "text in 2 fragments, both with the text opcode", [text(A, fin=False), text(B)], fail(1002),
         rfc="5.4: a new message MUST NOT start inside a fragmented one"),
    case("5.19", G, "text in 5 fragments, a ping after the 1st and 3rd (each answered mid-message)",
         [text("frag1", fin=False), ping(b"pongme 1!"), Sync(1), cont("frag2", fin=False), cont("frag3", fin=False),
          ping(b"pongme 2!"), Sync(2), cont("frag4", fin=False), cont("frag5")],
         echo(PongOf(b"pongme 1!"), PongOf(b"pongme 2!"), Text("frag1frag2frag3frag4frag5")), rfc="5.4, 5.5.2"),
    case("5.20", G, "as 5.19, one-byte segments",
         [text("frag1", fin=False, chop=1), ping(b"pongme 1!", chop=1), Sync(1), cont("frag2", fin=False, chop=1),
          cont("frag3", fin=False, chop=1), ping(b"pongme 2!", chop=1), Sync(2), cont("frag4", fin=False, chop=1),
          cont("frag5", chop=1)],
         echo(PongOf(b"pongme 1!"), PongOf(b"pongme 2!"), Text("frag1frag2frag3frag4frag5")), rfc="5.4, 5.5.2"),
    case("5.21", G, "binary in 2 fragments", [binary(b"\x00\x01", fin=False), cont(b"\x02\x03")], echo(Binary(b"\x00\x01\x02\x03")), rfc=R),
    case("5.22", G, "binary fragment, then a text frame inside the message", [binary(b"\x00", fin=False), text("x")], fail(1002), rfc=R),
    case("5.23", G, "text in 1000 one-byte fragments, one write",
         [Batch((text("a", fin=False),) + tuple(cont("b", fin=False) for _ in range(998)) + (cont("c"),))],
         echo(Text("a" + "b" * 998 + "c")), rfc=R),
    case("5.24", G, "binary with empty first and middle fragments",
         [binary(b"", fin=False), cont(b"", fin=False), cont(b"data", fin=False), cont(b"")], echo(Binary(b"data")), rfc=R),
    case("5.25", G, "close frame with FIN=0", [Send(8, b"\x03\xe8", fin=False)], fail(1002), rfc="5.4, 5.5"),
    case("5.26", G, "pong between fragments (ignored), message echoed",
         [text(A, fin=False), pong(b"x"), cont(B)], echo(Text(A + B)), rfc="5.4, 5.5.3"),
    case("5.27", G, "text fragmented, then a binary continuation opcode of a new binary message",
         [text(A, fin=False), binary(b"x", fin=False)], fail(1002), rfc=R),
]
