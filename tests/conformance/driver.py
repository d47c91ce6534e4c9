"""A raw WebSocket peer: a plain socket speaking bytes, written from RFC 6455 and RFC 7692 alone.

The conformance suite plays this peer against wsclient's client and server. It shares no
code with wsclient (only ``socket``, ``struct``, ``os``, ``hashlib``, ``base64`` and ``zlib``),
so a misreading of the RFC in wsclient's framing cannot cancel out in the tests
(permessage-deflate lives beside it in :mod:`deflate`). It does its own HTTP upgrade in
both roles, builds frames byte by byte (any bits, any length encoding, masked or not),
writes them in segments as small as one byte, and reads frames back while checking that
what wsclient sends obeys the RFC (a :class:`DriverError` otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .deflate import Deflate, DeflateParams, DriverError, agreed_params, parse_extensions

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: RSV bits as Autobahn numbers them: 4 is RSV1, 2 is RSV2, 1 is RSV3.
RSV1, RSV2, RSV3 = 4, 2, 1

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_HEAD_LIMIT = 65536
_RECV_SIZE = 1 << 18

Chop = Union[None, int, Tuple[int, ...]]

__all__ = [
    "CONT", "TEXT", "BINARY", "CLOSE", "PING", "PONG", "Chop", "DriverError", "Timeout", "Deflate",
    "DeflateParams", "accept_key", "mask", "encode_frame", "segments", "Peer", "WireFrame",
    "Handshake", "client_handshake", "server_handshake",
]


class Timeout(AssertionError):
    """The peer under test did not answer in time."""


def accept_key(key: bytes) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")


def mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (RFC 6455 section 5.3)."""
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask_key: Optional[bytes] = None,
    length: Optional[int] = None,
    length_size: Optional[int] = None,
) -> bytes:
    """Build a frame (RFC 6455 section 5.2), possibly a broken one.

    Args:
        opcode: any 4-bit value.
        payload: the unmasked payload.
        fin: the FIN bit.
        rsv: RSV bits, 4 (RSV1) | 2 (RSV2) | 1 (RSV3).
        mask_key: 4 bytes to mask with, or None for an unmasked frame.
        length: the length to declare, if not ``len(payload)`` (a frame cut short, or an
            illegal 64-bit length).
        length_size: force the length encoding: 1 (7 bits), 2 (16 bits) or 8 (64 bits),
            to send non-minimal encodings.
    """
    declared = len(payload) if length is None else length
    if length_size is None:
        length_size = 1 if declared < 126 else 2 if declared < 65536 else 8
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)])
    mbit = 0x80 if mask_key is not None else 0
    if length_size == 1:
        head += bytes([mbit | declared])
    elif length_size == 2:
        head += bytes([mbit | 126]) + struct.pack("!H", declared)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", declared)
    if mask_key is None:
        return head + payload
    return head + mask_key + mask(payload, mask_key)


def segments(data: bytes, chop: Chop) -> List[bytes]:
    """Split ``data`` for writing: ``chop`` bytes at a time, or the sizes in a tuple
    followed by the rest in one piece."""
    if chop is None or not data:
        return [data]
    if isinstance(chop, int):
        return [data[i : i + chop] for i in range(0, len(data), chop)]
    out, pos = [], 0
    for size in chop:
        if pos >= len(data):
            break
        out.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        out.append(data[pos:])
    return out


# --- frames on a socket ----------------------------------------------------------------------


@dataclass
class WireFrame:
    """A frame as read from the peer, payload unmasked."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes


class Peer:
    """One end of a raw WebSocket connection, owned by the driver.

    Args:
        sock: a connected TCP socket (TCP_NODELAY is set, so small writes go out alone).
        client: whether the driver plays the client (it then masks what it sends and
            expects unmasked frames).
        buffered: bytes already read past the opening handshake.
        deflate: the negotiated permessage-deflate codec, or None.
    """

    def __init__(self, sock: socket.socket, *, client: bool, buffered: bytes = b"", deflate: Optional[Deflate] = None) -> None:
        self.sock = sock
        self.client = client
        self.deflate = deflate
        self._buf = bytearray(buffered)
        self.eof = False
        self.reset = False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- writing

    def mask_key(self, *, wrong: bool = False, zero: bool = False) -> Optional[bytes]:
        """A masking key if this end must mask (or, with ``wrong``, if it must not)."""
        if self.client != wrong:
            return b"\x00\x00\x00\x00" if zero else os.urandom(4)
        return None

    def send(self, data: bytes, chop: Chop = None) -> None:
        """Write ``data``, in segments if ``chop`` says so (see :func:`segments`)."""
        for piece in segments(data, chop):
            self.sock.sendall(piece)

    # -- reading

    def _fill(self, size: int, deadline: float) -> bool:
        """Read until ``size`` bytes are buffered; False at EOF (or a reset)."""
        while len(self._buf) < size:
            if self.eof:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"no data from the peer in time (have {len(self._buf)} of {size} bytes)")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(max(_RECV_SIZE, size - len(self._buf)))
            except socket.timeout:
                raise Timeout(f"no data from the peer in time (have {len(self._buf)} of {size} bytes)") from None
            except ConnectionResetError:
                data, self.reset = b"", True
            if not data:
                self.eof = True
                return False
            self._buf += data
        return True

    def read_frame(self, deadline: float) -> Optional[WireFrame]:
        """Read one frame; None at EOF (what was buffered before it must be whole).

        Raises:
            Timeout: nothing complete before ``deadline``.
            DriverError: the frame breaks RFC 6455 section 5 for a sender in the peer's role.
        """
        if not self._fill(2, deadline):
            if self._buf:
                raise DriverError(f"the connection ended inside a frame header: {bytes(self._buf)!r}")
            return None
        b0, b1 = self._buf[0], self._buf[1]
        size = 2 + {126: 2, 127: 8}.get(b1 & 0x7F, 0) + (4 if b1 & 0x80 else 0)
        if not self._fill(size, deadline):
            raise DriverError("the connection ended inside a frame header")
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._buf[2:4])[0]
        elif length == 127:
            length = struct.unpack("!Q", self._buf[2:10])[0]
        masked = bool(b1 & 0x80)
        if not self._fill(size + length, deadline):
            raise DriverError(f"the connection ended inside a frame of {length} bytes")
        payload = bytes(self._buf[size : size + length])
        if masked:
            payload = mask(payload, bytes(self._buf[size - 4 : size]))
        minimal = 1 if length < 126 else 2 if length < 65536 else 8
        if size - (4 if masked else 0) - 2 != (0 if minimal == 1 else minimal):
            raise DriverError("the peer used a non-minimal length encoding (RFC 6455 section 5.2)")
        del self._buf[: size + length]
        if masked != (not self.client):
            who = "server" if self.client else "client"
            raise DriverError(f"{who} sent a {'masked' if masked else 'unmasked'} frame (RFC 6455 section 5.1)")
        return WireFrame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)

    def shutdown_write(self) -> None:
        """Send FIN (the peer then sees the end of the stream)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def abort(self) -> None:
        """Reset the TCP connection (SO_LINGER 0, then close)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


# --- the opening handshake (RFC 6455 section 4) ------------------------------------------------


def _read_head(sock: socket.socket, deadline: float) -> Tuple[bytes, bytes]:
    """Read an HTTP head; return it and the bytes after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout("no complete HTTP head in time")
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            raise Timeout("no complete HTTP head in time") from None
        if not chunk:
            raise DriverError(f"connection closed during the opening handshake after {data!r}")
        data += chunk
        if len(data) > _HEAD_LIMIT:
            raise DriverError("HTTP head too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _head(start: str, lines: List[str], lowercase: bool) -> bytes:
    if lowercase:
        lines = [name.lower() + ":" + value for name, _, value in (line.partition(":") for line in lines)]
    return ("\r\n".join([start, *lines]) + "\r\n\r\n").encode("ascii")


def _headers(lines: Sequence[bytes]) -> Dict[str, List[str]]:
    fields: Dict[str, List[str]] = {}
    for line in lines:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise DriverError(f"malformed header line {line!r}")
        fields.setdefault(name.lower(), []).append(value.strip())
    return fields


def _has_token(fields: Dict[str, List[str]], name: str, token: str) -> bool:
    return any(t.strip().lower() == token for v in fields.get(name, []) for t in v.split(","))


@dataclass
class Handshake:
    """What the other side sent in the opening handshake."""

    start_line: str
    headers: Dict[str, List[str]]

    def get(self, name: str) -> Optional[str]:
        values = self.headers.get(name.lower())
        return ", ".join(values) if values else None


def client_handshake(
    sock: socket.socket,
    host: str,
    *,
    path: str = "/",
    offer: Optional[str] = None,
    extra: bytes = b"",
    chop: Chop = None,
    upgrade: Tuple[str, str] = ("websocket", "Upgrade"),
    lowercase: bool = False,
    timeout: float = 10.0,
) -> Tuple[Peer, Handshake, Optional[Tuple[Dict[str, Optional[str]], Dict[str, Optional[str]]]]]:
    """Open a WebSocket as the client over ``sock`` (RFC 6455 section 4.1).

    Args:
        sock: a TCP socket connected to the server.
        host: the ``Host`` header.
        path: the resource.
        offer: a ``Sec-WebSocket-Extensions`` offer to send, or None.
        extra: frames to send in the same write as the request.
        chop: write the request in segments.
        upgrade: the values of the ``Upgrade`` and ``Connection`` headers.
        lowercase: write header names in lower case.
        timeout: seconds for the whole handshake.

    Returns:
        The peer, the server's response, and ``(offered params, answered params)`` when the
        server accepted permessage-deflate (else None).

    Raises:
        DriverError: the server's answer breaks RFC 6455 section 4.2.2 or RFC 7692.
    """
    deadline = time.monotonic() + timeout
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    lines = [
        f"Host: {host}",
        f"Upgrade: {upgrade[0]}",
        f"Connection: {upgrade[1]}",
        f"Sec-WebSocket-Key: {key.decode('ascii')}",
        "Sec-WebSocket-Version: 13",
    ]
    if offer is not None:
        lines.append(f"Sec-WebSocket-Extensions: {offer}")
    request = _head(f"GET {path} HTTP/1.1", lines, lowercase)
    for piece in segments(request + extra, chop):
        sock.sendall(piece)
    head, rest = _read_head(sock, deadline)
    status, *header_lines = head.split(b"\r\n")
    response = Handshake(status.decode("latin-1"), _headers(header_lines))
    parts = response.start_line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1" or parts[1] != "101":
        raise DriverError(f"the server did not switch protocols: {response.start_line!r}")
    if not _has_token(response.headers, "upgrade", "websocket") or not _has_token(response.headers, "connection", "upgrade"):
        raise DriverError("101 without Upgrade: websocket / Connection: Upgrade")
    if response.headers.get("sec-websocket-accept") != [accept_key(key)]:
        raise DriverError(f"wrong Sec-WebSocket-Accept: {response.headers.get('sec-websocket-accept')}")
    negotiated = None
    answered = response.get("Sec-WebSocket-Extensions")
    if answered:
        extensions = parse_extensions(answered)
        offered = dict(parse_extensions(offer or ""))
        if len(extensions) != 1 or extensions[0][0] not in offered:
            raise DriverError(f"the server accepted extensions that were not offered: {answered!r}")
        negotiated = (offered[extensions[0][0]], extensions[0][1])
    deflate = None
    if negotiated is not None:
        deflate = Deflate(agreed_params(*negotiated), client=True)
    return Peer(sock, client=True, buffered=rest, deflate=deflate), response, negotiated


def server_handshake(
    sock: socket.socket,
    *,
    answer: Optional[str] = None,
    extra: bytes = b"",
    chop: Chop = None,
    upgrade: Tuple[str, str] = ("websocket", "Upgrade"),
    lowercase: bool = False,
    timeout: float = 10.0,
) -> Tuple[Peer, Handshake]:
    """Accept a WebSocket as the server over ``sock`` (RFC 6455 section 4.2).

    Args:
        sock: the accepted TCP socket.
        answer: the ``Sec-WebSocket-Extensions`` value to answer with, or None. When it
            names permessage-deflate and the client offered it, the driver compresses.
        extra: frames to send in the same write as the 101 response.
        chop: write the response in segments.
        upgrade: the values of the ``Upgrade`` and ``Connection`` headers.
        lowercase: write header names in lower case.
        timeout: seconds for the whole handshake.

    Raises:
        DriverError: the client's request breaks RFC 6455 section 4.1.
    """
    deadline = time.monotonic() + timeout
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head, rest = _read_head(sock, deadline)
    start, *header_lines = head.split(b"\r\n")
    request = Handshake(start.decode("latin-1"), _headers(header_lines))
    method, _, version = request.start_line.partition(" ")
    if method != "GET" or not version.endswith(" HTTP/1.1"):
        raise DriverError(f"not a GET over HTTP/1.1: {request.start_line!r}")
    if not _has_token(request.headers, "upgrade", "websocket") or not _has_token(request.headers, "connection", "upgrade"):
        raise DriverError("request without Upgrade: websocket / Connection: Upgrade")
    if request.headers.get("sec-websocket-version") != ["13"] or not request.get("Host"):
        raise DriverError("request without Sec-WebSocket-Version: 13 or Host")
    keys = request.headers.get("sec-websocket-key", [])
    if len(keys) != 1 or len(base64.b64decode(keys[0], validate=True)) != 16:
        raise DriverError(f"bad Sec-WebSocket-Key: {keys!r}")
    lines = [
        f"Upgrade: {upgrade[0]}",
        f"Connection: {upgrade[1]}",
        f"Sec-WebSocket-Accept: {accept_key(keys[0].encode('ascii'))}",
    ]
    deflate = None
    if answer is not None:
        lines.append(f"Sec-WebSocket-Extensions: {answer}")
        offers = dict(parse_extensions(request.get("Sec-WebSocket-Extensions") or ""))
        answered = parse_extensions(answer, strict=False)
        if len(answered) == 1 and answered[0][0] == "permessage-deflate" and "permessage-deflate" in offers:
            try:
                params = agreed_params(offers["permessage-deflate"], answered[0][1])
            except DriverError:
                params = None  # A deliberately invalid answer: the client must refuse it.
            if params is not None:
                deflate = Deflate(params, client=False)
    response = _head("HTTP/1.1 101 Switching Protocols", lines, lowercase)
    for piece in segments(response + extra, chop):
        sock.sendall(piece)
    return Peer(sock, client=False, buffered=rest, deflate=deflate), request
