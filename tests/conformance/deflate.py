"""The driver's own permessage-deflate (RFC 7692): reading offers and answers, and a codec.

Part of the conformance driver (see :mod:`driver`); like it, built on ``zlib`` alone.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple


class DriverError(AssertionError):
    """The peer under test broke a rule the driver checks (handshake or frame)."""


_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 section 7.2.1



def parse_extensions(value: str, *, strict: bool = True) -> List[Tuple[str, Dict[str, Optional[str]]]]:
    """Parse a ``Sec-WebSocket-Extensions`` value into ``(name, {param: value})``.

    Raises:
        DriverError: a repeated parameter, unless ``strict`` is false (the driver's own
            deliberately broken answers).
    """
    result = []
    for item in value.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        params: Dict[str, Optional[str]] = {}
        for part in parts[1:]:
            name, eq, arg = part.partition("=")
            name = name.strip()
            if name in params and strict:
                raise DriverError(f"repeated extension parameter {name!r} in {value!r}")
            params[name] = arg.strip().strip('"') if eq else None
        result.append((parts[0], params))
    return result


@dataclass(frozen=True)
class DeflateParams:
    """What the handshake agreed, as the driver reads it (RFC 7692 section 7.1)."""

    server_bits: int = 15
    client_bits: int = 15
    server_reset: bool = False
    client_reset: bool = False


def _bits(value: Optional[str], name: str) -> int:
    if value is None or not value.isdigit() or not 8 <= int(value) <= 15 or value.startswith("0"):
        raise DriverError(f"{name} must be 8 to 15, got {value!r}")
    return int(value)


def agreed_params(offer: Dict[str, Optional[str]], answer: Dict[str, Optional[str]]) -> DeflateParams:
    """Check a server's answer against the client's offer (RFC 7692 sections 7.1.1, 7.1.2).

    Raises:
        DriverError: the answer breaks a rule of the RFC for the server.
    """
    known = {"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits"}
    for name, value in answer.items():
        if name not in known:
            raise DriverError(f"unknown permessage-deflate parameter {name!r} in the answer")
        if name.endswith("no_context_takeover") and value is not None:
            raise DriverError(f"{name} takes no value")
    if "server_no_context_takeover" in offer and "server_no_context_takeover" not in answer:
        raise DriverError("the answer dropped the server_no_context_takeover the offer asked for")  # 7.1.1.1
    server_bits = 15
    if "server_max_window_bits" in answer:
        server_bits = _bits(answer["server_max_window_bits"], "server_max_window_bits")
    if "server_max_window_bits" in offer and server_bits > int(offer["server_max_window_bits"] or 15):
        raise DriverError("server_max_window_bits in the answer is over the offer's")  # 7.1.2.1
    client_bits = 15
    if "client_max_window_bits" in answer:
        if "client_max_window_bits" not in offer:
            raise DriverError("client_max_window_bits answered but not offered")  # 7.1.2.2
        client_bits = _bits(answer["client_max_window_bits"], "client_max_window_bits")
    if offer.get("client_max_window_bits"):
        client_bits = min(client_bits, int(offer["client_max_window_bits"] or 15))
    return DeflateParams(
        server_bits=server_bits,
        client_bits=client_bits,
        server_reset="server_no_context_takeover" in answer,
        client_reset="client_no_context_takeover" in answer or "client_no_context_takeover" in offer,
    )


class Deflate:
    """The driver's own permessage-deflate codec (RFC 7692 section 7.2).

    It inflates with exactly the window the peer agreed to and in small steps, so a peer
    that refers further back than its window fails with "invalid distance too far back".

    Args:
        params: the agreed parameters.
        client: whether the driver plays the client (it then compresses with the client's
            window and context rule).
    """

    def __init__(self, params: DeflateParams, *, client: bool) -> None:
        self.params = params
        own, peer = (params.client_bits, params.server_bits) if client else (params.server_bits, params.client_bits)
        self.own_reset = params.client_reset if client else params.server_reset
        self.peer_reset = params.server_reset if client else params.client_reset
        # zlib will not deflate with an 8-bit window; with 9 bits and Z_RLE every match
        # is at distance 1, which fits any window.
        self._own_bits = max(own, 9)
        self._strategy = zlib.Z_RLE if own == 8 else zlib.Z_DEFAULT_STRATEGY
        self.peer_bits = peer
        self._compressor: Optional["zlib._Compress"] = None
        self._decompressor: Optional["zlib._Decompress"] = None

    def compress(self, data: bytes, *, final: bool = True, bfinal: bool = False, keep_tail: bool = False) -> bytes:
        """Deflate one message (or, with ``final=False``, one fragment of it)."""
        if self._compressor is None:
            self._compressor = zlib.compressobj(6, zlib.DEFLATED, -self._own_bits, 8, self._strategy)
        out = self._compressor.compress(data)
        if final and bfinal:  # RFC 7692 section 7.2.3.3: end with a BFINAL block
            out += self._compressor.flush(zlib.Z_FINISH)
            self._compressor = None
            return out
        out += self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if final:
            if not keep_tail:
                assert out.endswith(_TAIL)
                out = out[: -len(_TAIL)]
            if self.own_reset:
                self._compressor = None
        return out

    def decompress(self, data: bytes, *, final: bool, step: Optional[int] = 64) -> bytes:
        """Inflate a fragment of a compressed message from the peer.

        Raises:
            DriverError: not valid deflate data within the agreed window.
        """
        if final:
            data += _TAIL
        out: List[bytes] = []
        if self._decompressor is None or self._decompressor.eof:
            self._decompressor = zlib.decompressobj(-self.peer_bits)
        inflater = self._decompressor
        try:
            while True:
                chunk = inflater.decompress(data, step or 0)
                out.append(chunk)
                data = inflater.unconsumed_tail
                # A full step may leave output pending inside zlib: ask again.
                if inflater.eof or (not data and (not step or len(chunk) < step)):
                    break
        except zlib.error as exc:
            raise DriverError(f"peer sent invalid deflate data (window {self.peer_bits} bits): {exc}") from exc
        if final and (self.peer_reset or inflater.eof):
            self._decompressor = None
        return b"".join(out)
