"""Assertions the mutation-testing pass over the sans-I/O core found missing.

``mutmut`` (configured in ``pyproject.toml``) changes one operator or constant at a time in
``wsclient/frames.py``, ``close.py``, ``utf8.py`` and ``protocol.py`` and runs the core's
unit tests; a change no test notices is a behaviour nothing pins down. Each test here
kills such mutants by asserting what a peer or an application would see.
"""

from __future__ import annotations

import pytest

from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate
from wsclient.frames import parse_frames
from wsclient.protocol import Protocol, Side

RSV1 = 0x40


def _server(*, deflate: bool = False) -> Protocol:
    codec = PerMessageDeflate(DeflateParams(), is_client=False, options=DeflateOptions(threshold=0)) if deflate else None
    return Protocol(Side.SERVER, deflate=codec)


@pytest.mark.parametrize("compress, compressed", [(None, True), (True, True), (False, False)])
def test_a_fragmented_message_is_compressed_as_its_first_piece_says(compress, compressed) -> None:
    # Survived: ``compress is not False`` turned into ``compress is not True``.
    proto = _server(deflate=True)
    first = b"".join(proto.send_fragment(b"a" * 200, fin=False, compress=compress))
    rest = b"".join(proto.send_fragment(b"b" * 200, fin=True, compress=not compress))
    assert bool(first[0] & RSV1) is compressed
    assert not rest[0] & RSV1  # RSV1 is set on a message's first frame only.
    frames = list(parse_frames(first + rest, expect_masked=False))
    assert [f.fin for f in frames] == [False, True]


def test_an_unsolicited_pong_without_data_is_empty() -> None:
    # Survived: the default payload b"" turned into b"XXXX".
    assert _server().send_pong() == [b"\x8a\x00"]
    assert _server().send_pong(b"hb") == [b"\x8a\x02hb"]


def test_pieces_of_one_message_must_keep_their_type() -> None:
    proto = _server()
    proto.send_fragment("text", fin=False)
    with pytest.raises(TypeError, match=r"^all fragments of a message must be str, or all bytes-like$"):
        proto.send_fragment(b"bytes", fin=True)
