"""Incremental, fail-fast UTF-8 validation of text messages (RFC 6455 sections 5.6, 8.1).

A text message may arrive in many frames and each frame in many reads; the connection must
fail (1007) at the first byte that makes the message invalid, not when the message ends.
The standard library's incremental decoder does this for every invalid sequence but one: a
dangling ``ED A0..BF`` (the start of a UTF-16 surrogate) is held back as "incomplete".
:class:`Utf8Decoder` adds that check.
"""

from __future__ import annotations

import codecs
from typing import Union

from .close import CloseCode
from .exceptions import ProtocolError

__all__ = ["Utf8Decoder", "decode_text"]

BytesLike = Union[bytes, bytearray, memoryview]


def _invalid(exc: Exception) -> ProtocolError:
    error = ProtocolError("invalid UTF-8 in a text message", code=CloseCode.INVALID_DATA)
    error.__cause__ = exc
    return error


def decode_text(data: BytesLike) -> str:
    """Decode a whole text message.

    Args:
        data: the message's bytes.

    Returns:
        The text.

    Raises:
        ProtocolError: invalid UTF-8 (code 1007).
    """
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(exc) from exc


class Utf8Decoder:
    """Decodes a text message piece by piece, failing at the first invalid byte."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def decode(self, data: BytesLike, final: bool = False) -> str:
        """Decode the next piece of the message.

        Args:
            data: the next bytes of the message.
            final: True for the last piece: an incomplete sequence at the end is then
                invalid too.

        Returns:
            The text decoded so far from this piece (a sequence split across pieces is
            returned with the piece that completes it).

        Raises:
            ProtocolError: the bytes so far cannot begin any valid UTF-8 text (code 1007).
        """
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise _invalid(exc) from exc
        if not final:
            pending = self._decoder.getstate()[0]
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise _invalid(ValueError("UTF-16 surrogate encoded in UTF-8"))
        return text

    def reset(self) -> None:
        """Forget any partial sequence, ready for the next message."""
        self._decoder.reset()
