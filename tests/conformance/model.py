"""Cases as data: what the driver sends, and what RFC 6455 / RFC 7692 say must come back.

A :class:`Case` holds a script of actions (frames to send, points where the driver waits
for answers) and one or more allowed :class:`Outcome` values. Several outcomes mean the RFC
permits each of them (Autobahn's "NON-STRICT"); each outcome names the frames wsclient
must send before its close frame, the close codes it may send, and what the wsclient
application sees (the ``ConnectionClosed`` its ``recv()`` raises).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

from .driver import BINARY, CLOSE, CONT, PING, PONG, TEXT, Chop

SERVER, CLIENT = "server", "client"
ROLES = (SERVER, CLIENT)


@dataclass(frozen=True)
class Big:
    """A large payload, built only when a case runs: ``size`` copies of ``byte``."""

    size: int
    byte: int = 0x2A  # "*"

    def bytes(self) -> bytes:
        return bytes([self.byte]) * self.size

    def __repr__(self) -> str:
        return f"<{self.size} x {self.byte:#04x}>"


Payload = Union[bytes, Big]


def as_bytes(payload: Union[bytes, str, Big]) -> bytes:
    if isinstance(payload, Big):
        return payload.bytes()
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return payload


# --- script actions ------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send one frame.

    Attributes:
        opcode, payload, fin, rsv: the frame (``rsv``: 4 RSV1, 2 RSV2, 1 RSV3).
        chop: write it in segments (see :func:`driver.segments`).
        length: declare this payload length instead of the real one.
        length_size: force a 1-, 2- or 8-byte length encoding.
        cut: send only the first ``cut`` bytes of the payload (the frame stays unfinished).
        wrong_mask: mask when this end must not, or the reverse.
        zero_mask: mask with the key 00 00 00 00 (client frames).
        deflate: compress ``payload`` with the driver's codec (RSV1 is then given by ``rsv``).
    """

    opcode: int
    payload: Payload = b""
    fin: bool = True
    rsv: int = 0
    chop: Chop = None
    length: Optional[int] = None
    length_size: Optional[int] = None
    cut: Optional[int] = None
    wrong_mask: bool = False
    zero_mask: bool = False


@dataclass(frozen=True)
class Batch:
    """Send several frames in one write."""

    frames: Tuple[Send, ...]
    chop: Chop = None


@dataclass(frozen=True)
class Sync:
    """Wait until ``count`` frames (pongs, messages) have come back in all."""

    count: int


@dataclass(frozen=True)
class Deflated:
    """Send a message compressed with the negotiated codec (RFC 7692 section 7.2.1).

    Attributes:
        opcode: TEXT or BINARY.
        pieces: the uncompressed message in pieces; each piece becomes a frame,
            compressed with a sync flush (``split=None``), or the whole message is
            compressed and its output cut at the ``split`` fractions (``(0.5,)``: two frames
            of the compressed bytes, cut mid-block).
        rsv_first: RSV bits of the first frame (RSV1 is what marks compression).
        rsv_cont: RSV bits of the continuation frames (must be 0).
        bfinal: end with a BFINAL block instead of a sync flush (section 7.2.3.3).
        keep_tail: do not strip the trailing 00 00 ff ff.
        send_frames: send only this many frames (a message left unfinished, or finished
            later by :class:`Resume`).
        chop: write in segments.
    """

    opcode: int
    pieces: Tuple[bytes, ...]
    split: Optional[Tuple[float, ...]] = None
    rsv_first: int = 4
    rsv_cont: int = 0
    bfinal: bool = False
    keep_tail: bool = False
    send_frames: Optional[int] = None
    chop: Chop = None


@dataclass(frozen=True)
class Resume:
    """Send the frames a :class:`Deflated` with ``send_frames`` held back."""

    chop: Chop = None


@dataclass(frozen=True)
class Corrupt:
    """Send a frame with RSV1 whose payload is not deflate data."""

    payload: bytes
    opcode: int = BINARY


@dataclass(frozen=True)
class AwaitClose:
    """Wait for wsclient's close frame, then go on with the script (data after a close)."""


@dataclass(frozen=True)
class Reply:
    """How the driver answers wsclient's close frame: with ``code`` (None: echo wsclient's),
    or, with ``mute``, not at all (no close frame, no FIN: wsclient must give up by itself)."""

    code: Optional[int] = None
    mute: bool = False


@dataclass(frozen=True)
class Hangup:
    """End the TCP connection without a close frame: FIN, or a reset with ``reset``."""

    reset: bool = False


Action = Union[Send, Batch, Sync, AwaitClose, Deflated, Resume, Corrupt, Hangup, Reply]


def text(payload: Union[str, bytes, Big], **kw: Any) -> Send:
    return Send(TEXT, payload.encode("utf-8") if isinstance(payload, str) else payload, **kw)


def binary(payload: Union[bytes, Big], **kw: Any) -> Send:
    return Send(BINARY, payload, **kw)


def cont(payload: Union[str, bytes, Big], **kw: Any) -> Send:
    return Send(CONT, payload.encode("utf-8") if isinstance(payload, str) else payload, **kw)


def ping(payload: bytes = b"", **kw: Any) -> Send:
    return Send(PING, payload, **kw)


def pong(payload: bytes = b"", **kw: Any) -> Send:
    return Send(PONG, payload, **kw)


def close(code: Optional[int] = 1000, reason: bytes = b"", **kw: Any) -> Send:
    payload = b"" if code is None else code.to_bytes(2, "big") + reason
    return Send(CLOSE, payload, **kw)


# --- what comes back -----------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    """A whole message from wsclient: ``str``/``Big`` text when ``is_text``, else bytes."""

    data: Union[str, bytes, Big]
    is_text: bool

    def matches(self, got: "Received") -> bool:
        if got.kind != ("text" if self.is_text else "binary"):
            return False
        if isinstance(self.data, Big):
            want = self.data.bytes()
            return got.data == (want.decode("ascii") if self.is_text else want)
        return got.data == self.data

    def __repr__(self) -> str:
        shown = repr(self.data) if isinstance(self.data, Big) or len(self.data) <= 40 else f"{self.data[:40]!r}...[{len(self.data)}]"
        return f"{'text' if self.is_text else 'binary'} {shown}"


def Text(data: Union[str, Big]) -> Msg:  # noqa: N802 - reads like a value in the tables
    return Msg(data, True)


def Binary(data: Union[bytes, Big]) -> Msg:  # noqa: N802
    return Msg(data, False)


@dataclass(frozen=True)
class PongOf:
    """A pong echoing ``payload`` (RFC 6455 section 5.5.3)."""

    payload: bytes

    def __repr__(self) -> str:
        return f"pong {self.payload[:40]!r}"


@dataclass(frozen=True)
class Pongs:
    """Pongs for a burst of pings: RFC 6455 section 5.5.3 lets an endpoint answer only the
    most recent of several pings, so any run of pongs echoing, in order, a subsequence of
    ``payloads`` that ends with the last one."""

    payloads: Tuple[bytes, ...]


Expected = Union[Msg, PongOf, Pongs]


@dataclass
class Received:
    """One thing wsclient sent: a message (``text``/``binary``), a ``ping`` or a ``pong``."""

    kind: str
    data: Any
    compressed: bool = False

    def __repr__(self) -> str:
        data = self.data
        shown = repr(data) if len(data) <= 40 else f"{data[:40]!r}...[{len(data)}]"
        return f"{self.kind} {shown}"


def _match_run(expected: Sequence[Expected], got: Sequence[Received]) -> str:
    i = 0
    for item in expected:
        if isinstance(item, Pongs):
            want = list(item.payloads)
            while i < len(got) and got[i].data in want:
                want = want[want.index(got[i].data) + 1 :]
                i += 1
                if not want:
                    break
            if want:
                return "prefix" if i == len(got) else "no"
            continue
        if i == len(got):
            return "prefix"
        ok = item.matches(got[i]) if isinstance(item, Msg) else got[i].data == item.payload
        if not ok:
            return "no"
        i += 1
    return "full" if i == len(got) else "no"


def match(expected: Sequence[Expected], got: Sequence[Received]) -> str:
    """Compare frames: ``"full"`` (all expected came), ``"prefix"`` (so far so good) or ``"no"``.

    Messages must come in order, and pongs in order, but a pong may come before or after
    any message: pongs are answered as pings are read, independently of the application
    echoing messages (RFC 6455 section 5.5.2 only asks for "as soon as practical").
    """
    messages = [g for g in got if g.kind in ("text", "binary")]
    pongs = [g for g in got if g.kind == "pong"]
    if len(messages) + len(pongs) != len(got):
        return "no"  # a ping, or anything else wsclient had no reason to send
    states = (
        _match_run([e for e in expected if isinstance(e, Msg)], messages),
        _match_run([e for e in expected if not isinstance(e, Msg)], pongs),
    )
    if "no" in states:
        return "no"
    return "full" if states == ("full", "full") else "prefix"


# --- outcomes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One result the RFC allows.

    Attributes:
        kind: ``"echo"`` (after ``frames`` the driver closes with 1000 and wsclient answers),
            ``"answered"`` (the script sent a close; wsclient answers it), ``"closes"``
            (wsclient starts the closing handshake itself), ``"fail"``
            (wsclient fails the connection with a close frame), ``"dropped"`` (the
            connection ends without a close frame from wsclient), ``"refused"`` (the
            client refuses the opening handshake).
        frames: what wsclient sends before its close frame, in order.
        codes: close codes wsclient's close frame may carry (None: an empty close frame).
        api_code: the ``.code`` of the ``ConnectionClosed`` the wsclient application gets.
        after: control frames wsclient sends after its close frame (pongs it still owes).
        api_reason: the ``.reason`` the application gets, where the case fixes it.
    """

    kind: str
    frames: Tuple[Expected, ...] = ()
    codes: Tuple[Optional[int], ...] = ()
    api_code: Optional[int] = None
    after: Tuple[Expected, ...] = ()
    api_reason: Optional[str] = None

    @property
    def driver_closes(self) -> bool:
        return self.kind == "echo"

    def describe(self) -> str:
        frames = ", ".join(map(repr, self.frames)) or "nothing"
        if self.kind == "refused":
            return "handshake refused (connect() raises InvalidHandshake, no frames)"
        if self.kind == "dropped":
            return f"{frames}, then TCP closed without a close frame (api code {self.api_code})"
        if self.kind == "fail":
            return f"{frames}, then close {self.codes[0]} from wsclient, TCP closed"
        if self.kind == "closes":
            after = f", then {list(self.after)}" if self.after else ""
            return f"{frames}, then wsclient starts closing with {self.codes[0]}{after}; answered; TCP closed"
        return f"{frames}, then a close reply in {list(self.codes)}, TCP closed (api code {self.api_code})"


def echo(*frames: Expected) -> Outcome:
    """wsclient sends ``frames``; the driver closes with 1000; wsclient answers."""
    return Outcome("echo", frames, (1000,), 1000)


def fail(code: int, *frames: Expected) -> Outcome:
    """wsclient sends ``frames``, then fails the connection with ``code`` (RFC 6455 7.1.7)."""
    return Outcome("fail", frames, (code,), code)


def answered(code: Optional[int], *frames: Expected, reason: Optional[str] = None) -> Outcome:
    """The script closed with ``code``; wsclient answers with a close frame (RFC 6455
    section 5.5.1: "typically echos the status code it received"; any code it may send
    is allowed, so the echo, 1000, or an empty close frame)."""
    codes: Tuple[Optional[int], ...] = (None, 1000) if code is None else (code, 1000, None)
    return Outcome("answered", frames, codes, 1005 if code is None else code, api_reason=reason)


def dropped(*frames: Expected) -> Outcome:
    """The TCP connection ended with no close frame: the application sees 1006."""
    return Outcome("dropped", frames, (), 1006)


def refused() -> Outcome:
    """The client fails the opening handshake: ``connect()`` raises InvalidHandshake."""
    return Outcome("refused")


#: A text message starting with this makes the echoing wsclient end call ``close()``:
#: ``CLOSE_COMMAND + "4001 reason"``.
CLOSE_COMMAND = "\x00close "


def closes(code: int, *frames: Expected, after: Tuple[Expected, ...] = (), api_code: Optional[int] = None) -> Outcome:
    """wsclient (told so by a :data:`CLOSE_COMMAND` message) sends ``frames``, then starts
    the closing handshake with ``code``; the driver answers; the server closes TCP. The
    application's ``close_code`` is the code of the close frame received (RFC 6455 7.1.5),
    or its own where none came."""
    return Outcome("closes", frames, (code,), code if api_code is None else api_code, after)


@dataclass(frozen=True)
class Case:
    """One conformance case.

    Attributes:
        id: Autobahn's number where the case matches one of its cases, else a number in
            the same group.
        group: the case group (framing, pingpong, ...).
        title: what is sent.
        script: the actions.
        expect: the allowed outcomes; more than one is a NON-STRICT case.
        rfc: where the expected result comes from.
        roles: which wsclient ends the case runs against.
        options: keyword arguments for ``wsclient.serve`` / ``wsclient.connect``.
        offer: the driver's ``Sec-WebSocket-Extensions`` as client (server role).
        answer: the driver's ``Sec-WebSocket-Extensions`` as server (client role).
        accepts: whether the extension offer (server role) or answer (client role) must be
            taken up; None: not checked.
        with_handshake: send the first action in the same write as the handshake.
        handshake_chop: write the handshake in segments.
        upgrade: the driver's ``Upgrade`` and ``Connection`` header values.
        lowercase: the driver writes its header names in lower case.
        timeout: seconds for the whole case.
        pending: why wsclient does not pass the case yet: the test is then expected to
            fail (``xfail``, strict: passing is reported too); None for a case it passes.
    """

    id: str
    group: str
    title: str
    script: Tuple[Action, ...]
    expect: Tuple[Outcome, ...]
    rfc: str = ""
    roles: Tuple[str, ...] = ROLES
    options: Tuple[Tuple[str, Any], ...] = ()
    offer: Optional[str] = None
    answer: Optional[str] = None
    accepts: Optional[bool] = None
    with_handshake: bool = False
    handshake_chop: Chop = None
    upgrade: Tuple[str, str] = ("websocket", "Upgrade")
    lowercase: bool = False
    timeout: float = 10.0
    pending: Optional[str] = None

    @property
    def strict(self) -> bool:
        return len(self.expect) == 1

    @property
    def sends_close(self) -> bool:
        return any(
            isinstance(a, Send) and a.opcode == CLOSE or isinstance(a, Batch) and any(f.opcode == CLOSE for f in a.frames)
            for a in self.script
        )


def case(
    id: str,
    group: str,
    title: str,
    script: Iterable[Action],
    *expect: Outcome,
    options: Optional[dict] = None,
    **kw: Any,
) -> Case:
    """Build a :class:`Case` (a shorter spelling for the tables)."""
    assert expect, id
    return Case(id, group, title, tuple(script), tuple(expect), options=tuple(sorted((options or {}).items())), **kw)


__all__ = [
    "SERVER", "CLIENT", "ROLES", "Big", "Send", "Batch", "Sync", "Deflated", "Corrupt", "Hangup", "AwaitClose", "Resume", "Reply",
    "text", "binary", "cont", "ping", "pong", "close", "Msg", "Text", "Binary", "PongOf",
    "Pongs", "Received", "match", "Outcome", "echo", "fail", "answered", "dropped",
    "refused", "closes", "CLOSE_COMMAND", "Case", "case", "as_bytes", "TEXT", "BINARY", "CONT", "PING", "PONG", "CLOSE",
]
