"""Group 2, pings and pongs (Autobahn 2.x): RFC 6455 sections 5.5.2 and 5.5.3."""

from __future__ import annotations

from ..model import Batch, PongOf, Pongs, Sync, case, echo, fail, ping, pong

G = "pingpong"
BIN = bytes([0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF])
PINGS = tuple(f"payload-{i}".encode() for i in range(10))

CASES = [
    case("2.1", G, "ping without payload", [ping()], echo(PongOf(b"")), rfc="5.5.2: a ping is answered by a pong"),
    case("2.2", G, "ping with a small text payload", [ping(b"Hello, world!")], echo(PongOf(b"Hello, world!")),
         rfc="5.5.3: the pong has the ping's Application data"),
    case("2.3", G, "ping with a small binary payload", [ping(BIN)], echo(PongOf(BIN)), rfc="5.5.3"),
    case("2.4", G, "ping with a 125-byte payload", [ping(b"\xfe" * 125)], echo(PongOf(b"\xfe" * 125)),
         rfc="5.5: control payloads up to 125 bytes"),
    case("2.5", G, "ping with a 126-byte payload", [ping(b"\xfe" * 126)], fail(1002),
         rfc="5.5: control frames MUST have a payload of 125 bytes or less; 7.4.1 1002"),
    case("2.6", G, "ping with a 125-byte payload, every byte its own TCP segment", [ping(b"\xfe" * 125, chop=1)],
         echo(PongOf(b"\xfe" * 125)), rfc="5.5.2"),
    case("2.7", G, "unsolicited pong without payload", [pong()], echo(), rfc="5.5.3: an unsolicited pong expects no answer"),
    case("2.8", G, "unsolicited pong with payload", [pong(b"unsolicited pong payload")], echo(), rfc="5.5.3"),
    case("2.9", G, "unsolicited pong, then ping", [pong(b"unsolicited pong payload"), ping(b"ping payload")],
         echo(PongOf(b"ping payload")), rfc="5.5.3"),
    case("2.10", G, "10 pings in one burst", [Batch(tuple(ping(p) for p in PINGS))], echo(Pongs(PINGS)),
         rfc="5.5.3: an endpoint MAY answer only the most recent of unanswered pings"),
    case("2.11", G, "10 pings, every byte its own TCP segment", [Batch(tuple(ping(p) for p in PINGS), chop=1)],
         echo(Pongs(PINGS)), rfc="5.5.3"),
    case("2.12", G, "unsolicited pong with a 126-byte payload", [pong(b"\x01" * 126)], fail(1002), rfc="5.5"),
    case("2.13", G, "ping with FIN=0 (a fragmented control frame)", [ping(b"Hello", fin=False)], fail(1002),
         rfc="5.5: control frames MUST NOT be fragmented"),
    case("2.14", G, "10 pings, each sent once the previous one is answered",
         [x for i, p in enumerate(PINGS) for x in (ping(p), Sync(i + 1))], echo(*(PongOf(p) for p in PINGS)),
         rfc="5.5.2: a pong SHOULD be sent as soon as practical; none is pending here"),
]
