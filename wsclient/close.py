"""Close codes and close frame payloads (RFC 6455 sections 5.5.1 and 7.4)."""

from __future__ import annotations

import enum
from typing import Tuple, Union

from .exceptions import ProtocolError

__all__ = ["CloseCode", "is_valid_close_code", "known_close_code", "parse_close", "serialize_close"]


class CloseCode(enum.IntEnum):
    """The close codes RFC 6455 section 7.4.1 defines, and 1012-1014 (IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015

    @property
    def phrase(self) -> str:
        """A short human-readable name, such as ``"normal closure"``."""
        return self.name.lower().replace("_", " ")


#: Codes that may appear on the wire (RFC 6455 section 7.4.1; 1012-1014 are registered
#: with IANA and sent by real servers). 1004, 1005, 1006 and 1015 are reserved for local
#: use and must never be sent.
_VALID_DEFINED = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))


def known_close_code(code: int) -> Union[CloseCode, int]:
    """``code`` as a :class:`CloseCode` when it is one, else unchanged.

    Args:
        code: a close code.

    Returns:
        The enum member (which has a :attr:`~CloseCode.phrase`) or the int.
    """
    try:
        return CloseCode(code)
    except ValueError:
        return code


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may be sent in a close frame.

    Args:
        code: the close code.

    Returns:
        True for 1000-1003, 1007-1014 and 3000-4999 (RFC 6455 section 7.4.2).
    """
    return code in _VALID_DEFINED or 3000 <= code <= 4999


def parse_close(payload: bytes) -> Tuple[int, str]:
    """Read the code and reason of a received close frame.

    Args:
        payload: the close frame's (unmasked) payload.

    Returns:
        ``(code, reason)``; ``(1005, "")`` for an empty payload (RFC 6455 section 7.1.5).

    Raises:
        ProtocolError: a 1-byte payload or an invalid code (1002), a reason that is not
            valid UTF-8 (1007).
    """
    if not payload:
        return CloseCode.NO_STATUS_RCVD, ""
    if len(payload) == 1:
        raise ProtocolError("close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(f"invalid close code {code}")
    try:
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("close reason is not valid UTF-8", code=CloseCode.INVALID_DATA) from exc
    return code, reason


def serialize_close(code: int, reason: str = "") -> bytes:
    """Build a close frame payload.

    Args:
        code: a code for which :func:`is_valid_close_code` is true, or 1005 for an empty
            payload.
        reason: a reason that fits the 125-byte limit with the code (123 bytes of UTF-8).

    Returns:
        The payload bytes.

    Raises:
        TypeError: a code that is not an int, or a reason that is not a str.
        ValueError: an invalid code, or a reason that is too long.
    """
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"a close code is an int, not {type(code).__name__}")
    if not isinstance(reason, str):
        raise TypeError(f"a close reason is a str, not {type(reason).__name__}")
    if code == CloseCode.NO_STATUS_RCVD and not reason:
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"invalid close code {code}")
    data = reason.encode("utf-8")
    if len(data) > 123:
        raise ValueError("close reason must be at most 123 bytes of UTF-8")
    return int(code).to_bytes(2, "big") + data
