"""Fail-fast, strictly: a valid message, then bad data, in ONE write (Autobahn's strict order).

RFC 6455 section 7.1.7 fails the connection when a frame breaks the protocol, and only
then: the messages before that frame are the application's like any other, and its answer
to them may leave before the close frame. Autobahn sends its cases 3.2-3.4, 4.1.3-4.1.5,
4.2.3-4.2.5 and 5.15 back to back and judges an endpoint STRICT when the echo of the valid
message arrives before the close frame, NON-STRICT when only the close frame comes. The
``rsv``, ``opcodes`` and ``fragmentation`` groups send the same frames with a
:class:`~model.Sync` after the valid message, so the echo is there before the bad frame is
read; here everything goes in one ``send`` (one TCP segment on loopback), so the bad frame
is in the same read as the message, and only an endpoint that parses lazily (one message
per ``recv()``, the rest left for the next call) echoes first.

Each case requires the echo, then the close frame with the code for the bad data.
"""

from __future__ import annotations

from ..model import Batch, Big, Binary, Case, PongOf, Send, Text, binary, case, cont, fail, ping, text

G = "strict"
R = "7.1.7: the connection fails at the bad frame; the messages before it are delivered and answered"

HELLO = "Hello, world!"


def _then(bad: Send, title: str, autobahn: str, code: int = 1002) -> Case:
    """Autobahn's shape: a text message, the bad frame, a ping (never answered), in one write."""
    return case(
        f"{autobahn}-one-write", G, f"text, then {title}, then ping, in one write",
        [Batch((text(HELLO), bad, ping(b"")))], fail(code, Text(HELLO)), rfc=R,
    )


CASES = [
    _then(text(HELLO, rsv=2), "text with RSV2", "3.2"),
    _then(text(HELLO, rsv=3), "text with RSV2 and RSV3", "3.3"),
    _then(text(HELLO, rsv=4), "text with RSV1 (no extension)", "3.4"),
    _then(Send(5), "reserved opcode 5", "4.1.3"),
    _then(Send(6, b"reserved opcode"), "reserved opcode 6 with a payload", "4.1.4"),
    _then(Send(7, b"reserved opcode"), "reserved opcode 7 with a payload", "4.1.5"),
    _then(Send(12), "reserved opcode 12", "4.2.3"),
    _then(Send(13, b"reserved opcode"), "reserved opcode 13 with a payload", "4.2.4"),
    _then(Send(14, b"reserved opcode"), "reserved opcode 14 with a payload", "4.2.5"),
    case("5.15-one-write", G,
         "text in 2 fragments, then continuation FIN=0 with nothing to continue, then text, in one write",
         [Batch((text("fragment1", fin=False), cont("fragment2"), cont("fragment3", fin=False), cont("fragment4"),
                 text("Hello")))],
         fail(1002, Text("fragment1fragment2")), rfc=R),
    # More than one message before the bad data: each recv() takes one, each is answered.
    case("s.1", G, "10 text messages, a ping, then text with RSV2, then ping, in one write",
         [Batch(tuple(text(f"message {i}") for i in range(10)) + (ping(b"p"), text(HELLO, rsv=2), ping(b"q")))],
         fail(1002, *[Text(f"message {i}") for i in range(10)], PongOf(b"p")), rfc=R),
    # Other codes: the message before invalid UTF-8 (1007) or an oversized one (1009).
    case("s.2", G, "text, then text with invalid UTF-8, in one write",
         [Batch((text(HELLO), text(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited")))],
         fail(1007, Text(HELLO)), rfc=R + "; 8.1: invalid UTF-8 fails with 1007"),
    case("s.3", G, "max_size=65536: binary, then the header of a binary of 65537 bytes, in one write",
         [Batch((binary(b"\x00\x01"), binary(Big(65537), cut=0)))],
         fail(1009, Binary(b"\x00\x01")), rfc=R + "; 10.4, 7.4.1: a message over the limit fails with 1009",
         options={"max_size": 65536}),
]
