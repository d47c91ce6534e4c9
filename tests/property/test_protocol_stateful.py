"""A client :class:`~wsclient.protocol.Protocol` and a server one, driven against each other.

Hypothesis picks the steps: messages (whole or in fragments, text or binary, compressed
or not), pings from either side, closes with any valid code, and the delivery of what one
side wrote to the other in arbitrary byte splits. Invariants:

- every message a side sends arrives at the other once, whole and in order, unless a
  close intervened (then what arrived is a prefix of what was sent, and once both
  directions are drained, everything sent before the sender's close arrived);
- each side's received close code is the code the other side sent, and neither side
  fails the connection;
- no event follows a received close;
- every ping is answered with a pong bearing its payload.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Union

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from wsclient.deflate import DeflateOptions, DeflateParams, PerMessageDeflate
from wsclient.protocol import Close, Ping, Pong, Protocol, Side

SIDES = ("client", "server")
messages = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=300),
    st.integers(0, 255).map(lambda b: bytes([b]) * 70000),  # a 64-bit length, compressible
)
close_codes = st.sampled_from([1000, 1001, 1003, 1008, 1011, 3000, 4999])


class Peers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.protocols: Dict[str, Protocol] = {}
        self.wire: Dict[str, bytearray] = {side: bytearray() for side in SIDES}  # written by side
        self.sent: Dict[str, List[Union[str, bytes]]] = {side: [] for side in SIDES}
        self.received: Dict[str, List[Union[str, bytes]]] = {side: [] for side in SIDES}
        self.fragments: Dict[str, Optional[list]] = {side: None for side in SIDES}
        self.pings: Dict[str, List[bytes]] = {side: [] for side in SIDES}
        self.pongs: Dict[str, List[bytes]] = {side: [] for side in SIDES}  # pongs received
        self.pinged: Dict[str, List[bytes]] = {side: [] for side in SIDES}  # pings received
        self.closes: Dict[str, List[Close]] = {side: [] for side in SIDES}

    @initialize(compress=st.booleans(), bits=st.integers(8, 15), reset=st.booleans())
    def start(self, compress: bool, bits: int, reset: bool) -> None:
        for side in SIDES:
            deflate = None
            if compress:
                params = DeflateParams(bits, bits, reset, not reset)
                deflate = PerMessageDeflate(params, is_client=side == "client", options=DeflateOptions(threshold=64))
            self.protocols[side] = Protocol(Side.CLIENT if side == "client" else Side.SERVER,
                                            max_size=None, deflate=deflate)

    def _other(self, side: str) -> str:
        return "server" if side == "client" else "client"

    def _can_send(self, side: str) -> bool:
        return self.protocols[side].close_sent is None

    def _write(self, side: str, buffers: List[bytes]) -> None:
        for buffer in buffers:
            self.wire[side] += bytes(buffer)

    @rule(side=st.sampled_from(SIDES), message=messages, compress=st.none() | st.booleans())
    def send(self, side: str, message: Union[str, bytes], compress: Optional[bool]) -> None:
        if not self._can_send(side) or self.fragments[side] is not None:
            return
        self._write(side, self.protocols[side].send_message(message, compress=compress))
        self.sent[side].append(message)

    @rule(side=st.sampled_from(SIDES), text=st.booleans(), piece=st.binary(max_size=40), fin=st.booleans())
    def fragment(self, side: str, text: bool, piece: bytes, fin: bool) -> None:
        if not self._can_send(side):
            return
        pieces = self.fragments[side]
        if pieces is None:
            pieces = self.fragments[side] = []
        elif isinstance(pieces[0], str) != text:
            text = isinstance(pieces[0], str)
        chunk: Union[str, bytes] = piece.decode("latin-1") if text else piece
        pieces.append(chunk)
        self._write(side, self.protocols[side].send_fragment(chunk, fin=fin))
        if fin:
            self.sent[side].append("".join(pieces) if text else b"".join(pieces))  # type: ignore[arg-type]
            self.fragments[side] = None

    @rule(side=st.sampled_from(SIDES), payload=st.binary(max_size=125))
    def ping(self, side: str, payload: bytes) -> None:
        if self._can_send(side):
            self._write(side, self.protocols[side].send_ping(payload))
            self.pings[side].append(payload)

    @rule(side=st.sampled_from(SIDES), code=close_codes, reason=st.text(max_size=20))
    def close(self, side: str, code: int, reason: str) -> None:
        if len(reason.encode()) > 123:
            reason = ""
        self._write(side, self.protocols[side].send_close(code, reason))

    @rule(side=st.sampled_from(SIDES), size=st.integers(0, 1 << 17))
    def deliver(self, side: str, size: int) -> None:
        """Move up to ``size`` bytes that ``side`` wrote to the other side."""
        other = self._other(side)
        chunk = bytes(self.wire[side][:size])
        del self.wire[side][:size]
        events = self.protocols[other].receive_data(chunk)
        self._write(other, self.protocols[other].data_to_send())
        for event in events:
            assert not self.closes[other], f"event {event!r} after a close"
            if isinstance(event, Close):
                self.closes[other].append(event)
            elif isinstance(event, Ping):
                self.pinged[other].append(event.data)
            elif isinstance(event, Pong):
                self.pongs[other].append(event.data)
            else:
                self.received[other].append(event)

    @precondition(lambda self: bool(self.protocols))
    @rule()
    def drain(self) -> None:
        """Deliver everything both ways until nothing is left (bounded)."""
        for _ in range(10):
            if not (self.wire["client"] or self.wire["server"]):
                break
            for side in SIDES:
                self.deliver(side, len(self.wire[side]))
        assert not (self.wire["client"] or self.wire["server"])
        for side in SIDES:
            other = self._other(side)
            protocol = self.protocols[side]
            if protocol.close_rcvd is None:
                # Nothing stopped the flow: everything the peer sent has arrived.
                assert self.received[side] == self.sent[other]
                assert self.pongs[side] == self.pings[side]
            else:
                assert self.received[side] == self.sent[other]  # all was sent before the close
        if all(self.protocols[s].close_sent is not None for s in SIDES):
            for side in SIDES:
                other = self._other(side)
                assert self.protocols[side].close_rcvd is not None
                assert self.protocols[side].close_rcvd[0] == self.protocols[other].close_sent[0]
            assert self.protocols["server"].should_close_transport

    @invariant()
    def in_order_and_healthy(self) -> None:
        for side in SIDES:
            other = self._other(side)
            got = self.received[side]
            assert got == self.sent[other][: len(got)], "lost, duplicated or reordered"
            if self.protocols:
                assert not self.protocols[side].failed, self.protocols[side].error
            assert len(self.closes[side]) <= 1
            assert self.pinged[other] == self.pings[side][: len(self.pinged[other])]
            assert self.pongs[side] == self.pings[side][: len(self.pongs[side])]


# Interleavings are where the bugs hide: four times the profile's examples, more steps.
Peers.TestCase.settings = settings(
    settings.default, max_examples=4 * settings.default.max_examples, stateful_step_count=60
)
TestPeers = Peers.TestCase
