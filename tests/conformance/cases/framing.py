"""Group 1, framing (Autobahn 1.x): text and binary payloads at every length-encoding edge,
masking, and how the payload length is written (RFC 6455 sections 5.1-5.3)."""

from __future__ import annotations

from typing import List

from ..model import SERVER, Big, Binary, Case, Sync, Text, binary, case, echo, fail, ping, text

G = "framing"
LENGTHS = (0, 125, 126, 127, 128, 65535, 65536)
#: The 64-bit length header and the masking key in one-byte segments, then the rest.
HEADER_BYTES = (1,) * 14


def _sizes() -> List[Case]:
    cases = []
    for n, size in enumerate(LENGTHS, 1):
        cases.append(case(f"1.1.{n}", G, f"text, {size} bytes", [text(Big(size))], echo(Text(Big(size))), rfc="5.2, 5.6"))
        cases.append(
            case(f"1.2.{n}", G, f"binary, {size} bytes", [binary(Big(size, 0xFE))], echo(Binary(Big(size, 0xFE))), rfc="5.2, 5.6")
        )
    cases.append(
        case("1.1.8", G, "text, 65536 bytes, written in 997-byte chops", [text(Big(65536), chop=997)], echo(Text(Big(65536))), rfc="5.2")
    )
    cases.append(
        case("1.2.8", G, "binary, 65536 bytes, written in 997-byte chops", [binary(Big(65536, 0xFE), chop=997)],
             echo(Binary(Big(65536, 0xFE))), rfc="5.2")
    )
    return cases


def _tiny_segments() -> List[Case]:
    """Every length encoding with its header split over one-byte TCP segments."""
    cases = []
    for n, size in enumerate((1, 125, 126, 127, 300), 1):
        cases.append(
            case(f"1.3.{n}", G, f"text, {size} bytes, every byte its own TCP segment", [text(Big(size), chop=1)],
                 echo(Text(Big(size))), rfc="5.2: a frame may arrive in any number of reads")
        )
    cases.append(
        case("1.3.6", G, "binary, 65536 bytes, 64-bit length header in one-byte segments",
             [binary(Big(65536, 0xFE), chop=HEADER_BYTES)], echo(Binary(Big(65536, 0xFE))), rfc="5.2")
    )
    return cases


def _masking() -> List[Case]:
    return [
        case("1.4.1", G, "client frame masked with the key 00 00 00 00", [text("Hello", zero_mask=True)],
             echo(Text("Hello")), roles=(SERVER,), rfc="5.3: any 32-bit value is a masking key"),
        case("1.4.2", G, "data frame with the wrong masking for the sender's role (unmasked from a client, masked from a server)",
             [text("Hello", wrong_mask=True)], fail(1002),
             rfc="5.1: a server MUST close on an unmasked frame; a client MUST close on a masked frame; 7.4.1 1002"),
        case("1.4.3", G, "ping with the wrong masking for the sender's role", [ping(b"ping", wrong_mask=True)], fail(1002), rfc="5.1"),
        case("1.4.4", G, "text echoed, then a frame with the wrong masking",
             [text("Hello"), Sync(1), ping(b"", wrong_mask=True)], fail(1002, Text("Hello")), rfc="5.1"),
    ]


def _length_encodings() -> List[Case]:
    return [
        case("1.5.1", G, "64-bit payload length with the most significant bit set",
             [binary(b"Hello", length=(1 << 63) | 5, length_size=8)], fail(1002),
             rfc="5.2: the most significant bit of a 64-bit length MUST be 0"),
        case("1.5.2", G, "5-byte text with its length in the 16-bit form (non-minimal)",
             [text("Hello", length_size=2)], echo(Text("Hello")), fail(1002),
             rfc="5.2: the minimal encoding MUST be used by the sender; receivers are not told to fail (NON-STRICT)"),
        case("1.5.3", G, "200-byte binary with its length in the 64-bit form (non-minimal)",
             [binary(Big(200, 1), length_size=8)], echo(Binary(Big(200, 1))), fail(1002), rfc="5.2 (NON-STRICT)"),
    ]


CASES = _sizes() + _tiny_segments() + _masking() + _length_encodings()
