"""Tests for wsclient.deflate: the per-message codec, its options, and what negotiation feeds it."""

from __future__ import annotations

import itertools
import platform
import random
import subprocess
import sys
import tracemalloc
import zlib
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import pytest

from wsclient import deflate
from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate, compression_options
from wsclient.exceptions import PayloadTooBig, ProtocolError
from wsclient.extensions import client_accept, client_offer, server_accept

TAIL = b"\x00\x00\xff\xff"
MiB = 1 << 20


def words_text(size: int, seed: int = 0, vocabulary: int = 400) -> bytes:
    """Random but compressible text: words drawn from a fixed random vocabulary."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = [
        "".join(rng.choice(letters) for _ in range(rng.randrange(2, 10)))
        for _ in range(vocabulary)
    ]
    out: List[str] = []
    length = 0
    while length < size:
        word = rng.choice(vocab)
        out.append(word)
        length += len(word) + 1
    return " ".join(out).encode()[:size]


def codecs(
    params: DeflateParams = DeflateParams(), options: DeflateOptions = DeflateOptions()
) -> Tuple[PerMessageDeflate, PerMessageDeflate]:
    """A client codec and a server codec that agreed ``params``."""
    return (
        PerMessageDeflate(params, is_client=True, options=options),
        PerMessageDeflate(params, is_client=False, options=options),
    )


def receive(codec: PerMessageDeflate, *chunks: bytes, max_length: Optional[int] = None) -> bytes:
    """Inflate one message fed in chunks, as the protocol layer does."""
    output = b""
    for chunk in chunks:
        left = None if max_length is None else max_length - len(output)
        output += codec.decompress(chunk, max_length=left)
    left = None if max_length is None else max_length - len(output)
    return output + codec.decompress_end(max_length=left)


def inflate_strictly(payloads: Iterable[bytes], window_bits: int) -> List[bytes]:
    """Inflate messages one output byte per zlib call, so that every back-reference
    must lie within the last ``2**window_bits`` bytes (zlib raises otherwise)."""
    inflater = zlib.decompressobj(-window_bits)
    messages = []
    for payload in payloads:
        out = bytearray()
        data = payload + TAIL
        while True:
            chunk = inflater.decompress(data, 1)
            out += chunk
            data = inflater.unconsumed_tail
            if not chunk and not data:
                break
        messages.append(bytes(out))
    return messages


# --- RFC 7692 section 7.2.3 examples ------------------------------------------------


def test_rfc_hello_example_decodes_and_our_encoding_round_trips() -> None:
    client, server = codecs()
    assert receive(server, bytes.fromhex("f248cdc9c90700")) == b"Hello"
    payload = client.compress(b"Hello")
    assert not payload.endswith(TAIL)
    assert receive(server, payload) == b"Hello"
    assert zlib.decompressobj(-15).decompress(payload + TAIL) == b"Hello"


def test_rfc_sliding_window_example_needs_the_previous_message() -> None:
    _, server = codecs()
    assert receive(server, bytes.fromhex("f248cdc9c90700")) == b"Hello"
    assert receive(server, bytes.fromhex("f200110000")) == b"Hello"
    # The same bytes without the shared window refer to data that is not there.
    _, fresh = codecs(DeflateParams(client_no_context_takeover=True))
    assert receive(fresh, bytes.fromhex("f248cdc9c90700")) == b"Hello"
    with pytest.raises(ProtocolError) as info:
        receive(fresh, bytes.fromhex("f200110000"))
    assert info.value.code == 1007


def test_our_second_hello_uses_the_sliding_window() -> None:
    client, server = codecs()
    first, second = client.compress(b"Hello"), client.compress(b"Hello")
    assert len(second) < len(first)
    assert receive(server, first) == receive(server, second) == b"Hello"


def test_rfc_no_compression_block_example() -> None:
    _, server = codecs()
    assert receive(server, bytes.fromhex("000500faff48656c6c6f00")) == b"Hello"


def test_rfc_bfinal_example_and_the_next_message() -> None:
    _, server = codecs()
    assert receive(server, bytes.fromhex("f348cdc9c9070000")) == b"Hello"
    # Without the RFC's trailing 00 octet too: the stream simply ended.
    assert receive(server, bytes.fromhex("f348cdc9c90700")) == b"Hello"
    assert receive(server, bytes.fromhex("f248cdc9c90700")) == b"Hello"
    assert receive(server, bytes.fromhex("f200110000")) == b"Hello"


def test_rfc_two_blocks_example_whole_and_split() -> None:
    _, server = codecs()
    two_blocks = bytes.fromhex("f24805000000ffffcac9c90700")
    assert receive(server, two_blocks) == b"Hello"
    assert receive(server, *(two_blocks[i : i + 1] for i in range(len(two_blocks)))) == b"Hello"


def test_rfc_empty_fragment_example() -> None:
    client, server = codecs()
    first = client.compress_fragment(b"Hello", False)
    assert first.endswith(TAIL)
    last = client.compress_fragment(b"", True)
    assert last == b"\x00"  # RFC 7692 section 7.2.3.6
    assert receive(server, first, last) == b"Hello"
    assert receive(server, bytes.fromhex("f248cdc9c907000000ffff"), b"\x00") == b"Hello"


def test_empty_message() -> None:
    client, server = codecs()
    assert client.compress(b"") == b"\x00"
    assert receive(server, client.compress(b"")) == b""
    assert receive(server, client.compress(b"")) == b""
    assert receive(server) == b""  # an empty payload with RSV1 is read as empty too
    assert receive(server, client.compress(b"after")) == b"after"


# --- Codec ----------------------------------------------------------------------------


def test_context_takeover_makes_repeated_messages_small() -> None:
    message = words_text(4000, seed=1)
    client, server = codecs()
    first, second = client.compress(message), client.compress(message)
    assert len(second) < len(first) / 10
    assert receive(server, first) == receive(server, second) == message

    client, server = codecs(DeflateParams(client_no_context_takeover=True))
    first, second = client.compress(message), client.compress(message)
    assert first == second
    assert len(first) < len(message) / 2
    assert receive(server, first) == receive(server, second) == message


def test_server_no_context_takeover_resets_the_server_compressor() -> None:
    message = words_text(4000, seed=2)
    client, server = codecs(DeflateParams(server_no_context_takeover=True))
    assert server.compress(message) == server.compress(message)
    assert len(client.compress(message)) > len(client.compress(message)) * 10


@pytest.mark.parametrize("bits", range(8, 16))
def test_window_bits_round_trip_and_stay_within_the_window(bits: int) -> None:
    params = DeflateParams(server_max_window_bits=bits, client_max_window_bits=bits)
    client, server = codecs(params)
    big = [words_text(300_000, seed=bits), words_text(300_000, seed=bits + 100)]
    for message in big:
        assert receive(server, client.compress(message)) == message
        assert receive(client, server.compress(message)) == message
    # Byte-by-byte inflating with exactly `bits` proves no reference reaches further.
    client, server = codecs(params)
    small = [words_text(6000, seed=bits), words_text(6000, seed=bits + 1)]
    assert inflate_strictly([client.compress(m) for m in small], bits) == small
    assert inflate_strictly([server.compress(m) for m in small], bits) == small


def test_strict_inflater_catches_a_window_too_big() -> None:
    """The check above can fail: 10-bit output breaks an 8- or 9-bit window."""
    message = words_text(6000, seed=3)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -10)
    payload = (compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert inflate_strictly([payload], 10) == [message]
    for bits in (8, 9):
        with pytest.raises(zlib.error, match="too far back"):
            inflate_strictly([payload], bits)


def test_window_8_still_compresses_runs() -> None:
    client, server = codecs(DeflateParams(client_max_window_bits=8))
    message = b"a" * 5000 + words_text(2000, seed=4) + b"b" * 5000
    payload = client.compress(message)
    assert len(payload) < len(message) / 2
    assert receive(server, payload) == message
    assert inflate_strictly([payload], 8) == [message]


def test_fragmented_message_round_trips_frame_by_frame() -> None:
    client, server = codecs()
    pieces = [words_text(10_000, seed=s) for s in range(5)]
    frames = [client.compress_fragment(p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
    assert all(f.endswith(TAIL) for f in frames[:-1])
    assert not frames[-1].endswith(TAIL)
    assert receive(server, *frames) == b"".join(pieces)
    # One stream: plain zlib reads the concatenation too.
    assert zlib.decompressobj(-15).decompress(b"".join(frames) + TAIL) == b"".join(pieces)
    # The next message still shares the window.
    assert receive(server, client.compress(pieces[0])) == pieces[0]


def test_unflushed_fragments_compress_as_the_whole_message() -> None:
    client, server = codecs()
    reference, _ = codecs()
    pieces = [words_text(20_000, seed=s) for s in range(4)]
    frames = [client.compress_fragment(p, i == 3, flush=False) for i, p in enumerate(pieces)]
    assert not any(f.endswith(TAIL) for f in frames)  # no flush marker between them
    assert b"".join(frames) == reference.compress(b"".join(pieces))
    assert receive(server, *frames) == b"".join(pieces)
    assert receive(server, client.compress(pieces[0])) == pieces[0]  # the window goes on


def test_fragmented_message_without_context_takeover_resets_at_the_end() -> None:
    client, server = codecs(DeflateParams(client_no_context_takeover=True))
    message = words_text(3000, seed=5)
    first = [client.compress_fragment(message, False), client.compress_fragment(b"", True)]
    second = [client.compress_fragment(message, False), client.compress_fragment(b"", True)]
    assert first == second
    assert receive(server, *first) == receive(server, *second) == message


def test_compress_during_fragmented_message_is_misuse() -> None:
    client, _ = codecs()
    client.compress_fragment(b"part", False)
    with pytest.raises(RuntimeError):
        client.compress(b"other")
    client.compress_fragment(b"end", True)
    assert client.compress(b"now fine")


def test_chunked_decompression_matches_whole() -> None:
    client, server = codecs()
    message = words_text(50_000, seed=6)
    payload = client.compress(message)
    chunks = [payload[i : i + 7] for i in range(0, len(payload), 7)]
    assert receive(server, *chunks) == message


def test_threshold_and_override() -> None:
    client, _ = codecs()
    assert deflate.DEFAULT_THRESHOLD == 128
    assert not client.should_compress(127, None)
    assert client.should_compress(128, None)
    assert client.should_compress(1, True)
    assert not client.should_compress(10 * MiB, False)
    everything, _ = codecs(options=DeflateOptions(threshold=0))
    assert everything.should_compress(0, None)
    never, _ = codecs(options=DeflateOptions(threshold=1 << 40))
    assert not never.should_compress(10 * MiB, None)


def test_level_option_is_used() -> None:
    message = words_text(200_000, seed=7)
    stored, _ = codecs(options=DeflateOptions(level=0))
    fast, _ = codecs(options=DeflateOptions(level=1))
    best, _ = codecs(options=DeflateOptions(level=9))
    assert len(stored.compress(message)) > len(message)
    assert len(fast.compress(message)) > len(best.compress(message))


def test_corrupt_data_is_a_protocol_error_1007() -> None:
    _, server = codecs()
    with pytest.raises(ProtocolError) as info:
        receive(server, b"\xff\xff\xff\xff")
    assert info.value.code == 1007
    assert not isinstance(info.value, PayloadTooBig)
    assert isinstance(info.value.__cause__, zlib.error)


def test_max_length_is_exact() -> None:
    client, server = codecs()
    message = words_text(10_000, seed=8)
    assert receive(server, client.compress(message), max_length=len(message)) == message
    with pytest.raises(PayloadTooBig) as info:
        receive(server, client.compress(message), max_length=len(message) - 1)
    assert info.value.code == 1009
    with pytest.raises(ValueError):
        server.decompress(b"", max_length=-1)


def test_max_length_counts_across_chunks() -> None:
    client, server = codecs()
    message = words_text(10_000, seed=9)
    payload = client.compress(message)
    with pytest.raises(PayloadTooBig):
        receive(server, payload[:100], payload[100:], max_length=9_000)


# --- Deflate bomb -----------------------------------------------------------------------


def zero_bomb(units: int) -> bytes:
    """Compressed zeros: ``units`` times 4 MiB, about 4 KiB per unit.

    Once the window holds only zeros, each sync-flushed 4 MiB of zeros compresses to the
    same byte-aligned bytes, so the unit can be repeated without compressing it again.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    zeros = bytes(4 * MiB)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    unit = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert unit == compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return first + unit * (units - 1)


def test_zero_bomb_really_inflates_4_mib_per_unit() -> None:
    small = zero_bomb(3)
    assert len(small) < 13_000
    assert zlib.decompressobj(-15).decompress(small + TAIL) == bytes(12 * MiB)


@pytest.mark.parametrize("chunk_size", [None, 4096])
def test_gigabyte_bomb_fails_with_bounded_memory(chunk_size: Optional[int]) -> None:
    bomb = zero_bomb(256)  # 1 GiB of zeros from about 1 MiB
    assert len(bomb) < 1.1 * MiB
    chunks = [bomb] if chunk_size is None else [
        bomb[i : i + chunk_size] for i in range(0, len(bomb), chunk_size)
    ]
    _, server = codecs()
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooBig):
            receive(server, *chunks, max_length=MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, peak
    # The codec stays usable for the next message of a new connection state.
    assert receive(server, bytes.fromhex("f248cdc9c90700")) == b"Hello"


def test_few_kib_bomb_fails_early() -> None:
    bomb = zero_bomb(2)  # 8 MiB from about 8 KiB
    _, server = codecs()
    with pytest.raises(PayloadTooBig):
        receive(server, bomb, max_length=MiB)


# --- Memory ----------------------------------------------------------------------------


def traced_growth(action: Callable[[], object]) -> int:
    """How many bytes ``action`` leaves allocated while its result is alive."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = action()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del keep
    return growth


def test_zlib_objects_are_created_lazily_and_sized_as_documented() -> None:
    message = words_text(1000, seed=10)
    payload = codecs()[0].compress(message)
    idle = traced_growth(lambda: codecs())
    assert idle < 8 * 1024  # two codecs, no zlib state

    def compress() -> object:
        client, _ = codecs()
        return client, client.compress(message)

    def decompress() -> object:
        _, server = codecs()
        return server, receive(server, payload)

    compressor, decompressor = traced_growth(compress), traced_growth(decompress)
    assert 240 * 1024 < compressor < 290 * 1024  # about 262 KiB: window 15, memLevel 8
    assert 36 * 1024 < decompressor < 48 * 1024  # about 39 KiB: 7 KiB + 32 KiB window


#: A fresh process echoing 1 MiB compressed messages through two codecs (a client's and a
#: server's), printing the minor page faults per message after a warm-up.
_ECHO_IN_A_FRESH_PROCESS = """
import json, resource
from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate
text = json.dumps([{"id": i, "name": "user%d" % (i % 997), "on": i % 3 == 0} for i in range(30000)])
client, server = (PerMessageDeflate(DeflateParams(), is_client=side, options=DeflateOptions())
                  for side in (True, False))
def hop(sender, receiver, message):
    payload = sender.compress(message.encode())
    data = receiver.decompress(payload, max_length=None) + receiver.decompress_end(max_length=None)
    return data.decode()
def echo():
    assert hop(server, client, hop(client, server, text)) == text
for _ in range(5):
    echo()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    echo()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 40)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the page faults come from glibc's malloc")
@pytest.mark.xfail(sys.version_info < (3, 11), strict=False,
                   reason="known: on CPython 3.10 an echo faults in ~680 pages in some runs, not in others (3.10's zlib "
                          "module grows its output another way); the heap-keeping fix reaches 3.11+")
def test_large_messages_do_not_fault_their_memory_in_again_each_time() -> None:
    """With glibc's thresholds where a fresh process starts, the memory a 1 MiB message
    inflates into went back to the kernel after each message: about 600 page faults per
    message, 15 % of the CPU time."""
    result = subprocess.run([sys.executable, "-c", _ECHO_IN_A_FRESH_PROCESS],
                            capture_output=True, text=True, timeout=60, check=True)
    assert float(result.stdout) < 20, result.stdout


def test_no_context_takeover_frees_zlib_state_after_each_message() -> None:
    message = words_text(1000, seed=11)
    params = DeflateParams(client_no_context_takeover=True, server_no_context_takeover=True)

    def both_ways() -> object:
        client, server = codecs(params)
        receive(client, server.compress(message))
        receive(server, client.compress(message))
        return client, server

    assert traced_growth(both_ways) < 8 * 1024


# --- Interop with plain zlib -------------------------------------------------------------


def test_plain_zlib_reads_our_messages() -> None:
    client, _ = codecs()
    inflater = zlib.decompressobj(-15)
    for seed in range(3):
        message = words_text(20_000, seed=seed)
        assert inflater.decompress(client.compress(message) + TAIL) == message


def test_we_read_plain_zlib_messages() -> None:
    _, server = codecs()
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    for seed in range(3):
        message = words_text(20_000, seed=seed)
        payload = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert payload.endswith(TAIL)
        assert receive(server, payload[:-4]) == message


# --- Options ---------------------------------------------------------------------------


def test_default_options() -> None:
    options = DeflateOptions()
    assert options.client_max_window_bits is None
    assert options.server_max_window_bits is None
    assert not options.client_no_context_takeover
    assert not options.server_no_context_takeover
    assert (options.level, options.mem_level, options.threshold) == (6, None, 128)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"client_max_window_bits": 7}, ValueError),
        ({"client_max_window_bits": 16}, ValueError),
        ({"server_max_window_bits": 7}, ValueError),
        ({"server_max_window_bits": 16}, ValueError),
        ({"server_max_window_bits": "15"}, TypeError),
        ({"client_max_window_bits": True}, TypeError),
        ({"level": -1}, ValueError),
        ({"level": 10}, ValueError),
        ({"mem_level": 0}, ValueError),
        ({"mem_level": 10}, ValueError),
        ({"threshold": -1}, ValueError),
        ({"threshold": 1.5}, TypeError),
        ({"client_no_context_takeover": 1}, TypeError),
    ],
)
def test_invalid_options(kwargs: Dict[str, object], error: type) -> None:
    with pytest.raises(error):
        DeflateOptions(**kwargs)  # type: ignore[arg-type]


def test_compression_options() -> None:
    assert compression_options("deflate") == DeflateOptions(client_max_window_bits=12)
    assert compression_options("deflate", server=True) == DeflateOptions(server_max_window_bits=12)
    custom = DeflateOptions(level=1)
    assert compression_options(custom) is custom
    assert compression_options(None) is None
    with pytest.raises(ValueError):
        compression_options("gzip")
    with pytest.raises(TypeError):
        compression_options(True)  # type: ignore[arg-type]


# --- Both ends together -------------------------------------------------------------------

WINDOWS = [None, 8, 9, 12, 15]
CLIENT_OPTIONS = [
    DeflateOptions(client_max_window_bits=c, server_max_window_bits=s, client_no_context_takeover=n)
    for c, s, n in itertools.product(WINDOWS, WINDOWS, [False, True])
]
SERVER_OPTIONS = [
    DeflateOptions(client_max_window_bits=c, server_max_window_bits=s, server_no_context_takeover=n)
    for c, s, n in [(None, None, False), (8, 8, False), (10, 9, True), (15, 12, False)]
]


@pytest.mark.parametrize("server_options", SERVER_OPTIONS, ids=repr)
def test_negotiation_and_messages_end_to_end(server_options: DeflateOptions) -> None:
    messages = [words_text(3000, seed=s) for s in range(3)]
    for client_options in CLIENT_OPTIONS:
        answer = server_accept(server_options, [client_offer(client_options)])
        if answer is None:  # only when the server needs a limit the client cannot take
            assert server_options.client_max_window_bits not in (None, 15)
            continue
        response, server_params = answer
        client_params = client_accept(client_options, [response])
        assert client_params is not None
        # The client may promise a smaller window than the server allowed.
        assert client_params.client_max_window_bits <= server_params.client_max_window_bits
        assert client_params.server_max_window_bits == server_params.server_max_window_bits
        client = PerMessageDeflate(client_params, is_client=True, options=client_options)
        server = PerMessageDeflate(server_params, is_client=False, options=server_options)
        upstream = [client.compress(m) for m in messages]
        downstream = [server.compress(m) for m in messages]
        assert [receive(server, p) for p in upstream] == messages
        assert [receive(client, p) for p in downstream] == messages
        # Each side keeps within the window the other side expects.
        assert inflate_strictly(upstream, server_params.client_max_window_bits) == messages
        assert inflate_strictly(downstream, client_params.server_max_window_bits) == messages


@pytest.mark.parametrize(
    "window_bits, mem_level, expected_mem_level",
    [(15, None, 8), (12, None, 5), (9, None, 2), (8, None, 2), (12, 9, 9)],
)
def test_mem_level_follows_the_window_unless_given(window_bits, mem_level, expected_mem_level) -> None:
    data = b"".join(b'{"id": %d, "name": "user%d"}, ' % (i, i % 97) for i in range(5000))
    params = DeflateParams(server_max_window_bits=window_bits)
    codec = PerMessageDeflate(params, is_client=False, options=DeflateOptions(mem_level=mem_level))
    strategy = zlib.Z_RLE if window_bits < 9 else zlib.Z_DEFAULT_STRATEGY
    reference = zlib.compressobj(6, zlib.DEFLATED, -max(window_bits, 9), expected_mem_level, strategy)
    expected = reference.compress(data) + reference.flush(zlib.Z_SYNC_FLUSH)
    assert codec.compress(data) == expected[:-4]  # zlib's output is deterministic
