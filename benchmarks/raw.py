"""The raw-socket baseline: the least a blocking stdlib Python program can do to speak WebSocket.

A minimal hand-written client and a minimal thread-per-connection echo server that speak
RFC 6455 frames (and, when asked, permessage-deflate with :mod:`zlib`) straight over a
blocking :mod:`socket`: no state machine, no locks, no background thread, no validation
beyond what the benchmarks need. Masking is pure Python integer XOR in chunks, the same
technique wsclient uses, so the baseline is "the practical limit of blocking Python".

It is not a library: it trusts its peer and raises on anything unexpected.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading
import zlib
from typing import Tuple

__all__ = ["mask", "RawConnection", "raw_connect", "RawServer", "broadcast", "GUID"]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_CHUNK = 1 << 14
_READ = 1 << 16
_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 section 7.2.1

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated, on Python ints, 16 KiB at a time."""
    n = len(data)
    if n <= _CHUNK:
        rep = (key * ((n >> 2) + 1))[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(rep, "little")).to_bytes(n, "little")
    out = bytearray(n)
    view = memoryview(data)
    ikey = int.from_bytes(key * (_CHUNK >> 2), "little")
    end = n - n % _CHUNK
    for i in range(0, end, _CHUNK):
        out[i : i + _CHUNK] = (int.from_bytes(view[i : i + _CHUNK], "little") ^ ikey).to_bytes(_CHUNK, "little")
    if end < n:
        out[end:] = mask(bytes(view[end:]), key)
    return bytes(out)


class RawConnection:
    """One WebSocket connection over a blocking socket, after the opening handshake.

    Args:
        sock: the connected socket.
        client: True masks outgoing frames (the client role).
        leftover: bytes read past the handshake.
        deflate: (compress, decompress) factories when permessage-deflate is on, else None.
    """

    def __init__(self, sock: socket.socket, *, client: bool, leftover: bytes = b"", deflate=None) -> None:
        self.sock = sock
        self.client = client
        self.buf = bytearray(leftover)
        self.deflate = deflate
        self.comp = deflate[0]() if deflate else None
        self.decomp = deflate[1]() if deflate else None

    def send(self, payload: bytes, opcode: int = BINARY) -> None:
        """Send one message in one frame (compressed when deflate is on and it is data)."""
        b0 = 0x80 | opcode
        if self.deflate and opcode in (TEXT, BINARY):
            payload = self.comp.compress(payload) + self.comp.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4] if payload.endswith(_TAIL) else payload
            b0 |= 0x40
        n = len(payload)
        mbit = 0x80 if self.client else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if self.client:
            key = os.urandom(4)
            head += key
            payload = mask(payload, key)
        if n < 65536:
            self.sock.sendall(head + payload)
        else:
            self.sock.sendall(head)  # no copy of a large payload to prepend the header
            self.sock.sendall(payload)

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            data = self.sock.recv(_READ)
            if not data:
                raise ConnectionResetError("peer closed")
            self.buf += data

    def _take(self, n: int) -> bytes:
        buf = self.buf
        if len(buf) >= n:
            data = bytes(buf[:n])
            del buf[:n]
            return data
        out = bytearray(n)
        view = memoryview(out)
        have = len(buf)
        view[:have] = buf
        buf.clear()
        while have < n:
            got = self.sock.recv_into(view[have:])
            if not got:
                raise ConnectionResetError("peer closed")
            have += got
        return bytes(out)

    def recv_frame(self) -> Tuple[int, bool, bool, bytes]:
        """Read one frame: (opcode, fin, rsv1, unmasked payload)."""
        self._fill(2)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        if n == 126:
            self._fill(4)
            n = struct.unpack_from("!H", self.buf, 2)[0]
            hl = 4
        elif n == 127:
            self._fill(10)
            n = struct.unpack_from("!Q", self.buf, 2)[0]
            hl = 10
        else:
            hl = 2
        if b1 & 0x80:
            self._fill(hl + 4)
            key = bytes(self.buf[hl : hl + 4])
            hl += 4
        else:
            key = None
        del self.buf[:hl]
        payload = self._take(n)
        if key is not None:
            payload = mask(payload, key)
        return b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40), payload

    def recv(self) -> Tuple[int, bytes]:
        """Read one message: (opcode, payload); answers pings; a close frame returns CLOSE."""
        parts = []
        first = None
        compressed = False
        while True:
            op, fin, rsv1, payload = self.recv_frame()
            if op == PING:
                self.send(payload, PONG)
                continue
            if op == PONG:
                continue
            if op == CLOSE:
                return CLOSE, payload
            if first is None:
                first, compressed = op, rsv1
            parts.append(payload)
            if fin:
                break
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if compressed:
            data = self.decomp.decompress(data + _TAIL)
        return first, data

    def close(self) -> None:
        """The closing handshake (1000), then close the socket."""
        try:
            self.send(struct.pack("!H", 1000), CLOSE)
            while self.recv()[0] != CLOSE:
                pass
        except OSError:
            pass
        self.sock.close()


def _accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def _read_head(sock: socket.socket) -> Tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(_READ)
        if not more:
            raise ConnectionResetError("closed during the handshake")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _deflate_factories(extensions: str):
    """(compressobj, decompressobj) factories from a negotiated permessage-deflate header."""
    params = [p.strip() for p in extensions.split(";")]
    if not params or params[0] != "permessage-deflate":
        return None
    wbits = 15
    for p in params[1:]:
        if p.startswith("client_max_window_bits="):
            wbits = max(9, int(p.split("=")[1]))
    return (lambda: zlib.compressobj(6, zlib.DEFLATED, -wbits), lambda: zlib.decompressobj(-15))


def raw_connect(host: str, port: int, *, deflate: bool = False, path: str = "/") -> RawConnection:
    """Open a raw client connection (TCP_NODELAY, as every library here sets or needs)."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else b""
    sock.sendall(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " % (host.encode(), port)
        + key + b"\r\nSec-WebSocket-Version: 13\r\n" + ext + b"\r\n"
    )
    head, rest = _read_head(sock)
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 101"):
        raise ConnectionError(f"handshake failed: {lines[0]}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    if headers.get("sec-websocket-accept", "").encode() != _accept_key(key):
        raise ConnectionError("bad Sec-WebSocket-Accept")
    factories = _deflate_factories(headers.get("sec-websocket-extensions", "")) if deflate else None
    if deflate and factories is None:
        raise ConnectionError("permessage-deflate was not accepted")
    sock.settimeout(None)
    return RawConnection(sock, client=True, leftover=rest, deflate=factories)


class RawServer:
    """A minimal thread-per-connection echo server (one thread per connection, nothing else).

    Args:
        host, port: where to listen (port 0 picks one; see ``port``).
        deflate: accept permessage-deflate when a client offers it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, deflate: bool = True, keep: bool = False) -> None:
        self.deflate = deflate
        self.keep = keep
        self.connections: "set[socket.socket]" = set()
        self.sock = socket.create_server((host, port), backlog=2048)
        self.port = self.sock.getsockname()[1]

    def serve_forever(self) -> None:
        """Accept connections until the listening socket is closed."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head, rest = _read_head(sock)
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
            key = headers["sec-websocket-key"].encode()
            factories = None
            ext = b""
            if self.deflate and "permessage-deflate" in headers.get("sec-websocket-extensions", ""):
                factories = (lambda: zlib.compressobj(6, zlib.DEFLATED, -15), lambda: zlib.decompressobj(-15))
                ext = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + _accept_key(key) + b"\r\n" + ext + b"\r\n"
            )
            conn = RawConnection(sock, client=False, leftover=rest, deflate=factories)
            if self.keep:
                self.connections.add(sock)
            while True:
                op, data = conn.recv()
                if op == CLOSE:
                    conn.send(data[:2], CLOSE)
                    break
                conn.send(data, op)
        except OSError:
            pass
        finally:
            self.connections.discard(sock)
            sock.close()


def broadcast(socks: "list[socket.socket]", text: str) -> int:
    """Send one text frame to each socket without waiting: the least a broadcast can do.

    A socket whose buffer is full is skipped (the count of them is returned); one that took
    part of the frame gets the rest with a blocking send, so its stream stays whole.
    """
    payload = text.encode()
    n = len(payload)
    head = struct.pack("!BB", 0x81, n) if n < 126 else struct.pack("!BBH", 0x81, 126, n)
    frame = head + payload
    skipped = 0
    for sock in socks:
        try:
            sent = sock.send(frame, socket.MSG_DONTWAIT)
        except BlockingIOError:
            skipped += 1
            continue
        except OSError:
            skipped += 1
            continue
        if sent < len(frame):
            sock.sendall(frame[sent:])
    return skipped


def serve_raw(port: int = 0, *, deflate: bool = True) -> Tuple[RawServer, threading.Thread]:
    """Start a :class:`RawServer` in a daemon thread; return it and the thread."""
    server = RawServer(port=port, deflate=deflate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
