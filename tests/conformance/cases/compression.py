"""Groups 12 and 13, permessage-deflate (RFC 7692): negotiation, compressed messages, errors.

In the server role the driver offers the extension with the parameters of each case and
checks wsclient's answer (section 7.1); in the client role wsclient offers (``permessage-
deflate; client_max_window_bits``) and the driver answers with the case's parameters.
The driver deflates with the negotiated window and context rules, and inflates wsclient's
messages with exactly the window wsclient may use and without context where wsclient
promised to reset it, so a peer that overreaches its window or keeps a context it should
drop fails to decompress (a :class:`~driver.DriverError`).
"""

from __future__ import annotations

import random
from typing import Any, List, Tuple

from ..model import (
    CLIENT, SERVER, Binary, Case, Corrupt, Deflated, PongOf, Resume, Send, Sync, Text, binary, case, close, cont, echo, fail, ping, pong,
    refused, text,
)
from ..driver import BINARY, TEXT

G = "compression"
DEFLATE = "permessage-deflate"


def _words(size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    vocab = ["websocket", "frame", "message", "deflate", "window", "context", "κόσμε", "pong", "ping", "close", "{", "}"]
    out = " ".join(rnd.choice(vocab) for _ in range(size // 3 + 1)).encode()
    out = out[:size].decode("utf-8", "ignore").encode()
    return out + b" " * (size - len(out))  # a code point cut at the end: pad to the size


def _random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _pattern(size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    return (bytes(rnd.choice(b"abcd") for _ in range(64)) * (size // 64 + 1))[:size]


#: Messages exercising the agreed parameters: compressible text, the same text again (a
#: context kept across messages refers back to it), incompressible bytes, repeats 20000
#: bytes apart (beyond any window under 15 bits), empty and tiny messages.
FAR = _random(20000, 7) * 3
SET: List[Tuple[int, bytes]] = [
    (TEXT, _words(1000, 1)),
    (TEXT, _words(1000, 1)),
    (BINARY, _random(300, 2)),
    (BINARY, FAR),
    (TEXT, b""),
    (TEXT, b"Hello"),
    (BINARY, _pattern(5000, 3)),
    (BINARY, FAR),
]


def _expect(opcode: int, data: bytes) -> Any:
    return Text(data.decode()) if opcode == TEXT else Binary(data)


def _message_set() -> Tuple[list, list]:
    script: List[Any] = [Deflated(op, (data,)) for op, data in SET]
    script.insert(3, Send(TEXT, b"uncompressed in between"))
    want = [_expect(op, data) for op, data in SET]
    want.insert(3, Text("uncompressed in between"))
    return script, want


def _combos() -> List[Tuple[str, str, str, Tuple[str, ...]]]:
    """(id, title, parameters, roles): the same parameters offered and answered."""
    both = (SERVER, CLIENT)
    combos = [
        ("13.1", "no parameters", "", both),
        ("13.2", "both no_context_takeover", "; client_no_context_takeover; server_no_context_takeover", both),
        ("13.6", "client_max_window_bits offered bare", "; client_max_window_bits", (SERVER,)),
        ("13.7", "server_no_context_takeover", "; server_no_context_takeover", both),
        ("13.8", "client_no_context_takeover", "; client_no_context_takeover", both),
    ]
    for bits in range(8, 16):
        combos.append((f"13.3.{bits}", f"server_max_window_bits={bits}", f"; server_max_window_bits={bits}", both))
        combos.append((f"13.4.{bits}", f"client_max_window_bits={bits}", f"; client_max_window_bits={bits}", both))
        combos.append((f"13.5.{bits}", f"both windows {bits} bits, no context takeover",
                       f"; server_max_window_bits={bits}; client_max_window_bits={bits}"
                       "; server_no_context_takeover; client_no_context_takeover", both))
    return combos


def _negotiation() -> List[Case]:
    script, want = _message_set()
    cases = []
    for id, title, params, roles in _combos():
        cases.append(case(id, G, f"{title}: 8 compressed messages and 1 plain one", script, echo(*want),
                          offer=DEFLATE + params, answer=DEFLATE + params, roles=roles, accepts=True,
                          rfc="RFC 7692 7.1 (parameters), 7.2 (per-message compression)"))
    cases.append(case("13.9", G, "two offers, the first one invalid (server_max_window_bits=7): the second is taken",
                      script, echo(*want), offer=f"{DEFLATE}; server_max_window_bits=7, {DEFLATE}", roles=(SERVER,), accepts=True,
                      rfc="RFC 7692 5.1: decline an offer with an invalid value; 7: accept one of several offers"))
    return cases


def _sizes() -> List[Case]:
    cases = []
    sizes = (16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072, 262144)
    for group, kind, make in (("12.1", "text", _words), ("12.2", "random binary", _random), ("12.3", "patterned binary", _pattern)):
        opcode = TEXT if kind == "text" else BINARY
        for n, size in enumerate(sizes, 1):
            msgs = [make(size, seed) for seed in range(5)]
            cases.append(case(f"{group}.{n}", G, f"5 {kind} messages of {size} bytes, compressed",
                              [Deflated(opcode, (m,)) for m in msgs], echo(*(_expect(opcode, m) for m in msgs)),
                              offer=DEFLATE, answer=DEFLATE, accepts=True, rfc="RFC 7692 7.2", timeout=30))
    return cases


MAX = 1 << 24
ZEROS = b"\x00" * (MAX + 1)
R1 = "RFC 7692 6: RSV1 marks the first frame of a compressed message, and nothing else; RFC 6455 5.2: 1002"


def _errors() -> List[Case]:
    c: List[Tuple[str, str, List[Any], List[Any], str]] = [
        ("12.9.1", "ping with RSV1", [ping(b"x", rsv=4)], [fail(1002)], R1),
        ("12.9.2", "pong with RSV1", [pong(b"x", rsv=4)], [fail(1002)], R1),
        ("12.9.3", "close with RSV1", [close(1000, rsv=4)], [fail(1002)], R1),
        ("12.9.4", "compressed message with RSV1 on its continuation frame too",
         [Deflated(TEXT, (b"first half ", b"second half"), rsv_cont=4)], [fail(1002)], R1),
        ("12.9.5", "uncompressed fragmented message with RSV1 on the continuation frame",
         [text("plain", fin=False), cont("more", rsv=4)], [fail(1002)], R1),
        ("12.9.6", "compressed message with RSV2 as well", [Deflated(TEXT, (b"Hello",), rsv_first=6)], [fail(1002)],
         "RFC 6455 5.2: RSV2 is not defined by permessage-deflate; 1002"),
        ("12.9.7", "RSV1 and a payload that is not deflate data", [Corrupt(b"\xff\xff\xff\xff not deflate")],
         [fail(1007), fail(1002)], "RFC 7692 7.2.2 gives no code; 1007 (data not matching its type) or 1002 (NON-STRICT)"),
        ("12.9.8", "deflate bomb: 16 MiB + 1 zero bytes compressed to a few KiB", [Deflated(BINARY, (ZEROS,))], [fail(1009)],
         "RFC 6455 10.4, 7.4.1 1009: max_size counts the decompressed size"),
        ("12.9.9", "deflate bomb of 32 MiB cut into 4 frames; 3 sent, the message never finished",
         [Deflated(BINARY, (ZEROS * 2,), split=(0.25, 0.5, 0.75), send_frames=3)],
         [fail(1009)], "RFC 6455 10.4: refused before the message ends"),
        ("12.9.10", "empty message compressed (00)", [Deflated(TEXT, (b"",))], [echo(Text(""))], "RFC 7692 7.2.3.6"),
        ("12.9.11", "RSV1 with an empty payload", [Send(TEXT, b"", rsv=4)], [echo(Text(""))],
         "RFC 7692 7.2.2: the payload plus 00 00 ff ff inflates to nothing"),
        ("12.9.12", "compressed message ending with a BFINAL block", [Deflated(TEXT, (b"final block " * 20,), bfinal=True),
         Deflated(TEXT, (b"after it",))], [echo(Text("final block " * 20), Text("after it"))],
         "RFC 7692 7.2.3.3: a BFINAL block may end a message; the next message starts a new stream"),
        ("12.9.13", "compressed message that keeps its 00 00 ff ff tail", [Deflated(BINARY, (b"tail kept " * 20,), keep_tail=True)],
         [echo(Binary(b"tail kept " * 20))], "RFC 7692 7.2.2: the receiver appends 00 00 ff ff; an empty stored block is harmless"),
        ("12.9.14", "compressed message in 3 fragments, each flushed", [Deflated(TEXT, (b"one " * 50, b"two " * 50, b"three " * 50))],
         [echo(Text("one " * 50 + "two " * 50 + "three " * 50))], "RFC 7692 6.1: the compressed payload may be fragmented"),
        ("12.9.15", "compressed message cut mid-block into 3 fragments",
         [Deflated(BINARY, (_words(5000, 9),), split=(0.3, 0.6))], [echo(Binary(_words(5000, 9)))], "RFC 7692 6.1"),
        ("12.9.16", "compressed message in 2 fragments with a ping in between",
         [Deflated(TEXT, (b"alpha " * 30, b"beta " * 30), send_frames=1), ping(b"mid"), Sync(1), Resume()],
         [echo(PongOf(b"mid"), Text("alpha " * 30 + "beta " * 30))], "RFC 6455 5.4, RFC 7692 6.1"),
        ("12.9.17", "compressed text that inflates to invalid UTF-8", [Deflated(TEXT, (b"\xce\xba\xed\xa0\x80",))], [fail(1007)],
         "RFC 6455 8.1 applies to the decompressed text"),
        ("12.9.18", "compressed text, first fragment inflating to invalid UTF-8; the rest never sent",
         [Deflated(TEXT, (b"ok \xc0\xaf", b"rest"), send_frames=1)], [fail(1007)], "RFC 6455 8.1, fail fast"),
        ("12.9.19", "uncompressed message with RSV1 clear on a deflate connection", [text("plain text, RSV1 clear")],
         [echo(Text("plain text, RSV1 clear"))], "RFC 7692 6: RSV1 clear means not compressed"),
        ("12.9.20", "compressed messages of 1 MiB text and 1 MiB random binary",
         [Deflated(TEXT, (_words(1 << 20, 11),)), Deflated(BINARY, (_random(1 << 20, 12),))],
         [echo(Text(_words(1 << 20, 11).decode()), Binary(_random(1 << 20, 12)))], "RFC 7692 7.2"),
    ]
    small = {"max_size": 65536}
    c += [
        ("12.9.21", "compressed text cut inside a code point across 2 flushed fragments",
         [Deflated(TEXT, ("κόσμε".encode()[:3], "κόσμε".encode()[3:]))], [echo(Text("κόσμε"))], "RFC 6455 5.6, RFC 7692 6.1"),
        ("12.9.22", "compressed message whose first frame has an empty payload",
         [Deflated(BINARY, (b"after an empty first frame " * 10,), split=(0.0,))],
         [echo(Binary(b"after an empty first frame " * 10))], "RFC 7692 6.1: RSV1 on the first frame, whatever it holds"),
    ]
    limits: List[Tuple[str, str, List[Any], List[Any], str, dict]] = [
        ("12.9.23", "max_size=65536: compressed message inflating to exactly 65536 bytes",
         [Deflated(BINARY, (b"\x00" * 65536,))], [echo(Binary(b"\x00" * 65536))], "at the limit", small),
        ("12.9.24", "max_size=65536: compressed message inflating to 65537 bytes", [Deflated(BINARY, (b"\x00" * 65537,))],
         [fail(1009)], "RFC 6455 10.4, 7.4.1 1009: the decompressed size counts", small),
        ("12.9.25", "max_size=65536: 65536 bytes compressed in 3 flushed fragments",
         [Deflated(BINARY, (b"\x01" * 30000, b"\x01" * 30000, b"\x01" * 5536))], [echo(Binary(b"\x01" * 65536))],
         "at the limit", small),
        ("12.9.26", "max_size=65536: 65537 bytes compressed in 3 flushed fragments",
         [Deflated(BINARY, (b"\x01" * 30000, b"\x01" * 30000, b"\x01" * 5537))], [fail(1009)], "RFC 6455 10.4", small),
        ("12.9.27", "max_size=65536: 65536 bytes of text compressed, cut mid-block into 4 frames",
         [Deflated(TEXT, (_words(65536, 5),), split=(0.25, 0.5, 0.75))], [echo(Text(_words(65536, 5).decode()))],
         "at the limit", small),
    ]
    cases = [case(id, G, title, script, *expect, offer=DEFLATE, answer=DEFLATE, accepts=True, rfc=rfc, options=options)
             for id, title, script, expect, rfc, options in limits]
    for id, title, script, expect, rfc in c:
        cases.append(case(id, G, title, script, *expect, offer=DEFLATE, answer=DEFLATE, accepts=True, rfc=rfc, timeout=30))
    return cases


def _refusals() -> List[Case]:
    """Client role: answers a client MUST refuse (RFC 6455 4.1; RFC 7692 5, 7.1)."""
    answers = [
        ("x-unknown-extension", "an extension that was not offered"),
        (f"{DEFLATE}; server_max_window_bits=16", "server_max_window_bits=16"),
        (f"{DEFLATE}; server_max_window_bits=7", "server_max_window_bits=7"),
        (f"{DEFLATE}; server_max_window_bits=010", "a window value with a leading zero"),
        (f"{DEFLATE}; client_max_window_bits", "client_max_window_bits without a value"),
        (f"{DEFLATE}; unknown_parameter", "an unknown parameter"),
        (f"{DEFLATE}; server_no_context_takeover=1", "server_no_context_takeover with a value"),
        (f"{DEFLATE}; server_max_window_bits=10; server_max_window_bits=10", "a repeated parameter"),
        (f"{DEFLATE}, {DEFLATE}", "the extension accepted twice"),
    ]
    return [case(f"13.10.{n}", G, f"answer with {title}", [], refused(), answer=answer, roles=(CLIENT,),
                 rfc="RFC 6455 4.1: fail on extensions not offered; RFC 7692 7.1: fail on an invalid response")
            for n, (answer, title) in enumerate(answers, 1)]


def _declines() -> List[Case]:
    """Server role: offers the server MUST decline (RFC 7692 5.1); RSV1 is then a protocol error."""
    offers = [
        (f"{DEFLATE}; server_max_window_bits=7", "server_max_window_bits=7"),
        (f"{DEFLATE}; server_max_window_bits", "server_max_window_bits without a value"),
        (f"{DEFLATE}; client_max_window_bits=16", "client_max_window_bits=16"),
        (f"{DEFLATE}; unknown_parameter", "an unknown parameter"),
        (f"{DEFLATE}; client_no_context_takeover; client_no_context_takeover", "a repeated parameter"),
        ("x-webkit-deflate-frame", "another extension"),
    ]
    return [case(f"13.11.{n}", G, f"offer with {title}: declined, then a message with RSV1",
                 [binary(b"plain"), Sync(1), Deflated(BINARY, (b"compressed anyway",))], fail(1002, Binary(b"plain")),
                 offer=offer, roles=(SERVER,), accepts=False,
                 rfc="RFC 7692 5.1: MUST decline; then RFC 6455 5.2: RSV1 unnegotiated, 1002")
            for n, (offer, title) in enumerate(offers, 1)]


CASES = _negotiation() + _sizes() + _errors() + _refusals() + _declines()
