"""Assertions the mutation-testing pass over the sans-I/O core found missing.

``mutmut`` (configured in ``pyproject.toml``) changes one operator or constant at a time in
``wsclient/frames.py``, ``close.py``, ``utf8.py`` and ``protocol.py`` and runs the core's
unit tests; a change no test notices is a behaviour nothing pins down. Each test here
kills such mutants by asserting what a peer or an application would see.
"""

from __future__ import annotations

import os

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


def test_a_ping_or_pong_without_data_is_empty() -> None:
    # Survived: the default payloads b"" turned into b"XXXX".
    assert _server().send_pong() == [b"\x8a\x00"]
    assert _server().send_pong(b"hb") == [b"\x8a\x02hb"]
    assert _server().send_ping() == [b"\x89\x00"]
    with pytest.raises(ValueError, match=r"^control frame payloads are limited to 125 bytes$"):
        _server().send_ping(b"x" * 126)


def test_the_last_compressed_piece_ends_the_message_without_the_flush_marker() -> None:
    # Survived: compress_fragment(data, None) instead of (data, fin): the final piece kept
    # the 00 00 ff ff that RFC 7692 section 7.2.1 removes, and the codec stayed "mid-message".
    proto = _server(deflate=True)
    client_codec = PerMessageDeflate(DeflateParams(), is_client=True, options=DeflateOptions(threshold=0))
    peer = Protocol(Side.CLIENT, deflate=client_codec)
    for round_ in range(2):  # The second message reuses the compression context.
        pieces = [f"piece {i} of message {round_} " * 20 for i in range(3)]
        data = b"".join(b"".join(proto.send_fragment(p, fin=i == 2)) for i, p in enumerate(pieces))
        frames = list(parse_frames(data, expect_masked=False))
        assert not frames[-1].payload.endswith(b"\x00\x00\xff\xff")
        assert peer.receive_data(data) == ["".join(pieces)]
        assert peer.receive_data(b"".join(proto.send_message("after"))) == ["after"]


def test_pieces_of_one_message_must_keep_their_type() -> None:
    proto = _server()
    proto.send_fragment("text", fin=False)
    with pytest.raises(TypeError, match=r"^all fragments of a message must be str, or all bytes-like$"):
        proto.send_fragment(b"bytes", fin=True)


def _client_frame(payload: bytes) -> bytes:
    from wsclient.frames import Frame, Opcode

    return Frame(Opcode.BINARY, payload, rsv1=True).serialize(mask_key=b"\x01\x02\x03\x04")


@pytest.mark.parametrize("max_size, fits", [(1004, True), (1003, False)])
def test_max_size_counts_what_the_flush_marker_completes(max_size, fits) -> None:
    # Survived: the room left for the end of a compressed message counted the bytes
    # already inflated from its frame as free (``- pending`` turned into ``+ pending``).
    # A peer can make the appended 00 00 ff ff inflate to output: a stored block whose
    # length reaches 4 bytes past the frame's end takes them as its last 4 bytes.
    data = bytes(range(200)) * 5  # 1,000 bytes
    stored = b"\x00" + (len(data) + 4).to_bytes(2, "little") + ((len(data) + 4) ^ 0xFFFF).to_bytes(2, "little")
    codec = PerMessageDeflate(DeflateParams(), is_client=False, options=DeflateOptions(threshold=0))
    proto = Protocol(Side.SERVER, deflate=codec, max_size=max_size)
    events = proto.receive_data(_client_frame(stored + data))
    if fits:
        assert proto.error is None
        assert events == [data + b"\x00\x00\xff\xff"]
    else:
        assert proto.error is not None and proto.error.code == 1009
        assert not any(isinstance(e, bytes) for e in events)


def test_a_message_of_exactly_two_slices_takes_two_frames() -> None:
    # Survived: ``len(rest) <= size`` turned into ``<``: a message whose rest is exactly
    # one slice left message_pending true and cost an extra (empty) frame.
    import random

    size = 1 << 18
    data = random.Random(7).randbytes(2 * size)  # Incompressible: zlib emits as it goes.
    proto = _server(deflate=True)
    frames = [b"".join(proto.send_message(data, compress=True, slice_size=size))]
    while proto.message_pending and len(frames) < 10:
        frames.append(b"".join(proto.send_rest()))
    assert len(frames) == 2
    parsed = list(parse_frames(b"".join(frames), expect_masked=False))
    assert [f.fin for f in parsed] == [False, True]


def test_errors_name_what_was_wrong() -> None:
    # Survived: these messages (a close frame's reason for the peer, a TypeError for the
    # application) could be replaced or emptied.
    with pytest.raises(TypeError, match=r"^a message is str or bytes-like, not object$"):
        _server().send_message(object())  # type: ignore[arg-type]
    from wsclient.frames import Frame, Opcode

    proto = _server()
    proto.receive_data(Frame(Opcode.PING, b"", rsv2=True).serialize(mask_key=b"\x01\x02\x03\x04"))
    assert proto.error is not None and proto.error.code == 1002
    assert str(proto.error) == "reserved bit set on a control frame"
    with pytest.raises(RuntimeError, match=r"^no sliced message is being sent$"):
        _server().send_rest()
    sliced = _server(deflate=True)
    sliced.send_message(bytes(range(256)) * 4096 + os.urandom(1 << 20), compress=True, slice_size=1 << 18)
    assert sliced.message_pending
    with pytest.raises(RuntimeError, match=r"^a sliced message is being sent$"):
        sliced.send_fragment(b"y", fin=True)


# -- the end of the transport: the 1006 rule and the error a closed connection raises -------
# No test of the core called transport_closed() or closed_error(): mutmut found no test
# to run for their 17 mutants (the I/O tests check them, at the price of sockets).


def test_a_close_frame_that_never_left_and_no_answer_is_1006() -> None:
    from wsclient.exceptions import ConnectionClosedError

    proto = _server()
    proto.send_close(1000, "bye")
    proto.transport_closed(close_unsent=True)
    assert not proto.can_send
    assert (proto.close_code, proto.close_reason) == (1006, "")
    error = proto.closed_error(OSError("cut"))
    assert isinstance(error, ConnectionClosedError)
    assert (error.code, error.reason) == (1006, "")
    assert isinstance(error.__cause__, OSError)


def test_a_close_frame_that_left_keeps_its_code() -> None:
    from wsclient.exceptions import ConnectionClosedOK

    proto = _server()
    proto.send_close(1001, "going")
    proto.transport_closed()  # Sent; the peer's answer never came.
    assert (proto.close_code, proto.close_reason) == (1001, "going")
    error = proto.closed_error()
    assert isinstance(error, ConnectionClosedOK) and (error.code, error.reason) == (1001, "going")
    assert error.__cause__ is None


def test_the_peers_close_wins_over_an_unsent_one_and_a_protocol_error_is_the_cause() -> None:
    from wsclient.exceptions import ConnectionClosedError
    from wsclient.frames import Frame, Opcode

    key = b"\x01\x02\x03\x04"
    proto = _server()
    proto.receive_data(Frame(Opcode.CLOSE, (4000).to_bytes(2, "big") + b"app").serialize(mask_key=key))
    proto.transport_closed(close_unsent=True)
    assert (proto.close_code, proto.close_reason) == (4000, "app")
    failed = _server()
    failed.receive_data(Frame(Opcode.TEXT, b"\xff").serialize(mask_key=key))
    failed.transport_closed()
    error = failed.closed_error(OSError("ignored: the peer's fault comes first"))
    assert isinstance(error, ConnectionClosedError) and error.code == 1007
    assert error.__cause__ is failed.error and failed.error is not None
