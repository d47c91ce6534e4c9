"""Group 3, reserved bits (Autobahn 3.x): RSV1-3 set with no extension negotiated.

RFC 6455 section 5.2: the bits MUST be 0 unless an extension defining them was negotiated;
a receiver that sees one set otherwise MUST fail the connection (1002). The driver waits for
the echo of the first message before sending the bad frame, so that echo is required; the
ping after the bad frame must not be answered (nothing after the failure is processed).
"""

from __future__ import annotations

from ..model import Sync, Text, binary, case, close, cont, fail, ping, pong, text

G = "rsv"
R = "5.2: RSV bits MUST be 0 unless an extension defines them; else Fail (7.4.1 1002)"

CASES = [
    case("3.1", G, "text with RSV3 (rsv=1)", [text("Hello, world!", rsv=1)], fail(1002), rfc=R),
    case("3.2", G, "text, then text with RSV2 (rsv=2), then ping",
         [text("Hello, world!"), Sync(1), text("Hello, world!", rsv=2), ping(b"")], fail(1002, Text("Hello, world!")), rfc=R),
    case("3.3", G, "text, then text with rsv=3, then ping, each frame its own write",
         [text("Hello, world!"), Sync(1), text("Hello, world!", rsv=3), ping(b"")], fail(1002, Text("Hello, world!")), rfc=R),
    case("3.4", G, "text, then text with RSV1 (rsv=4), then ping, in one-byte segments",
         [text("Hello, world!", chop=1), Sync(1), text("Hello, world!", rsv=4, chop=1), ping(b"", chop=1)],
         fail(1002, Text("Hello, world!")), rfc=R),
    case("3.5", G, "binary with rsv=5", [binary(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)], fail(1002), rfc=R),
    case("3.6", G, "ping with rsv=6", [ping(b"Hello, world!", rsv=6)], fail(1002), rfc=R),
    case("3.7", G, "close with rsv=7", [close(1000, rsv=7)], fail(1002), rfc=R),
    case("3.8", G, "pong with RSV1", [pong(b"Hello", rsv=4)], fail(1002), rfc=R),
    case("3.9", G, "continuation frame with RSV2", [text("frag1", fin=False), cont("frag2", rsv=2)], fail(1002), rfc=R),
    case("3.10", G, "binary with RSV3 in one-byte segments", [binary(b"\x01\x02", rsv=1, chop=1)], fail(1002), rfc=R),
]
