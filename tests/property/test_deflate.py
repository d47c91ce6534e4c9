"""Properties of :mod:`wsclient.deflate`: messages round-trip through a compressor and a
decompressor with and without context takeover, for every window size (8-15), whole or
fragmented, and the payload may be cut anywhere before it is inflated."""

from __future__ import annotations

from typing import List

import pytest
from hypothesis import given, strategies as st

from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate
from wsclient.exceptions import PayloadTooBig, ProtocolError

from .strategies import splits

messages = st.lists(
    st.one_of(st.binary(max_size=300), st.text(alphabet="ab{}:,\"0123456789", max_size=3000).map(str.encode)),
    min_size=1,
    max_size=6,
)
params = st.builds(
    DeflateParams,
    server_max_window_bits=st.integers(8, 15),
    client_max_window_bits=st.integers(8, 15),
    server_no_context_takeover=st.booleans(),
    client_no_context_takeover=st.booleans(),
)


def _pair(p: DeflateParams, level: int) -> tuple:
    options = DeflateOptions(level=level, threshold=0)
    return (
        PerMessageDeflate(p, is_client=True, options=options),
        PerMessageDeflate(p, is_client=False, options=options),
    )


@given(p=params, msgs=messages, level=st.integers(0, 9), client_sends=st.booleans(), data=st.data())
def test_round_trip(p: DeflateParams, msgs: List[bytes], level: int, client_sends: bool, data: st.DataObject) -> None:
    client, server = _pair(p, level)
    sender, receiver = (client, server) if client_sends else (server, client)
    for msg in msgs:
        if data.draw(st.booleans(), label="fragmented"):
            cut = data.draw(st.integers(0, len(msg)), label="cut")
            flush = data.draw(st.booleans(), label="flush")
            frames = [sender.compress_fragment(msg[:cut], False, flush=flush), sender.compress_fragment(msg[cut:], True)]
        else:
            frames = [sender.compress(msg)]
        out = b""
        for frame in frames:
            for chunk in data.draw(splits(frame), label="chunks"):
                out += receiver.decompress(chunk, max_length=None)
        out += receiver.decompress_end(max_length=None)
        assert out == msg


@given(p=params, msg=st.binary(min_size=1, max_size=2000), limit=st.integers(0, 2000))
def test_max_length_holds(p: DeflateParams, msg: bytes, limit: int) -> None:
    client, server = _pair(p, 6)
    payload = client.compress(msg)
    try:
        out = server.decompress(payload, max_length=limit)
        out += server.decompress_end(max_length=limit - len(out))
    except PayloadTooBig:
        assert len(msg) > limit
    else:
        assert out == msg and len(msg) <= limit


@given(p=params, junk=st.binary(max_size=64))
def test_junk_raises_documented_errors(p: DeflateParams, junk: bytes) -> None:
    _, server = _pair(p, 6)
    try:
        server.decompress(junk, max_length=1 << 16)
        server.decompress_end(max_length=1 << 16)
    except ProtocolError as exc:
        assert exc.code == 1007
    except PayloadTooBig:
        pass


@pytest.mark.parametrize("bits", range(8, 16))
def test_own_window_limit_is_respected(bits: int) -> None:
    """A stream compressed under window ``bits`` inflates with exactly that window."""
    import os
    import zlib

    p = DeflateParams(client_max_window_bits=bits, server_max_window_bits=bits)
    client, _ = _pair(p, 9)
    msg = os.urandom(300) * 200  # matches at distance 300: beyond a 256-byte window
    payload = client.compress(msg) + b"\x00\x00\xff\xff"
    inflater = zlib.decompressobj(-max(bits, 9) if bits > 8 else -9)
    assert inflater.decompress(payload) == msg
