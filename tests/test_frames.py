"""Tests for wsclient.frames: RFC 6455 section 5 framing, masking and incremental parsing.

Every parse is done three ways (the bytes whole, in random chunks from a seeded
``random.Random``, and one byte at a time) and the three must agree.
"""

from __future__ import annotations

import itertools
import random
from typing import Iterator, List, Optional, Tuple

import pytest

from .conftest import need
from wsclient import frames
from wsclient.exceptions import ProtocolError
from wsclient.frames import (
    CONTROL_OPCODES,
    DATA_OPCODES,
    MAX_CONTROL_PAYLOAD,
    Frame,
    FrameHeader,
    FrameParser,
    FramePiece,
    MaskKeys,
    Opcode,
    apply_mask,
    generate_mask_key,
    parse_frames,
    serialize_frame,
    serialize_header,
)

KEY = bytes.fromhex("37fa213d")  # the masking key of RFC 6455 section 5.7
RESERVED_OPCODES = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]


def chunkings(data: bytes, seed: int = 0) -> Iterator[Tuple[str, List[bytes]]]:
    """The three ways to feed ``data``: whole, random chunks, one byte at a time."""
    yield "whole", [data]
    rng = random.Random(seed)
    chunks, pos = [], 0
    while pos < len(data):
        size = rng.randint(1, rng.choice([3, 17, 300, 5000, 70000]))
        chunks.append(data[pos : pos + size])
        pos += size
    yield "random", chunks
    yield "bytes", [data[i : i + 1] for i in range(len(data))]


def parse_chunks(chunks: List[bytes], *, expect_masked: bool) -> Tuple[List[Frame], Optional[str]]:
    """Feed chunks to one parser; return the whole frames and the error message, if any.

    Uses :meth:`FrameParser.iter_feed`, so frames before a bad one count whatever the
    chunking. Also checks the shape of what the parser yields: a frame's pieces come in order, the
    first flagged ``first`` and the last ``last``, control frames in one piece.
    """
    parser = FrameParser(expect_masked=expect_masked)
    frames: List[Frame] = []
    parts: List[bytes] = []
    current: Optional[FrameHeader] = None
    try:
        for chunk in chunks:
            for piece in parser.iter_feed(chunk):
                assert isinstance(piece, FramePiece)
                assert piece.first is (current is None)
                if current is not None:
                    assert piece.header == current
                if piece.header.opcode >= 8:
                    assert piece.first and piece.last
                current = None if piece.last else piece.header
                parts.append(piece.data)
                if piece.last:
                    h = piece.header
                    payload = b"".join(parts)
                    assert len(payload) == h.length
                    frames.append(Frame(h.opcode, payload, h.fin, h.rsv1, h.rsv2, h.rsv3))
                    parts = []
    except ProtocolError as exc:
        assert exc.code == 1002
        return frames, str(exc)
    return frames, None


def parse_all_ways(
    data: bytes, *, expect_masked: bool, seed: int = 0
) -> Tuple[List[Frame], Optional[str]]:
    """Parse ``data`` three ways, check they agree, return the frames and error."""
    results = {
        name: parse_chunks(chunks, expect_masked=expect_masked)
        for name, chunks in chunkings(data, seed)
    }
    assert results["random"] == results["whole"]
    assert results["bytes"] == results["whole"]
    return results["whole"]


def parse_ok(data: bytes, *, expect_masked: bool) -> List[Frame]:
    frames, error = parse_all_ways(data, expect_masked=expect_masked)
    assert error is None
    return frames


def parse_error(data: bytes, *, expect_masked: bool) -> str:
    _, error = parse_all_ways(data, expect_masked=expect_masked)
    assert error is not None
    return error


def naive_mask(data: bytes, key: bytes, offset: int = 0) -> bytes:
    """The definition of RFC 6455 section 5.3, one byte at a time."""
    return bytes(b ^ key[(i + offset) % 4] for i, b in enumerate(data))


# -- RFC 6455 section 5.7 examples ------------------------------------------------------

HELLO = bytes.fromhex("810548656c6c6f")
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")
FRAGMENTED = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
PING = bytes.fromhex("890548656c6c6f")
PONG_MASKED = bytes.fromhex("8a8537fa213d7f9f4d5158")
PAYLOAD_256 = bytes(range(256))
BINARY_256 = bytes.fromhex("827e0100") + PAYLOAD_256
PAYLOAD_64K = bytes(random.Random(64).getrandbits(8) for _ in range(65536))
BINARY_64K = bytes.fromhex("827f0000000000010000") + PAYLOAD_64K


def test_rfc_unmasked_text() -> None:
    assert parse_ok(HELLO, expect_masked=False) == [Frame(Opcode.TEXT, b"Hello")]
    assert serialize_frame(Opcode.TEXT, b"Hello") == HELLO
    assert Frame(Opcode.TEXT, b"Hello").serialize() == HELLO


def test_rfc_masked_text() -> None:
    assert parse_ok(HELLO_MASKED, expect_masked=True) == [Frame(Opcode.TEXT, b"Hello")]
    assert serialize_frame(Opcode.TEXT, b"Hello", mask_key=KEY) == HELLO_MASKED
    assert Frame(Opcode.TEXT, b"Hello").serialize(mask_key=KEY) == HELLO_MASKED


def test_rfc_fragmented_text() -> None:
    frames = parse_ok(FRAGMENTED, expect_masked=False)
    assert frames == [
        Frame(Opcode.TEXT, b"Hel", fin=False),
        Frame(Opcode.CONT, b"lo", fin=True),
    ]
    assert b"".join(f.serialize() for f in frames) == FRAGMENTED
    assert serialize_frame(Opcode.TEXT, b"Hel", fin=False) == FRAGMENTED[:5]
    assert serialize_frame(Opcode.CONT, b"lo") == FRAGMENTED[5:]


def test_rfc_ping_and_masked_pong() -> None:
    assert parse_ok(PING, expect_masked=False) == [Frame(Opcode.PING, b"Hello")]
    assert parse_ok(PONG_MASKED, expect_masked=True) == [Frame(Opcode.PONG, b"Hello")]
    assert serialize_frame(Opcode.PING, b"Hello") == PING
    assert serialize_frame(Opcode.PONG, b"Hello", mask_key=KEY) == PONG_MASKED


def test_rfc_256_bytes_binary() -> None:
    assert parse_ok(BINARY_256, expect_masked=False) == [Frame(Opcode.BINARY, PAYLOAD_256)]
    assert serialize_frame(Opcode.BINARY, PAYLOAD_256) == BINARY_256


def test_rfc_64k_binary() -> None:
    assert parse_ok(BINARY_64K, expect_masked=False) == [Frame(Opcode.BINARY, PAYLOAD_64K)]
    assert serialize_frame(Opcode.BINARY, PAYLOAD_64K) == BINARY_64K
    masked = serialize_frame(Opcode.BINARY, PAYLOAD_64K, mask_key=KEY)
    assert masked[:14] == bytes.fromhex("82ff0000000000010000") + KEY
    assert parse_ok(masked, expect_masked=True) == [Frame(Opcode.BINARY, PAYLOAD_64K)]


def test_rfc_examples_in_one_stream() -> None:
    stream = HELLO + FRAGMENTED + PING + BINARY_256 + BINARY_64K
    frames = parse_ok(stream, expect_masked=False)
    assert [f.opcode for f in frames] == [1, 1, 0, 9, 2, 2]
    assert frames[-1].payload == PAYLOAD_64K


# -- lengths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length, encoded",
    [
        (0, "00"),
        (1, "01"),
        (125, "7d"),
        (126, "7e007e"),
        (127, "7e007f"),
        (65535, "7effff"),
        (65536, "7f0000000000010000"),
        (2**32, "7f0000000100000000"),
        (2**63 - 1, "7f7fffffffffffffff"),
    ],
)
def test_minimal_length_encoding(length: int, encoded: str) -> None:
    header = serialize_header(Opcode.BINARY, length)
    assert header == b"\x82" + bytes.fromhex(encoded)
    masked = serialize_header(Opcode.BINARY, length, mask_key=KEY)
    assert masked == b"\x82" + bytes([header[1] | 0x80]) + header[2:] + KEY
    # The parser reads the length back from the header alone.
    pieces = FrameParser(expect_masked=False).feed(header)
    assert pieces[0].header.length == length
    assert pieces[0].first
    assert pieces[0].last is (length == 0)


def test_length_too_large_to_send() -> None:
    with pytest.raises(ValueError):
        serialize_header(Opcode.BINARY, 2**63)


@pytest.mark.parametrize("top", ["80", "ff", "c0"])
def test_length_with_top_bit_set(top: str) -> None:
    header = bytes.fromhex("827f" + top + "00000000000000")
    error = parse_error(header + b"payload", expect_masked=False)
    assert "most significant bit" in error
    with pytest.raises(ProtocolError) as info:
        FrameParser(expect_masked=False).feed(header)  # the header alone is enough
    assert info.value.code == 1002


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 128, 65535, 65536, 65537])
def test_every_length_round_trips(length: int) -> None:
    payload = bytes(random.Random(length).getrandbits(8) for _ in range(length))
    for key in (None, KEY):
        data = serialize_frame(Opcode.BINARY, payload, mask_key=key)
        expected_header = 2 + (0 if length < 126 else 2 if length < 65536 else 8)
        assert len(data) == expected_header + (4 if key else 0) + length
        frames = parse_ok(data, expect_masked=key is not None)
        assert frames == [Frame(Opcode.BINARY, payload)]


# -- first byte: FIN, RSV1-3, opcodes ---------------------------------------------------


def _first_byte_ok(b0: int) -> bool:
    opcode, fin = b0 & 0x0F, bool(b0 & 0x80)
    if opcode in RESERVED_OPCODES:
        return False
    return opcode < 8 or fin  # control frames must not be fragmented


@pytest.mark.parametrize("masked", [False, True], ids=["to-client", "to-server"])
def test_every_first_byte(masked: bool) -> None:
    for b0 in range(256):
        frame = bytes([b0, 0x83 if masked else 0x03]) + (KEY if masked else b"")
        frame += apply_mask(b"abc", KEY) if masked else b"abc"
        frames, error = parse_all_ways(frame + HELLO_MASKED if masked else frame + HELLO,
                                       expect_masked=masked)
        if _first_byte_ok(b0):
            assert error is None, hex(b0)
            assert frames[0] == Frame(
                b0 & 0x0F, b"abc", bool(b0 & 0x80), bool(b0 & 0x40), bool(b0 & 0x20), bool(b0 & 0x10)
            )
            assert frames[1] == Frame(Opcode.TEXT, b"Hello")
        else:
            assert frames == [], hex(b0)
            assert error is not None


@pytest.mark.parametrize("opcode", RESERVED_OPCODES)
def test_reserved_opcode(opcode: int) -> None:
    error = parse_error(bytes([0x80 | opcode, 0]), expect_masked=False)
    assert f"{opcode:#x}" in error
    with pytest.raises(ValueError):
        Opcode(opcode)


def test_known_opcodes() -> None:
    assert {int(o) for o in Opcode} == {0, 1, 2, 8, 9, 10}
    assert DATA_OPCODES == {Opcode.CONT, Opcode.TEXT, Opcode.BINARY}
    assert CONTROL_OPCODES == {Opcode.CLOSE, Opcode.PING, Opcode.PONG}
    for opcode in Opcode:
        assert parse_ok(bytes([0x80 | opcode, 0]), expect_masked=False) == [Frame(opcode)]


def test_rsv_bits_are_reported_not_judged() -> None:
    # Whether RSV bits are allowed depends on extensions: the protocol decides.
    frame = Frame(Opcode.TEXT, b"x", rsv1=True, rsv2=True, rsv3=True)
    assert frame.serialize()[0] == 0xF1
    assert parse_ok(frame.serialize(), expect_masked=False) == [frame]
    header = serialize_header(Opcode.PING, 0, rsv2=True)
    assert header == b"\xa9\x00"


def test_fin_bit() -> None:
    assert serialize_header(Opcode.TEXT, 0, fin=False) == b"\x01\x00"
    assert serialize_header(Opcode.CONT, 0, fin=True) == b"\x80\x00"
    assert serialize_frame(Opcode.BINARY, b"", fin=False, rsv1=True) == b"\x42\x00"


# -- control frames ---------------------------------------------------------------------


@pytest.mark.parametrize("opcode", sorted(CONTROL_OPCODES))
def test_control_frame_of_125_bytes(opcode: int) -> None:
    payload = bytes(range(MAX_CONTROL_PAYLOAD))
    data = serialize_frame(opcode, payload, mask_key=KEY)
    assert parse_ok(data, expect_masked=True) == [Frame(opcode, payload)]


@pytest.mark.parametrize("opcode", sorted(CONTROL_OPCODES))
def test_control_frame_of_126_bytes(opcode: int) -> None:
    data = serialize_frame(opcode, bytes(126))
    assert "126" in parse_error(data, expect_masked=False)
    # Rejected from the header: no payload needed.
    with pytest.raises(ProtocolError):
        FrameParser(expect_masked=False).feed(data[:4])
    # Also with a 64-bit length.
    with pytest.raises(ProtocolError):
        FrameParser(expect_masked=False).feed(bytes([0x80 | opcode, 127]) + (200).to_bytes(8, "big"))


@pytest.mark.parametrize("opcode", sorted(CONTROL_OPCODES))
def test_fragmented_control_frame(opcode: int) -> None:
    assert "fragmented" in parse_error(bytes([opcode, 0]), expect_masked=False)
    assert parse_ok(bytes([0x80 | opcode, 0]), expect_masked=False) == [Frame(opcode)]


def test_control_frames_are_yielded_whole() -> None:
    parser = FrameParser(expect_masked=False)
    assert parser.feed(PING[:4]) == []
    assert parser.buffered == 4
    assert parser.feed(PING[4:6]) == []
    assert parser.buffered == 6
    [piece] = parser.feed(PING[6:])
    assert piece.data == b"Hello" and piece.first and piece.last
    assert parser.buffered == 0


def test_data_frame_header_comes_before_its_payload() -> None:
    """A data frame's header is yielded alone, so limits apply before any payload."""
    parser = FrameParser(expect_masked=True)
    data = serialize_frame(Opcode.BINARY, bytes(1000), mask_key=KEY)
    [piece] = parser.feed(data[:8])  # 2 + 2 length + 4 key
    assert piece.first and not piece.last
    assert piece.data == b""
    assert piece.header == FrameHeader(True, False, False, False, Opcode.BINARY, 1000, KEY)
    [piece] = parser.feed(data[8:18])
    assert (piece.first, piece.last, piece.data) == (False, False, bytes(10))
    assert parser.buffered == 0  # payload is passed on, never held
    [piece] = parser.feed(data[18:])
    assert (piece.first, piece.last, len(piece.data)) == (False, True, 990)


def test_header_split_anywhere() -> None:
    data = serialize_frame(Opcode.TEXT, b"x" * 70000, mask_key=KEY)
    for cut in range(1, 14):
        parser = FrameParser(expect_masked=True)
        assert parser.feed(data[:cut]) == []
        pieces = parser.feed(data[cut:])
        assert pieces[0].header.length == 70000
        assert b"".join(p.data for p in pieces) == b"x" * 70000


# -- masking rules (RFC 6455 section 5.1) -----------------------------------------------


def test_server_rejects_unmasked_frames() -> None:
    assert "unmasked" in parse_error(HELLO, expect_masked=True)
    assert parse_ok(HELLO_MASKED, expect_masked=True) == [Frame(Opcode.TEXT, b"Hello")]


def test_client_rejects_masked_frames() -> None:
    assert "masked" in parse_error(HELLO_MASKED, expect_masked=False)
    assert parse_ok(HELLO, expect_masked=False) == [Frame(Opcode.TEXT, b"Hello")]


@pytest.mark.parametrize("opcode", sorted(CONTROL_OPCODES | DATA_OPCODES))
def test_masking_rule_for_every_opcode(opcode: int) -> None:
    unmasked = serialize_frame(opcode, b"")
    masked = serialize_frame(opcode, b"", mask_key=KEY)
    assert parse_error(unmasked, expect_masked=True)
    assert parse_error(masked, expect_masked=False)


def test_frames_before_an_error_are_kept() -> None:
    frames, error = parse_all_ways(HELLO + PING + b"\x83\x00", expect_masked=False)
    assert frames == [Frame(Opcode.TEXT, b"Hello"), Frame(Opcode.PING, b"Hello")]
    assert error == "reserved opcode 0x3"
    # iter_feed yields each piece before parsing the next...
    pieces = FrameParser(expect_masked=False).iter_feed(HELLO + PING + b"\x83\x00")
    assert next(pieces).data == b"Hello"
    assert next(pieces).data == b"Hello"
    with pytest.raises(ProtocolError):
        next(pieces)
    # ...while feed, which returns a list, raises instead of returning any of them.
    with pytest.raises(ProtocolError):
        FrameParser(expect_masked=False).feed(HELLO + PING + b"\x83\x00")


def test_iter_feed_parses_nothing_past_where_it_stopped() -> None:
    # Bytes after a close frame may be garbage: stopping there raises nothing.
    pieces = FrameParser(expect_masked=False).iter_feed(b"\x88\x02\x03\xe8" + b"\x83\x00")
    assert next(pieces).data == b"\x03\xe8"
    pieces.close()


def test_mask_keys_are_fresh() -> None:
    keys = [generate_mask_key() for _ in range(200)]
    assert all(isinstance(k, bytes) and len(k) == 4 for k in keys)
    assert len(set(keys)) >= 195  # 2**32 keys: a repeat here is (nearly) impossible


def test_mask_keys_batches_are_fresh_across_refills() -> None:
    source = MaskKeys()
    keys = [source() for _ in range(3 * MaskKeys.BATCH + 5)]  # crosses three refills
    assert all(isinstance(k, bytes) and len(k) == 4 for k in keys)
    assert len(set(keys)) >= len(keys) - 5
    other = MaskKeys()
    assert [other() for _ in range(8)] != keys[:8]  # each source draws its own keys


def test_mask_keys_are_the_urandom_stream_in_order_one_call_per_batch(monkeypatch) -> None:
    # Found by mutation testing: a first key from a non-empty initial pool (b"XXXX"), a
    # skipped byte or a batch of the wrong size went unnoticed by the tests above.
    calls = []

    class RecordingOs:
        @staticmethod
        def urandom(size: int) -> bytes:
            calls.append(size)
            return bytes((len(calls) * 7 + i) % 256 for i in range(size))

    monkeypatch.setattr(frames, "os", RecordingOs)
    source = MaskKeys()
    assert calls == []  # Nothing drawn before the first key.
    keys = [source() for _ in range(2 * MaskKeys.BATCH + 1)]
    assert calls == [4 * MaskKeys.BATCH] * 3
    stream = b"".join(bytes((n * 7 + i) % 256 for i in range(4 * MaskKeys.BATCH)) for n in (1, 2, 3))
    assert keys == [stream[i : i + 4] for i in range(0, 4 * len(keys), 4)]


# -- apply_mask -------------------------------------------------------------------------

CHUNK_BOUNDARIES = [
    n + d for n in (1 << 14, 2 << 14, 3 << 14, 4 << 14) for d in (-5, -4, -3, -1, 0, 1, 3, 4, 5)
]
MASK_LENGTHS = (
    list(range(0, 260))
    + CHUNK_BOUNDARIES
    + [65535, 65536, 65537, 70000]
    + random.Random(5).sample(range(260, 70001), 40)
)


@pytest.fixture(params=["python", "numpy"])
def mask_path(request, monkeypatch):
    """Run a masking test on the pure-Python path and on the numpy path."""
    if request.param == "python":
        monkeypatch.setattr(frames, "_numpy", False)
    else:
        monkeypatch.setattr(frames, "_numpy", None)
        need(frames._load_numpy(), "numpy is not installed (the optional masking accelerator)")
    return request.param


@pytest.mark.usefixtures("mask_path")
def test_apply_mask_against_the_definition() -> None:
    rng = random.Random(1)
    data = bytes(rng.getrandbits(8) for _ in range(70000))
    for length in MASK_LENGTHS:
        key = bytes(rng.getrandbits(8) for _ in range(4))
        offset = rng.randrange(8)
        expected = naive_mask(data[:length], key, offset)
        assert apply_mask(data[:length], key, offset) == expected, (length, offset)


@pytest.mark.parametrize("offset", range(8))
@pytest.mark.usefixtures("mask_path")
def test_apply_mask_offsets(offset: int) -> None:
    data = bytes(range(256)) * 260  # 66560 bytes: crosses several chunks
    for length in (0, 1, 2, 3, 4, 5, 7, 100, 16383, 16384, 16385, 66560):
        got = apply_mask(data[:length], KEY, offset)
        assert got == naive_mask(data[:length], KEY, offset), length


@pytest.mark.usefixtures("mask_path")
def test_apply_mask_bytes_like_inputs() -> None:
    data = bytes(random.Random(2).getrandbits(8) for _ in range(40000))
    expected = naive_mask(data[3:], KEY, 1)
    for value in (data[3:], bytearray(data[3:]), memoryview(data)[3:]):
        result = apply_mask(value, KEY, 1)
        assert type(result) is bytes
        assert result == expected


@pytest.mark.usefixtures("mask_path")
def test_apply_mask_in_pieces_equals_whole() -> None:
    data = bytes(random.Random(3).getrandbits(8) for _ in range(50000))
    whole = apply_mask(data, KEY)
    rng = random.Random(4)
    pos, out = 0, []
    while pos < len(data):
        size = rng.randint(1, 20000)
        out.append(apply_mask(data[pos : pos + size], KEY, pos))
        pos += size
    assert b"".join(out) == whole


@pytest.mark.usefixtures("mask_path")
def test_apply_mask_is_its_own_inverse() -> None:
    data = b"The quick brown fox" * 3000
    assert apply_mask(apply_mask(data, KEY), KEY) == data
    assert apply_mask(data, bytes(4)) == data
    assert apply_mask(data, KEY) != data


def test_mask_for_sending_matches_the_definition(mask_path: str) -> None:
    data = bytes(random.Random(6).getrandbits(8) for _ in range(70001))
    for length in (0, 5, 16384, 16385, 16391, 70001):
        masked = frames.mask_for_sending(data[:length], KEY)
        assert b"".join(masked) == naive_mask(data[:length], KEY), length
    if mask_path == "numpy":  # Large payloads skip the copy into bytes.
        assert [type(b) for b in frames.mask_for_sending(data, KEY)] == [memoryview]
    else:  # Pure Python's pieces are left for sendmsg() to gather.
        assert [len(b) for b in frames.mask_for_sending(data, KEY)] == [16384] * 4 + [4465]


# -- whole streams, parse_frames, Frame -------------------------------------------------


def test_many_frames_any_chunking() -> None:
    rng = random.Random(9)
    frames = []
    for i in range(150):
        opcode = rng.choice([Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PING, Opcode.PONG])
        size = rng.choice([0, 1, 125]) if opcode >= 8 else rng.choice([0, 5, 125, 126, 127, 300])
        if i in (10, 77):
            opcode, size = Opcode.BINARY, 65536
        payload = bytes(rng.getrandbits(8) for _ in range(min(size, 300))) * (size // 300 or 1)
        payload = payload[:size]
        fin = opcode >= 8 or rng.random() < 0.5
        frames.append(Frame(opcode, payload, fin, rsv1=rng.random() < 0.2))
    for masked in (False, True):
        stream = b"".join(
            f.serialize(mask_key=generate_mask_key() if masked else None) for f in frames
        )
        assert parse_ok(stream, expect_masked=masked) == frames


def test_parse_frames_ignores_a_trailing_partial_frame() -> None:
    assert parse_frames(HELLO + PING[:3], expect_masked=False) == [Frame(Opcode.TEXT, b"Hello")]
    assert parse_frames(b"", expect_masked=False) == []
    with pytest.raises(ProtocolError):
        parse_frames(HELLO, expect_masked=True)


def test_parser_accepts_bytes_like_and_copies_what_it_keeps() -> None:
    parser = FrameParser(expect_masked=True)
    chunk = bytearray(HELLO_MASKED[:6])
    assert parser.feed(chunk) == [
        FramePiece(FrameHeader(True, False, False, False, 1, 5, KEY), b"", True, False)
    ]
    chunk[:] = b"\x00" * 6  # a reused receive buffer
    pieces = parser.feed(memoryview(bytearray(HELLO_MASKED[6:])))
    assert b"".join(p.data for p in pieces) == b"Hello"
    parser2 = FrameParser(expect_masked=False)
    buf = bytearray(PING[:3])
    parser2.feed(buf)
    buf[:] = b"\xff\xff\xff"  # the 3 buffered bytes must have been copied
    assert parser2.feed(PING[3:])[0].data == b"Hello"


def test_frame_value() -> None:
    frame = Frame(Opcode.BINARY, b"\x00\x01", fin=False, rsv3=True)
    assert frame.serialize() == b"\x12\x02\x00\x01"
    assert frame.serialize(mask_key=bytes(4)) == b"\x12\x82\x00\x00\x00\x00\x00\x01"
    assert Frame(Opcode.CLOSE) == Frame(Opcode.CLOSE, b"", True, False, False, False)
    with pytest.raises(AttributeError):
        frame.payload = b""  # type: ignore[misc]


def test_all_flag_combinations_round_trip() -> None:
    for fin, rsv1, rsv2, rsv3 in itertools.product([False, True], repeat=4):
        frame = Frame(Opcode.BINARY, b"data", fin, rsv1, rsv2, rsv3)
        assert parse_ok(frame.serialize(mask_key=KEY), expect_masked=True) == [frame]


# -- the module stays sans-I/O (DESIGN.md: the core never touches sockets or threads) ----


# -- feed_whole: the one-frame shortcut must agree with iter_feed ----------------------

WHOLE_CASES = [
    (opcode, fin, rsv, length, masked)
    for opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PING, 0x3)
    for fin in (True, False)
    for rsv in (0, 0x40, 0x20, 0x10)
    for length in (0, 1, 125, 126, 65535, 65536)
    for masked in (True, False)
]


@pytest.mark.parametrize("expect_masked", [True, False], ids=["server", "client"])
def test_feed_whole_takes_only_what_iter_feed_would_give_as_one_piece(expect_masked: bool) -> None:
    taken = 0
    for opcode, fin, rsv, length, masked in WHOLE_CASES:
        payload = bytes(range(256)) * (length // 256) + bytes(length % 256)
        bits = {"rsv1": bool(rsv & 0x40), "rsv2": bool(rsv & 0x20), "rsv3": bool(rsv & 0x10)}
        frame = serialize_header(opcode, length, fin=fin, mask_key=KEY if masked else None, **bits)
        frame += apply_mask(payload, KEY) if masked else payload
        for data in (frame, frame + b"\x81", frame[:-1]):
            parser = FrameParser(expect_masked=expect_masked)
            whole = parser.feed_whole(data, None)
            if whole is None:
                continue
            taken += 1
            reference = FrameParser(expect_masked=expect_masked)
            pieces = reference.feed(data)
            assert [(p.header.opcode, p.data, p.first, p.last, p.header.fin) for p in pieces] == [
                (whole[0], whole[1], True, True, True)
            ]
            assert pieces[0].header.rsv1 is pieces[0].header.rsv2 is pieces[0].header.rsv3 is False
            assert parser.buffered == 0 and parser.feed(frame) == reference.feed(frame)  # still in step
    assert taken == 2 * 5  # text and binary of 0, 1, 125, 126 and 65535 bytes, masked as expected


@pytest.mark.parametrize("expect_masked", [True, False], ids=["server", "client"])
def test_feed_whole_with_control_also_takes_whole_control_frames_as_iter_feed_would(expect_masked: bool) -> None:
    taken = []
    cases = WHOLE_CASES + [
        (opcode, fin, rsv, length, masked)
        for opcode in (Opcode.CLOSE, Opcode.PONG, 0xB)
        for fin in (True, False)
        for rsv in (0, 0x40)
        for length in (0, 2, 125, 126)
        for masked in (True, False)
    ]
    for opcode, fin, rsv, length, masked in cases:
        payload = bytes(range(256)) * (length // 256) + bytes(length % 256)
        frame = serialize_header(opcode, length, fin=fin, rsv1=bool(rsv & 0x40), rsv2=bool(rsv & 0x20),
                                 rsv3=bool(rsv & 0x10), mask_key=KEY if masked else None)
        frame += apply_mask(payload, KEY) if masked else payload
        for data in (frame, frame + b"\x81", frame[:-1]):
            parser = FrameParser(expect_masked=expect_masked)
            whole = parser.feed_whole(data, None, control=True)
            if whole is None:
                continue
            taken.append((opcode, length))
            reference = FrameParser(expect_masked=expect_masked)
            pieces = reference.feed(data)
            assert [(p.header.opcode, p.data, p.first, p.last, p.header.fin) for p in pieces] == [
                (whole[0], whole[1], True, True, True)
            ]
            assert parser.buffered == 0 and parser.feed(frame) == reference.feed(frame)  # still in step
    # Text and binary as without control; ping, close and pong of 0 to 125 bytes, nothing longer.
    data_frames = [(op, n) for op in (Opcode.TEXT, Opcode.BINARY) for n in (0, 1, 125, 126, 65535)]
    control_frames = [(Opcode.PING, n) for n in (0, 1, 125)] + [
        (op, n) for op in (Opcode.CLOSE, Opcode.PONG) for n in (0, 2, 125)
    ]
    assert sorted(taken) == sorted(data_frames + control_frames)


def test_feed_whole_leaves_over_limit_and_buffered_input_to_iter_feed() -> None:
    frame = serialize_frame(Opcode.BINARY, b"x" * 100)
    assert FrameParser(expect_masked=False).feed_whole(frame, 99) is None
    assert FrameParser(expect_masked=False).feed_whole(frame, 100) == (Opcode.BINARY, b"x" * 100)
    parser = FrameParser(expect_masked=False)
    assert parser.feed(frame[:1]) == []
    assert parser.feed_whole(frame[1:], None) is None  # a header already half-read
    assert [p.data for p in parser.feed(frame[1:])] == [b"x" * 100]
