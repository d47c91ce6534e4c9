"""Play a case's script on a :class:`~driver.Peer`, record what wsclient sends back, and judge it.

The runner only speaks bytes: it sends the script's frames, reads wsclient's frames
(checking each against RFC 6455 for a sender: masking, RSV bits, opcodes, fragmentation,
UTF-8, close payloads), closes the way the expected outcome says, and records an
:class:`Observed`. :func:`judge_wire` compares that with an :class:`~model.Outcome`; the
test module checks the application side (the ``ConnectionClosed`` wsclient raised).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from .driver import (
    BINARY, CLOSE, CONT, PING, PONG, TEXT, Deflate, DeflateParams, DriverError, Peer, Timeout, encode_frame,
)
from .model import (
    AwaitClose, Batch, Case, Corrupt, Deflated, Hangup, Outcome, Received, Reply, Resume, Send, Sync, as_bytes, match,
)

_VALID_CLOSE = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


@dataclass
class Observed:
    """What the driver saw from wsclient."""

    frames: List[Received] = field(default_factory=list)
    close: Optional[Tuple[Optional[int], str]] = None  # wsclient's close frame: code (None: empty), reason
    close_first: bool = False  # wsclient closed before the driver sent a close frame
    after_close: List[Received] = field(default_factory=list)
    ended: bool = False  # wsclient closed the TCP connection (FIN or reset)
    timed_out: Optional[str] = None
    send_error: Optional[str] = None

    def describe(self) -> str:
        frames = ", ".join(map(repr, self.frames)) or "nothing"
        close = "no close frame" if self.close is None else f"close {self.close[0]} {self.close[1]!r}"
        if self.close is not None:
            close += " (wsclient first)" if self.close_first else " (answering the driver)"
        parts = [frames, close, "TCP closed" if self.ended else "TCP still open"]
        if self.after_close:
            parts.append(f"then {self.after_close}")
        if self.timed_out:
            parts.append(f"timed out: {self.timed_out}")
        if self.send_error:
            parts.append(f"(driver's write failed: {self.send_error})")
        return "; ".join(parts)


class Runner:
    """One case on one connection.

    Args:
        case: the case.
        peer: the driver's end of the connection, handshake done.
        wsclient_is_server: which role wsclient plays.
        deadline: when the case must be over (``time.monotonic()``).
    """

    def __init__(self, case: Case, peer: Peer, *, wsclient_is_server: bool, deadline: float) -> None:
        self.case = case
        self.peer = peer
        self.wsclient_is_server = wsclient_is_server
        self.deadline = deadline
        self.obs = Observed()
        self.sent_close = False
        self.hung_up = False
        self._msg: Optional[Tuple[int, bool, List[bytes]]] = None  # opcode, compressed, parts
        self._held: List[bytes] = []  # frames of a Deflated action kept for Resume
        self.reply = Reply()

    # -- sending

    def frame_bytes(self, send: Send) -> bytes:
        payload = as_bytes(send.payload)
        length = send.length
        if send.cut is not None:
            length, payload = len(payload), payload[: send.cut]
        key = self.peer.mask_key(wrong=send.wrong_mask, zero=send.zero_mask)
        if send.opcode == CLOSE:
            self.sent_close = True
        return encode_frame(
            send.opcode, payload, fin=send.fin, rsv=send.rsv, mask_key=key, length=length, length_size=send.length_size
        )

    def deflated_bytes(self, action: Deflated) -> bytes:
        codec = self.peer.deflate or Deflate(DeflateParams(), client=self.peer.client)
        pieces = action.pieces
        if action.split is None:
            payloads = [
                codec.compress(p, final=i == len(pieces) - 1, bfinal=action.bfinal, keep_tail=action.keep_tail)
                for i, p in enumerate(pieces)
            ]
        else:
            whole = codec.compress(b"".join(pieces), bfinal=action.bfinal, keep_tail=action.keep_tail)
            cuts = [0] + [int(len(whole) * f) for f in action.split] + [len(whole)]
            payloads = [whole[a:b] for a, b in zip(cuts, cuts[1:])]
        frames = []
        for i, payload in enumerate(payloads):
            opcode, rsv = (action.opcode, action.rsv_first) if i == 0 else (CONT, action.rsv_cont)
            key = self.peer.mask_key()
            frames.append(encode_frame(opcode, payload, fin=i == len(payloads) - 1, rsv=rsv, mask_key=key))
        self._held = frames[action.send_frames :] if action.send_frames is not None else []
        return b"".join(frames[: action.send_frames])

    def perform(self, action: object) -> bool:
        """Run one action; False once the connection is gone (the script stops)."""
        if isinstance(action, Sync):
            self.read_until(lambda: len(self.obs.frames) >= action.count)
            return not (self.obs.close or self.obs.ended)
        if isinstance(action, Reply):
            self.reply = action
            return True
        if isinstance(action, AwaitClose):
            self.read_until(lambda: False)
            return not self.obs.ended and not self.obs.timed_out
        if isinstance(action, Hangup):
            self.hung_up = True
            if action.reset:
                self.peer.abort()
                self.obs.ended = True  # nothing more to read on a socket reset from this end
            else:
                self.peer.shutdown_write()
            return False
        if isinstance(action, Send):
            data, chop = self.frame_bytes(action), action.chop
        elif isinstance(action, Batch):
            data, chop = b"".join(self.frame_bytes(f) for f in action.frames), action.chop
        elif isinstance(action, Deflated):
            data, chop = self.deflated_bytes(action), action.chop
        elif isinstance(action, Resume):
            data, chop, self._held = b"".join(self._held), action.chop, []
        elif isinstance(action, Corrupt):
            data, chop = encode_frame(action.opcode, action.payload, rsv=4, mask_key=self.peer.mask_key()), None
        else:
            raise TypeError(action)
        try:
            self.peer.send(data, chop)
        except OSError as exc:  # wsclient already closed: what it sent is still readable
            self.obs.send_error = repr(exc)
            return False
        return True

    def send_close(self, payload: bytes = (1000).to_bytes(2, "big")) -> None:
        self.sent_close = True
        try:
            self.peer.send(encode_frame(CLOSE, payload, mask_key=self.peer.mask_key()))
        except OSError as exc:
            self.obs.send_error = repr(exc)

    # -- receiving

    def read_one(self) -> bool:
        """Read and record one frame; False at the end of the stream."""
        frame = self.peer.read_frame(self.deadline)
        if frame is None:
            self.obs.ended = True
            return False
        if self.obs.close is not None:
            kind = {PING: "ping", PONG: "pong", CLOSE: "second close"}.get(frame.opcode, f"data opcode {frame.opcode}")
            self.obs.after_close.append(Received(kind, frame.payload))
            return True
        if frame.opcode >= 8:
            self._control(frame.opcode, frame.payload, frame.fin, frame.rsv)
        else:
            self._data(frame.opcode, frame.payload, frame.fin, frame.rsv)
        return True

    def _control(self, opcode: int, payload: bytes, fin: bool, rsv: int) -> None:
        if opcode not in (CLOSE, PING, PONG):
            raise DriverError(f"wsclient sent reserved opcode {opcode:#x}")
        if not fin or len(payload) > 125 or rsv:
            raise DriverError("wsclient sent a fragmented, oversized or RSV-flagged control frame (RFC 6455 5.5)")
        if opcode == PING:
            self.obs.frames.append(Received("ping", payload))
        elif opcode == PONG:
            self.obs.frames.append(Received("pong", payload))
        else:
            self.obs.close = _parse_close(payload)
            self.obs.close_first = not self.sent_close

    def _data(self, opcode: int, payload: bytes, fin: bool, rsv: int) -> None:
        if opcode not in (CONT, TEXT, BINARY):
            raise DriverError(f"wsclient sent reserved opcode {opcode:#x}")
        if (opcode == CONT) != (self._msg is not None):
            raise DriverError("wsclient broke the fragmentation rules (RFC 6455 section 5.4)")
        if rsv & 3 or (rsv & 4 and (opcode == CONT or self.peer.deflate is None)):
            raise DriverError(f"wsclient set RSV bits {rsv} it may not set (RFC 6455 5.2, RFC 7692 6)")
        if self._msg is None:
            self._msg = (opcode, bool(rsv & 4), [])
        kind, compressed, parts = self._msg
        if compressed:
            assert self.peer.deflate is not None
            payload = self.peer.deflate.decompress(payload, final=fin, step=64 if len(payload) < 1 << 20 else None)
        parts.append(payload)
        if not fin:
            return
        self._msg = None
        data = b"".join(parts)
        if kind == TEXT:
            try:
                self.obs.frames.append(Received("text", data.decode("utf-8"), compressed))
            except UnicodeDecodeError as exc:
                raise DriverError(f"wsclient sent invalid UTF-8 in a text message: {exc}") from exc
        else:
            self.obs.frames.append(Received("binary", data, compressed))

    def read_until(self, done: Callable[[], bool]) -> None:
        """Read frames until ``done()``, wsclient's close frame, or the end of the stream."""
        try:
            while not done() and self.obs.close is None and not self.obs.ended:
                self.read_one()
        except Timeout as exc:
            self.obs.timed_out = str(exc)

    def read_to_end(self) -> None:
        try:
            while self.read_one():
                pass
        except Timeout as exc:
            self.obs.timed_out = f"TCP not closed: {exc}"

    # -- the whole case

    def run(self) -> Observed:
        for action in self.case.script:
            if not self.perform(action):
                break
        if self.hung_up:
            if not self.obs.ended:
                self.read_to_end()
            return self.obs
        if self.obs.close is None and not self.obs.ended and not self.obs.timed_out:
            self._close_if_expected()
            self.read_until(lambda: False)
        if self.obs.close is not None and not self.obs.timed_out:
            if not self.sent_close and not self.reply.mute:  # answer wsclient's close, as a peer should
                code = self.obs.close[0] if self.reply.code is None else self.reply.code
                self.send_close(b"" if code is None else code.to_bytes(2, "big"))
            if not self.wsclient_is_server and not self.reply.mute:
                self.peer.shutdown_write()  # the server closes TCP first (RFC 6455 7.1.1)
            self.read_to_end()
        return self.obs

    def _close_if_expected(self) -> None:
        """Close with 1000 once wsclient sent what an "echo" outcome expects."""
        if self.sent_close:
            return
        waiting = [o for o in self.case.expect if o.driver_closes]
        if not waiting:
            return

        def settled() -> bool:
            states = [match(o.frames, self.obs.frames) for o in self.case.expect]
            if any(s == "full" and o.driver_closes for s, o in zip(states, self.case.expect)):
                return True
            return all(s == "no" for s in states)

        self.read_until(settled)
        if self.obs.close is None and not self.obs.ended and not self.obs.timed_out:
            self.send_close()


def _parse_close(payload: bytes) -> Tuple[Optional[int], str]:
    """Check a close frame wsclient sent (RFC 6455 sections 5.5.1, 7.4)."""
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise DriverError("wsclient sent a close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in _VALID_CLOSE:
        raise DriverError(f"wsclient sent close code {code}, which may not be sent (RFC 6455 7.4)")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DriverError("wsclient sent a close reason that is not UTF-8") from exc
    return code, reason


def judge_wire(outcome: Outcome, obs: Observed) -> Optional[str]:
    """Why ``obs`` is not ``outcome`` on the wire, or None if it is."""
    if obs.timed_out:
        return f"timed out ({obs.timed_out})"
    state = match(outcome.frames, obs.frames)
    if state != "full":
        return "frames before the close differ" if state == "no" else "frames missing"
    if match(outcome.after, obs.after_close) != "full":
        return f"after the close frame: {obs.after_close}, expected {list(outcome.after)}"
    if outcome.kind in ("dropped", "refused"):
        if obs.close is not None:
            return "a close frame was sent"
        return None
    if obs.close is None:
        return "no close frame"
    if obs.close[0] not in outcome.codes:
        return f"close code {obs.close[0]}, expected one of {list(outcome.codes)}"
    if outcome.kind in ("echo", "answered") and obs.close_first:
        return "wsclient closed first instead of answering the driver's close"
    if outcome.kind == "closes" and not obs.close_first:
        return "wsclient did not start the closing handshake"
    if not obs.ended:
        return "TCP connection not closed"
    return None
