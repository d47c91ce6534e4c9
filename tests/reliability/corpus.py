"""Valid inputs for the fuzz targets, and the format-specific mutations and tokens.

Each corpus holds inputs that the code under test accepts, so mutations start deep inside
the format rather than at its first byte.
"""

from __future__ import annotations

import random
import zlib
from typing import List

from wsclient.close import serialize_close
from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate
from wsclient.frames import Frame, Opcode, serialize_header
from wsclient.handshake import ClientHandshake, accept_response, reject_response
from wsclient.uri import parse_uri

from .fuzz import EXTREME_LENGTHS

__all__ = [
    "KEY",
    "SECRET",
    "frame_streams",
    "extreme_frame_length",
    "FRAME_TOKENS",
    "deflate_payloads",
    "requests",
    "responses",
    "HTTP_TOKENS",
    "uris",
    "URI_TOKENS",
    "proxy_urls",
]

#: The Sec-WebSocket-Key of every fuzzed client handshake (RFC 6455 section 1.3's example).
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
#: A password planted in URIs: it must never show in an error message.
SECRET = "s3cr3tpw"

_MASK = b"\x37\xfa\x21\x3d"


def _compressed(messages: List[bytes], *, bits: int = 15) -> List[bytes]:
    """Each message compressed as a server with ``bits`` window bits would send it."""
    params = DeflateParams(server_max_window_bits=bits)
    codec = PerMessageDeflate(params, is_client=False, options=DeflateOptions(threshold=0))
    return [codec.compress(message) for message in messages]


def frame_streams() -> List[bytes]:
    """Streams of frames, each both unmasked (server to client) and masked (client to server)."""
    hello = "Hello, wörld".encode()
    compressed = _compressed([b"Hello", b"Hello", b"x" * 1000, b'{"a": [1, 2, 3]}' * 20])
    streams: List[List[Frame]] = [
        [Frame(Opcode.TEXT, b"Hello")],
        [Frame(Opcode.BINARY, b"")],
        [Frame(Opcode.BINARY, bytes(range(256)) * 2)],
        [Frame(Opcode.BINARY, b"\xab" * 126)],
        [Frame(Opcode.BINARY, b"\xcd" * 70000)],
        [Frame(Opcode.TEXT, hello[:3], fin=False), Frame(Opcode.PING, b"hi"),
         Frame(Opcode.CONT, hello[3:8], fin=False), Frame(Opcode.CONT, hello[8:])],
        [Frame(Opcode.PING, b""), Frame(Opcode.PONG, b"x" * 125), Frame(Opcode.TEXT, b"after")],
        [Frame(Opcode.TEXT, b"bye"), Frame(Opcode.CLOSE, serialize_close(1000, "done"))],
        [Frame(Opcode.CLOSE, serialize_close(4000, "r\u00e9ason"))],
        [Frame(Opcode.CLOSE, b"")],
        [Frame(Opcode.TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")],
        [Frame(Opcode.TEXT, payload, rsv1=True) for payload in compressed],
        [Frame(Opcode.BINARY, compressed[2][:5], fin=False, rsv1=True),
         Frame(Opcode.CONT, compressed[2][5:])],
        [Frame(Opcode.BINARY, zlib.compress(b"\0" * 10**6)[2:-4], rsv1=True)],
    ]
    result = []
    for frames in streams:
        result.append(b"".join(frame.serialize() for frame in frames))
        result.append(b"".join(frame.serialize(mask_key=_MASK) for frame in frames))
    return result


def extreme_frame_length(data: bytearray, rng: random.Random) -> bytearray:
    """Give the frame header at a random offset (often 0) an extreme payload length."""
    at = 0 if rng.random() < 0.5 or len(data) < 2 else rng.randrange(len(data) - 1)
    first = data[at] if at < len(data) else 0x82
    masked = rng.random() < 0.5
    length = rng.choice(EXTREME_LENGTHS)
    form = rng.choice((None, 126, 127))  # minimal encoding, or forced 16- or 64-bit
    if form == 126:
        length &= 0xFFFF
        header = bytes((first, (0x80 if masked else 0) | 126)) + length.to_bytes(2, "big")
    elif form == 127:
        header = bytes((first, (0x80 if masked else 0) | 127)) + length.to_bytes(8, "big")
    elif length < 2**63:
        header = serialize_header(first & 0x0F, length, fin=bool(first & 0x80))
    else:
        return data
    if masked and form is not None:
        header += _MASK
    return data[:at] + header + data[at + rng.choice((0, 2, len(header))) :]


FRAME_TOKENS = [
    b"\x81\x7f\xff\xff\xff\xff\xff\xff\xff\xff", b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\x82\xfe\xff\xff" + _MASK, b"\x89\x7e\x00\x7e", b"\x88\x01\x03", b"\x88\x02\x03\xe8",
    b"\x88\x02\x03\xed", b"\x80\x00", b"\x00\x00", b"\xc1\x00", b"\xf1\x80" + _MASK,
    b"\x00\x00\xff\xff", b"\x03\x00", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
]


def deflate_payloads() -> List[bytes]:
    """Compressed message payloads (RFC 7692 section 7.2), small windows and bombs included."""
    rng = random.Random(7692)
    text = b'{"id": 12, "name": "example", "tags": ["a", "b", "c"]}' * 40
    payloads = _compressed([b"Hello", text, rng.randbytes(3000), b"", b"a" * 300])
    payloads += _compressed([text, b"abcabcabc" * 50], bits=8)
    payloads += [
        b"\xf2\x48\xcd\xc9\xc9\x07\x00",  # RFC 7692 7.2.3.1
        b"\x00\x05\x00\xfa\xffHello\x00",  # 7.2.3.3, no compression
        b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00",  # 7.2.3.4, BFINAL set
        b"\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00",  # 7.2.3.5, two blocks
        zlib.compress(b"\0" * 10**7)[2:-4],  # a 10 MB bomb, about 10 KiB
        zlib.compress(b"ab" * 10**6, 9)[2:-4],
    ]
    return payloads


def requests() -> List[bytes]:
    """Client handshakes (and requests the server must reject) as bytes."""
    uri = parse_uri(f"ws://user:{SECRET}@example.com:8080/chat?room=1")
    plain = ClientHandshake(uri, key=KEY).request
    full = ClientHandshake(
        uri, key=KEY, origin="https://example.com", subprotocols=["chat", "superchat"],
        extensions="permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
        "permessage-deflate",
        headers=[("Cookie", "session=abc"), ("X-Many", "1"), ("X-Many", "2")],
    ).request
    return [
        plain.serialize(),
        full.serialize(),
        full.serialize().replace(b"\r\n", b"\n"),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\n\r\nGET /x HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    ]


def responses() -> List[bytes]:
    """Server answers: a 101 that matches :data:`KEY`, redirects, errors with bodies."""
    from wsclient.http11 import Request

    request = Request("GET", "/", [("Host", "h"), ("Sec-WebSocket-Key", KEY),
                                    ("Sec-WebSocket-Protocol", "chat, superchat")])
    accepted = accept_response(request, subprotocol="chat",
                               extensions="permessage-deflate; server_no_context_takeover; "
                               "client_max_window_bits=12")
    return [
        accept_response(request).serialize() + b"\x81\x05Hello",
        accepted.serialize(),
        reject_response(401, "who are you?", headers=[("WWW-Authenticate", 'Basic realm="x"')]).serialize(),
        b"HTTP/1.1 302 Found\r\nLocation: wss://other.example:9443/next?a=b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: ../up/./there\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
        b"HTTP/1.0 500 Oops\r\n\r\nbody until the end",
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]


HTTP_TOKENS = [
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b": ", b":", b" ", b"\t", b",", b";", b"=", b"\x00",
    b"\x80\xff", b"Content-Length: ", b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffff\r\n",
    b"0\r\n\r\n", b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 101 ", b"HTTP/2.0", b"HTTP/1.9",
    b"Upgrade: websocket\r\n", b"Connection: Upgrade\r\n", b"Sec-WebSocket-Version: 13\r\n",
    b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\n", b"Host: h\r\n", b"Location: ",
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"9\"\r\n",
    b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=08\r\n",
    b"Sec-WebSocket-Protocol: chat, chat\r\n", b"X: " + b"v" * 9000 + b"\r\n",
    b"X: y\r\n" * 200, b"%", b"..", b"/../", b"//",
]


def uris() -> List[bytes]:
    """URIs (as UTF-8): every part present somewhere, IPv6, IDN, escapes, a password."""
    return [uri.encode("utf-8") for uri in (
        "ws://example.com/",
        f"wss://user:{SECRET}@example.com:8443/chat?room=1&x=%20y",
        "ws://[::1]:9000/path",
        "ws://[fe80::1%25eth0]/",
        "ws://127.0.0.1:80",
        "wss://bücher.example/ä ö?q=ü",
        "WS://Example.COM:/a/b/../c/./d",
        "ws://host/%7Euser/%zz?%",
        "http://example.com/",
    )]


URI_TOKENS = [
    b"ws://", b"wss://", b"//", b"@", b":", b"[", b"]", b"%25", b"%", b"#", b"?", b"/../",
    b"\x00", b" ", b"\xff", b"\xed\xa0\x80", b"xn--", b".", b"..", b"::", b"::ffff:1.2.3.4",
    b"65536", b"\\", f":{SECRET}@".encode(), "\u3002".encode(), b"\xe2\x80\xae",
]


def proxy_urls() -> List[bytes]:
    """Proxy URLs (as UTF-8) of every scheme, and no_proxy values."""
    return [url.encode("utf-8") for url in (
        f"http://user:{SECRET}@proxy.example:3128",
        "https://proxy.example",
        "socks4://10.0.0.1:1080",
        f"socks4a://u:{SECRET}@[::1]:1080/",
        "socks5h://name@localhost:9050",
        "proxy.example:8080",
        "*.example.com, .internal,10.0.0.0/8 [::1]:8080,localhost:80",
    )]
