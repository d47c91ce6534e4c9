"""Tests for wsclient.protocol: the connection state machine, in memory with exact bytes.

Every input is fed three ways by :func:`feed_all_ways` (whole, in random chunks from a
seeded ``random.Random``, one byte at a time) and the three outcomes must be identical:
events, the bytes the protocol queued by itself, the error, and the closing state.
Masking is made deterministic by passing the key (``mask_key=``), not by patching.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
import functools
import random
from typing import Any, Callable, Iterator, List, Optional, Tuple, Union

import pytest

from wsclient.close import CloseCode
from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate
from wsclient.exceptions import PayloadTooBig, ProtocolError
from wsclient.frames import Frame, Opcode, apply_mask, parse_frames
from wsclient.protocol import (
    DEFAULT_MAX_SIZE,
    OK_CLOSE_CODES,
    Close,
    Ping,
    Pong,
    PreparedMessage,
    Protocol,
    Side,
    State,
)

KEY = bytes.fromhex("37fa213d")  # RFC 6455 section 5.7
PEER_KEY = bytes.fromhex("a1b2c3d4")  # what the (test's) client masks with

HELLO = bytes.fromhex("810548656c6c6f")
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")
FRAGMENTED = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
PING = bytes.fromhex("890548656c6c6f")
PONG_MASKED = bytes.fromhex("8a8537fa213d7f9f4d5158")
PAYLOAD_256 = bytes(range(256))
PAYLOAD_64K = bytes(random.Random(64).getrandbits(8) for _ in range(65536))

CLIENT, SERVER = Side.CLIENT, Side.SERVER
SIDES = pytest.mark.parametrize("side", [CLIENT, SERVER], ids=["client", "server"])


# -- helpers ----------------------------------------------------------------------------


def make(side: Side, **kwargs: object) -> Protocol:
    """A protocol whose frames are masked (on a client) with the RFC's key.

    ``deflate=True`` gives it a fresh permessage-deflate codec (default parameters,
    compressing every message) made for its side.
    """
    if kwargs.get("deflate") is True:
        kwargs["deflate"] = codec(side)
    return Protocol(side, mask_key=lambda: KEY, **kwargs)  # type: ignore[arg-type]


def codec(side: Side, **options: object) -> PerMessageDeflate:
    return PerMessageDeflate(
        DeflateParams(), is_client=side is CLIENT, options=DeflateOptions(threshold=0, **options)  # type: ignore[arg-type]
    )


def frame(side: Side, opcode: int, payload: bytes = b"", *, fin: bool = True,
          rsv1: bool = False, rsv2: bool = False, rsv3: bool = False) -> bytes:
    """A frame as the peer of ``side`` sends it: masked towards a server."""
    mask_key = PEER_KEY if side is SERVER else None
    return Frame(opcode, payload, fin, rsv1, rsv2, rsv3).serialize(mask_key=mask_key)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


@dataclass
class Outcome:
    """Everything observable after feeding a protocol."""

    events: list
    raw: bytes  # what data_to_send() returned, joined
    error: Optional[Tuple[str, int, str]]
    state: State
    close_sent: Optional[Tuple[int, str]]
    close_rcvd: Optional[Tuple[int, str]]
    close_code: int
    close_reason: str
    should_close_transport: bool
    side: Side

    @property
    def sent(self) -> List[Frame]:
        """The frames in :attr:`raw` (masked when this end is a client)."""
        frames = parse_frames(self.raw, expect_masked=self.side is CLIENT)
        assert b"".join(
            f.serialize(mask_key=KEY if self.side is CLIENT else None) for f in frames
        ) == self.raw
        return frames


def observe(proto: Protocol, events: list, raw: bytes) -> Outcome:
    error = proto.error
    return Outcome(
        events,
        raw,
        None if error is None else (type(error).__name__, error.code, str(error)),
        proto.state,
        proto.close_sent,
        proto.close_rcvd,
        proto.close_code,
        proto.close_reason,
        proto.should_close_transport,
        proto.side,
    )


def run(proto: Protocol, chunks: List[bytes]) -> Outcome:
    events: list = []
    raw: List[bytes] = []
    for chunk in chunks:
        events += proto.receive_data(chunk)
        raw += proto.data_to_send()
    return observe(proto, events, b"".join(raw))


def chunkings(data: bytes, seed: int) -> Iterator[List[bytes]]:
    """Whole, random chunks, one byte at a time."""
    yield [data]
    rng = random.Random(seed)
    chunks, pos = [], 0
    while pos < len(data):
        size = rng.randint(1, rng.choice([2, 7, 131, 4096, 100000]))
        chunks.append(data[pos : pos + size])
        pos += size
    yield chunks
    yield [data[i : i + 1] for i in range(len(data))]


def feed_all_ways(
    side: Side,
    data: bytes,
    *,
    seed: int = 0,
    setup: Optional[Callable[[Protocol], object]] = None,
    **kwargs: object,
) -> Outcome:
    """Feed ``data`` to fresh protocols three ways; assert the outcomes are identical."""
    outcomes = []
    for chunks in chunkings(data, seed):
        proto = make(side, **kwargs)
        if setup is not None:
            setup(proto)
        outcomes.append(run(proto, chunks))
    whole, randomly, bytewise = outcomes
    assert randomly == whole
    assert bytewise == whole
    return whole


def assert_ok(outcome: Outcome) -> None:
    assert outcome.error is None
    assert outcome.state is State.OPEN
    assert outcome.close_code == 1006  # no close frame either way yet
    assert not outcome.should_close_transport


def assert_failed(outcome: Outcome, code: int) -> None:
    """The connection failed with ``code`` (RFC 6455 section 7.1.7)."""
    assert outcome.error is not None, "the connection did not fail"
    assert outcome.error[1] == code
    assert outcome.state is State.CLOSING
    assert outcome.close_code == code
    assert outcome.close_reason == outcome.close_sent[1]  # type: ignore[index]
    assert outcome.should_close_transport
    close = outcome.sent[-1]
    assert close.opcode == Opcode.CLOSE
    assert close.payload[:2] == code.to_bytes(2, "big")
    assert close.payload[2:].decode() == outcome.close_reason
    assert 0 < len(close.payload) <= 125


def fails(side: Side, data: bytes, code: int = 1002, **kwargs: object) -> Outcome:
    outcome = feed_all_ways(side, data, **kwargs)
    assert_failed(outcome, code)
    return outcome


def error_position(side: Side, data: bytes, **kwargs: object) -> Optional[int]:
    """Feed one byte at a time; the index of the byte after which the connection failed."""
    proto = make(side, **kwargs)
    for index in range(len(data)):
        proto.receive_data(data[index : index + 1])
        if proto.error is not None:
            return index
    return None


# -- RFC 6455 section 5.7 examples ------------------------------------------------------


def test_rfc_unmasked_text_to_client() -> None:
    outcome = feed_all_ways(CLIENT, HELLO)
    assert outcome.events == ["Hello"]
    assert outcome.raw == b""
    assert_ok(outcome)


def test_rfc_masked_text_to_server() -> None:
    outcome = feed_all_ways(SERVER, HELLO_MASKED)
    assert outcome.events == ["Hello"]
    assert_ok(outcome)


def test_rfc_hello_sent() -> None:
    assert b"".join(make(CLIENT).send_message("Hello")) == HELLO_MASKED
    assert b"".join(make(SERVER).send_message("Hello")) == HELLO
    assert b"".join(make(SERVER).send_message(b"Hello")) == b"\x82" + HELLO[1:]


def test_rfc_fragmented() -> None:
    assert feed_all_ways(CLIENT, FRAGMENTED).events == ["Hello"]
    server = make(SERVER)
    sent = server.send_fragment("Hel", fin=False) + server.send_fragment("lo", fin=True)
    assert b"".join(sent) == FRAGMENTED


def test_rfc_ping_answered_with_the_rfc_masked_pong() -> None:
    outcome = feed_all_ways(CLIENT, PING)
    assert outcome.events == [Ping(b"Hello")]
    # The client's answer, masked with the RFC's key, is the RFC's masked pong.
    assert outcome.raw == PONG_MASKED
    assert_ok(outcome)


def test_rfc_masked_ping_answered_unmasked() -> None:
    outcome = feed_all_ways(SERVER, bytes.fromhex("898537fa213d7f9f4d5158"))
    assert outcome.events == [Ping(b"Hello")]
    assert outcome.raw == bytes.fromhex("8a0548656c6c6f")


def test_rfc_256_bytes() -> None:
    expected = bytes.fromhex("827e0100") + PAYLOAD_256
    assert b"".join(make(SERVER).send_message(PAYLOAD_256)) == expected
    assert feed_all_ways(CLIENT, expected).events == [PAYLOAD_256]
    masked = b"".join(make(CLIENT).send_message(PAYLOAD_256))
    assert masked == bytes.fromhex("82fe0100") + KEY + apply_mask(PAYLOAD_256, KEY)


def test_rfc_64k() -> None:
    expected = bytes.fromhex("827f0000000000010000") + PAYLOAD_64K
    assert b"".join(make(SERVER).send_message(PAYLOAD_64K)) == expected
    assert feed_all_ways(CLIENT, expected).events == [PAYLOAD_64K]
    masked = b"".join(make(CLIENT).send_message(PAYLOAD_64K))
    assert masked == bytes.fromhex("82ff0000000000010000") + KEY + apply_mask(PAYLOAD_64K, KEY)


# -- frames through the protocol --------------------------------------------------------


@SIDES
@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcode(side: Side, opcode: int) -> None:
    outcome = fails(side, frame(side, opcode, b"xyz"))
    assert outcome.events == []


@SIDES
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG])
@pytest.mark.parametrize("bit", ["rsv1", "rsv2", "rsv3"])
def test_rsv_bits_without_extension(side: Side, opcode: int, bit: str) -> None:
    assert feed_all_ways(side, frame(side, opcode, b"abc")).error is None
    outcome = fails(side, frame(side, opcode, b"abc", **{bit: True}))
    assert outcome.events == []


@SIDES
@pytest.mark.parametrize("bit", ["rsv1", "rsv2", "rsv3"])
def test_rsv_bits_on_close_and_continuation(side: Side, bit: str) -> None:
    fails(side, frame(side, Opcode.CLOSE, close_payload(1000), **{bit: True}))
    first = frame(side, Opcode.TEXT, b"ab", fin=False)
    assert feed_all_ways(side, first + frame(side, Opcode.CONT, b"c")).events == ["abc"]
    fails(side, first + frame(side, Opcode.CONT, b"c", **{bit: True}))


def test_client_rejects_masked_frames() -> None:
    fails(CLIENT, HELLO_MASKED)
    fails(CLIENT, PONG_MASKED)


def test_server_rejects_unmasked_frames() -> None:
    fails(SERVER, HELLO)
    fails(SERVER, PING)


@SIDES
def test_frames_before_an_error_are_handled(side: Side) -> None:
    """A bad frame fails the connection after the frames before it, however chunked."""
    data = frame(side, Opcode.TEXT, b"one") + frame(side, Opcode.PING, b"p")
    outcome = fails(side, data + frame(side, 3))
    assert outcome.events == ["one", Ping(b"p")]
    pong, close = outcome.sent
    assert pong == Frame(Opcode.PONG, b"p")
    assert close.opcode == Opcode.CLOSE


@SIDES
@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_control_frame_limits(side: Side, opcode: int) -> None:
    payload = close_payload(1000, b"r" * 123) if opcode == Opcode.CLOSE else bytes(125)
    assert feed_all_ways(side, frame(side, opcode, payload)).error is None
    too_long = frame(side, opcode, payload + b"x")
    fails(side, too_long)
    header = 4 + (4 if side is SERVER else 0)  # the masking key is part of the header
    assert error_position(side, too_long) == header - 1  # before any payload
    fails(side, frame(side, opcode, b"", fin=False))


@SIDES
def test_ping_of_125_bytes_echoed(side: Side) -> None:
    payload = bytes(range(125))
    outcome = feed_all_ways(side, frame(side, Opcode.PING, payload))
    assert outcome.events == [Ping(payload)]
    assert outcome.sent == [Frame(Opcode.PONG, payload)]


@SIDES
def test_length_with_top_bit_set(side: Side) -> None:
    data = frame(side, Opcode.BINARY, b"")[:1] + bytes([0xFF if side is SERVER else 0x7F])
    data += b"\x80" + bytes(7) + (PEER_KEY if side is SERVER else b"") + b"data"
    fails(side, data)
    assert error_position(side, data) == (13 if side is SERVER else 9)


@SIDES
def test_empty_and_unsolicited_pongs(side: Side) -> None:
    outcome = feed_all_ways(side, frame(side, Opcode.PONG) + frame(side, Opcode.PONG, b"x"))
    assert outcome.events == [Pong(b""), Pong(b"x")]
    assert outcome.raw == b""
    assert_ok(outcome)


def test_client_masks_with_a_fresh_key_per_frame() -> None:
    client = Protocol(CLIENT)
    first = b"".join(client.send_message(b"same payload"))
    second = b"".join(client.send_message(b"same payload"))
    assert first != second
    assert first[1] & 0x80 and second[1] & 0x80
    assert first[2:6] != second[2:6]
    server = make(SERVER)
    assert server.receive_data(first + second) == [b"same payload", b"same payload"]
    pings = {b"".join(client.send_ping(b"p"))[2:6] for _ in range(20)}
    assert len(pings) >= 19


def test_server_does_not_mask() -> None:
    server = Protocol(SERVER, mask_key=lambda: KEY)
    assert b"".join(server.send_message(b"x")) == b"\x82\x01x"
    assert server.send_ping(b"p") == [b"\x89\x01p"]


@SIDES
@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536])
def test_minimal_length_encoding_on_send(side: Side, length: int) -> None:
    data = b"".join(make(side).send_message(bytes(length)))
    masked = 4 if side is CLIENT else 0
    if length < 126:
        assert data[1] & 0x7F == length and len(data) == 2 + masked + length
    elif length < 65536:
        assert data[1] & 0x7F == 126 and data[2:4] == length.to_bytes(2, "big")
    else:
        assert data[1] & 0x7F == 127 and data[2:10] == length.to_bytes(8, "big")


# -- fragmentation ----------------------------------------------------------------------


@SIDES
def test_reassembly(side: Side) -> None:
    pieces = [b"", b"a", b"", b"bc" * 100, b"d" * 70000, b""]
    for opcode, expected in ((Opcode.BINARY, b"".join(pieces)), (Opcode.TEXT, None)):
        data = b"".join(
            frame(side, opcode if i == 0 else Opcode.CONT, p, fin=i == len(pieces) - 1)
            for i, p in enumerate(pieces)
        )
        outcome = feed_all_ways(side, data)
        assert outcome.events == [expected or b"".join(pieces).decode()]
        assert_ok(outcome)


@SIDES
def test_control_frames_between_fragments(side: Side) -> None:
    data = (
        frame(side, Opcode.TEXT, b"Hel", fin=False)
        + frame(side, Opcode.PING, b"1")
        + frame(side, Opcode.CONT, b"l", fin=False)
        + frame(side, Opcode.PONG, b"2")
        + frame(side, Opcode.PING, b"3")
        + frame(side, Opcode.CONT, b"o", fin=True)
        + frame(side, Opcode.BINARY, b"next")
    )
    outcome = feed_all_ways(side, data)
    assert outcome.events == [Ping(b"1"), Pong(b"2"), Ping(b"3"), "Hello", b"next"]
    assert outcome.sent == [Frame(Opcode.PONG, b"1"), Frame(Opcode.PONG, b"3")]


@SIDES
def test_ping_answered_mid_message(side: Side) -> None:
    proto = make(side)
    assert proto.receive_data(frame(side, Opcode.BINARY, b"part", fin=False)) == []
    assert proto.receive_data(frame(side, Opcode.PING, b"now")) == [Ping(b"now")]
    # The pong is ready before the message ends.
    pong = b"".join(proto.data_to_send())
    assert parse_frames(pong, expect_masked=side is CLIENT) == [Frame(Opcode.PONG, b"now")]
    assert proto.receive_data(frame(side, Opcode.CONT, b" two")) == [b"part two"]


@SIDES
def test_close_between_fragments(side: Side) -> None:
    data = frame(side, Opcode.TEXT, b"lost", fin=False) + frame(side, Opcode.CLOSE, close_payload(1000))
    outcome = feed_all_ways(side, data + frame(side, Opcode.CONT, b" too"))
    assert outcome.events == [Close(1000, "")]


@SIDES
@pytest.mark.parametrize("fin", [True, False])
def test_continuation_with_nothing_to_continue(side: Side, fin: bool) -> None:
    fails(side, frame(side, Opcode.CONT, b"x", fin=fin))
    # Also right after a complete message.
    outcome = fails(side, frame(side, Opcode.TEXT, b"done") + frame(side, Opcode.CONT, b"x", fin=fin))
    assert outcome.events == ["done"]


@SIDES
@pytest.mark.parametrize("first", [Opcode.TEXT, Opcode.BINARY])
@pytest.mark.parametrize("second", [Opcode.TEXT, Opcode.BINARY])
def test_new_data_frame_inside_a_fragmented_message(side: Side, first: int, second: int) -> None:
    start = frame(side, first, b"ab", fin=False)
    outcome = fails(side, start + frame(side, second, b"cd", fin=True))
    assert outcome.events == []
    fails(side, start + frame(side, second, b"cd", fin=False))


def test_sending_fragments() -> None:
    client = make(CLIENT)
    sent = b"".join(
        client.send_fragment("Hé", fin=False)
        + client.send_ping(b"mid")
        + client.send_fragment("", fin=False)
        + client.send_fragment("llo", fin=True)
        + client.send_fragment(b"\x00", fin=True)
    )
    assert parse_frames(sent, expect_masked=True) == [
        Frame(Opcode.TEXT, "Hé".encode(), fin=False),
        Frame(Opcode.PING, b"mid"),
        Frame(Opcode.CONT, b"", fin=False),
        Frame(Opcode.CONT, b"llo", fin=True),
        Frame(Opcode.BINARY, b"\x00", fin=True),
    ]
    assert feed_all_ways(SERVER, sent).events == [Ping(b"mid"), "Héllo", b"\x00"]


def test_sending_fragments_misuse() -> None:
    proto = make(SERVER)
    proto.send_fragment(b"a", fin=False)
    with pytest.raises(RuntimeError):
        proto.send_message(b"b")
    with pytest.raises(TypeError):
        proto.send_fragment("text", fin=True)
    # Still the same message: a bytes fragment ends it, then whole messages work again.
    assert proto.send_fragment(b"c", fin=True) == [b"\x80\x01c"]
    assert proto.send_message(b"d") == [b"\x82\x01d"]


# -- UTF-8 (RFC 6455 sections 5.6, 8.1) -------------------------------------------------


@SIDES
@pytest.mark.parametrize(
    "text",
    [b"", "κόσμε".encode(), b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf", b"\xed\x9f\xbf", "😀".encode()],
)
def test_valid_text(side: Side, text: bytes) -> None:
    outcome = feed_all_ways(side, frame(side, Opcode.TEXT, text))
    assert outcome.events == [text.decode()]
    assert_ok(outcome)


@SIDES
@pytest.mark.parametrize(
    "text",
    [b"\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
     b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"abc\xe2\x82", b"\x80"],
)
def test_invalid_text(side: Side, text: bytes) -> None:
    outcome = fails(side, frame(side, Opcode.TEXT, text), 1007)
    assert outcome.events == []
    # Binary messages are not UTF-8: the same bytes are fine.
    assert feed_all_ways(side, frame(side, Opcode.BINARY, text)).events == [text]


@SIDES
def test_invalid_text_fails_fast(side: Side) -> None:
    payload = b"abcd\xff" + b"x" * 995  # the 5th byte is invalid
    data = frame(side, Opcode.TEXT, payload)
    header = 4 + (4 if side is SERVER else 0)
    assert error_position(side, data) == header + 4
    proto = make(side)
    proto.receive_data(data[: header + 10])  # 10 of the 1000 payload bytes
    assert proto.error is not None and proto.error.code == 1007
    fails(side, data, 1007)


@SIDES
def test_invalid_text_fails_fast_across_fragments(side: Side) -> None:
    first = frame(side, Opcode.TEXT, b"abc\xe2\x82", fin=False)  # a valid prefix
    second = frame(side, Opcode.CONT, b"A" + b"x" * 500)
    header = 4 + (4 if side is SERVER else 0)
    assert error_position(side, first + second) == len(first) + header
    fails(side, first + second, 1007)
    # A valid ending of the split sequence.
    ok = first + frame(side, Opcode.CONT, b"\xac" + b"x" * 500)
    assert feed_all_ways(side, ok).events == ["abc€" + "x" * 500]


@SIDES
def test_surrogate_split_across_fragments(side: Side) -> None:
    first = frame(side, Opcode.TEXT, b"ok\xed", fin=False)
    second = frame(side, Opcode.CONT, b"\xa0\x80", fin=True)
    header = 2 + (4 if side is SERVER else 0)
    assert error_position(side, first + second) == len(first) + header
    fails(side, first + second, 1007)


@SIDES
def test_text_split_into_one_byte_fragments(side: Side) -> None:
    text = "€😀é"
    encoded = text.encode()
    data = b"".join(
        frame(side, Opcode.TEXT if i == 0 else Opcode.CONT, encoded[i : i + 1], fin=i == len(encoded) - 1)
        for i in range(len(encoded))
    )
    assert feed_all_ways(side, data).events == [text]


@SIDES
def test_text_ending_mid_sequence(side: Side) -> None:
    data = frame(side, Opcode.TEXT, b"ok\xe2", fin=False) + frame(side, Opcode.CONT, b"\x82")
    fails(side, data, 1007)
    assert error_position(side, data) == len(data) - 1  # only the final byte settles it


# -- close ------------------------------------------------------------------------------


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@SIDES
@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_close_code(side: Side, code: int) -> None:
    outcome = feed_all_ways(side, frame(side, Opcode.CLOSE, close_payload(code, b"why")))
    assert outcome.events == [Close(code, "why")]
    # Answered once, echoing the code (RFC 6455 section 5.5.1).
    assert outcome.sent == [Frame(Opcode.CLOSE, close_payload(code))]
    assert outcome.close_rcvd == (code, "why")
    assert (outcome.close_code, outcome.close_reason) == (code, "why")
    assert outcome.state is State.CLOSING
    assert outcome.error is None
    assert outcome.should_close_transport is (side is SERVER)


@SIDES
@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_close_code(side: Side, code: int) -> None:
    outcome = fails(side, frame(side, Opcode.CLOSE, close_payload(code)))
    assert outcome.events == []
    assert outcome.close_rcvd is None
    assert str(code) in outcome.error[2]  # type: ignore[index]


@SIDES
def test_one_byte_close_payload(side: Side) -> None:
    fails(side, frame(side, Opcode.CLOSE, b"\x03"))


@SIDES
def test_empty_close(side: Side) -> None:
    outcome = feed_all_ways(side, frame(side, Opcode.CLOSE))
    assert outcome.events == [Close(1005, "")]
    assert outcome.sent == [Frame(Opcode.CLOSE, b"")]  # an empty close answers it
    assert outcome.close_code == 1005
    assert 1005 in OK_CLOSE_CODES
    assert outcome.error is None


@SIDES
def test_close_payload_limits(side: Side) -> None:
    reason = "é" * 61 + "x"
    outcome = feed_all_ways(side, frame(side, Opcode.CLOSE, close_payload(1001, reason.encode())))
    assert outcome.events == [Close(1001, reason)]
    fails(side, frame(side, Opcode.CLOSE, close_payload(1001, reason.encode() + b"y")))


@SIDES
@pytest.mark.parametrize("reason", [b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\x80"])
def test_close_reason_must_be_utf8(side: Side, reason: bytes) -> None:
    fails(side, frame(side, Opcode.CLOSE, close_payload(1000, reason)), 1007)


@SIDES
def test_data_after_the_peers_close_is_ignored(side: Side) -> None:
    close = frame(side, Opcode.CLOSE, close_payload(1000, b"bye"))
    after = [
        frame(side, Opcode.TEXT, b"late"),
        frame(side, Opcode.PING, b"late"),
        frame(side, Opcode.CLOSE, close_payload(1001)),
        frame(side, 3),  # even garbage does not fail the connection
        b"\xff" * 20,
    ]
    for extra in after:
        outcome = feed_all_ways(side, close + extra)
        assert outcome.events == [Close(1000, "bye")]
        assert outcome.sent == [Frame(Opcode.CLOSE, close_payload(1000))]
        assert outcome.error is None
        assert (outcome.close_code, outcome.close_reason) == (1000, "bye")
    proto = make(side)
    proto.receive_data(close)
    assert proto.receive_data(frame(side, Opcode.TEXT, b"late")) == []
    assert proto.data_to_send() == [b"".join(make(side).send_close(1000))]
    assert proto.data_to_send() == []


@SIDES
def test_nothing_sent_after_this_ends_close(side: Side) -> None:
    def close_first(proto: Protocol) -> None:
        assert len(proto.send_close(4000, "done")) == 1

    data = (
        frame(side, Opcode.TEXT, b"still delivered")
        + frame(side, Opcode.PING, b"late")
        + frame(side, Opcode.CLOSE, close_payload(1000, b"ok"))
    )
    outcome = feed_all_ways(side, data, setup=close_first)
    assert outcome.events == ["still delivered", Ping(b"late"), Close(1000, "ok")]
    assert outcome.sent == [Frame(Opcode.PONG, b"late")]  # the pong is owed; no second close frame
    assert outcome.close_sent == (4000, "done")
    assert (outcome.close_code, outcome.close_reason) == (1000, "ok")
    assert outcome.should_close_transport is (side is SERVER)

    proto = make(side)
    assert proto.can_send
    proto.send_close()
    assert proto.state is State.CLOSING
    assert not proto.can_send and not proto.should_close_transport
    assert proto.send_close() == []
    assert proto.send_close(1001, "again") == []
    for send in (lambda: proto.send_message("x"), lambda: proto.send_message(b"x"),
                 lambda: proto.send_fragment(b"x", fin=True), lambda: proto.send_ping(),
                 lambda: proto.send_pong()):
        with pytest.raises(RuntimeError):
            send()


@SIDES
@pytest.mark.parametrize("ending", ["this end closes first", "the peer closes first", "this end fails", "the stream ends"])
def test_the_flags_the_io_layer_reads_follow_each_step_of_the_end(side: Side, ending: str) -> None:
    # can_send, should_close_transport and message_pending are attributes the protocol
    # keeps up to date (not properties): each change of state must update them.
    proto = make(side)
    assert (proto.can_send, proto.should_close_transport, proto.message_pending) == (True, False, False)
    if ending == "this end closes first":
        proto.send_close(1000)
        assert (proto.can_send, proto.should_close_transport) == (False, False)
        proto.receive_data(frame(side, Opcode.CLOSE, close_payload(1000)))
        # The server closes TCP first; the client waits for it (RFC 6455 section 7.1.1).
        assert (proto.can_send, proto.should_close_transport) == (False, side is SERVER)
    elif ending == "the peer closes first":
        proto.receive_data(frame(side, Opcode.CLOSE, close_payload(1001)))
        assert (proto.can_send, proto.should_close_transport) == (False, side is SERVER)
    elif ending == "this end fails":
        proto.fail(CloseCode.POLICY_VIOLATION, "no")
        assert (proto.can_send, proto.should_close_transport) == (False, True)
    else:
        proto.receive_eof()
        assert (proto.can_send, proto.should_close_transport) == (False, True)
    proto.receive_eof()
    assert (proto.can_send, proto.should_close_transport, proto.message_pending) == (False, True, False)


def test_message_pending_while_a_sliced_message_has_slices_left() -> None:
    proto = make(SERVER, deflate=codec(SERVER))
    message = random.Random(7).randbytes(400_000)  # incompressible: zlib gives bytes soon
    proto.send_message(message, compress=True, slice_size=50_000)
    rests = 0
    while proto.message_pending and rests < 10:  # at most 7 slices are left
        proto.send_rest()
        rests += 1
    assert 1 <= rests <= 7 and not proto.message_pending
    proto.send_message(message, compress=True, slice_size=50_000)
    assert proto.message_pending
    proto.send_close(1000)  # a message cut short by the close is never finished
    assert not proto.message_pending


@SIDES
def test_ping_answered_after_this_end_sent_close(side: Side) -> None:
    # RFC 6455 section 5.5.2: a ping MUST be answered "unless it already received a Close
    # frame"; having sent one is no excuse.
    proto = make(side)
    proto.send_close(1001)
    assert proto.receive_data(frame(side, Opcode.PING, b"late")) == [Ping(b"late")]
    pong = b"".join(proto.data_to_send())
    assert parse_frames(pong, expect_masked=side is CLIENT) == [Frame(Opcode.PONG, b"late")]
    # Once the peer's close frame is in, nothing more is read or answered.
    assert proto.receive_data(frame(side, Opcode.CLOSE, close_payload(1001))) == [Close(1001, "")]
    assert proto.receive_data(frame(side, Opcode.PING, b"after")) == []
    assert proto.data_to_send() == []


@SIDES
def test_close_answered_once(side: Side) -> None:
    proto = make(side)
    events = proto.receive_data(frame(side, Opcode.CLOSE, close_payload(1001, b"away")))
    assert events == [Close(1001, "away")]
    [echo] = proto.data_to_send()
    assert parse_frames(echo, expect_masked=side is CLIENT) == [Frame(Opcode.CLOSE, b"\x03\xe9")]
    assert proto.send_close(1000, "mine") == []  # the echo was this end's close
    assert proto.receive_data(frame(side, Opcode.CLOSE, close_payload(1000))) == []
    assert proto.data_to_send() == []
    assert proto.close_sent == (1001, "")
    assert (proto.close_code, proto.close_reason) == (1001, "away")
    with pytest.raises(RuntimeError):
        proto.send_message("late")


def test_closing_handshake_client_first() -> None:
    client, server = make(CLIENT), make(SERVER)
    assert not client.should_close_transport
    close = b"".join(client.send_close(1000, "bye"))
    assert client.state is State.CLOSING and not client.should_close_transport
    assert server.receive_data(close) == [Close(1000, "bye")]
    assert server.should_close_transport  # the server closes TCP first (section 7.1.1)
    assert client.receive_data(b"".join(server.data_to_send())) == [Close(1000, "")]
    assert not client.should_close_transport  # the client waits for the server's FIN
    assert (client.close_code, client.close_reason) == (1000, "")
    assert (server.close_code, server.close_reason) == (1000, "bye")
    client.receive_eof()
    assert client.should_close_transport and client.state is State.CLOSED
    assert client.close_code == 1000


def test_closing_handshake_server_first() -> None:
    client, server = make(CLIENT), make(SERVER)
    close = b"".join(server.send_close(1001, "going"))
    assert not server.should_close_transport
    assert client.receive_data(close) == [Close(1001, "going")]
    assert not client.should_close_transport
    assert server.receive_data(b"".join(client.data_to_send())) == [Close(1001, "")]
    assert server.should_close_transport
    assert (client.close_code, client.close_reason) == (1001, "going")
    assert (server.close_code, server.close_reason) == (1001, "")


@SIDES
def test_close_code_reports(side: Side) -> None:
    proto = make(side)
    assert (proto.close_code, proto.close_reason) == (1006, "")
    proto.send_close(3001, "mine")
    assert (proto.close_code, proto.close_reason) == (3001, "mine")
    proto.receive_data(frame(side, Opcode.CLOSE, close_payload(3002, b"theirs")))
    assert (proto.close_code, proto.close_reason) == (3002, "theirs")

    proto = make(side)
    proto.send_close(1005)  # an empty close frame
    assert proto.close_code == 1005
    proto.receive_eof()
    assert (proto.close_code, proto.close_reason) == (1005, "")


@SIDES
def test_eof_without_close(side: Side) -> None:
    proto = make(side)
    proto.receive_data(frame(side, Opcode.TEXT, b"half", fin=False))
    proto.receive_eof()
    assert proto.state is State.CLOSED
    assert proto.should_close_transport
    assert (proto.close_code, proto.close_reason) == (1006, "")
    assert proto.receive_data(frame(side, Opcode.CONT, b"!")) == []
    assert proto.send_close() == []
    with pytest.raises(RuntimeError):
        proto.send_message("x")
    with pytest.raises(RuntimeError):
        proto.send_ping()


@SIDES
def test_everything_ignored_after_failing(side: Side) -> None:
    data = frame(side, 3) + frame(side, Opcode.PING, b"p") + frame(side, Opcode.CLOSE, close_payload(1000))
    outcome = fails(side, data)
    assert outcome.events == []
    assert len(outcome.sent) == 1  # the close frame only: no pong, no second close
    assert outcome.close_rcvd is None
    proto = make(side)
    proto.receive_data(frame(side, 3))
    proto.data_to_send()
    assert proto.receive_data(frame(side, Opcode.CLOSE, close_payload(1000))) == []
    assert proto.data_to_send() == []
    assert (proto.close_code, proto.should_close_transport) == (1002, True)


@SIDES
def test_failing_after_this_ends_close(side: Side) -> None:
    proto = make(side)
    proto.send_close(1000, "bye")
    proto.receive_data(frame(side, 3))
    assert proto.error is not None and proto.error.code == 1002
    assert proto.data_to_send() == []  # a close frame went already
    assert proto.should_close_transport
    assert (proto.close_code, proto.close_reason) == (1000, "bye")


@SIDES
def test_fail_from_this_end(side: Side) -> None:
    """The I/O layer fails the connection itself, e.g. on a keepalive timeout (1011)."""
    proto = make(side)
    [close] = proto.fail(1011, "keepalive ping timeout")
    assert parse_frames(close, expect_masked=side is CLIENT) == [
        Frame(Opcode.CLOSE, close_payload(1011, b"keepalive ping timeout"))
    ]
    assert proto.failed and proto.error is None
    assert proto.state is State.CLOSING and proto.should_close_transport
    assert (proto.close_code, proto.close_reason) == (1011, "keepalive ping timeout")
    # The peer's answer changes nothing: the code reported is this end's.
    assert proto.receive_data(frame(side, Opcode.CLOSE, close_payload(1000))) == []
    assert proto.data_to_send() == []
    assert proto.close_code == 1011
    assert proto.fail(1011) == []
    with pytest.raises(RuntimeError):
        proto.send_message("x")


@SIDES
def test_fail_after_this_ends_close(side: Side) -> None:
    proto = make(side)
    proto.send_close(1000, "bye")
    assert proto.fail(1011, "timeout") == []
    assert proto.should_close_transport
    assert (proto.close_code, proto.close_reason) == (1000, "bye")  # what went on the wire


def test_fail_truncates_the_reason() -> None:
    [close] = make(SERVER).fail(1011, "é" * 100)
    reason = close[4:].decode()  # 2-byte header, 2-byte code: it is valid UTF-8
    assert reason == "é" * 61 and len(close) == 2 + 2 + 122


def test_fail_with_an_invalid_code_changes_nothing() -> None:
    proto = make(SERVER)
    for code in (1005, 1006, 999):
        with pytest.raises(ValueError):
            proto.fail(code, "x")
    assert not proto.failed and proto.state is State.OPEN and proto.close_sent is None
    assert proto.close_code == 1006 and not proto.should_close_transport
    assert proto.send_message(b"still open") == [b"\x82\x0astill open"]


def test_fail_after_eof_sends_nothing() -> None:
    proto = make(CLIENT)
    proto.receive_eof()
    assert proto.fail(1011, "timeout") == []
    # No close frame went either way: still 1006, as for send_close().
    assert (proto.close_code, proto.close_reason) == (1006, "")
    assert proto.state is State.CLOSED and proto.should_close_transport


def test_send_close_validation() -> None:
    proto = make(SERVER)
    for code in (999, 1004, 1006, 1015, 2000, 5000):
        with pytest.raises(ValueError):
            proto.send_close(code)
    with pytest.raises(ValueError):
        proto.send_close(1005, "a reason needs a code")
    with pytest.raises(ValueError):
        proto.send_close(1000, "x" * 124)
    assert proto.state is State.OPEN and proto.close_sent is None
    assert proto.send_close(1000, "x" * 123) == [b"\x88\x7d\x03\xe8" + b"x" * 123]


def test_send_empty_close() -> None:
    assert make(SERVER).send_close(1005) == [b"\x88\x00"]
    assert make(CLIENT).send_close(CloseCode.NO_STATUS_RCVD) == [b"\x88\x80" + KEY]


def test_ok_close_codes() -> None:
    assert OK_CLOSE_CODES == {1000, 1001, 1005}


# -- max_size ---------------------------------------------------------------------------


@SIDES
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_max_size_from_the_header(side: Side, opcode: int) -> None:
    assert feed_all_ways(side, frame(side, opcode, b"a" * 100), max_size=100).events != []
    data = frame(side, opcode, b"a" * 101)
    outcome = fails(side, data, 1009, max_size=100)
    assert outcome.events == []
    assert outcome.error[0] == PayloadTooBig.__name__  # type: ignore[index]
    header = 2 + (4 if side is SERVER else 0)
    assert error_position(side, data, max_size=100) == header - 1
    proto = make(side, max_size=100)
    proto.receive_data(data[:header])  # nothing of the payload
    assert isinstance(proto.error, PayloadTooBig)


@SIDES
def test_max_size_huge_header(side: Side) -> None:
    header = frame(side, Opcode.BINARY, b"")[:1] + bytes([0xFF if side is SERVER else 0x7F])
    header += (2**62).to_bytes(8, "big") + (PEER_KEY if side is SERVER else b"")
    proto = make(side)
    proto.receive_data(header)
    assert proto.error is not None and proto.error.code == 1009
    unlimited = make(side, max_size=None)
    assert unlimited.receive_data(header) == []
    assert unlimited.error is None


@SIDES
def test_default_max_size(side: Side) -> None:
    assert DEFAULT_MAX_SIZE == 2**24
    for length, ok in ((2**24, True), (2**24 + 1, False)):
        header = frame(side, Opcode.BINARY, b"")[:1] + bytes([0xFF if side is SERVER else 0x7F])
        header += length.to_bytes(8, "big") + (PEER_KEY if side is SERVER else b"")
        proto = make(side)
        proto.receive_data(header)
        assert (proto.error is None) is ok


@SIDES
def test_max_size_across_fragments(side: Side) -> None:
    first = frame(side, Opcode.BINARY, b"a" * 60, fin=False)
    ping = frame(side, Opcode.PING, b"p" * 100)  # control frames do not count
    ok = first + ping + frame(side, Opcode.CONT, b"b" * 40)
    assert feed_all_ways(side, ok, max_size=100).events == [Ping(b"p" * 100), b"a" * 60 + b"b" * 40]
    bad = first + ping + frame(side, Opcode.CONT, b"b" * 41)
    outcome = fails(side, bad, 1009, max_size=100)
    assert outcome.events == [Ping(b"p" * 100)]
    header = 2 + (4 if side is SERVER else 0)
    assert error_position(side, bad, max_size=100) == len(first) + len(ping) + header - 1


@SIDES
def test_max_size_counts_each_message_afresh(side: Side) -> None:
    data = b"".join(frame(side, Opcode.BINARY, bytes(10)) for _ in range(5))
    data += frame(side, Opcode.TEXT, b"x" * 5, fin=False) + frame(side, Opcode.CONT, b"y" * 5)
    assert feed_all_ways(side, data, max_size=10).events == [bytes(10)] * 5 + ["x" * 5 + "y" * 5]


@SIDES
def test_max_size_zero(side: Side) -> None:
    assert feed_all_ways(side, frame(side, Opcode.TEXT), max_size=0).events == [""]
    fails(side, frame(side, Opcode.BINARY, b"x"), 1009, max_size=0)


@SIDES
def test_max_size_none(side: Side) -> None:
    message = bytes(2**20 + 1)
    fails(side, frame(side, Opcode.BINARY, message), 1009, max_size=2**20)
    proto = make(side, max_size=None)
    assert proto.receive_data(frame(side, Opcode.BINARY, message)) == [message]


# -- sending: types ---------------------------------------------------------------------


def test_bytes_like_messages() -> None:
    ints = array.array("i", [1, 2, 3])
    raw = ints.tobytes()
    cases = [
        bytearray(b"abc"),
        memoryview(b"xabcx")[1:4],
        ints,
        memoryview(ints),  # len() is 3 items, but 12 bytes
        memoryview(bytes(range(12))).cast("B", (3, 4)),  # 2-D
        memoryview(b"a-b-c-")[::2],  # not contiguous
    ]
    for message in cases:
        expected = memoryview(message).tobytes()
        for sender in (make(SERVER), make(CLIENT)):
            data = b"".join(sender.send_message(message))
            receiver = make(CLIENT if sender.side is SERVER else SERVER)
            assert receiver.receive_data(data) == [expected], message
            data = b"".join(sender.send_fragment(message, fin=True))
            assert receiver.receive_data(data) == [expected], message
    assert make(SERVER).send_message(ints) == [b"\x82\x0c" + raw]
    assert make(SERVER).send_ping(memoryview(ints)) == [b"\x89\x0c" + raw]
    assert make(SERVER).send_pong(bytearray(b"z")) == [b"\x8a\x01z"]


@pytest.mark.parametrize("message", [1, None, ["a"], {"a": 1}, 1.5])
def test_message_of_wrong_type(message: object) -> None:
    proto = make(SERVER)
    with pytest.raises(TypeError):
        proto.send_message(message)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        proto.send_fragment(message, fin=True)  # type: ignore[arg-type]
    assert proto.send_message("ok") == [b"\x81\x02ok"]


def test_control_payload_limits_on_send() -> None:
    proto = make(CLIENT)
    assert len(b"".join(proto.send_ping(bytes(125)))) == 2 + 4 + 125
    with pytest.raises(ValueError):
        proto.send_ping(bytes(126))
    with pytest.raises(ValueError):
        proto.send_pong("é" * 63)  # 126 bytes of UTF-8
    assert proto.send_pong("é") == [b"\x8a\x82" + KEY + apply_mask("é".encode(), KEY)]


def test_large_frames_are_returned_as_header_and_payload() -> None:
    payload = bytes(100000)
    buffers = make(SERVER).send_message(payload)
    assert b"".join(buffers) == bytes.fromhex("827f00000000000186a0") + payload
    assert make(CLIENT).receive_data(b"".join(buffers)) == [payload]


# -- a client and a server fed each other's output --------------------------------------

SIZES = [0, 125, 126, 127, 128, 65535, 65536]


def _payload(size: int, text: bool):  # type: ignore[no-untyped-def]
    """A message of exactly ``size`` bytes (text: multi-byte characters included)."""
    if not text:
        return (bytes(range(256)) * (size // 256 + 1))[:size]
    head = ("aé€😀" * (size // 10 + 1)).encode()[:size].decode("utf-8", "ignore")
    return head + "z" * (size - len(head.encode()))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
@pytest.mark.parametrize("sender_side", [CLIENT, SERVER], ids=["client-to-server", "server-to-client"])
def test_round_trip(size: int, text: bool, sender_side: Side) -> None:
    sender = make(sender_side)
    receiver_side = SERVER if sender_side is CLIENT else CLIENT
    message = _payload(size, text)
    data = b"".join(sender.send_message(message))
    outcome = feed_all_ways(receiver_side, data, seed=size)
    assert outcome.events == [message]
    assert_ok(outcome)


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, sender_side",
    [(True, CLIENT), (False, SERVER)],
    ids=["text-client-to-server", "binary-server-to-client"],
)
def test_round_trip_1mib(text: bool, sender_side: Side) -> None:
    sender = make(sender_side)
    message = ("0123456789abcdé" * 70000)[: 2**20] if text else bytes(range(256)) * 4096
    data = b"".join(sender.send_message(message))
    receiver_side = SERVER if sender_side is CLIENT else CLIENT
    assert feed_all_ways(receiver_side, data).events == [message]


@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
@pytest.mark.parametrize("sender_side", [CLIENT, SERVER], ids=["client-to-server", "server-to-client"])
def test_round_trip_fragmented(text: bool, sender_side: Side) -> None:
    rng = random.Random(11)
    message = _payload(70000, text)
    pieces, pos = [], 0
    while pos < len(message):
        size = rng.choice([0, 1, 2, 125, 126, 1000, 5000])
        pieces.append(message[pos : pos + size])
        pos += size
    sender = make(sender_side)
    data = b""
    for i, piece in enumerate(pieces):
        data += b"".join(sender.send_fragment(piece, fin=i == len(pieces) - 1))
        if i == 1:
            data += b"".join(sender.send_ping(b"between"))
    receiver_side = SERVER if sender_side is CLIENT else CLIENT
    outcome = feed_all_ways(receiver_side, data)
    assert len(pieces) >= 5
    assert outcome.events == [Ping(b"between"), message]
    assert outcome.sent == [Frame(Opcode.PONG, b"between")]


def test_pings_both_ways() -> None:
    client, server = make(CLIENT), Protocol(SERVER)
    assert server.receive_data(b"".join(client.send_ping(b"c->s"))) == [Ping(b"c->s")]
    assert client.receive_data(b"".join(server.data_to_send())) == [Pong(b"c->s")]
    assert client.receive_data(b"".join(server.send_ping(b"s->c"))) == [Ping(b"s->c")]
    assert server.receive_data(b"".join(client.data_to_send())) == [Pong(b"s->c")]
    assert server.receive_data(b"".join(client.send_pong(b"heartbeat"))) == [Pong(b"heartbeat")]
    assert server.data_to_send() == []


def test_conversation() -> None:
    """Many messages each way through real (random) masking, then a close."""
    client, server = Protocol(CLIENT), Protocol(SERVER)
    rng = random.Random(12)
    for _ in range(50):
        size = rng.choice(SIZES[:5])
        message = _payload(size, rng.random() < 0.5)
        assert server.receive_data(b"".join(client.send_message(message))) == [message]
        assert client.receive_data(b"".join(server.send_message(message))) == [message]
    assert server.receive_data(b"".join(client.send_close())) == [Close(1000, "")]
    assert client.receive_data(b"".join(server.data_to_send())) == [Close(1000, "")]
    assert server.should_close_transport and not client.should_close_transport


# -- permessage-deflate (RFC 7692) ------------------------------------------------------

# RFC 7692 section 7.2.3: "Hello" compressed, as a server sends it.
RFC7692_HELLO = bytes.fromhex("c107f248cdc9c90700")
RFC7692_HELLO_AGAIN = bytes.fromhex("c105f200110000")  # the same, using the shared window
RFC7692_STORED = bytes.fromhex("c10b000500faff48656c6c6f00")  # an uncompressed block
RFC7692_BFINAL = bytes.fromhex("c108f348cdc9c9070000")  # a block with BFINAL set
RFC7692_FRAGMENTED = bytes.fromhex("4103f248cd") + bytes.fromhex("8004c9c90700")


def peer_of(side: Side) -> Protocol:
    """A protocol playing the other end, with permessage-deflate."""
    return make(SERVER if side is CLIENT else CLIENT, deflate=True)


def test_deflate_rfc7692_examples() -> None:
    for data in (RFC7692_HELLO, RFC7692_STORED, RFC7692_BFINAL, RFC7692_FRAGMENTED):
        outcome = feed_all_ways(CLIENT, data, deflate=True)
        assert outcome.events == ["Hello"]
        assert_ok(outcome)
    stream = RFC7692_HELLO + RFC7692_HELLO_AGAIN + RFC7692_BFINAL + RFC7692_FRAGMENTED + HELLO
    assert feed_all_ways(CLIENT, stream, deflate=True).events == ["Hello"] * 5


def test_deflate_sends_the_rfc7692_bytes() -> None:
    server = make(SERVER, deflate=True)
    assert b"".join(server.send_message("Hello")) == RFC7692_HELLO
    assert b"".join(server.send_message("Hello")) == RFC7692_HELLO_AGAIN
    assert b"".join(server.send_message("Hello", compress=False)) == HELLO


@SIDES
def test_deflate_rsv1_on_the_first_frame_only(side: Side) -> None:
    peer = peer_of(side)
    message = "compress me " * 200
    whole = b"".join(peer.send_message(message))
    assert whole[0] == 0xC1  # FIN, RSV1, text
    pieces = [message[:1000], message[1000:2000], message[2000:]]
    data = b"".join(
        b"".join(peer.send_fragment(piece, fin=i == 2)) for i, piece in enumerate(pieces)
    )
    frames = parse_frames(data, expect_masked=peer.side is CLIENT)
    assert [(f.opcode, f.rsv1, f.fin) for f in frames] == [
        (Opcode.TEXT, True, False), (Opcode.CONT, False, False), (Opcode.CONT, False, True)
    ]
    outcome = feed_all_ways(side, whole + data, deflate=True)
    assert outcome.events == [message, message]
    assert_ok(outcome)


def _sliced(peer: Protocol, message: Union[str, bytes], slice_size: int, **options: Any) -> List[bytes]:
    """Every frame of ``message`` as ``send_message(slice_size=...)`` and ``send_rest()`` give them."""
    frames = [b"".join(peer.send_message(message, slice_size=slice_size, **options))]
    for _ in range(len(message)):  # bounded: at least one byte of input per frame
        if not peer.message_pending:
            break
        frames.append(b"".join(peer.send_rest()))
    assert not peer.message_pending
    return frames


def _varied(size: int, seed: int) -> str:
    """Text that compresses to about a third: zlib emits output as the input goes in."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta", "θ", "iota"]
    return " ".join(f"{rng.choice(words)}{rng.randrange(10_000)}" for _ in range(size // 10))


@SIDES
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_deflate_large_message_sliced_into_frames(side: Side, kind: str) -> None:
    text = _varied(200_000, seed=7)
    message: Union[str, bytes] = text if kind == "text" else text.encode()
    peer = peer_of(side)
    frames = _sliced(peer, message, 16384)
    parsed = [parse_frames(f, expect_masked=side is SERVER)[0] for f in frames]
    opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
    assert len(parsed) > 1
    assert [(f.opcode, f.rsv1, f.fin) for f in parsed] == (
        [(opcode, True, False)] + [(Opcode.CONT, False, False)] * (len(parsed) - 2) + [(Opcode.CONT, False, True)]
    )
    assert all(f.payload for f in parsed)  # zlib's held-back output never makes an empty frame
    # zlib is not flushed between slices: the same bytes as the message compressed whole.
    whole = parse_frames(b"".join(peer_of(side).send_message(message)), expect_masked=side is SERVER)[0]
    assert b"".join(f.payload for f in parsed) == whole.payload
    # The context goes on: the next message (sliced or not) still decodes.
    data = b"".join(frames + _sliced(peer, message, 16384) + peer.send_message(message[:100]))
    outcome = feed_all_ways(side, data, deflate=True)
    assert outcome.events == [message, message, message[:100]]
    assert_ok(outcome)


@SIDES
def test_deflate_slicing_only_for_large_compressed_messages(side: Side) -> None:
    peer = peer_of(side)
    small = parse_frames(b"".join(peer.send_message(b"a" * 100, slice_size=100)), expect_masked=side is SERVER)
    assert [(f.fin, f.rsv1) for f in small] == [(True, True)]
    plain = b"".join(peer.send_message(b"a" * 5000, slice_size=100, compress=False))
    assert [(f.fin, f.rsv1) for f in parse_frames(plain, expect_masked=side is SERVER)] == [(True, False)]
    assert not peer.message_pending
    uncompressed = make(SERVER if side is CLIENT else CLIENT)
    data = b"".join(uncompressed.send_message(b"a" * 5000, slice_size=100))
    assert [(f.fin, len(f.payload)) for f in parse_frames(data, expect_masked=side is SERVER)] == [(True, 5000)]
    assert not uncompressed.message_pending


@SIDES
def test_deflate_slices_zlib_holds_back_share_a_frame(side: Side) -> None:
    peer = peer_of(side)
    frames = _sliced(peer, bytes(300_000), 1000)  # zeros: zlib emits almost nothing until the end
    parsed = [parse_frames(f, expect_masked=side is SERVER)[0] for f in frames]
    assert len(parsed) < 300 and all(f.payload for f in parsed)
    assert feed_all_ways(side, b"".join(frames), deflate=True).events == [bytes(300_000)]


def test_deflate_sliced_message_with_control_frames_between() -> None:
    peer = peer_of(CLIENT)  # a server talking to the client under test
    message = _varied(100_000, seed=8)
    data = b"".join(peer.send_message(message, slice_size=16384))
    assert peer.message_pending
    data += b"".join(peer.send_ping(b"mid") + peer.send_rest())
    while peer.message_pending:
        data += b"".join(peer.send_rest())
    outcome = feed_all_ways(CLIENT, data, deflate=True)
    assert outcome.events == [Ping(b"mid"), message]
    assert_ok(outcome)


def test_deflate_sliced_message_blocks_other_messages_until_done() -> None:
    peer = make(SERVER, deflate=True)
    message = _varied(100_000, seed=9).encode()
    peer.send_message(message, slice_size=16384)
    assert peer.message_pending
    with pytest.raises(RuntimeError, match="fragmented message"):
        peer.send_message(b"other")
    with pytest.raises(RuntimeError, match="sliced message"):
        peer.send_fragment(b"other", fin=True)
    while peer.message_pending:
        peer.send_rest()
    with pytest.raises(RuntimeError, match="no sliced message"):
        peer.send_rest()
    with pytest.raises(ValueError, match="slice_size"):
        peer.send_message(b"x", slice_size=0)
    # A close may go out mid-message (RFC 6455 section 5.4); nothing more of it after that.
    peer.send_message(message, slice_size=16384)
    peer.send_close(1000)
    assert not peer.message_pending
    with pytest.raises(RuntimeError, match="closing"):
        peer.send_rest()


def test_deflate_sliced_message_leaves_the_callers_buffer_free() -> None:
    peer = make(SERVER, deflate=True)
    original = _varied(100_000, seed=10).encode()
    buffer = bytearray(original)
    frames = [b"".join(peer.send_message(buffer, slice_size=16384))]
    assert peer.message_pending
    buffer.extend(b"more")  # not pinned by the rest of the message, which is a copy
    buffer[:] = bytes(len(buffer))
    while peer.message_pending and len(frames) < 100:
        frames.append(b"".join(peer.send_rest()))
    assert feed_all_ways(CLIENT, b"".join(frames), deflate=True).events == [original]


@SIDES
def test_deflate_uncompressed_messages_still_accepted(side: Side) -> None:
    data = frame(side, Opcode.TEXT, b"plain") + frame(side, Opcode.BINARY, b"raw", fin=False)
    data += frame(side, Opcode.CONT, b"!")
    assert feed_all_ways(side, data, deflate=True).events == ["plain", b"raw!"]


@SIDES
def test_deflate_rsv1_on_a_continuation_frame(side: Side) -> None:
    peer = peer_of(side)
    first = b"".join(peer.send_fragment(b"abc" * 100, fin=False))
    cont = b"".join(peer.send_fragment(b"def" * 100, fin=True))
    assert feed_all_ways(side, first + cont, deflate=True).events == [b"abc" * 100 + b"def" * 100]
    bad = bytes([cont[0] | 0x40]) + cont[1:]
    fails(side, first + bad, deflate=True)
    # Nor on a continuation of an uncompressed message.
    start = frame(side, Opcode.BINARY, b"x", fin=False)
    fails(side, start + frame(side, Opcode.CONT, b"y", rsv1=True), deflate=True)


@SIDES
@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_deflate_rsv1_on_a_control_frame(side: Side, opcode: int) -> None:
    payload = close_payload(1000) if opcode == Opcode.CLOSE else b"p"
    fails(side, frame(side, opcode, payload, rsv1=True), deflate=True)


@SIDES
@pytest.mark.parametrize("bit", ["rsv2", "rsv3"])
def test_deflate_does_not_allow_rsv2_rsv3(side: Side, bit: str) -> None:
    fails(side, frame(side, Opcode.TEXT, b"x", **{bit: True}), deflate=True)
    fails(side, frame(side, Opcode.TEXT, b"x", rsv1=True, **{bit: True}), deflate=True)


@SIDES
def test_deflate_max_size_applies_after_decompression(side: Side) -> None:
    data = b"".join(peer_of(side).send_message(b"x" * 1000))
    assert len(data) < 100  # the frame itself is small
    assert feed_all_ways(side, data, deflate=True, max_size=1000).events == [b"x" * 1000]
    outcome = fails(side, data, 1009, deflate=True, max_size=999)
    assert outcome.error[0] == PayloadTooBig.__name__  # type: ignore[index]


@SIDES
def test_deflate_max_size_across_fragments(side: Side) -> None:
    def message() -> bytes:
        peer = peer_of(side)
        return b"".join(
            peer.send_fragment(b"y" * 600, fin=False)
            + peer.send_ping(b"mid")
            + peer.send_fragment(b"z" * 400, fin=True)
        )

    outcome = feed_all_ways(side, message(), deflate=True, max_size=1000)
    assert outcome.events == [Ping(b"mid"), b"y" * 600 + b"z" * 400]
    outcome = fails(side, message(), 1009, deflate=True, max_size=999)
    assert outcome.events == [Ping(b"mid")]


@SIDES
def test_deflate_bomb_stopped_at_max_size(side: Side) -> None:
    data = b"".join(peer_of(side).send_message(bytes(2**24)))
    assert len(data) < 2**16
    proto = make(side, deflate=True, max_size=2**20)
    assert proto.receive_data(data) == []
    assert isinstance(proto.error, PayloadTooBig)


@SIDES
def test_deflate_invalid_utf8_inside(side: Side) -> None:
    data = b"".join(peer_of(side).send_message(b"ok \xed\xa0\x80 not ok"))
    text = bytes([data[0] & 0xF0 | Opcode.TEXT]) + data[1:]  # the same payload, as text
    fails(side, text, 1007, deflate=True)
    assert feed_all_ways(side, data, deflate=True).events == [b"ok \xed\xa0\x80 not ok"]


@SIDES
def test_deflate_invalid_compressed_data(side: Side) -> None:
    fails(side, frame(side, Opcode.BINARY, b"\xff\xff\xff", rsv1=True), 1007, deflate=True)


@pytest.mark.parametrize("size", SIZES + [2**20])
@pytest.mark.parametrize("sender_side", [CLIENT, SERVER], ids=["client-to-server", "server-to-client"])
def test_deflate_round_trip(size: int, sender_side: Side) -> None:
    sender = make(sender_side, deflate=True)
    receiver_side = SERVER if sender_side is CLIENT else CLIENT
    text, binary = _payload(size, True), _payload(size, False)
    data = b"".join(sender.send_message(text) + sender.send_message(binary))
    data += b"".join(sender.send_fragment(text[: size // 3], fin=False))
    data += b"".join(sender.send_fragment(text[size // 3 :], fin=True))
    outcome = feed_all_ways(receiver_side, data, seed=size, deflate=True)
    assert outcome.events == [text, binary, text]
    assert_ok(outcome)


def test_deflate_conversation_keeps_context() -> None:
    client, server = make(CLIENT, deflate=True), make(SERVER, deflate=True)
    rng = random.Random(13)
    for i in range(30):
        message = f"message {i} " + "payload " * rng.randint(0, 50)
        assert server.receive_data(b"".join(client.send_message(message))) == [message]
        assert client.receive_data(b"".join(server.send_message(message.encode()))) == [message.encode()]


# -- parsing lazily: feed / next_events / input_pending (Autobahn "strict") -------------

HELLO_WORLD = b"Hello, world!"


def _autobahn_text_then(side: Side, bad: bytes) -> bytes:
    """Autobahn's 3.2-3.4, 4.1.3-4.1.5, 4.2.3-4.2.5: a text message, a bad frame, a ping."""
    return frame(side, Opcode.TEXT, HELLO_WORLD) + bad + frame(side, Opcode.PING)


# (case, the bytes for a protocol of ``side``, the message before the bad data)
AUTOBAHN_STRICT: List[Tuple[str, Callable[[Side], bytes], Union[str, bytes]]] = [
    ("3.2", lambda s: _autobahn_text_then(s, frame(s, Opcode.TEXT, HELLO_WORLD, rsv2=True)), "Hello, world!"),
    ("3.3", lambda s: _autobahn_text_then(s, frame(s, Opcode.TEXT, HELLO_WORLD, rsv2=True, rsv3=True)), "Hello, world!"),
    ("3.4", lambda s: _autobahn_text_then(s, frame(s, Opcode.TEXT, HELLO_WORLD, rsv1=True)), "Hello, world!"),
    ("4.1.3", lambda s: _autobahn_text_then(s, frame(s, 5)), "Hello, world!"),
    ("4.1.4", lambda s: _autobahn_text_then(s, frame(s, 6, b"reserved opcode")), "Hello, world!"),
    ("4.1.5", lambda s: _autobahn_text_then(s, frame(s, 7, b"reserved opcode")), "Hello, world!"),
    ("4.2.3", lambda s: _autobahn_text_then(s, frame(s, 12)), "Hello, world!"),
    ("4.2.4", lambda s: _autobahn_text_then(s, frame(s, 13, b"reserved opcode")), "Hello, world!"),
    ("4.2.5", lambda s: _autobahn_text_then(s, frame(s, 14, b"reserved opcode")), "Hello, world!"),
    # A text message in two fragments, then a continuation (FIN=0) with nothing to
    # continue, then one that ends it: the first message is whole before the error.
    ("5.15", lambda s: frame(s, Opcode.TEXT, b"fragment1", fin=False) + frame(s, Opcode.CONT, b"fragment2")
     + frame(s, Opcode.CONT, b"fragment3", fin=False) + frame(s, Opcode.CONT, b"fragment4"), "fragment1fragment2"),
]


def _first_call(proto: Protocol, data: bytes, how: str) -> list:
    if how == "feed":
        proto.feed(data)
        return proto.next_events()
    return proto.receive_data(data, max_messages=1)


@SIDES
@pytest.mark.parametrize("how", ["feed", "receive_data"])
@pytest.mark.parametrize(("case", "build", "message"), AUTOBAHN_STRICT, ids=[c[0] for c in AUTOBAHN_STRICT])
def test_lazy_valid_message_before_the_failure(
    side: Side, how: str, case: str, build: Callable[[Side], bytes], message: Union[str, bytes]
) -> None:
    """Strict: the message comes out with nothing queued, so the application's answer can
    leave first; the bad frame behind it fails the connection (1002) on the next call, and
    the ping after that is never answered."""
    proto = make(side)
    data = build(side)
    assert _first_call(proto, data, how) == [message]
    assert proto.data_to_send() == []  # no close frame (and no pong) yet
    assert proto.error is None and not proto.failed
    assert proto.state is State.OPEN
    assert proto.input_pending
    echo = b"".join(proto.send_message(message))  # the application answers
    assert proto.next_events() == []
    assert not proto.input_pending
    outcome = observe(proto, [], b"".join(proto.data_to_send()))
    assert_failed(outcome, 1002)
    assert [f.opcode for f in outcome.sent] == [Opcode.CLOSE]  # the ping is not answered
    assert parse_frames(echo, expect_masked=side is CLIENT) == [
        Frame(Opcode.TEXT, message.encode() if isinstance(message, str) else message)
    ]


@SIDES
@pytest.mark.parametrize(("case", "build", "message"), AUTOBAHN_STRICT, ids=[c[0] for c in AUTOBAHN_STRICT])
def test_eager_receive_data_fails_with_the_message(
    side: Side, case: str, build: Callable[[Side], bytes], message: Union[str, bytes]
) -> None:
    """The contrast: receive_data() parses everything, so the close frame is queued in the
    same call that returns the message (right for a reader nobody waits on)."""
    proto = make(side)
    assert proto.receive_data(build(side)) == [message]
    assert_failed(observe(proto, [message], b"".join(proto.data_to_send())), 1002)


@SIDES
def test_lazy_control_frames_before_the_message_are_handled(side: Side) -> None:
    """Pings before the message are answered in the call that returns it; a ping after
    it waits for the next call."""
    proto = make(side)
    proto.feed(frame(side, Opcode.PING, b"1") + frame(side, Opcode.PONG, b"x") + frame(side, Opcode.TEXT, b"a")
               + frame(side, Opcode.PING, b"2") + frame(side, Opcode.BINARY, b"b"))
    assert proto.next_events() == [Ping(b"1"), Pong(b"x"), "a"]
    assert parse_frames(b"".join(proto.data_to_send()), expect_masked=side is CLIENT) == [Frame(Opcode.PONG, b"1")]
    assert proto.input_pending
    assert proto.next_events() == [Ping(b"2"), b"b"]
    assert parse_frames(b"".join(proto.data_to_send()), expect_masked=side is CLIENT) == [Frame(Opcode.PONG, b"2")]
    assert proto.input_pending  # stopped at its message: it cannot know nothing follows
    assert proto.next_events() == []
    assert not proto.input_pending
    assert proto.next_events() == []


@SIDES
def test_lazy_max_messages(side: Side) -> None:
    data = b"".join(frame(side, Opcode.TEXT, b"%d" % i) for i in range(5))
    proto = make(side)
    proto.feed(data)
    assert proto.next_events(max_messages=2) == ["0", "1"]
    assert proto.next_events(max_messages=None) == ["2", "3", "4"]
    assert not proto.input_pending
    with pytest.raises(ValueError):
        proto.next_events(max_messages=0)
    with pytest.raises(ValueError):
        proto.receive_data(data, max_messages=0)
    assert proto.next_events() == []  # nothing changed


@SIDES
def test_lazy_close_frame_ends_parsing(side: Side) -> None:
    """A close frame is answered in the call that reaches it; what follows it is dropped."""
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"a") + frame(side, Opcode.CLOSE, close_payload(1001, b"bye"))
               + frame(side, Opcode.TEXT, b"after") + frame(side, 3))
    assert proto.next_events() == ["a"]
    assert proto.data_to_send() == []
    assert proto.next_events() == [Close(1001, "bye")]
    assert not proto.input_pending
    assert proto.error is None and proto.close_rcvd == (1001, "bye")
    assert [f.opcode for f in parse_frames(b"".join(proto.data_to_send()), expect_masked=side is CLIENT)] == [Opcode.CLOSE]
    proto.feed(frame(side, Opcode.TEXT, b"later"))
    assert not proto.input_pending
    assert proto.next_events() == []


@SIDES
def test_lazy_message_across_feeds(side: Side) -> None:
    """Fragments and frames cut anywhere: no event until the message is whole."""
    data = frame(side, Opcode.TEXT, "é".encode() * 200, fin=False) + frame(side, Opcode.CONT, b"!")
    data += frame(side, Opcode.BINARY, PAYLOAD_256)
    proto = make(side)
    got: list = []
    for i in range(0, len(data), 7):
        proto.feed(data[i : i + 7])
        while proto.input_pending:
            got += proto.next_events()
    assert got == ["é" * 200 + "!", PAYLOAD_256]
    assert proto.error is None


def _lazily(proto: Protocol, chunks: List[bytes], rng: random.Random) -> Outcome:
    """Feed ``chunks``, parsing one message a call (now and then two, or all) until nothing
    is pending; a chunk may be fed before the previous one is all parsed."""
    events: list = []
    raw: List[bytes] = []
    for chunk in chunks:
        proto.feed(chunk)
        while proto.input_pending and rng.random() < 0.9:
            events += proto.next_events(max_messages=rng.choice([1, 1, 1, 2, None]))
            raw += proto.data_to_send()
    while proto.input_pending:
        events += proto.next_events()
        raw += proto.data_to_send()
    return observe(proto, events, b"".join(raw))


def _streams(side: Side) -> Iterator[bytes]:
    f = functools.partial(frame, side)
    rng = random.Random(21)
    parts = [
        f(Opcode.TEXT, b"hi"), f(Opcode.BINARY, PAYLOAD_256), f(Opcode.PING, b"p"), f(Opcode.PONG),
        f(Opcode.TEXT, b"ab", fin=False) + f(Opcode.PING, b"mid") + f(Opcode.CONT, b"cd"),
        f(Opcode.BINARY, PAYLOAD_64K[:3000]), f(Opcode.TEXT, "€".encode() * 50),
    ]
    endings = [b"", f(Opcode.CLOSE, close_payload(1000)) + f(Opcode.TEXT, b"after"), f(5) + f(Opcode.PING),
               f(Opcode.TEXT, b"\xff"), f(Opcode.CONT, b"x"), f(Opcode.TEXT, b"a", rsv2=True),
               f(Opcode.TEXT, b"cut", fin=False), f(Opcode.BINARY, b"partial")[:-3]]
    for ending in endings:
        yield b"".join(rng.choice(parts) for _ in range(rng.randint(0, 8))) + ending


@SIDES
def test_lazy_parsing_ends_as_eager_parsing_does(side: Side) -> None:
    """However chunked and however many messages a call, parsing lazily gives the events,
    the frames queued, the error and the state that receive_data() gives."""
    rng = random.Random(5)
    for n, data in enumerate(_streams(side)):
        eager = run(make(side), [data])
        for chunks in chunkings(data, n):
            assert _lazily(make(side), chunks, rng) == eager
            assert run(make(side), chunks) == eager


@SIDES
def test_lazy_parsing_of_compressed_messages(side: Side) -> None:
    """permessage-deflate keeps its context across messages parsed in separate calls; a
    corrupt compressed message behind them fails (1007) only when reached."""
    peer = peer_of(side)
    messages: List[Union[str, bytes]] = [f"message {i} " * (i * 7) for i in range(6)] + [PAYLOAD_256]
    data = b"".join(b"".join(peer.send_message(m)) for m in messages)
    data += b"".join(peer.send_fragment("frag", fin=False) + peer.send_fragment("ment", fin=True))
    bad = frame(side, Opcode.BINARY, b"\xff\xff\xff", rsv1=True)
    proto = make(side, deflate=True)
    proto.feed(data + bad)
    for message in messages + ["fragment"]:
        assert proto.next_events() == [message]
        assert proto.data_to_send() == []
    assert proto.next_events() == []
    assert_failed(observe(proto, [], b"".join(proto.data_to_send())), 1007)


@SIDES
def test_receive_data_parses_what_was_fed_first(side: Side) -> None:
    """The background reader may take over from a lazy recv(): receive_data() parses the
    bytes left unparsed before its own, and everything after."""
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"1") + frame(side, Opcode.TEXT, b"2") + frame(side, Opcode.BINARY, b"3", fin=False))
    assert proto.next_events() == ["1"]
    assert proto.receive_data(frame(side, Opcode.CONT, b"4") + frame(side, Opcode.TEXT, b"5")) == ["2", b"34", "5"]
    assert not proto.input_pending
    # And receive_data(max_messages=1) too leaves the rest for later.
    assert proto.receive_data(frame(side, Opcode.TEXT, b"6") + frame(side, Opcode.TEXT, b"7"), max_messages=1) == ["6"]
    assert proto.input_pending
    assert proto.receive_data(frame(side, Opcode.TEXT, b"8"), max_messages=1) == ["7"]
    assert proto.next_events() == ["8"]


@SIDES
def test_lazy_eof_takes_effect_after_what_was_fed(side: Side) -> None:
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"1") + frame(side, Opcode.TEXT, b"2"))
    assert proto.next_events() == ["1"]
    proto.receive_eof()
    assert not proto.eof_received and proto.state is State.OPEN and not proto.should_close_transport
    assert proto.input_pending
    proto.feed(frame(side, Opcode.TEXT, b"after the end"))  # ignored, as after any EOF
    assert proto.next_events() == ["2"]
    assert not proto.eof_received and proto.input_pending  # the answer to "2" may still go
    assert proto.send_message("answer")
    assert proto.next_events() == []
    assert proto.eof_received and proto.state is State.CLOSED and proto.should_close_transport
    assert not proto.input_pending
    assert (proto.close_code, proto.close_reason) == (1006, "")
    assert proto.receive_data(frame(side, Opcode.TEXT, b"3")) == []


@SIDES
def test_lazy_eof_waits_for_a_call_that_finds_nothing_more(side: Side) -> None:
    """Also when the last message was a whole frame fed on its own (the quick path)."""
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"1") + frame(side, Opcode.PING, b"p"))
    assert proto.next_events() == ["1"]
    proto.feed(frame(side, Opcode.TEXT, b"2"))
    proto.receive_eof()
    assert proto.next_events() == [Ping(b"p"), "2"]
    assert not proto.eof_received and proto.input_pending
    assert proto.next_events() == []
    assert proto.eof_received


@SIDES
def test_lazy_eof_after_an_unfinished_frame(side: Side) -> None:
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"1") + frame(side, Opcode.TEXT, b"never finished")[:5])
    assert proto.next_events() == ["1"]
    proto.receive_eof()
    assert proto.next_events() == []
    assert proto.eof_received and proto.state is State.CLOSED and proto.error is None


@SIDES
def test_lazy_eof_with_nothing_pending_is_at_once(side: Side) -> None:
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"1"))
    assert proto.next_events() == ["1"]
    assert not proto.input_pending  # feed_whole took it all
    proto.receive_eof()
    assert proto.eof_received and proto.state is State.CLOSED and not proto.input_pending


@SIDES
def test_lazy_eof_then_bad_data_fails_then_ends(side: Side) -> None:
    """Bad data before the end still fails the connection (its close frame may still
    reach a peer that only shut down its sending side); then the end takes effect."""
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"1") + frame(side, 3))
    assert proto.next_events() == ["1"]
    proto.receive_eof()
    assert proto.next_events() == []
    assert proto.error is not None and proto.error.code == 1002
    assert proto.close_sent is not None and proto.close_sent[0] == 1002
    assert proto.eof_received and proto.state is State.CLOSED and not proto.input_pending


@SIDES
def test_receive_data_after_eof_held_back(side: Side) -> None:
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"1") + frame(side, Opcode.TEXT, b"2"))
    assert proto.next_events() == ["1"]
    proto.receive_eof()
    assert proto.receive_data(frame(side, Opcode.TEXT, b"ignored")) == ["2"]
    assert proto.eof_received and not proto.input_pending


@SIDES
def test_fail_from_this_end_drops_what_was_fed(side: Side) -> None:
    proto = make(side)
    proto.feed(frame(side, Opcode.TEXT, b"1") + frame(side, Opcode.TEXT, b"2"))
    assert proto.next_events() == ["1"]
    assert proto.fail(CloseCode.INTERNAL_ERROR, "keepalive")
    assert not proto.input_pending
    assert proto.next_events() == []
    proto.feed(frame(side, Opcode.TEXT, b"3"))
    assert not proto.input_pending


@SIDES
def test_transport_closed_drops_what_was_fed(side: Side) -> None:
    """The I/O layer cut the transport: the stream ends now, parsed or not."""
    for eof_first in (False, True):
        proto = make(side)
        proto.feed(frame(side, Opcode.TEXT, b"1") + frame(side, Opcode.TEXT, b"2"))
        assert proto.next_events() == ["1"]
        if eof_first:
            proto.receive_eof()
        proto.transport_closed()
        assert proto.eof_received and proto.state is State.CLOSED and not proto.can_send
        assert not proto.input_pending
        assert proto.next_events() == []
        assert proto.close_code == 1006


@SIDES
def test_feed_copies_a_reused_buffer(side: Side) -> None:
    buf = bytearray(frame(side, Opcode.TEXT, b"first"))
    proto = make(side)
    proto.feed(buf)
    proto.feed(memoryview(frame(side, Opcode.TEXT, b"second")))
    buf[:] = frame(side, Opcode.TEXT, b"other")
    proto.feed(b"")
    assert proto.next_events(max_messages=None) == ["first", "second"]


# -- the module stays sans-I/O (DESIGN.md: the core never touches sockets or threads) ----


def test_a_deferred_failure_waits_for_release_and_parses_nothing_after_the_bad_frame() -> None:
    proto = Protocol(Side.CLIENT, mask_key=lambda: b"\x00\x00\x00\x00")
    proto.defer_failures = True
    bad = bytearray(Frame(Opcode.TEXT, b"bad").serialize())
    bad[0] |= 0x20  # RSV2
    stream = Frame(Opcode.TEXT, b"first").serialize() + bytes(bad) + Frame(Opcode.PING, b"p").serialize()
    assert proto.receive_data(stream) == ["first"]
    assert isinstance(proto.pending_failure, ProtocolError)
    assert proto.data_to_send() == []  # No close frame yet, and the ping after it is not parsed.
    assert proto.can_send and not proto.failed
    assert proto.receive_data(Frame(Opcode.TEXT, b"later").serialize()) == []  # Ignored.
    proto.release_failure()
    assert proto.failed and proto.close_code == 1002
    [frame] = proto.data_to_send()
    assert frame[0] == 0x88 and frame[6:8] == (1002).to_bytes(2, "big")
    proto.release_failure()  # Idempotent.
    assert proto.data_to_send() == []


# -- a message prepared once for many connections (broadcast) ---------------------------


@pytest.mark.parametrize("message", ["héllo", b"\x00binary", "x" * 70_000], ids=["text", "binary", "large"])
def test_a_prepared_message_is_framed_as_send_message_frames_it(message: Union[str, bytes]) -> None:
    for side in (SERVER, CLIENT):
        prepared = PreparedMessage(message)
        assert b"".join(make(side).send_prepared(prepared)) == b"".join(make(side).send_message(message))
        outcome = feed_all_ways(SERVER if side is CLIENT else CLIENT, b"".join(make(side).send_prepared(prepared)))
        assert outcome.events == [message]


def test_a_prepared_message_is_framed_once_for_every_uncompressed_server_connection() -> None:
    prepared = PreparedMessage("to everyone")
    first, second = make(SERVER).send_prepared(prepared), make(SERVER).send_prepared(prepared)
    assert first == second and all(a is b for a, b in zip(first, second))


def test_a_prepared_message_is_compressed_per_connection_and_masked_per_frame() -> None:
    prepared = PreparedMessage("compress me " * 100)
    server = make(SERVER, deflate=True)
    assert server.would_compress(len(prepared.payload))
    compressed = server.send_prepared(prepared)
    assert parse_frames(b"".join(compressed), expect_masked=False)[0].rsv1
    # The context goes on: the same prepared message again, then a plain one, decode.
    data = b"".join(compressed + server.send_prepared(prepared) + server.send_message("after"))
    outcome = feed_all_ways(CLIENT, data, deflate=True)
    assert outcome.events == ["compress me " * 100] * 2 + ["after"]
    # A client masks each frame with its own key: nothing shared there.
    keys = iter([b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"])
    client = Protocol(CLIENT, mask_key=lambda: next(keys))
    plain = PreparedMessage("masked")
    assert client.send_prepared(plain) != client.send_prepared(plain)


def test_a_prepared_message_copies_a_mutable_buffer_and_refuses_other_types() -> None:
    buffer = bytearray(b"original")
    prepared = PreparedMessage(buffer)
    buffer[:] = b"changed!"
    assert b"".join(make(SERVER).send_prepared(prepared)).endswith(b"original")
    with pytest.raises(TypeError, match="str or bytes-like"):
        PreparedMessage(42)  # type: ignore[arg-type]


def test_a_prepared_message_cannot_be_sent_after_the_close() -> None:
    server = make(SERVER)
    server.send_close(CloseCode.NORMAL_CLOSURE, "bye")
    with pytest.raises(RuntimeError, match="closing or closed"):
        server.send_prepared(PreparedMessage("late"))
