"""The recording file: a WebSocket session as JSON Lines, written while it happens and read back.

``python -m wsclient connect URI --record FILE`` writes one; :mod:`wsclient.replay` plays
the server's side of one back. The format is stable (version 1) and meant to be read, and
written, by people and by other tools:

* The first line is the header: ``{"wsclient-recording": 1, "uri": ..., "subprotocol": ...,
  "started": ...}`` (the URI with any password masked; ``started`` in UTC, ISO 8601).
* Every further line is one event, in the order it happened::

    {"t": 0.0012, "from": "server", "type": "text", "text": "welcome"}
    {"t": 0.0304, "from": "client", "type": "binary", "base64": "AAH/"}
    {"t": 1.5021, "from": "client", "type": "ping", "base64": "AAAAAQ=="}
    {"t": 1.5025, "from": "server", "type": "pong", "base64": "AAAAAQ=="}
    {"t": 2.0001, "from": "client", "type": "close", "code": 1000, "reason": ""}

  ``t`` is the time in seconds since the opening handshake completed; ``from`` is who sent
  it, ``"client"`` or ``"server"``; ``type`` is ``text``, ``binary``, ``ping``, ``pong`` or
  ``close``. A text message carries ``text``; binary messages, pings and pongs carry
  ``base64``; a close carries ``code`` and ``reason`` (``1005`` for a close frame without a
  code, ``1006`` when the connection ended without one).

A fragmented message is one event (its frames joined). Pings the peer sent and the pongs
the library answered them with by itself are not seen by the command line, so they are not
in its recordings. Readers ignore unknown keys, so later versions can add some.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
import os
import threading
import time
from typing import IO, Any, Dict, List, Optional, Union

from .uri import redact

__all__ = ["FORMAT_VERSION", "SENDERS", "TYPES", "Event", "Recording", "RecordingError", "Recorder", "read"]

#: The version written in the header line; a reader refuses a file with a higher one.
FORMAT_VERSION = 1

#: The values of ``from``.
SENDERS = ("client", "server")

#: The values of ``type``.
TYPES = ("text", "binary", "ping", "pong", "close")

_HEADER_KEY = "wsclient-recording"


class RecordingError(ValueError):
    """A recording file that cannot be read: the message names the line and what is wrong."""


@dataclasses.dataclass(frozen=True)
class Event:
    """One line of a recording after the header.

    Attributes:
        time: seconds since the opening handshake completed.
        sender: ``"client"`` or ``"server"``.
        type: ``"text"``, ``"binary"``, ``"ping"``, ``"pong"`` or ``"close"``.
        data: the text (``str``) of a text message, the payload (``bytes``) of the others;
            ``None`` for a close.
        code: the close code of a close, else ``None``.
        reason: the close reason of a close, else ``""``.
        line: the line number in the file it was read from (0 when not read from a file).
    """

    time: float
    sender: str
    type: str
    data: Union[str, bytes, None] = None
    code: Optional[int] = None
    reason: str = ""
    line: int = 0

    def describe(self) -> str:
        """A short phrase for messages: ``text 'hello'``, ``binary 3 bytes 00ff10``, ``close 1000``.

        Returns:
            The phrase (payloads longer than 60 characters or 32 bytes are cut).
        """
        if self.type == "close":
            return f"close {self.code}" + (f" {self.reason!r}" if self.reason else "")
        return describe_payload(self.type, self.data)

    def to_json(self) -> Dict[str, Any]:
        """The event as the JSON object of its line.

        Returns:
            A dict ready for :func:`json.dumps`.
        """
        line: Dict[str, Any] = {"t": round(self.time, 6), "from": self.sender, "type": self.type}
        if self.type == "close":
            line["code"] = self.code
            line["reason"] = self.reason
        elif self.type == "text":
            line["text"] = self.data
        else:
            assert isinstance(self.data, bytes)
            line["base64"] = base64.b64encode(self.data).decode("ascii")
        return line


def describe_payload(kind: str, data: Union[str, bytes, None]) -> str:
    """A short phrase for a message or control frame payload.

    Args:
        kind: ``text``, ``binary``, ``ping`` or ``pong``.
        data: the payload.

    Returns:
        ``text 'hello'`` or ``binary 3 bytes 00ff10``, cut when long.
    """
    if isinstance(data, str):
        shown = data if len(data) <= 60 else data[:60] + "..."
        return f"{kind} {shown!r}"
    data = data or b""
    shown = data[:32].hex() + ("..." if len(data) > 32 else "")
    return f"{kind} {len(data)} bytes {shown}".rstrip()


@dataclasses.dataclass(frozen=True)
class Recording:
    """A whole recording: the header's fields and the events.

    Attributes:
        uri: the URI the client connected to (password masked).
        subprotocol: the subprotocol the server chose, or ``None``.
        started: when the session started (ISO 8601, UTC), as written.
        events: the events in order.
    """

    uri: str
    subprotocol: Optional[str]
    started: str
    events: List[Event]


def _fail(line: int, what: str) -> RecordingError:
    return RecordingError(f"line {line}: {what}")


def _parse_event(number: int, obj: Any) -> Event:
    if not isinstance(obj, dict):
        raise _fail(number, "an event is a JSON object")
    t, sender, kind = obj.get("t"), obj.get("from"), obj.get("type")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0:
        raise _fail(number, f'"t" must be a number of seconds, 0 or more, not {t!r}')
    if sender not in SENDERS:
        raise _fail(number, f'"from" must be "client" or "server", not {sender!r}')
    if kind not in TYPES:
        raise _fail(number, f'"type" must be one of {", ".join(TYPES)}, not {kind!r}')
    if kind == "close":
        code, reason = obj.get("code"), obj.get("reason", "")
        if isinstance(code, bool) or not isinstance(code, int) or not 1000 <= code <= 4999:
            raise _fail(number, f'a close needs a "code" from 1000 to 4999, not {code!r}')
        if not isinstance(reason, str):
            raise _fail(number, f'"reason" must be a string, not {reason!r}')
        return Event(float(t), sender, kind, None, code, reason, number)
    if kind == "text":
        text = obj.get("text")
        if not isinstance(text, str):
            raise _fail(number, f'a text message needs "text", a string, not {text!r}')
        return Event(float(t), sender, kind, text, line=number)
    encoded = obj.get("base64")
    if not isinstance(encoded, str):
        raise _fail(number, f'a {kind} needs "base64", a string, not {encoded!r}')
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(number, f'"base64" is not valid base64: {encoded[:40]!r}') from None
    return Event(float(t), sender, kind, data, line=number)


def read(path: Union[str, "os.PathLike[str]"]) -> Recording:
    """Read a recording file.

    Args:
        path: the file (UTF-8 JSON Lines; blank lines are skipped).

    Returns:
        The recording.

    Raises:
        RecordingError: the file is not a recording (the message names the line).
        OSError: the file cannot be read.
    """
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    header: Optional[Dict[str, Any]] = None
    events: List[Event] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise _fail(number, f"not JSON ({exc})") from None
        if header is None:
            if not isinstance(obj, dict) or _HEADER_KEY not in obj:
                raise _fail(number, f'not a wsclient recording: the first line has no "{_HEADER_KEY}" key')
            version = obj[_HEADER_KEY]
            if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
                raise _fail(number, f"recording format version {version!r}; this wsclient reads 1 to {FORMAT_VERSION}")
            header = obj
            continue
        events.append(_parse_event(number, obj))
    if header is None:
        raise RecordingError(f"{path}: empty, not a wsclient recording")
    subprotocol = header.get("subprotocol")
    return Recording(
        uri=str(header.get("uri", "")),
        subprotocol=subprotocol if isinstance(subprotocol, str) else None,
        started=str(header.get("started", "")),
        events=events,
    )


class Recorder:
    """Writes a recording as the session happens, one flushed line per event; thread-safe.

    Args:
        file: a text file open for writing (the recorder does not close it) .
        uri: the URI connected to (its password is masked before it is written).
        subprotocol: the negotiated subprotocol.
        clock: the monotonic clock (seconds); ``t`` counts from the recorder's creation.
    """

    def __init__(self, file: IO[str], *, uri: str, subprotocol: Optional[str] = None,
                 clock: Any = time.monotonic) -> None:
        self._file = file
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._ended = False
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        self._write({_HEADER_KEY: FORMAT_VERSION, "uri": redact(uri), "subprotocol": subprotocol,
                     "started": started.replace("+00:00", "Z")})

    def _write(self, obj: Dict[str, Any]) -> None:
        with self._lock:
            if self._ended:
                return
            self._file.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self._file.flush()

    def message(self, sender: str, message: Union[str, bytes]) -> None:
        """Record a text (``str``) or binary (``bytes``) message.

        Args:
            sender: ``"client"`` or ``"server"``.
            message: the whole message.
        """
        data: Union[str, bytes] = message if isinstance(message, str) else bytes(message)
        self.event(Event(self._clock() - self._start, sender, "text" if isinstance(message, str) else "binary", data))

    def control(self, sender: str, kind: str, data: bytes) -> None:
        """Record a ping or a pong.

        Args:
            sender: ``"client"`` or ``"server"``.
            kind: ``"ping"`` or ``"pong"``.
            data: its payload.
        """
        self.event(Event(self._clock() - self._start, sender, kind, bytes(data)))

    def close(self, sender: str, code: int, reason: str = "") -> None:
        """Record a close frame (or, with 1006, the end of a connection without one).

        Args:
            sender: ``"client"`` or ``"server"``.
            code: the close code.
            reason: the close reason.
        """
        self.event(Event(self._clock() - self._start, sender, "close", None, code, reason))

    def end(self) -> None:
        """Write nothing more: events recorded later (a pong that arrives after the close,
        from another thread) are dropped, so the file can be closed."""
        with self._lock:
            self._ended = True

    def event(self, event: Event) -> None:
        """Write one event as it is (its ``time`` included).

        Args:
            event: the event.

        Raises:
            ValueError: ``sender`` or ``type`` is not one of the documented values.
        """
        if event.sender not in SENDERS or event.type not in TYPES:
            raise ValueError(f"not a recording event: from {event.sender!r}, type {event.type!r}")
        self._write(event.to_json())
