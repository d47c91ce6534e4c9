"""The HTTP/1.1 messages of the opening handshake and the bounded parsers that read them.

A WebSocket connection starts as an HTTP/1.1 request and response (RFC 9112). This module
holds the messages (:class:`Request`, :class:`Response`) and the parsers
(:class:`RequestParser`, :class:`ResponseParser`) that turn bytes into them, with their
limits (the ``DEFAULT_*`` constants). The parsers never read a socket: the caller feeds
them whatever bytes arrived and gets a value once it is complete. Every limit is checked as
bytes arrive, so a peer cannot make them buffer without bound. The header fields of a
message, and the rules each field follows, are :mod:`wsclient.headers`.

Decisions worth knowing:

- Lines may end with CRLF or a bare LF (RFC 9112 section 2.2 allows a recipient to accept
  LF, as :mod:`http.client` does); a CR anywhere else in a line is an error.
- Obsolete line folding (a header line starting with a space or tab) is an error, 400
  (RFC 9112 section 5.2).
- Empty lines before the start line are ignored (RFC 9112 section 2.2).
- A request line is checked as its bytes arrive: as soon as they cannot begin one (RFC 9112
  section 3), it is a 400, without waiting for a line end that a TLS ClientHello or binary
  junk may never send; a complete request line is checked before its header fields.
- Status codes: a request line over ``max_line`` gives 414; a header line over ``max_line``,
  more than ``max_headers`` headers or a head over ``max_head`` bytes give 431; other
  malformed requests 400; a request older than HTTP/1.1 gives 505.
- Head lines are decoded from ISO-8859-1, as :mod:`http.client` does, so any bytes give
  text; a field :class:`~wsclient.headers.Headers` refuses is a 400.
"""

from __future__ import annotations

import dataclasses
import http
import re
from typing import Callable, Optional, Tuple, Union

from .exceptions import InvalidHTTP
from .headers import Headers, HeadersLike, has_control_character, is_token, parse_token_list

__all__ = [
    "DEFAULT_MAX_LINE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEAD",
    "DEFAULT_MAX_BODY",
    "Request",
    "Response",
    "RequestParser",
    "ResponseParser",
]

#: Longest line of a head, in bytes, without its line ending.
DEFAULT_MAX_LINE = 8192
#: Most header fields in a head.
DEFAULT_MAX_HEADERS = 128
#: Most bytes of a whole head, line endings and the final empty line included.
DEFAULT_MAX_HEAD = 65536
#: Most bytes of a response body kept (the body of a 401 or 403, say).
DEFAULT_MAX_BODY = 1 << 20

_TARGET_RE = re.compile(r"[\x21-\x7e]+")
# What may begin ``method SP request-target SP HTTP-version`` (RFC 9112 section 3): a
# token (RFC 9110 section 5.6.2), visible ASCII, then the beginning of ``HTTP/d.d``.
_TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_VERSION_PREFIX = r"(?:H(?:T(?:T(?:P(?:/(?:[0-9](?:\.[0-9]?)?)?)?)?)?)?)?"
_REQUEST_LINE_PREFIX_RE = re.compile(
    rf"{_TCHAR}*|{_TCHAR}+ [\x21-\x7e]*|{_TCHAR}+ [\x21-\x7e]+ {_VERSION_PREFIX}"
)
_FIRST_BYTES = 8  # RequestParser.first_bytes
_VERSION_RE = re.compile(r"HTTP/([0-9])\.([0-9])")
_STATUS_RE = re.compile(r"[0-9]{3}")


def _to_headers(headers: HeadersLike) -> Headers:
    return headers if isinstance(headers, Headers) else Headers(headers)


@dataclasses.dataclass
class Request:
    """An HTTP request head (the opening handshake has no request body).

    Attributes:
        method: the method, ``"GET"`` for a handshake.
        path: the request target: path and query string, as sent.
        headers: the header fields (a mapping or pairs given here become :class:`Headers`).
        version: the protocol version, ``"HTTP/1.1"``.
    """

    method: str = "GET"
    path: str = "/"
    headers: Headers = dataclasses.field(default_factory=Headers)
    version: str = "HTTP/1.1"

    def __post_init__(self) -> None:
        self.headers = _to_headers(self.headers)

    def serialize(self) -> bytes:
        """The request line, the headers and the empty line.

        Raises:
            ValueError: the method is not a token, or the path is empty or holds spaces,
                control or non-ASCII characters.
        """
        if not is_token(self.method):
            raise ValueError(f"invalid method {self.method!r}")
        if not _TARGET_RE.fullmatch(self.path):
            raise ValueError("invalid request target: empty, or spaces, controls or non-ASCII")
        line = f"{self.method} {self.path} {self.version}\r\n".encode("ascii")
        return line + self.headers.serialize() + b"\r\n"


class Response:
    """An HTTP response: status, headers and body.

    Args:
        status: the status code, an ``int`` or :class:`http.HTTPStatus` (stored as an
            ``HTTPStatus`` when it is a known code).
        headers: ``None``, a mapping, ``(name, value)`` pairs or :class:`Headers`.
        body: the body, bytes-like or ``str`` (encoded as UTF-8).
        reason: the reason phrase; the status's standard phrase by default.
        version: the protocol version of the status line.

    Attributes:
        body_truncated: ``True`` when a parsed body was cut at ``max_body`` bytes or by the
            connection closing early.

    Raises:
        TypeError: a wrong type.
        ValueError: a status outside 100-999, a bad reason, or a body on a 1xx, 204 or 304.
    """

    def __init__(
        self,
        status: int,
        headers: HeadersLike = None,
        body: Union[bytes, bytearray, memoryview, str] = b"",
        *,
        reason: Optional[str] = None,
        version: str = "HTTP/1.1",
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"status must be an int, not {type(status).__name__}")
        if not 100 <= status <= 999:
            raise ValueError(f"status {status} is not a three-digit HTTP status")
        try:
            self.status: Union[http.HTTPStatus, int] = http.HTTPStatus(status)
        except ValueError:
            self.status = int(status)
        self.headers = _to_headers(headers)
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
        self.body = bytes(body)
        if self.body and not _may_have_body(int(status)):
            raise ValueError(f"a {int(status)} response cannot have a body")
        if reason is None:
            reason = self.status.phrase if isinstance(self.status, http.HTTPStatus) else ""
        if not isinstance(reason, str) or has_control_character(reason):
            raise ValueError(f"invalid reason phrase {reason!r}")
        self.reason = reason
        self.version = version
        self.body_truncated = False

    @classmethod
    def coerce(cls, value: object) -> "Response":
        """A :class:`Response` from a ``Response`` or a ``(status, headers, body)`` tuple.

        Raises:
            TypeError: ``value`` is neither.
        """
        if isinstance(value, Response):
            return value
        if isinstance(value, tuple) and len(value) == 3:
            return cls(*value)
        # Never show the value: its headers may hold secrets.
        kind = type(value).__name__
        raise TypeError(f"expected a Response or a (status, headers, body) tuple, not a {kind}")

    def serialize(self) -> bytes:
        """The status line, the headers, the empty line and the body.

        ``Content-Length`` is added, unless ``Content-Length`` or ``Transfer-Encoding`` is
        present, for every status that may have a body (all but 1xx, 204 and 304).
        """
        headers = self.headers
        if _may_have_body(int(self.status)) and not (
            "Content-Length" in headers or "Transfer-Encoding" in headers
        ):
            headers = headers.copy()
            headers.add("Content-Length", str(len(self.body)))
        line = f"{self.version} {int(self.status)} {self.reason}\r\n".encode("latin-1")
        return line + headers.serialize() + b"\r\n" + self.body

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented

        def key(response: Response) -> Tuple[object, ...]:
            status, headers, body = int(response.status), response.headers, response.body
            return (status, response.reason, headers, body, response.body_truncated)

        return key(self) == key(other)

    __hash__ = None  # type: ignore[assignment]  # equal by value, mutable: unhashable

    def __repr__(self) -> str:
        return (
            f"Response(status={int(self.status)}, reason={self.reason!r}, "
            f"headers={self.headers!r}, body=<{len(self.body)} bytes>)"
        )


def _may_have_body(status: int) -> bool:
    """1xx, 204 and 304 responses never have a body (RFC 9110 section 6.4.1)."""
    return not (100 <= status < 200 or status in (204, 304))


class _HeadParser:
    """Splits fed bytes into the lines of a head and collects its fields, within limits."""

    _start_line_status = 400  # the status for a start line over max_line

    def __init__(self, *, max_line: int, max_headers: int, max_head: int) -> None:
        limits = {"max_line": max_line, "max_headers": max_headers, "max_head": max_head}
        for name, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._max_line = max_line
        self._max_headers = max_headers
        self._max_head = max_head
        self._buffer = bytearray()
        self._pos = 0  # start of the bytes not consumed yet
        self._scan = 0  # where the search for the next LF resumes
        self._done = False
        self._received = 0  # bytes fed so far
        self._reset_head()

    def _reset_head(self) -> None:
        self._head_size = 0
        self._start_line: Optional[str] = None
        self._headers = Headers()

    @property
    def leftover(self) -> bytes:
        """The bytes fed after the end of the message (WebSocket frames, a tunnel...)."""
        return bytes(self._buffer[self._pos :])

    def _accept(self, data: bytes) -> None:
        if self._done:
            raise RuntimeError(f"{type(self).__name__} already returned its message")
        self._buffer += data
        self._received += len(data)

    def _compact(self) -> None:
        del self._buffer[: self._pos]
        self._scan = max(0, self._scan - self._pos)
        self._pos = 0

    def _next_line(self, status: int) -> Optional[bytes]:
        """The next complete line without its ending, or ``None``; ``status`` if too long."""
        end = self._buffer.find(b"\n", max(self._pos, self._scan))
        if end == -1:
            self._scan = len(self._buffer)
            if len(self._buffer) - self._pos > self._max_line + 1:  # +1: a CR may follow
                raise InvalidHTTP(f"line longer than {self._max_line} bytes", status)
            return None
        line = bytes(self._buffer[self._pos : end])
        self._pos = end + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self._max_line:
            raise InvalidHTTP(f"line longer than {self._max_line} bytes", status)
        if b"\r" in line:
            raise InvalidHTTP("bare CR inside a line (RFC 9112 section 2.2)")
        return line

    def _read_head(self) -> bool:
        """Consume lines until the empty line ending the head; ``True`` once it is read."""
        if self._start_line is None and self._read_whole_head():
            return True
        while True:
            start = self._pos
            status = self._start_line_status if self._start_line is None else 431
            line = self._next_line(status)
            used = (len(self._buffer) if line is None else self._pos) - start
            if self._head_size + used > self._max_head:
                raise InvalidHTTP(f"head larger than {self._max_head} bytes", 431)
            if line is None:
                return False
            self._head_size += used
            if self._start_line is None:
                if line:  # empty lines before the start line are ignored (RFC 9112 2.2)
                    self._start_line = line.decode("latin-1")
            elif not line:
                return True
            else:
                self._add_header(line)

    def _read_whole_head(self) -> bool:
        """The usual case in one step: the whole head is here, its lines end in CRLF and
        are within the line and head limits (each field's own checks, and the count, are
        :meth:`_add_header`'s). Anything else is left to the line-by-line reading
        (``False``), which gives the exact error or takes the unusual form."""
        start = self._pos
        end = self._buffer.find(b"\r\n\r\n", start)
        size = end + 4 - start  # the head with its final empty line
        if end == -1 or self._head_size + size > self._max_head:
            return False
        head = bytes(self._buffer[start:end])
        lines = head.split(b"\r\n")
        fields = len(lines) - 1
        if (
            not lines[0]
            or head.count(b"\r") != fields
            or head.count(b"\n") != fields
            or max(map(len, lines)) > self._max_line
        ):
            return False
        self._start_line = lines[0].decode("latin-1")
        for line in lines[1:]:
            self._add_header(line)
        self._pos = start + size
        self._head_size += size
        return True

    def _add_header(self, line: bytes) -> None:
        if line[:1] in (b" ", b"\t"):
            raise InvalidHTTP("obsolete line folding in a header (RFC 9112 section 5.2)")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise InvalidHTTP("header line without a colon")
        if len(self._headers) >= self._max_headers:
            raise InvalidHTTP(f"more than {self._max_headers} headers", 431)
        try:
            self._headers.add(name, value)
        except ValueError as exc:
            raise InvalidHTTP(f"invalid header: {exc}") from exc


class RequestParser(_HeadParser):
    """Parse a request head from bytes as they arrive (RFC 9112 sections 2 to 5).

    Feed it bytes with :meth:`feed` until it returns the :class:`Request`; the bytes after
    the head are then in :attr:`leftover`.

    Args:
        max_line: longest request or header line, in bytes (414 or 431 beyond).
        max_headers: most header fields (431 beyond).
        max_head: most bytes in the whole head (431 beyond).
    """

    _start_line_status = 414

    def __init__(
        self,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_head: int = DEFAULT_MAX_HEAD,
    ) -> None:
        super().__init__(max_line=max_line, max_headers=max_headers, max_head=max_head)
        self._start_checked = False
        self._first_bytes = b""

    @property
    def first_bytes(self) -> bytes:
        """The first bytes fed (at most 8), kept after an error: a server can tell from
        them what a peer that does not speak HTTP sent instead (a TLS ClientHello begins
        with the record header ``16 03``, RFC 8446 section 5.1)."""
        return self._first_bytes

    def feed(self, data: bytes) -> Optional[Request]:
        """Take the next bytes; ``b""`` means the connection was closed.

        Returns:
            The :class:`Request` once its head is complete, else ``None``.

        Raises:
            InvalidHTTP: a malformed or oversized head, or end of input before its end
                (``.status`` is the status to answer with). A request line is refused as
                soon as its bytes so far cannot begin one, without waiting for its end: a
                TLS ClientHello or binary junk fails with its first bytes.
            RuntimeError: the request was already returned.
        """
        self._accept(data)
        if len(self._first_bytes) < _FIRST_BYTES:
            self._first_bytes += data[: _FIRST_BYTES - len(self._first_bytes)]
        if not data:
            what = "before the end of the request head" if self._received else "without a request"
            raise InvalidHTTP(f"connection closed {what}")
        if not self._read_head():
            self._check_start()
            self._compact()
            return None
        self._done = True
        assert self._start_line is not None
        method, path, version = _parse_request_line(self._start_line)
        return Request(method, path, self._headers, version)

    def _check_start(self) -> None:
        """Refuse a request line as soon as it cannot be one (RFC 9112 section 3).

        A peer that does not speak HTTP (a TLS client on a plain port, a scanner) may never
        send a line end: waiting for one would hold the connection until a timeout.
        """
        if self._start_line is not None:
            if not self._start_checked:  # Complete: check it before its header fields.
                _parse_request_line(self._start_line)
                self._start_checked = True
            return
        pending = bytes(self._buffer[self._pos :]).decode("latin-1")
        if pending.endswith("\r"):  # Only an LF may follow: the line must be complete.
            if len(pending) > 1:
                _parse_request_line(pending[:-1])
        elif not _REQUEST_LINE_PREFIX_RE.fullmatch(pending):
            raise InvalidHTTP("not the start of an HTTP request line (RFC 9112 section 3)")


def _parse_request_line(line: str) -> Tuple[str, str, str]:
    """``method SP request-target SP HTTP-version`` (RFC 9112 section 3)."""
    parts = line.split(" ")
    if len(parts) != 3 or not is_token(parts[0]) or not _TARGET_RE.fullmatch(parts[1]):
        raise InvalidHTTP("malformed request line")
    version = _VERSION_RE.fullmatch(parts[2])
    if version is None:
        raise InvalidHTTP("malformed HTTP version in the request line")
    if version.group(1) != "1" or version.group(2) == "0":
        raise InvalidHTTP(f"{parts[2]} is not supported; WebSocket needs HTTP/1.1", 505)
    return parts[0], parts[1], parts[2]


class ResponseParser(_HeadParser):
    """Parse a response from bytes as they arrive (RFC 9112 sections 4 to 7).

    A ``101`` response ends with its head: the bytes after it are WebSocket frames, left in
    :attr:`leftover`. Other responses also have a body (RFC 9112 section 6.3): none for
    ``204`` and ``304``; otherwise chunked, per ``Content-Length``, or up to the end of input.
    Only ``max_body`` bytes of it are kept: beyond that the response is complete with
    ``body_truncated = True``, as when the connection closes in the middle of a body.
    Interim ``1xx`` responses (but ``101``) are skipped (RFC 9110 section 15.2).

    Args:
        max_line: longest status, header or chunk-size line, in bytes.
        max_headers: most header fields.
        max_head: most bytes in the whole head.
        max_body: most body bytes kept.
        head_only: for the answer to a proxy ``CONNECT``: it ends with its head, whatever
            the status. After a ``2xx`` the tunnel follows; a refusal's body is not needed
            (the connection is closed), and waiting for it would let a proxy that never
            finishes it hold the caller until the deadline.
    """

    def __init__(
        self,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_head: int = DEFAULT_MAX_HEAD,
        max_body: int = DEFAULT_MAX_BODY,
        head_only: bool = False,
    ) -> None:
        super().__init__(max_line=max_line, max_headers=max_headers, max_head=max_head)
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 0:
            raise ValueError(f"max_body must be an int >= 0, got {max_body!r}")
        self._max_body = max_body
        self._head_only = head_only
        self._status = 0
        self._reason = ""
        self._version = ""
        self._body = bytearray()
        self._truncated = False
        self._remaining: Optional[int] = 0
        self._trailers = 0
        self._step: Callable[[], object] = self._step_head
        self._after_data: Callable[[], object] = self._finish
        self._response: Optional[Response] = None

    def feed(self, data: bytes) -> Optional[Response]:
        """Take the next bytes; ``b""`` means the connection was closed.

        Returns:
            The :class:`Response` once it is complete, else ``None``.

        Raises:
            InvalidHTTP: a malformed or oversized head, a bad ``Content-Length`` or chunk,
                or end of input before the end of the head.
            RuntimeError: the response was already returned.
        """
        self._accept(data)
        if not data:
            return self._on_eof()
        while self._response is None and self._step():
            pass  # each step consumes what it can and says whether another may follow
        if self._response is None:
            self._compact()
        return self._response

    def _on_eof(self) -> Response:
        if self._step == self._step_head:
            what = "without a response"
            if self._received:
                what = "before the end of the response head"
            raise InvalidHTTP(f"connection closed {what}")
        self._truncated = not (self._step == self._step_data and self._remaining is None)
        return self._finish()

    def _finish(self) -> Response:
        status, headers, body = self._status, self._headers, bytes(self._body)
        response = Response(status, headers, body, reason=self._reason, version=self._version)
        response.body_truncated = self._truncated
        self._response = response
        self._done = True
        return response

    def _step_head(self) -> bool:
        if not self._read_head():
            return False
        assert self._start_line is not None
        self._version, self._status, self._reason = _parse_status_line(self._start_line)
        if 100 <= self._status < 200 and self._status != 101:
            self._reset_head()  # an interim response: the real one follows
            return True
        self._step = self._body_step()
        return True

    def _body_step(self) -> Callable[[], object]:
        """The step that reads the body of the response whose head was just read."""
        status, headers = self._status, self._headers
        if status == 101 or not _may_have_body(status) or self._head_only:
            return self._finish
        self._after_data = self._finish
        if "Transfer-Encoding" in headers:  # it overrides Content-Length (RFC 9112 6.3)
            codings = parse_token_list(headers.get_all("Transfer-Encoding") or [])
            if codings and codings[-1].lower() == "chunked":
                return self._step_chunk_size
        elif "Content-Length" in headers:
            self._remaining = _parse_content_length(headers)
            return self._step_data
        self._remaining = None  # the body ends with the connection
        return self._step_data

    def _take(self, limit: Optional[int]) -> int:
        """Move up to ``limit`` buffered bytes to the body, keeping ``max_body``; the count."""
        available = len(self._buffer) - self._pos
        count = available if limit is None else min(limit, available)
        room = self._max_body - len(self._body)
        self._body += self._buffer[self._pos : self._pos + min(count, room)]
        self._pos += count
        if count > room:
            self._truncated = True
        return count

    def _step_data(self) -> bool:
        """Body bytes: ``_remaining`` of them, or up to the end of input when ``None``."""
        count = self._take(self._remaining)
        if self._remaining is not None:
            self._remaining -= count
            if self._remaining and len(self._body) >= self._max_body:
                self._truncated = True
        if self._truncated:
            self._finish()
            return False
        if self._remaining == 0:
            self._step = self._after_data
            return True
        return False

    def _step_chunk_size(self) -> bool:
        line = self._next_line(400)
        if line is None:
            return False
        size = line.split(b";", 1)[0].strip(b" \t")
        if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size):
            raise InvalidHTTP("invalid chunk size (RFC 9112 section 7.1)")
        self._remaining = int(size, 16)
        self._after_data = self._step_chunk_end
        self._step = self._step_data if self._remaining else self._step_trailers
        return True

    def _step_chunk_end(self) -> bool:
        line = self._next_line(400)
        if line is None:
            return False
        if line:
            raise InvalidHTTP("chunk data longer than its size (RFC 9112 section 7.1)")
        self._step = self._step_chunk_size
        return True

    def _step_trailers(self) -> bool:
        line = self._next_line(431)
        if line is None:
            return False
        if not line:
            self._finish()
            return False
        self._trailers += 1  # trailer fields are read and dropped (RFC 9112 7.1.2)
        if self._trailers > self._max_headers:
            raise InvalidHTTP(f"more than {self._max_headers} trailer fields", 431)
        return True


def _parse_status_line(line: str) -> Tuple[str, int, str]:
    """``HTTP-version SP status-code SP [reason-phrase]`` (RFC 9112 section 4)."""
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    match = _VERSION_RE.fullmatch(version)
    if match is None or match.group(1) != "1" or not _STATUS_RE.fullmatch(code) or code[0] == "0":
        raise InvalidHTTP(f"malformed status line {line[:80]!r}")
    if has_control_character(reason):
        raise InvalidHTTP("control character in the reason phrase")
    return version, int(code), reason.strip(" \t")


def _parse_content_length(headers: Headers) -> int:
    """The ``Content-Length``; equal repeated values are allowed (RFC 9112 section 6.3)."""
    values = set(parse_token_list(headers.get_all("Content-Length") or []))
    if len(values) != 1 or not all(value.isascii() and value.isdigit() for value in values):
        raise InvalidHTTP("invalid Content-Length")
    digits = values.pop().lstrip("0") or "0"
    if len(digits) > 18:  # over an exabyte; and int() refuses more than 4300 digits
        raise InvalidHTTP("Content-Length too large")
    return int(digits)
