"""Tests for wsclient.utf8: incremental, fail-fast UTF-8 validation (RFC 6455 section 8.1).

The exhaustive tests compare :class:`Utf8Decoder` with a reference built from the encoder's
side: a byte string can begin valid UTF-8 ("is viable") when it is a run of whole encodings
of Unicode scalar values followed by a proper prefix of one more. The decoder must fail at
the first byte that makes the prefix not viable, and never before.
"""

from __future__ import annotations

import functools
import random
from typing import FrozenSet, List, Optional, Tuple

import pytest

from wsclient.exceptions import ProtocolError
from wsclient.utf8 import Utf8Decoder, decode_text


@functools.lru_cache(maxsize=None)
def _encodings() -> Tuple[FrozenSet[bytes], FrozenSet[bytes]]:
    """(whole encodings of up to 3 bytes, proper prefixes of every encoding incl. b"")."""
    whole = set()
    proper = {b""}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # surrogates are not scalar values (RFC 3629 section 3)
        encoded = chr(cp).encode("utf-8")
        if len(encoded) <= 3:
            whole.add(encoded)
        for end in range(1, len(encoded)):
            proper.add(encoded[:end])
    return frozenset(whole), frozenset(proper)


def viable(prefix: bytes) -> bool:
    """Whether some continuation makes ``prefix`` (at most 3 bytes) valid UTF-8."""
    whole, proper = _encodings()
    if prefix in proper:
        return True
    return any(
        prefix[:k] in whole and viable(prefix[k:]) for k in range(1, min(3, len(prefix)) + 1)
    )


def complete(prefix: bytes) -> bool:
    """Whether ``prefix`` (at most 3 bytes) is valid UTF-8 as it stands."""
    whole, _ = _encodings()
    if not prefix:
        return True
    return any(
        prefix[:k] in whole and complete(prefix[k:]) for k in range(1, min(3, len(prefix)) + 1)
    )


def fails_whole(data: bytes, final: bool = False) -> bool:
    try:
        Utf8Decoder().decode(data, final)
    except ProtocolError:
        return True
    return False


def first_failure(data: bytes, final: bool = False) -> Optional[int]:
    """Feed ``data`` one byte at a time; the index of the byte that raised, else None."""
    decoder = Utf8Decoder()
    for index in range(len(data)):
        try:
            decoder.decode(data[index : index + 1], final and index == len(data) - 1)
        except ProtocolError as exc:
            assert exc.code == 1007
            return index
    if final and not data:
        decoder.decode(b"", True)
    return None


def decode_in_pieces(data: bytes, cuts: List[int]) -> str:
    decoder = Utf8Decoder()
    bounds = [0, *cuts, len(data)]
    parts = [decoder.decode(data[a:b]) for a, b in zip(bounds, bounds[1:])]
    parts.append(decoder.decode(b"", True))
    return "".join(parts)


# -- the reference itself ---------------------------------------------------------------


def test_reference_agrees_with_known_cases() -> None:
    assert viable(b"") and viable(b"A") and viable(b"\xc2") and viable(b"\xf4\x8f")
    assert viable(b"\xed\x9f") and viable(b"\xe0\xa0") and viable(b"\xf0\x90\x80")
    assert not viable(b"\x80") and not viable(b"\xc0") and not viable(b"\xf5")
    assert not viable(b"\xed\xa0") and not viable(b"\xe0\x9f") and not viable(b"\xf4\x90")
    assert not viable(b"\xf0\x8f") and not viable(b"\xc2A")
    assert complete(b"A\xc3\xa9") and not complete(b"\xc3") and not complete(b"A\xe2\x82")


# -- exhaustive fail-fast checks --------------------------------------------------------


def test_every_one_byte_prefix() -> None:
    for b in range(256):
        prefix = bytes([b])
        expected = viable(prefix)
        assert fails_whole(prefix) is not expected, prefix.hex()
        assert (first_failure(prefix) is None) is expected, prefix.hex()
        assert fails_whole(prefix, final=True) is not complete(prefix), prefix.hex()


def test_every_two_byte_prefix() -> None:
    for a in range(256):
        lead_viable = viable(bytes([a]))
        for b in range(256):
            prefix = bytes([a, b])
            expected = viable(prefix)
            assert fails_whole(prefix) is not expected, prefix.hex()
            failure = first_failure(prefix)
            if expected:
                assert failure is None, prefix.hex()
            else:
                # Fail fast: at the first byte that makes the prefix invalid.
                assert failure == (1 if lead_viable else 0), prefix.hex()
            assert fails_whole(prefix, final=True) is not complete(prefix), prefix.hex()


#: Lead bytes of 3- and 4-byte sequences (where the third byte still decides), and a few
#: others (ASCII, 2-byte leads) for contrast.
THREE_BYTE_LEADS = list(range(0xE0, 0xF5)) + [0x00, 0x41, 0x7F, 0xC2, 0xDF]


@pytest.mark.parametrize("lead", THREE_BYTE_LEADS, ids=lambda b: f"{b:02x}")
def test_every_three_byte_prefix(lead: int) -> None:
    """All 256 * 256 continuations of the lead byte (those after a dead 2-byte prefix
    only need to keep failing, which the two-byte test shows for the byte that kills it)."""
    for second in range(256):
        head = bytes([lead, second])
        if not viable(head):
            assert fails_whole(head + b"\x80") and fails_whole(head + b"A")
            continue
        for third in range(256):
            prefix = head + bytes([third])
            expected = viable(prefix)
            assert fails_whole(prefix) is not expected, prefix.hex()
            failure = first_failure(prefix)
            assert failure == (None if expected else 2), prefix.hex()


# -- named sequences --------------------------------------------------------------------

VALID = [
    b"",
    b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
    "κόσμε".encode(),
    b"\x00",  # U+0000
    b"\x7f",  # U+007F
    b"\xc2\x80",  # U+0080, smallest 2-byte
    b"\xdf\xbf",  # U+07FF
    b"\xe0\xa0\x80",  # U+0800, smallest 3-byte
    b"\xed\x9f\xbf",  # U+D7FF, just below the surrogates
    b"\xee\x80\x80",  # U+E000, just above them
    b"\xef\xbf\xbd",  # U+FFFD
    b"\xef\xbf\xbe",  # U+FFFE: a noncharacter, still valid UTF-8
    b"\xef\xbf\xbf",  # U+FFFF
    b"\xf0\x90\x80\x80",  # U+10000, smallest 4-byte
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF, the largest code point
    "\U0001f600 emoji \u20ac euro".encode(),
]


@pytest.mark.parametrize("data", VALID, ids=lambda d: d.hex() or "empty")
def test_valid(data: bytes) -> None:
    text = data.decode("utf-8")
    assert decode_text(data) == text
    assert decode_text(bytearray(data)) == text
    assert decode_text(memoryview(data)) == text
    assert first_failure(data, final=True) is None
    # Every way of cutting it in two, and one byte at a time.
    for cut in range(len(data) + 1):
        assert decode_in_pieces(data, [cut]) == text
    assert decode_in_pieces(data, list(range(1, len(data)))) == text


# (bytes, index of the first byte that makes them invalid)
INVALID = [
    (b"\x80", 0),  # a lone continuation byte
    (b"\xbf", 0),
    (b"A\x80B", 1),
    (b"\xc0\xaf", 0),  # overlong "/": C0 and C1 never appear
    (b"\xc1\xbf", 0),
    (b"\xe0\x80\xaf", 1),  # overlong, 3 bytes
    (b"\xe0\x9f\xbf", 1),
    (b"\xf0\x80\x80\xaf", 1),  # overlong, 4 bytes
    (b"\xf0\x8f\xbf\xbf", 1),
    (b"\xf8\x88\x80\x80\xaf", 0),  # 5- and 6-byte forms
    (b"\xfc\x84\x80\x80\x80\xaf", 0),
    (b"\xed\xa0\x80", 1),  # UTF-16 surrogates U+D800..U+DFFF
    (b"\xed\xad\xbf", 1),
    (b"\xed\xae\x80", 1),
    (b"\xed\xaf\xbf", 1),
    (b"\xed\xb0\x80", 1),
    (b"\xed\xbe\x80", 1),
    (b"\xed\xbf\xbf", 1),
    (b"\xed\xa0\x80\xed\xb0\x80", 1),  # a surrogate pair
    ("κόσμε".encode() + b"\xed\xa0\x80edited", 11),
    (b"\xf4\x90\x80\x80", 1),  # above U+10FFFF
    (b"\xf4\xbf\xbf\xbf", 1),
    (b"\xf5\x80\x80\x80", 0),
    (b"\xf7\xbf\xbf\xbf", 0),
    (b"\xfe", 0),
    (b"\xff", 0),
    (b"\xc2A", 1),  # a sequence cut short by another character
    (b"\xe2\x82A", 2),
    (b"\xf0\x9f\x98A", 3),
    (b"\xe2\x82\xac\xe2\x82\xac\xff", 6),
]


@pytest.mark.parametrize("data, index", INVALID, ids=lambda v: v.hex() if isinstance(v, bytes) else "")
def test_invalid(data: bytes, index: int) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_text(data)
    assert info.value.code == 1007
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
    # Fail fast: exactly at the first bad byte, one byte at a time...
    assert first_failure(data) == index
    # ...and fed whole up to and including it, but not before it.
    assert fails_whole(data[: index + 1])
    assert not fails_whole(data[:index])


@pytest.mark.parametrize("data, index", INVALID, ids=lambda v: v.hex() if isinstance(v, bytes) else "")
def test_invalid_in_random_pieces(data: bytes, index: int) -> None:
    rng = random.Random(index * 1000 + len(data))
    payload = "prefix €".encode() + data + b" and more text after it"
    bad = len("prefix €".encode()) + index
    for _ in range(20):
        decoder = Utf8Decoder()
        pos = 0
        with pytest.raises(ProtocolError):
            while pos < len(payload):
                size = rng.randint(1, 8)
                decoder.decode(payload[pos : pos + size])
                pos += size
        # It raised with the piece holding the first bad byte (``pos`` is where it began).
        assert pos <= bad < pos + size


@pytest.mark.parametrize("data", [b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"A\xed"])
def test_incomplete_at_the_end(data: bytes) -> None:
    assert first_failure(data) is None
    decoder = Utf8Decoder()
    assert decoder.decode(data) == ("A" if data.startswith(b"A") else "")
    with pytest.raises(ProtocolError) as info:
        decoder.decode(b"", final=True)
    assert info.value.code == 1007
    with pytest.raises(ProtocolError):
        decode_text(data)


def test_split_sequence_returned_with_the_piece_that_completes_it() -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(b"a\xe2") == "a"
    assert decoder.decode(b"\x82") == ""
    assert decoder.decode(b"\xacb") == "\u20acb"
    assert decoder.decode(b"", final=True) == ""


def test_surrogate_split_across_pieces_fails_at_second_byte() -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(b"ok \xed") == "ok "
    with pytest.raises(ProtocolError) as info:
        decoder.decode(memoryview(b"\xa0"))
    assert info.value.code == 1007


def test_bytes_like_pieces() -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(bytearray(b"\xc3")) == ""
    assert decoder.decode(memoryview(b"\xa9t\xc3\xa9")) == "\xe9t\xe9"
    assert decoder.decode(b"", final=True) == ""


def test_reset_forgets_a_partial_sequence() -> None:
    decoder = Utf8Decoder()
    decoder.decode(b"\xe2\x82")
    decoder.reset()
    assert decoder.decode(b"A", final=True) == "A"


def test_without_reset_the_partial_sequence_counts() -> None:
    decoder = Utf8Decoder()
    decoder.decode(b"\xe2\x82")
    with pytest.raises(ProtocolError):
        decoder.decode(b"A")


def test_long_text_random_pieces() -> None:
    rng = random.Random(7)
    text = "".join(chr(rng.choice([0x41, 0xE9, 0x20AC, 0x1F600, 0xFFFD, 0x7FF, 0x10000]))
                   for _ in range(5000))
    data = text.encode("utf-8")
    for _ in range(10):
        cuts = sorted(rng.sample(range(1, len(data)), 300))
        assert decode_in_pieces(data, cuts) == text


# -- the module stays sans-I/O (DESIGN.md: the core never touches sockets or threads) ----


@pytest.mark.parametrize("data", [b"\xff", b"ok \xc3\x28", b"\xed\xa0\x80"])
def test_invalid_text_says_so_and_keeps_the_decoder_error(data: bytes) -> None:
    # Found by mutation testing: the message (the reason of the 1007 close frame the peer
    # reads) and the chained UnicodeDecodeError were never checked.
    for decode in (decode_text, lambda d: Utf8Decoder().decode(d, final=True)):
        with pytest.raises(ProtocolError) as info:
            decode(data)
        assert info.value.code == 1007
        assert str(info.value) == "invalid UTF-8 in a text message"
        assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_a_surrogate_cut_short_fails_at_once_and_says_why() -> None:
    # The incremental decoder's own check (the codec would wait for the third byte).
    with pytest.raises(ProtocolError) as info:
        Utf8Decoder().decode(b"ok \xed\xa0", final=False)
    assert info.value.code == 1007
    assert str(info.value) == "invalid UTF-8 in a text message"
    assert isinstance(info.value.__cause__, ValueError)
    assert "surrogate" in str(info.value.__cause__)
