"""Fuzzing the parsers with hostile input: every input ends in a result or a documented error.

Targets: the frame parser (whole against random chunking), the protocol state machine (both
roles, with and without permessage-deflate), the HTTP head parsers (request and response)
followed by the handshake validators of each role, the URI parser with redirect
resolution, the proxy URL and ``no_proxy`` parsers, and the permessage-deflate decoder
(with its memory measured). Each input runs under a deadline (:mod:`.fuzz`).

Run longer with ``WSCLIENT_FUZZ_ITERATIONS=100000`` (and another ``WSCLIENT_FUZZ_SEED``);
``-s`` prints each target's figures.
"""

from __future__ import annotations

import random
import tracemalloc
from typing import List, Optional

import pytest

from wsclient.close import is_valid_close_code
from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate
from wsclient.exceptions import InvalidHandshake, InvalidStatus, InvalidURI, ProtocolError
from wsclient.extensions import client_accept, client_offer, server_accept
from wsclient.frames import Frame, FrameParser
from wsclient.handshake import (
    ClientHandshake,
    accept_response,
    check_request,
    error_response,
    offered_subprotocols,
    select_subprotocol,
)
from wsclient.http11 import Request, RequestParser, Response, ResponseParser
from wsclient.protocol import Close, Ping, Pong, Protocol, Side
from wsclient.proxy import connect_request, parse_proxy_url, should_bypass
from wsclient.uri import parse_uri, resolve_redirect

from . import corpus
from .fuzz import Mutator, Report, chunks, run

pytestmark = pytest.mark.slow

#: The max_size the fuzzed protocols and decoders enforce.
MAX_SIZE = 1 << 16


def check(report: Report) -> None:
    print(report.summary())
    assert report.tried > 0
    assert not report.crashes, "\n\n".join(str(crash) for crash in report.crashes[:3])


# -- frames ----------------------------------------------------------------------------


def _frames(parser: FrameParser, pieces: List[bytes]) -> tuple:
    """Whole frames parsed from ``pieces``, and the error that stopped them (or None)."""
    frames, parts = [], []
    try:
        for piece in pieces:
            for part in parser.iter_feed(piece):
                parts.append(part.data)
                if part.last:
                    h = part.header
                    frames.append(Frame(h.opcode, b"".join(parts), h.fin, h.rsv1, h.rsv2, h.rsv3))
                    parts = []
    except ProtocolError as exc:
        return frames, str(exc)
    return frames, None


def frame_parser_target(data: bytes, rng: random.Random) -> None:
    masked = len(data) > 1 and bool(data[1] & 0x80)
    if rng.random() < 0.1:
        masked = not masked
    whole = _frames(FrameParser(expect_masked=masked), [data])
    pieces = _frames(FrameParser(expect_masked=masked), chunks(data, rng))
    # The chunking of the input changes nothing: the same frames, then the same error.
    assert whole == pieces, (whole[1], pieces[1])
    if whole[1] is not None:
        raise ProtocolError(whole[1])


def test_fuzz_frame_parser() -> None:
    check(run("frame-parser", frame_parser_target, (ProtocolError,),
              lambda rng: Mutator(rng, corpus.frame_streams(), corpus.FRAME_TOKENS,
                                  [corpus.extreme_frame_length])))


def protocol_target(data: bytes, rng: random.Random) -> None:
    """Protocol.receive_data never raises: a bad peer is recorded and answered with a close."""
    masked = len(data) > 1 and bool(data[1] & 0x80)
    side = Side.SERVER if masked else Side.CLIENT
    deflate = None
    if rng.random() < 0.7:
        params = DeflateParams(server_max_window_bits=rng.choice((8, 9, 12, 15)),
                               server_no_context_takeover=rng.random() < 0.5)
        deflate = PerMessageDeflate(params, is_client=side is Side.CLIENT, options=DeflateOptions())
    proto = Protocol(side, max_size=MAX_SIZE, deflate=deflate, mask_key=lambda: b"\0\0\0\0")
    events = []
    for piece in chunks(data, rng):
        events += proto.receive_data(piece)
        assert all(isinstance(out, bytes) for out in proto.data_to_send())
    for event in events:
        assert type(event) in (str, bytes, Ping, Pong, Close), event
        if isinstance(event, (str, bytes)):
            assert len(event) <= MAX_SIZE * (4 if isinstance(event, str) else 1)
        if isinstance(event, Close):
            assert event.code == 1005 or is_valid_close_code(event.code)
    if proto.error is not None:
        assert proto.failed and proto.close_sent is not None
        assert proto.close_sent[0] == proto.error.code
    proto.receive_eof()
    assert proto.close_code is not None


def test_fuzz_protocol_both_roles_with_deflate() -> None:
    check(run("protocol", protocol_target, (),
              lambda rng: Mutator(rng, corpus.frame_streams(), corpus.FRAME_TOKENS,
                                  [corpus.extreme_frame_length])))


# -- HTTP heads and the handshake validators ---------------------------------------------


def _feed(parser, data: bytes, rng: random.Random):
    for piece in chunks(data, rng):
        if not piece:
            continue
        result = parser.feed(piece)
        if result is not None:
            return result
    return parser.feed(b"")  # end of input: a result, or InvalidHTTP


def request_target(data: bytes, rng: random.Random) -> None:
    """The server's side: parse the head, check it, negotiate, answer (as server.py does)."""
    parser = RequestParser(max_headers=rng.choice((4, 128)), max_line=rng.choice((64, 8192)))
    request: Request = _feed(parser, data, rng)
    again = RequestParser().feed(request.serialize())
    assert again == request, (request, again)  # what was parsed serialises to the same
    try:
        check_request(request)
    except InvalidHandshake as exc:
        error_response(exc).serialize()  # answering the rejection never fails
        raise
    offered = offered_subprotocols(request)
    subprotocol = select_subprotocol(offered, ["superchat", "chat"])
    accepted = server_accept(DeflateOptions(client_max_window_bits=rng.choice((None, 10))),
                             request.headers.get_all("Sec-WebSocket-Extensions") or [])
    response = accept_response(request, subprotocol=subprotocol,
                               extensions=accepted[0] if accepted else None)
    assert ResponseParser().feed(response.serialize()) == response


def test_fuzz_request_head_and_server_handshake() -> None:
    check(run("request+server-handshake", request_target, (InvalidHandshake,),
              lambda rng: Mutator(rng, corpus.requests(), corpus.HTTP_TOKENS)))


_BASE = parse_uri(f"wss://user:{corpus.SECRET}@example.com:8443/a/b?q")


def response_target(data: bytes, rng: random.Random) -> None:
    """The client's side: parse the answer, check it, follow a redirect's Location."""
    parser = ResponseParser(head_only=rng.random() < 0.2, max_body=rng.choice((0, 10, 1 << 20)))
    response: Response = _feed(parser, data, rng)
    repr(response)
    options = DeflateOptions(server_no_context_takeover=rng.random() < 0.3)
    handshake = ClientHandshake(_BASE, key=corpus.KEY, subprotocols=["chat", "superchat"],
                                extensions=client_offer(options))
    try:
        result = handshake.check_response(response)
    except InvalidStatus as exc:
        location = exc.response.headers.get("Location")
        if location is not None:
            target = resolve_redirect(_BASE, location)
            _check_credentials_stay(_BASE, target, location)
        raise
    client_accept(options, result.extensions)


def test_fuzz_response_head_and_client_handshake() -> None:
    check(run("response+client-handshake", response_target, (InvalidHandshake, InvalidURI),
              lambda rng: Mutator(rng, corpus.responses(), corpus.HTTP_TOKENS)))


# -- URIs and proxy URLs ----------------------------------------------------------------


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _check_secret_hidden(text: str, exc: Exception) -> None:
    """What looks like a password (``:secret@``) never reaches the message, even in a
    malformed URI (when the planted secret is nowhere else in the input)."""
    if text.count(corpus.SECRET) == 1 and f":{corpus.SECRET}@" in text:
        assert corpus.SECRET not in str(exc), str(exc)


def _check_credentials_stay(base, target, location: str) -> None:
    """Credentials go with a redirect only to the same host and port, never wss -> ws."""
    if target.password == base.password and target.password is not None and corpus.SECRET not in location:
        assert (target.host, target.port) == (base.host, base.port), target
        assert target.secure or not base.secure, target


def _only_in_password(password, *others) -> bool:
    """Whether the planted secret is in ``password`` and in none of ``others``."""
    return bool(password) and corpus.SECRET in password and not any(
        corpus.SECRET in (other or "") for other in others)


def uri_target(data: bytes, rng: random.Random) -> None:
    text = _text(data)
    try:
        uri = parse_uri(text)
    except InvalidURI as exc:
        _check_secret_hidden(text, exc)
        uri = None
    if uri is not None:
        if _only_in_password(uri.password, uri.user, uri.host, uri.resource):
            assert corpus.SECRET not in repr(uri) and corpus.SECRET not in str(uri)
        again = parse_uri(uri.uri)  # what we would send parses to the same place
        assert (again.secure, again.host, again.port, again.resource) == (
            uri.secure, uri.host, uri.port, uri.resource), (uri, again)
        # The handshake's request is built and serialised (InvalidURI: a ':' in the user).
        ClientHandshake(uri, key=corpus.KEY).request.serialize()
    target = resolve_redirect(_BASE, text)
    _check_credentials_stay(_BASE, target, text)


def test_fuzz_uri_and_redirects() -> None:
    check(run("uri+redirect", uri_target, (InvalidURI,),
              lambda rng: Mutator(rng, corpus.uris(), corpus.URI_TOKENS)))


def proxy_target(data: bytes, rng: random.Random) -> None:
    text = _text(data)
    assert should_bypass(rng.choice(("example.com", "10.1.2.3", "::1", "[::1]")),
                         rng.choice((80, 8080)), text) in (True, False)
    try:
        proxy = parse_proxy_url(text)
    except InvalidURI as exc:
        _check_secret_hidden(text, exc)
        raise
    if _only_in_password(proxy.password, proxy.username, proxy.host):
        assert corpus.SECRET not in repr(proxy) and corpus.SECRET not in str(proxy)
    assert 1 <= proxy.port <= 65535
    connect_request(proxy, "example.com", 443)  # the CONNECT request, credentials included


def test_fuzz_proxy_url_and_no_proxy() -> None:
    check(run("proxy-url+no_proxy", proxy_target, (InvalidURI,),
              lambda rng: Mutator(rng, corpus.proxy_urls(), corpus.URI_TOKENS)))


# -- permessage-deflate ---------------------------------------------------------------------

#: Traced memory allowed while decompressing, beyond twice the max_length in force (the
#: output and its join) and twice the input (zlib's copy of the unused input): zlib's state.
DEFLATE_OVERHEAD = 1 << 20


def test_fuzz_deflate_decoder_in_bounded_memory() -> None:
    peak = 0

    def target(data: bytes, rng: random.Random) -> None:
        nonlocal peak
        bits = rng.choice((8, 9, 10, 15))
        params = DeflateParams(server_max_window_bits=bits, client_max_window_bits=bits,
                               server_no_context_takeover=rng.random() < 0.5)
        codec = PerMessageDeflate(params, is_client=rng.random() < 0.5, options=DeflateOptions())
        limit: Optional[int] = rng.choice((0, 1, 1000, MAX_SIZE, 1 << 20))
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            for _ in range(rng.choice((1, 1, 2))):  # sometimes two messages on one context
                total = 0
                for piece in chunks(data, rng):
                    total += len(codec.decompress(piece, max_length=limit - total))
                total += len(codec.decompress_end(max_length=limit - total))
                assert total <= limit
        finally:
            used = tracemalloc.get_traced_memory()[1] - base
            peak = max(peak, used)
            assert used <= 2 * limit + 2 * len(data) + DEFLATE_OVERHEAD, (used, limit, len(data))

    tracemalloc.start()
    try:
        report = run("deflate-decoder", target, (ProtocolError,),
                     lambda rng: Mutator(rng, corpus.deflate_payloads(), [b"\x00\x00\xff\xff", b"\x03\x00"]))
    finally:
        tracemalloc.stop()
    report.peak_memory = peak
    check(report)
