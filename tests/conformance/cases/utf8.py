"""Group 6, UTF-8 handling (Autobahn 6.x): RFC 6455 section 8.1 and RFC 3629.

A text message MUST be valid UTF-8; otherwise the receiver MUST fail the connection, with
1007 (section 7.4.1). Valid means RFC 3629 / Unicode table 3-7: no overlong forms, no
surrogates (U+D800-U+DFFF), nothing above U+10FFFF, no stray continuation bytes, no C0, C1,
F5-FF. Noncharacters such as U+FFFE are valid.

Each vector runs three ways:

* ``6.x.y``: the whole message in one frame.
* ``6.x.yf``: one fragment per byte. For an invalid vector the driver sends the fragments
  only up to the first byte after which no valid text can follow, and never ends the
  message: 1007 must come anyway ("fail fast", Autobahn 6.4).
* ``6.x.yp``: one frame whose header announces the whole payload; for an invalid vector
  only the payload up to that byte is sent (fail fast inside a frame); for a valid one the
  frame goes out in one-byte TCP segments.

Where a vector is invalid only because it ends mid-sequence, the failure can only come
with the end of the message, so the ``f`` and ``p`` forms send everything.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..model import Batch, Case, Send, Sync, Text, case, cont, echo, fail, text
from ..driver import TEXT

G = "utf8"
R = "8.1: invalid UTF-8 in a text message MUST fail the connection; 7.4.1 1007"
KOSME = "κόσμε".encode()

# Unicode table 3-7: for each lead byte, the allowed range of the second byte and the count
# of further continuation bytes (80-BF).
_LEADS = {}
for _b in range(0xC2, 0xE0):
    _LEADS[_b] = ((0x80, 0xBF), 0)
for _b in range(0xE0, 0xF0):
    _LEADS[_b] = ((0xA0, 0xBF) if _b == 0xE0 else (0x80, 0x9F) if _b == 0xED else (0x80, 0xBF), 1)
for _b in range(0xF0, 0xF5):
    _LEADS[_b] = ((0x90, 0xBF) if _b == 0xF0 else (0x80, 0x8F) if _b == 0xF4 else (0x80, 0xBF), 2)


def first_invalid(data: bytes) -> Optional[int]:
    """Where a fail-fast validator must stop: the index of the first byte after which no
    valid UTF-8 can follow; ``len(data)`` if the bytes are valid so far but end inside a
    sequence; None if the whole is valid."""
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if b not in _LEADS:
            return i
        (low, high), more = _LEADS[b]
        if i + 1 == len(data):
            return len(data)
        if not low <= data[i + 1] <= high:
            return i + 1
        for k in range(i + 2, i + 2 + more):
            if k == len(data):
                return len(data)
            if not 0x80 <= data[k] <= 0xBF:
                return k
        i += 2 + more
    return None


def _vectors() -> List[Tuple[str, str, bytes]]:
    """(id, title, bytes) in the order of Markus Kuhn's UTF-8 decoder stress test, as
    Autobahn 6.5-6.23 has them, plus the categories the issue lists."""
    v: List[Tuple[str, str, bytes]] = [
        ("6.5.1", "κόσμε", KOSME),
        ("6.5.2", "κόσμε with ASCII around it", b"Hello " + KOSME + b" World"),
        ("6.5.3", "mixed scripts and an emoji", "Ça va? 日本語 😀 ∑".encode()),
    ]
    for n, cp in enumerate((0x0, 0x80, 0x800, 0x10000), 1):
        v.append((f"6.7.{n}", f"first code point of its length, U+{cp:04X}", chr(cp).encode()))
    v.append(("6.8.1", "first 5-byte sequence (U+200000)", b"\xf8\x88\x80\x80\x80"))
    v.append(("6.8.2", "first 6-byte sequence (U+4000000)", b"\xfc\x84\x80\x80\x80\x80"))
    for n, cp in enumerate((0x7F, 0x7FF, 0xFFFF, 0x10FFFF), 1):
        v.append((f"6.9.{n}", f"last code point of its length, U+{cp:04X}", chr(cp).encode()))
    v.append(("6.10.1", "U+1FFFFF, above U+10FFFF", b"\xf7\xbf\xbf\xbf"))
    v.append(("6.10.2", "last 5-byte sequence", b"\xfb\xbf\xbf\xbf\xbf"))
    v.append(("6.10.3", "last 6-byte sequence", b"\xfd\xbf\xbf\xbf\xbf\xbf"))
    for n, (title, data) in enumerate(
        [("U+D7FF", b"\xed\x9f\xbf"), ("U+E000", b"\xee\x80\x80"), ("U+FFFD", b"\xef\xbf\xbd"),
         ("U+10FFFF", b"\xf4\x8f\xbf\xbf"), ("U+110000, above U+10FFFF", b"\xf4\x90\x80\x80"),
         ("lead byte F5 (would be above U+10FFFF)", b"\xf5\x80\x80\x80")], 1):
        v.append((f"6.11.{n}", f"boundary: {title}", data))
    for n, data in enumerate([b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
                              b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf", b"\x80\xbf\x80\xbf\x80\xbf\x80",
                              bytes(range(0x80, 0xC0)), b"Hello \x80 world"], 1):
        v.append((f"6.12.{n}", f"unexpected continuation bytes {data[:8].hex(' ')}", data))
    for n, (lo, hi) in enumerate([(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD)], 1):
        v.append((f"6.13.{n}", f"lonely start bytes {lo:02X}-{hi:02X}, each followed by a space",
                  b"".join(bytes([b, 0x20]) for b in range(lo, hi + 1))))
    missing = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
               b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf",
               b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", KOSME + b"\xe2\x82"]
    for n, data in enumerate(missing, 1):
        v.append((f"6.14.{n}", f"last continuation byte missing: {data[-4:].hex(' ')}", data))
    v.append(("6.15.1", "the sequences of 6.14 concatenated", b"".join(missing)))
    for n, data in enumerate([b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"], 1):
        v.append((f"6.16.{n}", f"impossible bytes {data.hex(' ')}", data))
    overlong = [
        ("6.17", "overlong '/'", [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf", b"\xfc\x80\x80\x80\x80\xaf"]),
        ("6.18", "maximum overlong", [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf", b"\xfc\x83\xbf\xbf\xbf\xbf"]),
        ("6.19", "overlong NUL", [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80", b"\xfc\x80\x80\x80\x80\x80"]),
    ]
    for prefix, title, items in overlong:
        for n, data in enumerate(items, 1):
            v.append((f"{prefix}.{n}", f"{title} {data.hex(' ')}", data))
    for n, data in enumerate([b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf", b"\xed\xb0\x80",
                              b"\xed\xbe\x80", b"\xed\xbf\xbf", KOSME + b"\xed\xa0\x80edited"], 1):
        v.append((f"6.20.{n}", f"single UTF-16 surrogate {data[-9:].hex(' ')}", data))
    pairs = [(hi, lo) for hi in (b"\xed\xa0\x80", b"\xed\xaf\xbf") for lo in (b"\xed\xb0\x80", b"\xed\xbf\xbf")]
    pairs += [(b"\xed\xad\xbf", b"\xed\xb0\x80"), (b"\xed\xae\x80", b"\xed\xbf\xbf"), (b"\xed\xad\xbf", b"\xed\xbf\xbf"), (b"\xed\xae\x80", b"\xed\xb0\x80")]
    for n, (high, low) in enumerate(pairs, 1):
        v.append((f"6.21.{n}", f"paired UTF-16 surrogates {(high + low).hex(' ')}", high + low))
    nonchars = [cp for plane in range(17) for cp in (plane << 16 | 0xFFFE, plane << 16 | 0xFFFF)] + [0xFDD0, 0xFDEF]
    for n, cp in enumerate(nonchars, 1):
        v.append((f"6.22.{n}", f"noncharacter U+{cp:04X} (valid)", chr(cp).encode()))
    for n, cp in enumerate((0xFFFD, 0xFEFF, 0x2028, 0xE0001, 0x10FFFD), 1):
        v.append((f"6.23.{n}", f"U+{cp:04X} (valid)", chr(cp).encode()))
    return v


def _three_ways(id: str, title: str, data: bytes) -> List[Case]:
    stop = first_invalid(data)
    whole = [text(data)]
    per_byte = [Batch(tuple(Send(TEXT if i == 0 else 0, data[i : i + 1], fin=i == len(data) - 1) for i in range(len(data))))]
    if stop is None:
        want = echo(Text(data.decode()))
        return [
            case(id, G, f"{title}: one frame", whole, want, rfc="8.1, RFC 3629"),
            case(f"{id}f", G, f"{title}: one fragment per byte", per_byte, want, rfc="5.4, 8.1"),
            case(f"{id}p", G, f"{title}: one frame in one-byte segments", [text(data, chop=1)], want, rfc="5.2, 8.1"),
        ]
    cases = [case(id, G, f"{title}: one frame", whole, fail(1007), rfc=R)]
    if stop < len(data):  # a fail-fast point inside the message: send no further
        n = stop + 1
        frames = tuple(Send(TEXT if i == 0 else 0, data[i : i + 1], fin=False) for i in range(n))
        cases.append(case(f"{id}f", G, f"{title}: one fragment per byte, unfinished after byte {n}",
                          [Batch(frames)], fail(1007), rfc=f"{R}; Autobahn 6.4: before the message ends"))
        cases.append(case(f"{id}p", G, f"{title}: one frame, cut after byte {n} of {len(data)}",
                          [text(data + b"tail", cut=n)], fail(1007), rfc=f"{R}; before the frame ends"))
    else:
        cases.append(case(f"{id}f", G, f"{title}: one fragment per byte", per_byte, fail(1007), rfc=R))
        cases.append(case(f"{id}p", G, f"{title}: one frame in one-byte segments", [text(data, chop=1)], fail(1007), rfc=R))
    return cases


HELLO = "Hello-µ@ßöäüàá-UTF-8!!"
INVALID = KOSME + b"\xed\xa0\x80edited"

BASIC = [
    case("6.1.1", G, "empty text frame", [text(b"")], echo(Text("")), rfc="5.6"),
    case("6.1.2", G, "empty text message in 3 empty fragments", [text(b"", fin=False), cont(b"", fin=False), cont(b"")],
         echo(Text("")), rfc="5.4"),
    case("6.1.3", G, "text in 3 fragments, first and last empty", [text(b"", fin=False), cont("middle", fin=False), cont(b"")],
         echo(Text("middle")), rfc="5.4"),
    case("6.2.1", G, "valid UTF-8, one frame", [text(HELLO)], echo(Text(HELLO)), rfc="8.1"),
    case("6.2.2", G, "valid UTF-8 in 2 fragments split on a code point boundary",
         [text(HELLO[:7], fin=False), cont(HELLO[7:])], echo(Text(HELLO)), rfc="8.1"),
    case("6.2.3", G, "valid UTF-8, one fragment per byte (code points split across frames)",
         [Batch(tuple(Send(TEXT if i == 0 else 0, b, fin=i == len(HELLO.encode()) - 1)
                      for i, b in enumerate(bytes([c]) for c in HELLO.encode())))], echo(Text(HELLO)),
         rfc="5.6: a fragment may end inside a code point; only the message must be valid"),
    case("6.3.1", G, "invalid UTF-8 (a surrogate inside), one frame", [text(INVALID)], fail(1007), rfc=R),
    case("6.3.2", G, "invalid UTF-8 split across 2 fragments inside the bad sequence",
         [text(KOSME + b"\xed", fin=False), cont(b"\xa0\x80edited")], fail(1007), rfc=R),
    case("6.4.1", G, "3 fragments, the 2nd invalid (U+110000); the 3rd is never sent",
         [text(KOSME, fin=False), cont(b"\xf4\x90\x80\x80", fin=False)], fail(1007),
         rfc=f"{R}; fail fast: Autobahn 6.4.1 wants the close before the message ends"),
    case("6.4.2", G, "invalid sequence split across fragments (F4 | 90); the rest is never sent",
         [text(KOSME + b"\xf4", fin=False), cont(b"\x90", fin=False)], fail(1007), rfc=f"{R}; fail fast"),
    case("6.4.3", G, "one frame announcing 21 bytes; 15 sent, the 13th makes it invalid; the rest never",
         [text(KOSME + b"\xf4\x90\x80\x80edited", cut=15)], fail(1007), rfc=f"{R}; fail fast inside a frame"),
    case("6.4.4", G, "as 6.4.3, the bytes sent in one-byte segments",
         [text(KOSME + b"\xf4\x90\x80\x80edited", cut=13, chop=1)], fail(1007), rfc=f"{R}; fail fast"),
    case("6.4.5", G, "valid text echoed, then a message invalid in its 1st fragment; the rest never sent",
         [text("ok"), Sync(1), text(b"\xc0\xaf", fin=False)], fail(1007, Text("ok")), rfc=f"{R}; fail fast"),
]

CASES = BASIC + [c for v in _vectors() for c in _three_ways(*v)]
