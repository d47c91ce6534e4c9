"""permessage-deflate (RFC 7692): agreeing on it in the handshake, then deflating each message.

Negotiation is four pure functions over ``Sec-WebSocket-Extensions`` header values:
:func:`client_offer` and :func:`client_accept` for the client, :func:`server_accept` for the
server, and :func:`parse_extensions` beneath them. They turn :class:`DeflateOptions` (what a
user wants) into :class:`DeflateParams` (what both ends agreed). :class:`PerMessageDeflate`
then transforms message payloads; the protocol layer sets and checks RSV1 around it.

Window bits 8. zlib cannot compress raw deflate with a 256-byte window (it refuses, or
before 1.2.9 silently used 512 bytes, madler/zlib#171), so some peers decline offers that
would make them compress with 8. We accept 8 everywhere the RFC allows it: when our own
compressor must keep a 256-byte window, it runs zlib with 9 window bits and the ``Z_RLE``
strategy, documented to match only at distance one, so the output is valid for any
window (RFC 7692 section 7.1.2). (zlib's ordinary 9-bit output also stays within 250
bytes, as its matches end 262 bytes short of the window, but zlib does not promise it.)
We inflate with at least 9 window bits, which reads every valid 8-bit stream.

Default tuning, measured with CPython 3.11 and zlib 1.2.13 on a 1 MiB JSON message:
level 6 gives 24.8 % of the input at about 53 MiB/s (level 1: 30.1 % at 147 MiB/s; level
9: 24.0 % at 17 MiB/s). A compressor with 15 window bits and memLevel 8 holds about
262 KiB (memLevel 7: 198 KiB, 13 % slower; memLevel 5: 150 KiB, 60 % slower), a
decompressor about 39 KiB (7 KiB of state plus the 32 KiB window); both are created on
first use and freed after each message under no_context_takeover.
"""

from __future__ import annotations

import re
import sys
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .close import CloseCode
from .exceptions import NegotiationError, PayloadTooBig, ProtocolError

__all__ = [
    "EXTENSION_NAME",
    "DeflateOptions",
    "DeflateParams",
    "PerMessageDeflate",
    "client_accept",
    "client_offer",
    "compression_options",
    "parse_extensions",
    "server_accept",
]

EXTENSION_NAME = "permessage-deflate"

#: zlib's own default; the best ratio before levels 7-9 double the time (module docstring).
DEFAULT_LEVEL = 6
#: zlib's own default: the fastest and smallest output; each step down halves the hash
#: table (64 KiB less at 7) but makes deflate slower.
DEFAULT_MEM_LEVEL = 8
#: Below this, deflate saves little (about 16 % of a 128-byte JSON message without shared
#: context, nothing at 16 bytes), a message under 126 bytes keeps the 2-byte frame header
#: either way, and chatty connections of small messages never allocate a compressor.
DEFAULT_THRESHOLD = 128
#: The LZ77 window when a parameter is absent (RFC 7692 sections 7.1.2.1 and 7.1.2.2).
DEFAULT_WINDOW_BITS = 15
MIN_WINDOW_BITS = 8

Params = List[Tuple[str, Optional[str]]]
Extensions = List[Tuple[str, Params]]

# The empty stored block a sync flush ends with (RFC 7692 sections 7.2.1 and 7.2.2).
_TAIL = b"\x00\x00\xff\xff"
_PARAM_NAMES = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)
# RFC 7230 section 3.2.6 token and quoted-string; RFC 7692 section 7.1.2 window bits.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*)"')
_WINDOW_BITS = re.compile(r"8|9|1[0-5]")


def _check(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")


@dataclass(frozen=True)
class DeflateOptions:
    """How to use permessage-deflate (RFC 7692); ``compression="deflate"`` means the defaults.

    On a client the options say what to offer and request; on a server, what to accept and
    require. Window bits are base-2 logarithms of the LZ77 window, 8 to 15; ``None`` leaves
    the choice open (RFC 7692 section 7.1.2).

    Attributes:
        client_max_window_bits: client: the largest window it will compress with (offered
            with this value; ``None`` offers the parameter bare so the server may pick).
            Server: the largest window it lets clients use; an offer that does not let the
            server set it is declined.
        server_max_window_bits: client: the largest window it asks the server to compress
            with. Server: the largest window it compresses with.
        client_no_context_takeover: client: it resets its compressor after each message
            (and says so). Server: it requires clients to, saving its memory.
        server_no_context_takeover: client: it requires the server to reset after each
            message. Server: it resets its compressor after each message.
        level: zlib compression level, 0-9 (default 6, see :data:`DEFAULT_LEVEL`).
        mem_level: zlib memLevel, 1-9 (default 8, see :data:`DEFAULT_MEM_LEVEL`).
        threshold: messages shorter than this many bytes are sent uncompressed (default
            128, see :data:`DEFAULT_THRESHOLD`); ``0`` compresses everything.

    Raises:
        ValueError: a value out of range.
        TypeError: a value of the wrong type.
    """

    client_max_window_bits: Optional[int] = None
    server_max_window_bits: Optional[int] = None
    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False
    level: int = DEFAULT_LEVEL
    mem_level: int = DEFAULT_MEM_LEVEL
    threshold: int = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        for name in ("client_max_window_bits", "server_max_window_bits"):
            if getattr(self, name) is not None:
                _check(name, getattr(self, name), MIN_WINDOW_BITS, DEFAULT_WINDOW_BITS)
        for name in ("client_no_context_takeover", "server_no_context_takeover"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")
        _check("level", self.level, 0, 9)
        _check("mem_level", self.mem_level, 1, 9)
        _check("threshold", self.threshold, 0, sys.maxsize)


@dataclass(frozen=True)
class DeflateParams:
    """What both ends agreed in the handshake (RFC 7692 section 7.1).

    Attributes:
        server_max_window_bits: the window the server compresses with (8-15).
        client_max_window_bits: the window the client compresses with (8-15).
        server_no_context_takeover: the server resets its compressor after each message.
        client_no_context_takeover: the client resets its compressor after each message.
    """

    server_max_window_bits: int = DEFAULT_WINDOW_BITS
    client_max_window_bits: int = DEFAULT_WINDOW_BITS
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False


def compression_options(
    compression: Union[str, DeflateOptions, None],
) -> Optional[DeflateOptions]:
    """Resolve the ``compression=`` argument of ``connect()`` and ``serve()``.

    Args:
        compression: ``"deflate"``, a :class:`DeflateOptions`, or ``None``.

    Returns:
        The options, or ``None`` for no compression.

    Raises:
        ValueError: an unknown string.
        TypeError: any other type.
    """
    if compression is None or isinstance(compression, DeflateOptions):
        return compression
    if isinstance(compression, str):
        if compression == "deflate":
            return DeflateOptions()
        raise ValueError(f'compression must be "deflate" or None, not {compression!r}')
    raise TypeError(f"compression must be a str, DeflateOptions or None, not {compression!r}")


# --- Header syntax (RFC 6455 section 9.1) ----------------------------------------------


def _skip_ows(value: str, pos: int) -> int:
    while pos < len(value) and value[pos] in " \t":
        pos += 1
    return pos


def _token(value: str, pos: int, what: str) -> Tuple[str, int]:
    match = _TOKEN.match(value, pos)
    if match is None:
        raise NegotiationError(f"expected {what} at position {pos} in {value!r}")
    return match.group(), _skip_ows(value, match.end())


def _param_value(value: str, pos: int) -> Tuple[str, int]:
    if not value.startswith('"', pos):
        return _token(value, pos, "a parameter value")
    match = _QUOTED.match(value, pos)
    if match is None:
        raise NegotiationError(f"unterminated quoted string in {value!r}")
    text = re.sub(r"\\(.)", r"\1", match.group(1))
    if not _TOKEN.fullmatch(text):  # RFC 6455 section 9.1: unquoted, it must be a token
        raise NegotiationError(f"quoted value {text!r} is not a token in {value!r}")
    return text, _skip_ows(value, match.end())


def _parse_value(value: str, extensions: Extensions) -> None:
    pos = 0
    while True:
        pos = _skip_ows(value, pos)
        if pos < len(value) and value[pos] == ",":  # empty list elements are allowed
            pos += 1
            continue
        if pos == len(value):
            return
        name, pos = _token(value, pos, "an extension name")
        params: Params = []
        while value.startswith(";", pos):
            pos = _skip_ows(value, pos + 1)
            param, pos = _token(value, pos, "a parameter name")
            argument = None
            if value.startswith("=", pos):
                pos = _skip_ows(value, pos + 1)
                argument, pos = _param_value(value, pos)
            params.append((param, argument))
        extensions.append((name, params))
        if pos < len(value) and value[pos] != ",":
            raise NegotiationError(f"unexpected {value[pos]!r} at position {pos} in {value!r}")


def parse_extensions(values: Sequence[str]) -> Extensions:
    """Parse ``Sec-WebSocket-Extensions`` header values (RFC 6455 section 9.1).

    Args:
        values: every value of the header, in order; each may hold a comma-separated list.

    Returns:
        ``(name, params)`` for each extension in order, ``params`` being ``(name, value)``
        pairs where ``value`` is ``None`` for a bare parameter and quoted values come
        unquoted.

    Raises:
        NegotiationError: a syntax error.
    """
    extensions: Extensions = []
    for value in values:
        _parse_value(value, extensions)
    return extensions


# --- Negotiation (RFC 7692 section 7.1) ------------------------------------------------


def _read_params(params: Params, *, response: bool) -> Dict[str, Optional[int]]:
    """Check one offer's or response's parameters; ValueError if RFC 7692 section 7.1 forbids.

    Returns a dict holding each parameter present: True for the no_context_takeover flags,
    the window bits, or None for an offer's bare client_max_window_bits.
    """
    found: Dict[str, Optional[int]] = {}
    for name, value in params:
        if name not in _PARAM_NAMES:
            raise ValueError(f"unknown parameter {name!r}")
        if name in found:
            raise ValueError(f"duplicate parameter {name!r}")
        if name.endswith("_no_context_takeover"):
            if value is not None:
                raise ValueError(f"{name} takes no value, got {value!r}")
            found[name] = True
        elif value is None:  # section 7.1.2.2: a bare value only in an offer
            if response or name == "server_max_window_bits":
                raise ValueError(f"{name} needs a value")
            found[name] = None
        elif not _WINDOW_BITS.fullmatch(value):
            raise ValueError(f"{name} must be 8 to 15 without leading zeroes, not {value!r}")
        else:
            found[name] = int(value)
    return found


def _header(params: Dict[str, Optional[int]]) -> str:
    """Format parameters shaped as :func:`_read_params` returns them."""
    parts = [EXTENSION_NAME]
    for name, value in params.items():
        parts.append(name if value is None or value is True else f"{name}={value}")
    return "; ".join(parts)


def _offer(options: DeflateOptions) -> Dict[str, Optional[int]]:
    offer: Dict[str, Optional[int]] = {}
    for name in ("server_no_context_takeover", "client_no_context_takeover"):
        if getattr(options, name):
            offer[name] = True
    if options.server_max_window_bits is not None:
        offer["server_max_window_bits"] = options.server_max_window_bits
    offer["client_max_window_bits"] = options.client_max_window_bits  # None: bare
    return offer


def client_offer(options: DeflateOptions) -> str:
    """The ``Sec-WebSocket-Extensions`` value a client sends (RFC 7692 section 7.1).

    ``client_max_window_bits`` is always offered: bare, so the server may limit the
    client's window, or with the client's own limit.

    Args:
        options: what the client wants.

    Returns:
        e.g. ``"permessage-deflate; client_max_window_bits"``.
    """
    return _header(_offer(options))


def _check_response(
    offered: Dict[str, Optional[int]], got: Dict[str, Optional[int]]
) -> DeflateParams:
    """Match a valid response to the offer it answers (RFC 7692 sections 7.1.1 and 7.1.2)."""
    if "client_max_window_bits" in got and "client_max_window_bits" not in offered:
        raise NegotiationError("server sent client_max_window_bits, which was not offered")
    if "server_no_context_takeover" in offered and "server_no_context_takeover" not in got:
        raise NegotiationError("server did not accept the requested server_no_context_takeover")
    server_bits = got.get("server_max_window_bits") or DEFAULT_WINDOW_BITS
    asked = offered.get("server_max_window_bits") or DEFAULT_WINDOW_BITS
    if server_bits > asked:
        raise NegotiationError(
            f"server_max_window_bits={server_bits} is more than the {asked} requested"
        )
    # Section 7.1.2.2: a client that offered a value never uses more than it.
    client_bits = min(
        got.get("client_max_window_bits") or DEFAULT_WINDOW_BITS,
        offered.get("client_max_window_bits") or DEFAULT_WINDOW_BITS,
    )
    return DeflateParams(
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
        server_no_context_takeover="server_no_context_takeover" in got,
        client_no_context_takeover="client_no_context_takeover" in got
        or "client_no_context_takeover" in offered,
    )


def client_accept(options: DeflateOptions, values: Sequence[str]) -> Optional[DeflateParams]:
    """Check the server's ``Sec-WebSocket-Extensions`` against the client's offer.

    Args:
        options: the options :func:`client_offer` was given.
        values: every value of the header in the server's response (maybe none).

    Returns:
        The agreed parameters, or ``None`` if the server declined compression.

    Raises:
        NegotiationError: the server accepted an extension not offered, answered more
            than once, or broke a rule of RFC 7692 section 7.1; the client must fail the
            connection.
    """
    extensions = parse_extensions(values)
    if not extensions:
        return None
    for name, _ in extensions:
        if name != EXTENSION_NAME:
            raise NegotiationError(f"server accepted extension {name!r}, which was not offered")
    if len(extensions) > 1:
        raise NegotiationError(f"server accepted {EXTENSION_NAME} more than once")
    try:
        got = _read_params(extensions[0][1], response=True)
    except ValueError as exc:
        raise NegotiationError(f"invalid {EXTENSION_NAME} response: {exc}") from exc
    return _check_response(_offer(options), got)


def _answer_offer(
    options: DeflateOptions, offer: Dict[str, Optional[int]]
) -> Optional[Tuple[str, DeflateParams]]:
    """The server's response to one valid offer, or None if it cannot meet it."""
    answer: Dict[str, Optional[int]] = {}
    for name in ("server_no_context_takeover", "client_no_context_takeover"):
        if getattr(options, name) or name in offer:  # sections 7.1.1.1 and 7.1.1.2
            answer[name] = True
    if "server_max_window_bits" in offer or options.server_max_window_bits is not None:
        answer["server_max_window_bits"] = min(  # section 7.1.2.1
            offer.get("server_max_window_bits") or DEFAULT_WINDOW_BITS,
            options.server_max_window_bits or DEFAULT_WINDOW_BITS,
        )
    limit = options.client_max_window_bits or DEFAULT_WINDOW_BITS
    if "client_max_window_bits" not in offer:
        if limit < DEFAULT_WINDOW_BITS:
            return None  # section 7.1.2.2: then the client may use 15 bits
    elif offer["client_max_window_bits"] is not None or limit < DEFAULT_WINDOW_BITS:
        answer["client_max_window_bits"] = min(
            offer["client_max_window_bits"] or DEFAULT_WINDOW_BITS, limit
        )
    params = DeflateParams(
        server_max_window_bits=answer.get("server_max_window_bits") or DEFAULT_WINDOW_BITS,
        client_max_window_bits=answer.get("client_max_window_bits") or DEFAULT_WINDOW_BITS,
        server_no_context_takeover="server_no_context_takeover" in answer,
        client_no_context_takeover="client_no_context_takeover" in answer,
    )
    return _header(answer), params


def server_accept(
    options: DeflateOptions, values: Sequence[str]
) -> Optional[Tuple[str, DeflateParams]]:
    """Pick the first acceptable permessage-deflate offer (RFC 7692 sections 5.1 and 7.1).

    Offers with unknown, duplicate or invalid parameters are declined, as are offers the
    server's options cannot meet; other extensions are ignored.

    Args:
        options: what the server accepts and requires.
        values: every value of ``Sec-WebSocket-Extensions`` in the client's request.

    Returns:
        ``(response header value, agreed parameters)``, or ``None`` to go on without
        compression.

    Raises:
        NegotiationError: the header is not valid syntax (answer 400).
    """
    for name, params in parse_extensions(values):
        if name != EXTENSION_NAME:
            continue
        try:
            offer = _read_params(params, response=False)
        except ValueError:
            continue
        answer = _answer_offer(options, offer)
        if answer is not None:
            return answer
    return None


# --- The codec (RFC 7692 section 7.2) ---------------------------------------------------


class PerMessageDeflate:
    """Compress and decompress the messages of one connection (RFC 7692 section 7.2).

    zlib objects are made on first use, so a connection that never sends (or receives) a
    compressed message holds no compressor (or decompressor) memory.

    Args:
        params: what the handshake agreed.
        is_client: whether this end is the client (it compresses with the client's window).
        options: this end's options, for ``level``, ``mem_level`` and ``threshold``.
    """

    def __init__(
        self, params: DeflateParams, *, is_client: bool, options: DeflateOptions
    ) -> None:
        self.params = params
        self.is_client = is_client
        self.options = options
        if is_client:
            own_bits, peer_bits = params.client_max_window_bits, params.server_max_window_bits
            self._own_reset = params.client_no_context_takeover
            self._peer_reset = params.server_no_context_takeover
        else:
            own_bits, peer_bits = params.server_max_window_bits, params.client_max_window_bits
            self._own_reset = params.server_no_context_takeover
            self._peer_reset = params.client_no_context_takeover
        # Window 8: see the module docstring. Z_RLE only matches at distance 1.
        self._compress_wbits = -max(own_bits, 9)
        self._strategy = zlib.Z_RLE if own_bits < 9 else zlib.Z_DEFAULT_STRATEGY
        self._decompress_wbits = -max(peer_bits, 9)
        self._compressor: Optional["zlib._Compress"] = None
        self._decompressor: Optional["zlib._Decompress"] = None
        self._fragmenting = False
        self._received = 0  # compressed bytes of the current incoming message

    def should_compress(self, size: int, override: Optional[bool]) -> bool:
        """Whether to compress a message of ``size`` bytes.

        Args:
            size: the message's length in bytes.
            override: ``True`` or ``False`` forces the answer; ``None`` compares ``size``
                with ``options.threshold``.

        Returns:
            Whether to compress.
        """
        if override is not None:
            return override
        return size >= self.options.threshold

    def _compress(self, data: bytes, final: bool) -> bytes:
        if self._compressor is None:
            self._compressor = zlib.compressobj(
                self.options.level,
                zlib.DEFLATED,
                self._compress_wbits,
                self.options.mem_level,
                self._strategy,
            )
        output = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if final:
            output = output[: -len(_TAIL)]  # section 7.2.1
            if self._own_reset:
                self._compressor = None
        return output

    def compress(self, data: bytes) -> bytes:
        """Compress a whole message (RFC 7692 section 7.2.1).

        Args:
            data: the message payload (any bytes-like object).

        Returns:
            The payload to send with RSV1 set; never empty (an empty message gives ``00``).

        Raises:
            RuntimeError: a fragmented message is being compressed.
        """
        if self._fragmenting:
            raise RuntimeError("compress() during a fragmented message")
        return self._compress(data, True)

    def compress_fragment(self, data: bytes, final: bool) -> bytes:
        """Compress one fragment of a message, flushed so it can be sent at once.

        Only the final fragment has the trailing ``00 00 ff ff`` removed (section 7.2.1).

        Args:
            data: the fragment's uncompressed bytes.
            final: whether this fragment ends the message.

        Returns:
            The fragment's payload.
        """
        self._fragmenting = not final
        return self._compress(data, final)

    def _inflate(self, data: bytes, max_length: Optional[int]) -> bytes:
        if max_length is not None and max_length < 0:
            raise ValueError(f"max_length must be >= 0 or None, not {max_length}")
        parts = []
        while True:
            if self._decompressor is None or self._decompressor.eof:
                self._decompressor = zlib.decompressobj(self._decompress_wbits)
            inflater = self._decompressor
            try:  # zlib's max_length (0: no limit) bounds the memory a bomb can take
                output = inflater.decompress(data, 0 if max_length is None else max_length + 1)
            except zlib.error as exc:
                self._decompressor = None
                raise ProtocolError(
                    f"invalid compressed data: {exc}", code=CloseCode.INVALID_DATA
                ) from exc
            if max_length is not None:
                if len(output) > max_length or inflater.unconsumed_tail:
                    self._decompressor = None
                    raise PayloadTooBig("message too big after decompression")
                max_length -= len(output)
            parts.append(output)
            # A block with BFINAL set ends the deflate stream (section 7.2.3.3); what
            # follows starts a new one. (Its window is lost: a peer that refers back
            # across a BFINAL block gets 1007. Peers that end streams start afresh.)
            data = inflater.unused_data
            if not (inflater.eof and data):
                return b"".join(parts)

    def decompress(self, data: bytes, *, max_length: Optional[int]) -> bytes:
        """Feed a chunk of a compressed message's payload (RFC 7692 section 7.2.2).

        Args:
            data: the next compressed bytes, from one frame or part of one.
            max_length: how many more decompressed bytes the message may grow by;
                ``None`` is unlimited.

        Returns:
            The bytes decompressed so far from this chunk.

        Raises:
            PayloadTooBig: the output would exceed ``max_length`` (found while inflating,
                with memory bounded by ``max_length``).
            ProtocolError: the data is not valid deflate (code 1007, as Node's ws does: the
                payload does not match the message's declared encoding).
        """
        self._received += len(data)
        return self._inflate(data, max_length)

    def decompress_end(self, *, max_length: Optional[int]) -> bytes:
        """Finish the current message: append ``00 00 ff ff`` and inflate what remains.

        Args:
            max_length: as for :meth:`decompress`.

        Returns:
            The last decompressed bytes of the message.

        Raises:
            PayloadTooBig: as for :meth:`decompress`.
            ProtocolError: as for :meth:`decompress`.
        """
        # No payload at all, or a stream that already ended with BFINAL (section 7.2.3.3):
        # the tail would start a stored block that never ends, so it is not appended.
        ended = self._decompressor is not None and self._decompressor.eof
        output = b"" if ended or not self._received else self._inflate(_TAIL, max_length)
        self._received = 0
        if self._peer_reset:
            self._decompressor = None
        return output
