"""Tests for wsclient.close: close codes and close payloads (RFC 6455 sections 5.5.1, 7.4)."""

from __future__ import annotations


import pytest

from wsclient.close import CloseCode, is_valid_close_code, known_close_code, parse_close, serialize_close
from wsclient.exceptions import ProtocolError

#: What may appear on the wire: RFC 6455 section 7.4.1 plus 1012-1014 (IANA registry),
#: and the ranges of section 7.4.2 for libraries (3000-3999) and applications (4000-4999).
VALID = (
    [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
    + [3000, 3001, 3999, 4000, 4001, 4999]
)
#: Reserved for local use (1004-1006, 1015), unassigned, or out of range.
INVALID = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def _expected_valid(code: int) -> bool:
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


def test_is_valid_close_code_every_code() -> None:
    for code in range(0x10000):
        assert is_valid_close_code(code) is _expected_valid(code), code


@pytest.mark.parametrize("code", VALID)
def test_valid_code_accepted(code: int) -> None:
    payload = code.to_bytes(2, "big") + b"reason"
    assert parse_close(payload) == (code, "reason")
    assert parse_close(code.to_bytes(2, "big")) == (code, "")


@pytest.mark.parametrize("code", INVALID)
def test_invalid_code_rejected(code: int) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close(code.to_bytes(2, "big") + b"x")
    assert info.value.code == 1002
    assert str(code) in str(info.value)


@pytest.mark.parametrize("code", INVALID)
def test_invalid_code_not_sent(code: int) -> None:
    with pytest.raises(ValueError):
        serialize_close(code, "reason")


def test_empty_payload_is_no_status() -> None:
    code, reason = parse_close(b"")
    assert (code, reason) == (1005, "")
    assert code == CloseCode.NO_STATUS_RCVD


@pytest.mark.parametrize("payload", [b"\x03", b"\xe8", b"\x00"])
def test_one_byte_payload(payload: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close(payload)
    assert info.value.code == 1002
    # The message is the reason of our close frame: the peer reads it (mutation testing).
    assert str(info.value) == "close frame with a 1-byte payload"


def test_reason_decoded() -> None:
    assert parse_close(b"\x03\xe8caf\xc3\xa9 \xe2\x82\xac") == (1000, "café €")
    # Memoryview and bytearray payloads are read the same way.
    assert parse_close(memoryview(b"\x03\xe9bye")) == (1001, "bye")  # type: ignore[arg-type]
    assert parse_close(bytearray(b"\x0f\xa0app")) == (4000, "app")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reason",
    [b"\xff", b"\xc3", b"abc\xc3", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\x80"],
)
def test_reason_must_be_utf8(reason: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_close(b"\x03\xe8" + reason)
    assert info.value.code == 1007
    assert str(info.value) == "close reason is not valid UTF-8"
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_payload_of_125_bytes() -> None:
    reason = "é" * 61 + "x"  # 123 bytes of UTF-8
    payload = b"\x03\xe8" + reason.encode()
    assert len(payload) == 125
    assert parse_close(payload) == (1000, reason)
    assert serialize_close(1000, reason) == payload


def test_reason_too_long_to_send() -> None:
    with pytest.raises(ValueError, match="123"):
        serialize_close(1000, "x" * 124)
    with pytest.raises(ValueError):
        serialize_close(1000, "é" * 62)  # 62 characters, 124 bytes


@pytest.mark.parametrize("code", VALID)
def test_serialize_round_trip(code: int) -> None:
    payload = serialize_close(code, "räson")
    assert payload[:2] == code.to_bytes(2, "big")
    assert parse_close(payload) == (code, "räson")


def test_serialize_exact_bytes() -> None:
    assert serialize_close(1000) == b"\x03\xe8"
    assert serialize_close(CloseCode.GOING_AWAY, "bye") == b"\x03\xe9bye"
    assert serialize_close(4999, "") == b"\x13\x87"


def test_serialize_no_status() -> None:
    # 1005 is never sent as a code; it means "an empty close frame".
    assert serialize_close(1005) == b""
    assert serialize_close(CloseCode.NO_STATUS_RCVD, "") == b""
    with pytest.raises(ValueError):
        serialize_close(1005, "with a reason")


def test_close_code_values() -> None:
    assert CloseCode.NORMAL_CLOSURE == 1000
    assert CloseCode.GOING_AWAY == 1001
    assert CloseCode.PROTOCOL_ERROR == 1002
    assert CloseCode.UNSUPPORTED_DATA == 1003
    assert CloseCode.NO_STATUS_RCVD == 1005
    assert CloseCode.ABNORMAL_CLOSURE == 1006
    assert CloseCode.INVALID_DATA == 1007
    assert CloseCode.POLICY_VIOLATION == 1008
    assert CloseCode.MESSAGE_TOO_BIG == 1009
    assert CloseCode.MANDATORY_EXTENSION == 1010
    assert CloseCode.INTERNAL_ERROR == 1011
    assert CloseCode.SERVICE_RESTART == 1012
    assert CloseCode.TRY_AGAIN_LATER == 1013
    assert CloseCode.BAD_GATEWAY == 1014
    assert CloseCode.TLS_HANDSHAKE == 1015


def test_close_code_phrase() -> None:
    assert CloseCode.NORMAL_CLOSURE.phrase == "normal closure"
    assert CloseCode.MESSAGE_TOO_BIG.phrase == "message too big"
    assert CloseCode(1011).phrase == "internal error"


def test_local_codes_are_never_valid_on_the_wire() -> None:
    for code in (CloseCode.NO_STATUS_RCVD, CloseCode.ABNORMAL_CLOSURE, CloseCode.TLS_HANDSHAKE):
        assert not is_valid_close_code(code)


# -- the module stays sans-I/O (DESIGN.md: the core never touches sockets or threads) ----


def test_known_close_code_names_registered_codes_only() -> None:
    assert known_close_code(1009) is CloseCode.MESSAGE_TOO_BIG
    assert known_close_code(4000) == 4000 and type(known_close_code(4000)) is int


@pytest.mark.parametrize("code, reason", [(1000, b"bye"), (1000, None), (3000.5, ""), (True, "")])
def test_codes_and_reasons_of_other_types(code: object, reason: object) -> None:
    with pytest.raises(TypeError):
        serialize_close(code, reason)  # type: ignore[arg-type]
