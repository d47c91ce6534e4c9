"""Hypothesis strategies shared by the property tests: frames, payloads, splits of a stream."""

from __future__ import annotations

from typing import List

from hypothesis import strategies as st

from wsclient.frames import Frame, Opcode

DATA = (Opcode.CONT, Opcode.TEXT, Opcode.BINARY)
CONTROL = (Opcode.CLOSE, Opcode.PING, Opcode.PONG)


def _pattern(seed: int, size: int) -> bytes:
    """``size`` bytes that are not all alike, cheap to build at 64 KiB and more."""
    block = bytes((seed + i * 7) & 0xFF for i in range(256))
    return (block * (size // 256 + 1))[:size]


#: Payloads of each length class: 7-bit (0-125), 16-bit (126-65535) and 64-bit (65536+).
payloads = st.one_of(
    st.binary(max_size=125),
    st.binary(min_size=126, max_size=400),
    st.builds(_pattern, st.integers(0, 255), st.sampled_from([0xFFFF, 0x10000, 0x10001]) | st.integers(126, 0x10400)),
)

data_frames = st.builds(
    Frame,
    opcode=st.sampled_from(DATA),
    payload=payloads,
    fin=st.booleans(),
    rsv1=st.booleans(),
    rsv2=st.booleans(),
    rsv3=st.booleans(),
)
control_frames = st.builds(
    Frame,
    opcode=st.sampled_from(CONTROL),
    payload=st.binary(max_size=125),
    fin=st.just(True),
    rsv1=st.booleans(),
    rsv2=st.booleans(),
    rsv3=st.booleans(),
)
frames = st.one_of(data_frames, control_frames)
mask_keys = st.none() | st.binary(min_size=4, max_size=4)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> List[bytes]:
    """``data`` cut at arbitrary points (empty pieces included)."""
    if not data:
        return [b""]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return pieces
