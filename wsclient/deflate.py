"""permessage-deflate's per-message codec (RFC 7692 section 7.2), with its options and parameters.

:class:`DeflateOptions` says what a user wants, :class:`DeflateParams` what both ends
agreed in the handshake (:mod:`wsclient.extensions` negotiates one from the other, RFC 7692
section 7.1), and :class:`PerMessageDeflate` compresses and decompresses the payloads of
one connection's messages under those parameters; the protocol layer sets and checks RSV1
around it.

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

Both ends compress with 12 window bits and memLevel 5 by default (about 32 KiB per
compressor). Measured the same way: the benchmarks' 1 MiB JSON of repetitive records takes
5.8 ms against 8.4 ms with 15 bits and memLevel 8, to 9.2 % of the input against 9.8 %;
1 MiB of JSON records with random names and numbers 17.4 ms against 20.8 ms, to 33.8 %
against 29.3 %.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass
from typing import Optional, Union

from .close import CloseCode
from .exceptions import PayloadTooBig, ProtocolError

#: What compress() takes: zlib reads any of these without a copy.
BytesLike = Union[bytes, bytearray, memoryview]

__all__ = [
    "DeflateOptions",
    "DeflateParams",
    "PerMessageDeflate",
    "compression_options",
]

#: zlib's own default; the best ratio before levels 7-9 double the time (module docstring).
DEFAULT_LEVEL = 6
#: zlib's memLevel sets its hash table to 2**(memLevel + 7) entries. By default it is
#: matched to the compressor's window, window bits minus this: a hash table as large as
#: the window. That is zlib's own default (8) for a 15-bit window, where each step down
#: makes deflate slower (module docstring), and 5 for a 12-bit one, where 8 would take
#: 96 KiB more for little or no speed (it depends on the data).
MEM_LEVEL_BELOW_WINDOW_BITS = 7
#: Below this, deflate saves little (about 16 % of a 128-byte JSON message without shared
#: context, nothing at 16 bytes), a message under 126 bytes keeps the 2-byte frame header
#: either way, and chatty connections of small messages never allocate a compressor.
DEFAULT_THRESHOLD = 128
#: The LZ77 window when a parameter is absent (RFC 7692 sections 7.1.2.1 and 7.1.2.2).
DEFAULT_WINDOW_BITS = 15
#: A server's own window under ``compression="deflate"`` (it announces it in its
#: response, section 7.1.2.1). A server holds one compressor per connection: with the
#: matching memLevel 5 it takes about 32 KiB instead of 256 KiB and compresses faster, at
#: the cost of a few per cent of ratio (module docstring). As the websockets server does.
SERVER_WINDOW_BITS = 12
#: A client's own window under ``compression="deflate"``: offered as
#: ``client_max_window_bits=12`` (a client may always compress with less than the
#: server allows, section 7.1.2.2). The same trade as the server's: about 30 % less time
#: to compress the benchmarks' 1 MiB JSON, 32 KiB per compressor instead of 262 KiB. As
#: the websockets client does. ``DeflateOptions()`` keeps 15 bits for the best ratio.
CLIENT_WINDOW_BITS = 12
MIN_WINDOW_BITS = 8

# The empty stored block a sync flush ends with (RFC 7692 sections 7.2.1 and 7.2.2).
_TAIL = b"\x00\x00\xff\xff"

#: Messages from this size on get :func:`_keep_heap` (smaller ones never faulted).
_KEEP_HEAP_FROM = 128 << 10
#: glibc raises its thresholds only for freed blocks up to 32 MiB, its header included
#: (64-bit builds).
_KEEP_HEAP_MAX = (32 << 20) - (64 << 10)
_heap_kept = 0  # The largest block _keep_heap has freed so far, in bytes.


def _keep_heap(message_size: int) -> None:
    """Stop glibc's malloc from handing back, after each message, the memory the next
    one will need again.

    Inflating a message of n bytes takes about 2.3 n at the peak: zlib's output grows in
    blocks (32 KiB, 64 KiB, 256 KiB, 1 MiB...) that are then copied into one ``bytes``,
    and a text message is decoded beside it. glibc serves blocks above its mmap
    threshold (128 KiB at first) with mmap(), and gives free memory at the top of a heap
    back to the kernel once it passes the trim threshold; freeing an mmap()-served block
    raises the first threshold to that block's size and the second to twice it
    (mallopt(3)). From where a fresh process starts, every compressed message of
    256 KiB or more was faulted in again, page by page: per echo, 93 page faults at
    256 KiB, 540 to 640 at 1 MiB, 2,000 at 4 MiB, for 10 to 20 % more CPU.

    The message's own blocks raise the thresholds only to their own size, too little
    for a peak of 2.3 n. So once per new largest message, free an untouched block of
    twice its size: calloc() maps it without touching a page, and its release raises
    both thresholds far enough. The cost: up to 4 n of freed memory per malloc arena
    (64 MiB at most) stays mapped for the next message instead of going back to the
    kernel. Other allocators only map and unmap the block. ``python -m benchmarks
    --scenario deflate`` notes the page faults.
    """
    global _heap_kept
    want = min(2 * message_size, _KEEP_HEAP_MAX)
    if message_size < _KEEP_HEAP_FROM or want <= _heap_kept:
        return
    _heap_kept = want
    block = bytes(want)  # Zero-filled by calloc(), which touches no page of a new mapping.
    del block


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
        level: zlib compression level, 0-9 (default 6, see :data:`~wsclient.deflate.DEFAULT_LEVEL`).
        mem_level: zlib memLevel, 1-9; None (the default) matches it to the window this
            end compresses with: 8 for 15 bits, 5 for 12 (see
            :data:`~wsclient.deflate.MEM_LEVEL_BELOW_WINDOW_BITS`).
        threshold: messages shorter than this many bytes are sent uncompressed (default
            128, see :data:`~wsclient.deflate.DEFAULT_THRESHOLD`); ``0`` compresses everything.

    Raises:
        ValueError: a value out of range.
        TypeError: a value of the wrong type.
    """

    client_max_window_bits: Optional[int] = None
    server_max_window_bits: Optional[int] = None
    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False
    level: int = DEFAULT_LEVEL
    mem_level: Optional[int] = None
    threshold: int = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        for name in ("client_max_window_bits", "server_max_window_bits"):
            if getattr(self, name) is not None:
                _check(name, getattr(self, name), MIN_WINDOW_BITS, DEFAULT_WINDOW_BITS)
        for name in ("client_no_context_takeover", "server_no_context_takeover"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")
        _check("level", self.level, 0, 9)
        if self.mem_level is not None:
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
    compression: Union[str, DeflateOptions, None], *, server: bool = False
) -> Optional[DeflateOptions]:
    """Resolve the ``compression=`` argument of ``connect()`` and ``serve()``.

    Args:
        compression: ``"deflate"``, a :class:`DeflateOptions`, or ``None``.
        server: for ``serve()``: ``"deflate"`` then means :data:`SERVER_WINDOW_BITS` for
            the server's own compressor; else :data:`CLIENT_WINDOW_BITS` for the client's.

    Returns:
        The options, or ``None`` for no compression. :class:`DeflateOptions` given by the
        caller are returned as they are.

    Raises:
        ValueError: an unknown string.
        TypeError: any other type.
    """
    if compression is None or isinstance(compression, DeflateOptions):
        return compression
    if isinstance(compression, str):
        if compression == "deflate":
            if server:
                return DeflateOptions(server_max_window_bits=SERVER_WINDOW_BITS)
            return DeflateOptions(client_max_window_bits=CLIENT_WINDOW_BITS)
        raise ValueError(f'compression must be "deflate" or None, not {compression!r}')
    raise TypeError(f"compression must be a str, DeflateOptions or None, not {compression!r}")


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
        self._mem_level = options.mem_level or -self._compress_wbits - MEM_LEVEL_BELOW_WINDOW_BITS
        self._strategy = zlib.Z_RLE if own_bits < 9 else zlib.Z_DEFAULT_STRATEGY
        self._decompress_wbits = -max(peer_bits, 9)
        self._compressor: Optional["zlib._Compress"] = None
        self._decompressor: Optional["zlib._Decompress"] = None
        self._fragmenting = False
        self._received = 0  # compressed bytes of the current incoming message
        self._inflated = 0  # and what they inflated to so far

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

    def _compress(self, data: BytesLike, final: bool, flush: bool = True) -> bytes:
        if self._compressor is None:
            self._compressor = zlib.compressobj(
                self.options.level,
                zlib.DEFLATED,
                self._compress_wbits,
                self._mem_level,
                self._strategy,
            )
        output = self._compressor.compress(data)
        if not (flush or final):
            return output  # zlib keeps what it has not emitted yet for the next call.
        output += self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if final:
            output = output[: -len(_TAIL)]  # section 7.2.1
            if self._own_reset:
                self._compressor = None
        return output

    def compress(self, data: BytesLike) -> bytes:
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

    def compress_fragment(self, data: BytesLike, final: bool, *, flush: bool = True) -> bytes:
        """Compress one fragment of a message, flushed so it can be sent at once.

        Only the final fragment has the trailing ``00 00 ff ff`` removed (section 7.2.1).

        Args:
            data: the fragment's uncompressed bytes.
            final: whether this fragment ends the message.
            flush: False when the next fragment follows at once: zlib may then keep the
                last bytes of this one (possibly all of them) to emit with the next, and
                the message compresses exactly as it would in one piece. The final
                fragment is always flushed.

        Returns:
            The fragment's payload (it may be empty when ``flush`` is False).
        """
        self._fragmenting = not final
        return self._compress(data, final, flush)

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
        output = self._inflate(data, max_length)
        self._inflated += len(output)
        return output

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
        _keep_heap(self._inflated + len(output))
        self._received = self._inflated = 0
        if self._peer_reset:
            self._decompressor = None
        return output
