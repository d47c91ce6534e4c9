"""The fuzz targets: each feeds one input to a parser that reads a peer's bytes.

A target is ``fn(data, rng)``: ``data`` the input, ``rng`` a :class:`random.Random` for
choices an input does not spell out (how the bytes are chunked, which options are on).
It returns, or raises one of its ``documented`` exceptions (the ones the code documents
for bad input); any other exception, a failed assertion or a hang is a crash.

The targets shared with the seeded mutation fuzzer (``tests/reliability/test_fuzz.py``)
are its own functions, so the two fuzzers are compared on the same code and checks.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type

from tests.reliability import corpus
from tests.reliability import test_fuzz as mutation
from tests.reliability.fuzz import Mutator, chunks
from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate
from wsclient.exceptions import (
    InvalidHandshake,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
)
from wsclient.extensions import client_accept, parse_extensions, server_accept
from wsclient.proxy import http_connect, parse_proxy_url
from wsclient.transport import socks_connect
from wsclient.utf8 import Utf8Decoder

Fn = Callable[[bytes, random.Random], None]

#: The max_size the fuzzed decoders enforce.
MAX_SIZE = 1 << 16
#: max_len for targets with limits beyond 8 KiB: masking in 16 KiB chunks, 8 KiB lines,
#: 64 KiB heads. (A first run with 8-16 KiB never reached them; the mutation fuzzer did.)
LARGE = 80000


@dataclass(frozen=True)
class Target:
    """A fuzz target.

    Attributes:
        fn: the function under test.
        documented: exceptions it may raise on bad input.
        seeds: valid inputs (the seed corpus is written from them).
        tokens: byte strings the mutation fuzzer inserts (and a libFuzzer dictionary).
        mutation: whether the seeded mutation fuzzer has the same target (to compare).
        max_len: the longest input libFuzzer makes.
    """

    fn: Fn
    documented: Tuple[Type[BaseException], ...]
    seeds: Callable[[], List[bytes]]
    tokens: Sequence[bytes] = ()
    mutation: bool = False
    max_len: int = 8192
    extra_ops: Sequence[Callable] = ()

    def mutator(self, rng: random.Random) -> Mutator:
        return Mutator(rng, self.seeds(), self.tokens, self.extra_ops)


# -- targets of our own (the mutation fuzzer's are imported) -----------------------------


def deflate_target(data: bytes, rng: random.Random) -> None:
    """The permessage-deflate decoder: inflate, in any chunking, within max_length."""
    bits = rng.choice((8, 9, 10, 15))
    params = DeflateParams(server_max_window_bits=bits, client_max_window_bits=bits,
                           server_no_context_takeover=rng.random() < 0.5)
    codec = PerMessageDeflate(params, is_client=rng.random() < 0.5, options=DeflateOptions())
    limit = rng.choice((0, 1, 1000, MAX_SIZE))
    for _ in range(rng.choice((1, 1, 2))):  # sometimes two messages on one context
        total = 0
        for piece in chunks(data, rng):
            total += len(codec.decompress(piece, max_length=limit - total))
        total += len(codec.decompress_end(max_length=limit - total))
        assert total <= limit


def protocol_role_target(side_is_server: bool) -> Fn:
    """The protocol in one role, fed raw bytes (:func:`mutation.protocol_target` picks
    the role from the mask bit; this one keeps the role whatever the bytes say)."""

    def target(data: bytes, rng: random.Random) -> None:
        # protocol_target takes the role from data[1]'s mask bit: set it to the role.
        if len(data) > 1:
            b1 = (data[1] | 0x80) if side_is_server else (data[1] & 0x7F)
            data = data[:1] + bytes((b1,)) + data[2:]
        mutation.protocol_target(data, rng)

    return target


def extensions_target(data: bytes, rng: random.Random) -> None:
    """``Sec-WebSocket-Extensions`` as either side reads it."""
    values = data.decode("latin-1").split("\n")
    parsed = parse_extensions(values)
    assert all(isinstance(name, str) and isinstance(params, list) for name, params in parsed)
    options = DeflateOptions(client_max_window_bits=rng.choice((None, 9, 15)),
                             server_max_window_bits=rng.choice((None, 8, 12)),
                             server_no_context_takeover=rng.random() < 0.3)
    answer = server_accept(options, values)
    if answer is not None:
        header, params = answer
        assert parse_extensions([header])[0][0] == "permessage-deflate"
        assert 8 <= params.server_max_window_bits <= 15
    try:  # A client refuses most answers (several extensions, one not offered...).
        accepted = client_accept(options, values)
    except NegotiationError:
        return
    if accepted is not None:
        assert 8 <= accepted.client_max_window_bits <= 15


def utf8_target(data: bytes, rng: random.Random) -> None:
    """The incremental UTF-8 validator against Python's decoder, in any chunking."""
    decoder = Utf8Decoder()
    pieces = chunks(data, rng)
    out = []
    try:
        for i, piece in enumerate(pieces):
            out.append(decoder.decode(piece, i == len(pieces) - 1))
    except ProtocolError:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("invalid, as Python says") from None
        raise AssertionError("valid UTF-8 refused")
    assert "".join(out) == data.decode("utf-8")


_PROXY = parse_proxy_url("http://user:pw@proxy.test:3128")


def connect_answer_target(data: bytes, rng: random.Random) -> None:
    """A proxy's answer to CONNECT, read by :func:`http_connect` from a real socket pair."""
    ours, proxy = socket.socketpair()
    pieces = [piece for piece in chunks(data, rng) if piece]

    def answer() -> None:  # in a thread: many tiny writes can fill the pair's buffer
        try:
            for piece in pieces:
                proxy.sendall(piece)
            proxy.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # http_connect gave up and closed its end

    writer = threading.Thread(target=answer)
    try:
        proxy.settimeout(5)
        writer.start()
        leftover = http_connect(ours, _PROXY, "example.com", 443, deadline=time.monotonic() + 5)
        assert leftover in data  # the start of the tunnel: bytes after the head, as read
    finally:
        ours.close()
        writer.join(10)
        proxy.close()
        assert not writer.is_alive(), "the proxy's writer hung"


class _SocksPeer:
    """A listening socket whose every connection gets the next answer, then EOF."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer = b""

    def serve_one(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(512)  # the greeting
                conn.sendall(self.answer)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(512):  # drain what the client sends until it closes
                    pass
            except OSError:
                pass


_socks_peer: Optional[_SocksPeer] = None


def socks_answer_target(data: bytes, rng: random.Random) -> None:
    """A SOCKS proxy's replies to the greeting and the request, as :func:`socks_connect`
    reads them. The parsing itself is PySocks's; ours is the mapping of its errors (to
    :class:`ProxyError` or :class:`TimeoutError`) and the socket handed back."""
    global _socks_peer
    if _socks_peer is None:
        _socks_peer = _SocksPeer()
    peer = _socks_peer
    peer.answer = data
    scheme = ("socks4", "socks4a", "socks5", "socks5h")[rng.randrange(4)]
    creds = "u:p@" if rng.random() < 0.5 and scheme.startswith("socks5") else ""
    proxy = parse_proxy_url(f"{scheme}://{creds}127.0.0.1:{peer.port}")
    addresses = socket.getaddrinfo("127.0.0.1", peer.port, socket.AF_INET, socket.SOCK_STREAM)
    server = threading.Thread(target=peer.serve_one)
    server.start()
    try:
        sock = socks_connect(proxy, addresses, "93.184.216.34", 443, deadline=time.monotonic() + 2)
        sock.close()
    finally:
        server.join(5)
        assert not server.is_alive(), "the SOCKS peer hung"


def _connect_answers() -> List[bytes]:
    return [
        b"HTTP/1.1 200 Connection established\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\n\x81\x05hello",
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    ]


def _socks_answers() -> List[bytes]:
    ok4 = b"\x00\x5a\x01\xbb\x5d\xb8\xd8\x22"
    ok5 = b"\x05\x00" + b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
    return [
        ok4, b"\x00\x5b\x00\x00\x00\x00\x00\x00", ok5, b"\x05\x02\x01\x00" + ok5[2:],
        b"\x05\x00\x05\x00\x00\x03\x09localhost\x04\x38",
        b"\x05\x00\x05\x00\x00\x04" + bytes(16) + b"\x04\x38", b"\x05\x00\x05\x05\x00\x01" + bytes(6),
        b"\x05\xff",
    ]


def _extension_headers() -> List[bytes]:
    return [
        b"permessage-deflate",
        b"permessage-deflate; client_max_window_bits",
        b"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
        b'permessage-deflate; server_no_context_takeover; client_max_window_bits="9", x-foo; a=b',
        b"x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover\npermessage-deflate",
    ]


def _texts() -> List[bytes]:
    return ["Hello, wörld ✓ 😀".encode(), b"\xed\x9f\xbf\xf4\x8f\xbf\xbf", b"\xc2\xa9" * 20, b"plain ascii"]


def _frame_and_deflate() -> List[bytes]:
    return corpus.deflate_payloads()


TARGETS: Dict[str, Target] = {
    "frames": Target(mutation.frame_parser_target, (ProtocolError,), corpus.frame_streams,
                     corpus.FRAME_TOKENS, mutation=True, max_len=LARGE, extra_ops=(corpus.extreme_frame_length,)),
    "protocol": Target(mutation.protocol_target, (), corpus.frame_streams, corpus.FRAME_TOKENS,
                       mutation=True, max_len=LARGE, extra_ops=(corpus.extreme_frame_length,)),
    "protocol-client": Target(protocol_role_target(False), (), corpus.frame_streams, corpus.FRAME_TOKENS,
                              max_len=16384),
    "protocol-server": Target(protocol_role_target(True), (), corpus.frame_streams, corpus.FRAME_TOKENS,
                              max_len=16384),
    "request": Target(mutation.request_target, (InvalidHandshake,), corpus.requests, corpus.HTTP_TOKENS,
                      mutation=True, max_len=LARGE),
    "response": Target(mutation.response_target, (InvalidHandshake, InvalidURI), corpus.responses,
                       corpus.HTTP_TOKENS, mutation=True, max_len=LARGE),
    "extensions": Target(extensions_target, (NegotiationError,), _extension_headers,
                         (b"permessage-deflate", b"client_max_window_bits", b"server_max_window_bits",
                          b"server_no_context_takeover", b"client_no_context_takeover", b'"', b";", b",", b"=")),
    "deflate": Target(deflate_target, (ProtocolError,), _frame_and_deflate,
                      (b"\x00\x00\xff\xff", b"\x03\x00"), mutation=True, max_len=16384),
    "utf8": Target(utf8_target, (ProtocolError,), _texts, (b"\xed\xa0", b"\xf4\x90", b"\xf0\x9f")),
    # The peer always ends its answer with EOF: waiting out the deadline would be a bug.
    "proxy-connect": Target(connect_answer_target, (ProxyError,), _connect_answers,
                            corpus.HTTP_TOKENS),
    "socks": Target(socks_answer_target, (ProxyError,), _socks_answers, max_len=600),
    "uri": Target(mutation.uri_target, (InvalidURI,), corpus.uris, corpus.URI_TOKENS, mutation=True),
    "proxy-url": Target(mutation.proxy_target, (InvalidURI,), corpus.proxy_urls, corpus.URI_TOKENS,
                        mutation=True),
}

# PayloadTooBig is a ProtocolError: the deflate target's limit is documented by both.
assert issubclass(PayloadTooBig, ProtocolError)
