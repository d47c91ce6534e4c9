"""Group 10, miscellaneous (Autobahn 10.x and more): auto-fragmented messages, frames that
share a TCP segment with the opening handshake or with each other, and a handshake written
one byte at a time (RFC 6455 sections 4 and 5)."""

from __future__ import annotations

from ..model import Batch, Big, Binary, PongOf, Send, Text, binary, case, cont, echo, ping, text
from ..driver import TEXT

G = "misc"


def _autofragmented(size: int, frag: int) -> Batch:
    pieces = [Big(min(frag, size - i)) for i in range(0, size, frag)]
    return Batch(tuple(Send(TEXT if i == 0 else 0, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)))


CASES = [
    case("10.1.1", G, "text of 65536 bytes in 1300-byte fragments", [_autofragmented(65536, 1300)], echo(Text(Big(65536))),
         rfc="5.4"),
    case("10.2.1", G, "a text frame in the same TCP segment as the handshake", [text("first")], echo(Text("first")),
         with_handshake=True, rfc="4.1, 4.2.2: frames may follow the handshake at once"),
    case("10.2.2", G, "a ping in the same TCP segment as the handshake", [ping(b"early")], echo(PongOf(b"early")),
         with_handshake=True, rfc="4.1, 5.5.2"),
    case("10.2.3", G, "the handshake in one-byte segments, then a text", [text("after")], echo(Text("after")),
         handshake_chop=1, rfc="4: HTTP heads may arrive in any number of reads"),
    case("10.2.4", G, "the first fragment of a message with the handshake, the rest later",
         [text("fir", fin=False), cont("st")], echo(Text("first")), with_handshake=True, rfc="4, 5.4"),
    case("10.4.1", G, "handshake with Upgrade: WebSocket and Connection: keep-alive, Upgrade", [text("x")],
         echo(Text("x")), upgrade=("WebSocket", "keep-alive, Upgrade"),
         rfc="4.1, 4.2.1: Upgrade and Connection are matched case-insensitively, Connection as a token list"),
    case("10.4.2", G, "handshake with header names in lower case and Connection: upgrade", [text("x")], echo(Text("x")),
         upgrade=("websocket", "upgrade"), lowercase=True, rfc="4.1, 4.2.1; RFC 9110 5.1: field names are case-insensitive"),
    case("10.4.3", G, "handshake with Connection: Upgrade,keep-alive and Upgrade: WEBSOCKET", [text("x")], echo(Text("x")),
         upgrade=("WEBSOCKET", "Upgrade,keep-alive"), rfc="4.1, 4.2.1"),
    case("10.3.1", G, "10 text messages in one write", [Batch(tuple(text(f"message {i}") for i in range(10)))],
         echo(*(Text(f"message {i}") for i in range(10))), rfc="5.4: messages are delivered in order"),
    case("10.3.2", G, "text, binary, ping, text in one write, in 3-byte chops",
         [Batch((text("a"), binary(b"\x00b"), ping(b"p"), text("c")), chop=3)],
         echo(Text("a"), Binary(b"\x00b"), PongOf(b"p"), Text("c")), rfc="5.4, 5.5.2"),
    case("10.3.3", G, "the whole script of 10.3.2 in one-byte segments",
         [Batch((text("a"), binary(b"\x00b"), ping(b"p"), text("c")), chop=1)],
         echo(Text("a"), Binary(b"\x00b"), PongOf(b"p"), Text("c")), rfc="5.4, 5.5.2"),
]
