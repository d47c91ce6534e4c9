"""Group 9, limits and sizes (Autobahn 9.x), and ``max_size`` (RFC 6455 section 10.4, 7.4.1).

Large messages whole (up to 16 MiB, wsclient's default ``max_size``), in fragments of
every Autobahn size, and written in TCP chops of every Autobahn size; bursts of small
messages; and messages at and over the receiver's limit. A receiver MAY refuse a message
over its limit with 1009 (7.4.1); wsclient's limit is ``max_size``, checked as soon as a
frame header shows the message is too big (10.4: "implementations SHOULD impose a
limit"), so the driver sends only a header there.

``WSCLIENT_CONFORMANCE_FULL=1`` adds 64 MiB messages with ``max_size=None`` and makes every
burst 1000 messages long (Autobahn's counts); CI runs without it.
"""

from __future__ import annotations

import os

from ..model import Batch, Big, Binary, Send, Sync, Text, binary, case, cont, echo, fail, text
from ..driver import BINARY, CONT, TEXT

G = "limits"
FULL = os.environ.get("WSCLIENT_CONFORMANCE_FULL") == "1"
MiB = 1 << 20
MAX = 1 << 24  # wsclient's default max_size, 16 MiB
R = "5.2, 5.4"


def _timeout(size: int) -> float:
    return 20.0 + size / MiB * 3


def _whole() -> list:
    sizes = [64 << 10, 256 << 10, MiB, 4 * MiB, 8 * MiB, 16 * MiB]
    cases = []
    for n, size in enumerate(sizes, 1):
        at_limit = " (exactly max_size)" if size == MAX else ""
        cases.append(case(f"9.1.{n}", G, f"text, {size >> 10} KiB{at_limit}", [text(Big(size))], echo(Text(Big(size))), rfc=R,
                          timeout=_timeout(size)))
        cases.append(case(f"9.2.{n}", G, f"binary, {size >> 10} KiB{at_limit}", [binary(Big(size, 0xFE))], echo(Binary(Big(size, 0xFE))),
                          rfc=R, timeout=_timeout(size)))
    return cases


def _fragments(opcode: int, size: int, frag: int) -> Batch:
    count = size // frag
    return Batch(tuple(Send(opcode if i == 0 else CONT, Big(frag, 0x2A if opcode == TEXT else 0xFE), fin=i == count - 1)
                       for i in range(count)))


def _fragmented() -> list:
    size = 4 * MiB
    frags = [64, 256, 1024, 4096, 16384, 65536, 262144, MiB, 4 * MiB]
    cases = []
    for n, frag in enumerate(f for f in frags if f <= size):
        n += 1
        cases.append(case(f"9.3.{n}", G, f"text of {size >> 10} KiB in {frag}-byte fragments", [_fragments(TEXT, size, frag)],
                          echo(Text(Big(size))), rfc=R, timeout=_timeout(size)))
        cases.append(case(f"9.4.{n}", G, f"binary of {size >> 10} KiB in {frag}-byte fragments", [_fragments(BINARY, size, frag)],
                          echo(Binary(Big(size, 0xFE))), rfc=R, timeout=_timeout(size)))
    return cases


def _chopped() -> list:
    chops = [64, 128, 256, 512, 1024, 2048]
    cases = []
    for n, chop in enumerate(chops, 1):
        cases.append(case(f"9.5.{n}", G, f"text of 1 MiB written in {chop}-byte chops", [text(Big(MiB), chop=chop)],
                          echo(Text(Big(MiB))), rfc=R, timeout=60))
        cases.append(case(f"9.6.{n}", G, f"binary of 1 MiB written in {chop}-byte chops", [binary(Big(MiB, 0xFE), chop=chop)],
                          echo(Binary(Big(MiB, 0xFE))), rfc=R, timeout=60))
    return cases


def _round_trips() -> list:
    cases = []
    for n, size in enumerate((0, 16, 64, 256, 1024, 4096), 1):
        count = 1000 if FULL or size <= 256 else 200
        cases.append(case(f"9.7.{n}", G, f"{count} text messages of {size} bytes in one burst",
                          [Batch(tuple(text(Big(size)) for _ in range(count)))], echo(*[Text(Big(size))] * count), rfc=R, timeout=30))
        cases.append(case(f"9.8.{n}", G, f"{count} binary messages of {size} bytes in one burst",
                          [Batch(tuple(binary(Big(size, 0xFE)) for _ in range(count)))], echo(*[Binary(Big(size, 0xFE))] * count),
                          rfc=R, timeout=30))
    return cases


SMALL = {"max_size": 65536}
TOO_BIG = "10.4: an endpoint MAY refuse a message over its limit; 7.4.1 1009"


def _max_size() -> list:
    return [
        case("9.9.2", G, "a text frame header announcing max_size + 1 bytes, no payload sent",
             [text(Big(MAX + 1), cut=0)], fail(1009), rfc=TOO_BIG + "; refused from the header alone"),
        case("9.9.3", G, "a binary frame header announcing 2**62 bytes", [binary(b"", length=1 << 62)], fail(1009), rfc=TOO_BIG),
        case("9.9.4", G, "max_size=65536: binary of 65536 bytes", [binary(Big(65536, 1))], echo(Binary(Big(65536, 1))),
             options=SMALL, rfc="at the limit"),
        case("9.9.5", G, "max_size=65536: binary of 65537 bytes", [binary(Big(65537, 1))], fail(1009), options=SMALL, rfc=TOO_BIG),
        case("9.9.6", G, "max_size=65536: text of 65537 bytes, header only", [text(Big(65537), cut=0)], fail(1009),
             options=SMALL, rfc=TOO_BIG),
        case("9.9.7", G, "max_size=65536: 2 fragments of 32768 bytes then 1 byte more, never finished",
             [binary(Big(32768, 1), fin=False), cont(Big(32768, 1), fin=False), cont(b"x", fin=False)], fail(1009),
             options=SMALL, rfc=TOO_BIG + "; the sum of the fragments counts"),
        case("9.9.8", G, "max_size=65536: 65536 bytes in 3 fragments", [binary(Big(30000, 1), fin=False),
             cont(Big(30000, 1), fin=False), cont(Big(5536, 1))], echo(Binary(Big(65536, 1))), options=SMALL, rfc="at the limit"),
        case("9.9.9", G, "max_size=65536: a message over the limit after one under it",
             [binary(Big(100, 2)), Sync(1), binary(Big(65537, 1), cut=0)], fail(1009, Binary(Big(100, 2))), options=SMALL,
             rfc=TOO_BIG + "; the limit is per message"),
    ]


def _beyond() -> list:
    """Only with WSCLIENT_CONFORMANCE_FULL=1: 64 MiB messages, no limit."""
    if not FULL:
        return []
    size = 64 * MiB
    return [
        case("9.10.1", G, "text of 64 MiB, max_size=None", [text(Big(size))], echo(Text(Big(size))),
             options={"max_size": None, "max_queue": None}, rfc=R, timeout=_timeout(size)),
        case("9.10.2", G, "binary of 64 MiB, max_size=None", [binary(Big(size, 0xFE))], echo(Binary(Big(size, 0xFE))),
             options={"max_size": None, "max_queue": None}, rfc=R, timeout=_timeout(size)),
    ]


CASES = _whole() + _fragmented() + _chopped() + _round_trips() + _max_size() + _beyond()
