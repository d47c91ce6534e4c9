"""Properties of :mod:`wsclient.frames`: serialise then parse is the identity, for every
opcode, length class, mask and fragmentation, however the stream is split."""

from __future__ import annotations

from typing import List, Optional, Tuple

import pytest
from hypothesis import given, strategies as st

from wsclient.exceptions import ProtocolError
from wsclient.frames import Frame, FrameParser, parse_frames, serialize_header

from .strategies import frames, mask_keys, splits


def _parse_pieces(pieces: List[bytes], *, expect_masked: bool) -> List[Frame]:
    parser = FrameParser(expect_masked=expect_masked)
    out: List[Frame] = []
    parts: List[bytes] = []
    for chunk in pieces:
        for piece in parser.iter_feed(chunk):
            parts.append(piece.data)
            if piece.last:
                h = piece.header
                out.append(Frame(h.opcode, b"".join(parts), h.fin, h.rsv1, h.rsv2, h.rsv3))
                parts = []
    assert parser.buffered == 0
    return out


@given(frame=frames, key=mask_keys)
def test_serialize_then_parse_is_identity(frame: Frame, key: Optional[bytes]) -> None:
    data = frame.serialize(mask_key=key)
    assert parse_frames(data, expect_masked=key is not None) == [frame]


@given(frame=frames, key=mask_keys)
def test_length_uses_the_minimal_encoding(frame: Frame, key: Optional[bytes]) -> None:
    data = frame.serialize(mask_key=key)
    n = len(frame.payload)
    header = 2 + (0 if n < 126 else 2 if n < 0x10000 else 8) + (4 if key else 0)
    assert len(data) == header + n
    assert data[1] & 0x80 == (0x80 if key else 0)


@given(st.data(), st.lists(frames, min_size=1, max_size=6), st.booleans())
def test_any_split_of_a_stream_parses_the_same(data: st.DataObject, stream: List[Frame], masked: bool) -> None:
    key = b"\x12\x34\x56\x78" if masked else None
    raw = b"".join(frame.serialize(mask_key=key) for frame in stream)
    pieces = data.draw(splits(raw))
    assert _parse_pieces(pieces, expect_masked=masked) == stream


@given(frame=frames, key=mask_keys)
def test_feed_whole_agrees_with_iter_feed(frame: Frame, key: Optional[bytes]) -> None:
    raw = frame.serialize(mask_key=key)
    whole = FrameParser(expect_masked=key is not None).feed_whole(raw, None)
    if whole is not None:
        assert frame.fin and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
        assert whole == (frame.opcode, frame.payload)


@given(st.binary(min_size=2, max_size=40), st.booleans(), st.data())
def test_garbage_raises_only_protocol_error_and_splits_agree(
    raw: bytes, masked: bool, data: st.DataObject
) -> None:
    """Any bytes: whole or split, the same frames come out and the same error, if any."""

    def run(pieces: List[bytes]) -> Tuple[List[Frame], Optional[str]]:
        parser = FrameParser(expect_masked=masked)
        out: List[Frame] = []
        parts: List[bytes] = []
        try:
            for chunk in pieces:
                for piece in parser.iter_feed(chunk):
                    parts.append(piece.data)
                    if piece.last:
                        h = piece.header
                        out.append(Frame(h.opcode, b"".join(parts), h.fin, h.rsv1, h.rsv2, h.rsv3))
                        parts = []
        except ProtocolError as exc:
            return out, str(exc)
        return out, None

    assert run([raw]) == run(data.draw(splits(raw)))


@pytest.mark.parametrize("length", [0, 125, 126, 0xFFFF, 0x10000, 2**63 - 1])
def test_header_length_classes_round_trip(length: int) -> None:
    header = serialize_header(0x2, length)
    parser = FrameParser(expect_masked=False)
    pieces = parser.feed(header)
    assert pieces[0].header.length == length
