"""The connection state machine: bytes in, events and bytes out (RFC 6455 sections 5-7).

:class:`Protocol` knows nothing of sockets or threads. The I/O layer feeds it what it reads
with :meth:`Protocol.receive_data` / :meth:`Protocol.receive_eof`, gets back events
(messages as ``str`` or ``bytes``, :class:`Ping`, :class:`Pong`, :class:`Close`), writes what
:meth:`Protocol.data_to_send` returns (pongs and close frames the protocol answers by
itself), and turns the application's calls into bytes with the ``send_*`` methods.

Received bytes are parsed one of two ways. :meth:`Protocol.receive_data` parses all of them
at once (eagerly): a reader that nobody waits on answers every ping at once. The lazy pair
:meth:`Protocol.feed` and :meth:`Protocol.next_events` parses only up to the next message and
leaves the rest for the next call (:attr:`Protocol.input_pending`), so that an application's
answer to that message leaves before the close frame for bad data behind it in the same read
(what the Autobahn testsuite calls strict, cases 3.2-3.4, 4.1.3-4.2.5, 5.15). The two may be
mixed: :meth:`Protocol.receive_data` first parses whatever the lazy pair left.

A peer that breaks the protocol does not raise out of :meth:`Protocol.receive_data`: the
protocol records the :class:`~wsclient.exceptions.ProtocolError` in :attr:`Protocol.error`,
queues a close frame with the matching code (RFC 6455 section 7.1.7, "fail the WebSocket
connection"), ignores everything the peer sends afterwards, and reports
:attr:`Protocol.should_close_transport`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generator, List, Optional, Tuple, Union

from .close import CloseCode, known_close_code, parse_close, serialize_close
from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, PayloadTooBig, ProtocolError
from .frames import (
    MAX_CONTROL_PAYLOAD,
    FramePiece,
    FrameParser,
    MaskKeys,
    Opcode,
    apply_mask,
    mask_for_sending,
    serialize_header,
)
from .utf8 import Utf8Decoder, decode_text

if TYPE_CHECKING:  # pragma: no cover
    from .deflate import PerMessageDeflate

__all__ = [
    "COMPRESSED_SLICE",
    "DEFAULT_MAX_SIZE",
    "Side",
    "State",
    "Ping",
    "Pong",
    "Close",
    "Event",
    "Protocol",
    "PreparedMessage",
]

#: The default largest incoming message, in bytes (after decompression): 16 MiB.
DEFAULT_MAX_SIZE = 2**24

#: A compressed message longer than this is sent in frames of this many bytes of input
#: each, when the caller asks for it (:meth:`Protocol.send_message`'s ``slice_size``). A
#: peer inflates each frame as it arrives, on its own core, while this end compresses the
#: next: a 1 MiB JSON echo against ``websockets`` goes about 7 % faster (benchmark
#: scenario 6). The output is what one piece would give: zlib is not flushed in between.
COMPRESSED_SLICE = 256 * 1024

#: Frames up to this size are sent as one buffer; larger ones as header + payload, so the
#: payload is never copied just to prepend a header.
_JOIN_LIMIT = 4096

BytesLike = Union[bytes, bytearray, memoryview]


class Side(enum.Enum):
    """Which end of the connection a :class:`Protocol` plays."""

    CLIENT = "client"
    SERVER = "server"


class State(enum.IntEnum):
    """Connection states (RFC 6455 section 4.1 onwards; CONNECTING belongs to the handshake)."""

    OPEN = 1
    CLOSING = 2
    CLOSED = 3


# The members the hot paths compare with, as module names: on CPython 3.11 reading
# ``Opcode.TEXT`` goes through the enum class's ``__getattr__`` (about 70 ns, against 5 for a
# global), and a 32-byte round trip reads three of them.
_CONT, _TEXT, _BINARY = Opcode.CONT, Opcode.TEXT, Opcode.BINARY
_CLOSED = State.CLOSED


@dataclass(frozen=True)
class Ping:
    """The peer sent a ping; the protocol has already queued the pong."""

    data: bytes


@dataclass(frozen=True)
class Pong:
    """The peer sent a pong."""

    data: bytes


@dataclass(frozen=True)
class Close:
    """The peer sent a close frame (code 1005 when it carried no code)."""

    code: int
    reason: str


Event = Union[str, bytes, Ping, Pong, Close]

#: Close codes that end ``for message in ws`` quietly (1005: an empty close frame).
OK_CLOSE_CODES = frozenset((CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RCVD))


class Protocol:
    """The WebSocket state machine for one connection, either side.

    Args:
        side: :attr:`Side.CLIENT` masks what it sends and expects unmasked frames;
            :attr:`Side.SERVER` the reverse (RFC 6455 section 5.1).
        max_size: the largest incoming message in bytes (after decompression); ``None``
            for no limit. Larger messages fail the connection with 1009 as soon as the
            frame header shows it (RFC 6455 section 10.4).
        deflate: the negotiated permessage-deflate codec, or None.
        mask_key: a function returning a fresh 4-byte masking key for each frame (by
            default a :class:`~wsclient.frames.MaskKeys` of its own); tests pass a fixed
            one to get exact bytes.
    """

    def __init__(
        self,
        side: Side,
        *,
        max_size: Optional[int] = DEFAULT_MAX_SIZE,
        deflate: Optional["PerMessageDeflate"] = None,
        mask_key: Optional[Callable[[], bytes]] = None,
    ) -> None:
        self.side = side
        self.max_size = max_size
        self.deflate = deflate
        if side is not Side.CLIENT:
            self._mask_key: Optional[Callable[[], bytes]] = None
        else:
            # The bound method, not the object: calling an object goes through its type's
            # call slot, from C back into Python; a bound method is called in place.
            self._mask_key = MaskKeys().__call__ if mask_key is None else mask_key
        self._parser = FrameParser(expect_masked=side is Side.SERVER)
        self.state = State.OPEN
        self.close_sent: Optional[Tuple[int, str]] = None
        self.close_rcvd: Optional[Tuple[int, str]] = None
        self.error: Optional[ProtocolError] = None
        self.failed = False
        self.eof_received = False
        self.close_unsent = False
        # The answers the I/O layer reads for every message, kept as attributes (updated by
        # _ending_changed() and the slicing of a message) rather than computed by
        # properties: on CPython 3.11 reading a property from another module calls back
        # into the interpreter from C, about 1,000 instructions, and a 32-byte round trip
        # read three of them.
        #: Whether the application may still send: no close frame sent, transport open.
        self.can_send = True
        #: Whether the I/O layer should close the TCP connection now. The server closes
        #: first once close frames went both ways; the client waits for the server to
        #: do so (RFC 6455 section 7.1.1), unless the connection failed.
        self.should_close_transport = False
        #: Whether :meth:`send_message` sliced a message and :meth:`send_rest` has more.
        self.message_pending = False
        #: Set by the I/O layer: a peer's protocol error is kept in
        #: :attr:`pending_failure` until :meth:`release_failure`, rather than failing at once.
        self.defer_failures = False
        self.pending_failure: Optional[ProtocolError] = None
        self._out: List[bytes] = []
        # Lazy parsing: bytes fed and not yet parsed, the parse stopped after a message
        # (resumed by the next call), and an end of stream that waits for both.
        self._input: List[bytes] = []
        self._pieces: Optional[Generator[FramePiece, None, None]] = None
        self._eof_pending = False
        # The message being received.
        self._msg_opcode: Optional[int] = None
        self._msg_compressed = False
        self._msg_parts: List[Any] = []  # str pieces of a text message, bytes of a binary one
        self._msg_size = 0
        self._utf8: Optional[Utf8Decoder] = None
        # The fragmented message being sent.
        self._send_opcode: Optional[int] = None
        self._send_compressed = False
        # What send_message() left for send_rest() of a message it sliced, and the size.
        self._send_rest: Optional[memoryview] = None
        self._slice_size = 0

    # -- receiving -------------------------------------------------------------------

    def receive_data(self, data: BytesLike, *, max_messages: Optional[int] = None) -> List[Event]:
        """Feed bytes read from the peer, and parse them.

        Args:
            data: the bytes, in any chunking.
            max_messages: None (the default) parses all the bytes. A number parses
                lazily, as :meth:`feed` then :meth:`next_events` with this
                ``max_messages`` would, at the cost of :meth:`receive_data` when ``data``
                is one small whole message (the usual read).

        Returns:
            The events now complete, in order.

        Raises:
            ValueError: ``max_messages`` is less than 1.
        """
        if max_messages is not None and max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        if self.failed or self.close_rcvd is not None or self.eof_received or self.pending_failure:
            return []  # Failed, or the peer closed: whatever follows is ignored.
        if self._input or self._pieces is not None or self._eof_pending:
            # Bytes fed and not parsed yet come first.
            self.feed(data)
            return self.next_events(max_messages=max_messages)
        if self._msg_opcode is None:
            whole = self._parser.feed_whole(data, self.max_size, control=True)
            if whole is not None:  # One small, whole, uncompressed message: the hot path.
                opcode = whole[0]
                if opcode == _BINARY:
                    return [whole[1]]
                try:
                    if opcode == _TEXT:
                        return [decode_text(whole[1])]
                    return [self._receive_control(opcode, whole[1], False)]  # Close, ping, pong.
                except ProtocolError as exc:
                    self._peer_failed(exc)
                    return []
        if max_messages is not None:
            self.feed(data)
            return self.next_events(max_messages=max_messages)
        events: List[Event] = []
        # Lazily: frames before a bad one are handled, and bytes after a close frame are
        # never parsed, however the bytes were chunked.
        pieces = self._parser.iter_feed(data)
        try:
            for piece in pieces:
                event = self._receive_piece(piece)
                if event is not None:
                    events.append(event)
                    if event.__class__ is Close:
                        break
        except ProtocolError as exc:
            self._peer_failed(exc)
        finally:
            pieces.close()
        return events

    def receive_eof(self) -> None:
        """The peer closed its side of the transport (or it vanished).

        If :meth:`feed` gave bytes that :meth:`next_events` has not parsed yet, the end
        takes effect only once they are parsed: :attr:`eof_received` stays false and
        :attr:`input_pending` true until a :meth:`next_events` call finds nothing more to
        parse (or the connection fails, or the peer's close frame arrives).
        """
        if self._input or self._pieces is not None:
            self._eof_pending = True
            return
        self.eof_received = True
        self.state = State.CLOSED
        self._ending_changed()

    # -- receiving lazily ----------------------------------------------------------------

    def feed(self, data: BytesLike) -> None:
        """Keep received bytes for :meth:`next_events`, without parsing them.

        Bytes that arrive after the connection failed, after the peer's close frame or
        after the end of the stream are ignored, as :meth:`receive_data` ignores them.

        Args:
            data: the bytes, in any chunking (copied unless they are ``bytes``, so the
                caller may reuse its buffer).
        """
        if self.failed or self.close_rcvd is not None or self.eof_received or self._eof_pending or self.pending_failure:
            return
        if not isinstance(data, bytes):
            data = bytes(data)
        if data:
            self._input.append(data)

    @property
    def input_pending(self) -> bool:
        """Whether :meth:`next_events` has something to parse without more bytes.

        True after :meth:`feed`, after a :meth:`next_events` that stopped at its last
        message with bytes left, and after a :meth:`receive_eof` that waits for them. The
        I/O layer calls :meth:`next_events` while this is true, and reads the transport
        only when it is false. The call may still return no event: the rest can be an
        unfinished frame.
        """
        return bool(self._input) or self._pieces is not None or self._eof_pending

    def next_events(self, *, max_messages: Optional[int] = 1) -> List[Event]:
        """Parse what :meth:`feed` kept, up to and including the ``max_messages``-th message.

        Control frames before that message are handled as :meth:`receive_data` handles
        them (pongs queued, a close frame answered; parsing stops after a close frame);
        the bytes after it stay unparsed until the next call, so a frame that breaks the
        protocol there fails the connection only when that call reaches it. Once
        everything fed is parsed, an end of stream :meth:`receive_eof` held back takes
        effect.

        Args:
            max_messages: how many data messages (``str`` or ``bytes`` events) to parse
                at most; None parses everything, as :meth:`receive_data` does.

        Returns:
            The events now complete, in order: any control events, then at most
            ``max_messages`` messages (with control events between them).

        Raises:
            ValueError: ``max_messages`` is less than 1.
        """
        if max_messages is not None and max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        events: List[Event] = []
        if self.failed or self.close_rcvd is not None or self.eof_received:
            self._drop_input()
            return events
        count = 0
        pieces = self._pieces
        try:
            while True:
                if pieces is None:
                    chunks = self._input
                    if not chunks:
                        break
                    self._input = []
                    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    if self._msg_opcode is None:
                        whole = self._parser.feed_whole(data, self.max_size)
                        if whole is not None:  # The hot path, as in receive_data().
                            events.append(whole[1] if whole[0] == _BINARY else decode_text(whole[1]))
                            count += 1
                            if count == max_messages:
                                return events
                            continue
                    pieces = self._pieces = self._parser.iter_feed(data)
                for piece in pieces:
                    event = self._receive_piece(piece)
                    if event is None:
                        continue
                    events.append(event)
                    cls = event.__class__
                    if cls is Close:
                        self._drop_input()
                        return events
                    if cls is str or cls is bytes:
                        count += 1
                        if count == max_messages:
                            return events  # self._pieces goes on from here next time.
                pieces = self._pieces = None  # All of this data parsed.
        except ProtocolError as exc:
            self._peer_failed(exc)
            return events
        self._end_of_input()
        return events

    def _end_of_input(self) -> None:
        """Everything fed is parsed: an end of stream held back takes effect."""
        if self._eof_pending:
            self._eof_pending = False
            self.eof_received = True
            self.state = State.CLOSED
            self._ending_changed()

    def _drop_input(self) -> None:
        """Nothing more will be parsed: forget what was fed, and end the stream if it ended."""
        self._input = []
        pieces, self._pieces = self._pieces, None
        if pieces is not None:
            pieces.close()
        self._end_of_input()

    def _receive_piece(self, piece: FramePiece) -> Optional[Event]:
        header = piece.header
        opcode = header.opcode
        if opcode >= 8:
            return self._receive_control(opcode, piece.data, header.rsv1 or header.rsv2 or header.rsv3)
        if piece.first:
            self._start_frame(piece)
            if piece.last and header.fin and opcode != _CONT and not self._msg_compressed:
                # The common case: a whole message in one frame, read in one go.
                message_opcode = self._msg_opcode
                self._msg_opcode = None
                self._msg_size = 0
                if message_opcode == _TEXT:
                    return decode_text(piece.data)
                return piece.data
        self._add_payload(piece.data, piece.last and header.fin)
        if piece.last and header.fin:
            return self._finish_message()
        return None

    def _start_frame(self, piece: FramePiece) -> None:
        """Check a data frame's header against the connection (RFC 6455 sections 5.2, 5.4)."""
        header = piece.header
        if header.rsv2 or header.rsv3:
            raise ProtocolError("reserved bit set without a negotiated extension")
        if header.opcode == _CONT:
            if self._msg_opcode is None:
                raise ProtocolError("continuation frame without a message to continue")
            if header.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame")
        else:
            if self._msg_opcode is not None:
                raise ProtocolError("new data frame inside a fragmented message")
            if header.rsv1 and self.deflate is None:
                raise ProtocolError("RSV1 set without a negotiated extension")
            self._msg_opcode = header.opcode
            self._msg_compressed = header.rsv1
            if not (piece.last and header.fin) or header.rsv1:
                self._utf8 = Utf8Decoder() if header.opcode == _TEXT else None
        if not self._msg_compressed and self.max_size is not None:
            if self._msg_size + header.length > self.max_size:
                raise PayloadTooBig(
                    f"message over max_size ({self.max_size} bytes): "
                    f"{self._msg_size + header.length} bytes or more"
                )
        self._msg_size += 0 if self._msg_compressed else header.length

    def _add_payload(self, data: bytes, final: bool) -> None:
        if self._msg_compressed:
            assert self.deflate is not None
            data = self.deflate.decompress(data, max_length=self._room())
            if final:
                data += self.deflate.decompress_end(max_length=self._room(len(data)))
            self._msg_size += len(data)
        if self._utf8 is not None:
            self._msg_parts.append(self._utf8.decode(data, final))
        elif data:
            self._msg_parts.append(data)

    def _room(self, pending: int = 0) -> Optional[int]:
        if self.max_size is None:
            return None
        return self.max_size - self._msg_size - pending

    def _finish_message(self) -> Union[str, bytes]:
        parts, self._msg_parts = self._msg_parts, []
        opcode = self._msg_opcode
        self._msg_opcode = None
        self._msg_size = 0
        self._msg_compressed = False
        self._utf8 = None
        if opcode == Opcode.TEXT:
            return "".join(parts)
        return b"".join(parts)

    def _receive_control(self, opcode: int, data: bytes, rsv: bool) -> Event:
        if rsv:
            raise ProtocolError("reserved bit set on a control frame")
        if opcode == Opcode.PING:
            # Answered even after this end's close frame: only a received close frame
            # excuses the pong (RFC 6455 section 5.5.2).
            self._out.append(self._frame(Opcode.PONG, data))
            return Ping(data)
        if opcode == Opcode.PONG:
            return Pong(data)
        code, reason = parse_close(data)
        self.close_rcvd = (code, reason)
        self.state = State.CLOSING
        if self.close_sent is None:
            # Answer once, echoing the code (RFC 6455 section 5.5.1).
            self.close_sent = (code, "")
            self._out.append(self._frame(Opcode.CLOSE, serialize_close(code)))
        self._ending_changed()
        return Close(code, reason)

    def _peer_failed(self, exc: ProtocolError) -> None:
        """The peer broke the protocol: fail now, or keep the failure for
        :meth:`release_failure` (with :attr:`defer_failures`). Nothing after the bad data
        is parsed either way."""
        if self.defer_failures:
            self.pending_failure = exc
            self._drop_input()
        else:
            self._fail(exc)

    def release_failure(self) -> None:
        """Fail the connection for the protocol error kept in :attr:`pending_failure`.

        With :attr:`defer_failures`, the I/O layer calls this once the application has
        taken every message received before the bad data and asked for the next (or after
        a grace period): its answers to those messages then leave before the close frame,
        as RFC 6455 section 7.1.7 allows and the Autobahn testsuite calls strict. The
        close frame is then in :meth:`data_to_send`. Nothing happens without a pending
        failure, or if the connection failed or closed meanwhile.
        """
        exc, self.pending_failure = self.pending_failure, None
        if exc is not None and not self.failed and self.close_sent is None:
            self._fail(exc)
        elif exc is not None and self.error is None:
            self.error = exc

    def _fail(self, exc: ProtocolError) -> None:
        self.error = exc
        self._msg_parts = []
        self._out += self.fail(exc.code, str(exc)[:100])

    def fail(self, code: int, reason: str = "") -> List[bytes]:
        """Fail the WebSocket connection from this end (RFC 6455 section 7.1.7).

        Used for a peer that broke the protocol, and by the I/O layer for a keepalive
        timeout (1011). The close code reported is then this end's, whatever the peer
        answers.

        Args:
            code: the close code to send.
            reason: the close reason (truncated to fit the frame).

        Returns:
            The close frame to write, or nothing if a close frame went already or the
            peer's side of the transport is closed.

        Raises:
            ValueError: a code that may not be sent (nothing changes then).
        """
        reason = reason.encode("utf-8")[:123].decode("utf-8", "ignore")
        payload = serialize_close(code, reason)  # an invalid code raises before any change
        self.failed = True
        self._ending_changed()
        frames = self._close_frame(code, reason, payload)
        self._drop_input()  # Nothing the peer sent is parsed any more.
        return frames

    # -- sending -----------------------------------------------------------------------

    def data_to_send(self) -> List[bytes]:
        """Return (and forget) the frames the protocol queued by itself: pongs, close frames."""
        out, self._out = self._out, []
        return out

    def _frame(self, opcode: int, payload: BytesLike, *, fin: bool = True, rsv1: bool = False) -> bytes:
        """A whole frame as one buffer (control frames and small messages)."""
        return b"".join(self._frame_buffers(opcode, payload, fin=fin, rsv1=rsv1))

    def _frame_buffers(
        self, opcode: int, payload: BytesLike, *, fin: bool = True, rsv1: bool = False
    ) -> List[bytes]:
        key = self._mask_key() if self._mask_key is not None else None
        header = serialize_header(opcode, len(payload), fin=fin, rsv1=rsv1, mask_key=key)
        if len(payload) <= _JOIN_LIMIT:
            return [header + (apply_mask(payload, key) if key is not None else payload)]
        if key is None:
            return [header, payload]  # type: ignore[list-item]  # a large payload: the caller's buffer, not copied to bytes
        return [header, *mask_for_sending(payload, key)]  # type: ignore[list-item]  # a large payload: masked views, not copied to bytes

    def _check_can_send(self) -> None:
        if self.close_sent is not None or self.state is _CLOSED:
            raise RuntimeError("cannot send on a closing or closed connection")

    def send_message(
        self, message: Union[str, BytesLike], *, compress: Optional[bool] = None, slice_size: Optional[int] = None
    ) -> List[bytes]:
        """Frame a whole message.

        Args:
            message: ``str`` for a text message, bytes-like for a binary one.
            compress: force (True) or skip (False) permessage-deflate for this message;
                None compresses when the extension is on and the message is not tiny.
            slice_size: if the message is compressed and longer than this, frame only
                its first slice now; :meth:`send_rest` frames the next one while
                :attr:`message_pending` is true (see :data:`COMPRESSED_SLICE`). None
                frames the whole message at once.

        Returns:
            The buffers to write, in order.

        Raises:
            RuntimeError: a close frame was already sent, or a fragmented message is
                in progress.
            TypeError: ``message`` is neither ``str`` nor bytes-like.
            ValueError: ``slice_size`` is not positive.
        """
        if self.close_sent is not None or self.state is _CLOSED or self._send_opcode is not None:
            self._check_can_send()
            raise RuntimeError("a fragmented message is being sent")
        if slice_size is not None and slice_size <= 0:
            raise ValueError(f"slice_size must be positive, not {slice_size}")
        opcode: int
        data: BytesLike
        if isinstance(message, str):  # _encode(), inlined for the usual message.
            opcode, data = _TEXT, message.encode()
        else:
            opcode, data = _encode(message)
        rsv1 = False
        if self.deflate is not None and self.deflate.should_compress(len(data), compress):
            if slice_size is not None and len(data) > slice_size:
                self._send_opcode = opcode
                # A copy: a view would pin a caller's bytearray (no resizing) while kept.
                self._send_rest = memoryview(data if isinstance(data, bytes) else bytes(data))
                self.message_pending = True
                self._slice_size = slice_size
                return self._send_slice(opcode)
            data = self.deflate.compress(data)
            rsv1 = True
        return self._frame_buffers(opcode, data, rsv1=rsv1)

    def send_prepared(self, message: PreparedMessage) -> List[bytes]:
        """Frame a message encoded once for many connections (:func:`~wsclient.broadcast`).

        On a connection that sends it uncompressed and unmasked (a server's, without
        permessage-deflate or below its threshold), the frame is the one ``message``
        built for the first such connection; otherwise it is framed here as
        :meth:`send_message` would, without encoding the text again.

        Returns:
            The buffers to write, in order (shared: do not modify them).

        Raises:
            RuntimeError: as :meth:`send_message`.
        """
        self._check_can_send()
        if self._send_opcode is not None:
            raise RuntimeError("a fragmented message is being sent")
        if self.would_compress(len(message.payload)):
            assert self.deflate is not None
            return self._frame_buffers(message.opcode, self.deflate.compress(message.payload), rsv1=True)
        if self._mask_key is not None:
            return self._frame_buffers(message.opcode, message.payload)
        return message.plain_frame()

    def would_compress(self, size: int) -> bool:
        """Whether a message of ``size`` bytes is compressed when sent (permessage-deflate
        is on and ``size`` reaches its threshold): framing it then advances the
        compression context, so it cannot be undone by not writing it."""
        return self.deflate is not None and self.deflate.should_compress(size, None)

    def send_rest(self) -> List[bytes]:
        """Frame the next slice of the message :meth:`send_message` began.

        Returns:
            The buffers to write; the frame of the last slice ends the message.

        Raises:
            RuntimeError: a close frame was already sent, or no message is pending.
        """
        self._check_can_send()
        if self._send_rest is None:
            raise RuntimeError("no sliced message is being sent")
        return self._send_slice(Opcode.CONT)

    def _send_slice(self, opcode: int) -> List[bytes]:
        """Compress slices of the pending message until zlib gives out bytes (it keeps
        up to its buffer's worth) or the message ends, and frame what it gave."""
        assert self.deflate is not None
        size = self._slice_size
        payload = b""
        while not payload and self._send_rest is not None:
            rest = self._send_rest
            final = len(rest) <= size
            self._send_rest = None if final else rest[size:]
            payload = self.deflate.compress_fragment(rest[:size], final, flush=False)
        fin = self._send_rest is None
        if fin:
            self._send_opcode = None
            self.message_pending = False
        return self._frame_buffers(opcode, payload, fin=fin, rsv1=opcode != Opcode.CONT)

    def send_fragment(
        self, fragment: Union[str, BytesLike], *, fin: bool, compress: Optional[bool] = None
    ) -> List[bytes]:
        """Frame one fragment of a message sent in pieces (RFC 6455 section 5.4).

        Args:
            fragment: the next piece; every piece of a message has the same type, ``str``
                (text) or bytes-like (binary).
            fin: True for the last piece.
            compress: as for :meth:`send_message`, decided on the first piece.

        Returns:
            The buffers to write.

        Raises:
            RuntimeError: a close frame was already sent, or a message
                :meth:`send_message` sliced is not finished.
            TypeError: a piece of another type than the first.
        """
        self._check_can_send()
        if self._send_rest is not None:
            raise RuntimeError("a sliced message is being sent")
        opcode, data = _encode(fragment)
        if self._send_opcode is None:
            self._send_opcode = opcode
            # The size of the whole message is unknown: compress unless told not to.
            self._send_compressed = self.deflate is not None and compress is not False
            frame_opcode, rsv1 = opcode, self._send_compressed
        else:
            if opcode != self._send_opcode:
                raise TypeError("all fragments of a message must be str, or all bytes-like")
            frame_opcode, rsv1 = Opcode.CONT, False
        if self._send_compressed:
            assert self.deflate is not None
            data = self.deflate.compress_fragment(data, fin)
        if fin:
            self._send_opcode = None
            self._send_compressed = False
        return self._frame_buffers(frame_opcode, data, fin=fin, rsv1=rsv1)

    def send_ping(self, data: BytesLike = b"") -> List[bytes]:
        """Frame a ping (RFC 6455 section 5.5.2).

        Raises:
            ValueError: more than 125 bytes of payload.
            RuntimeError: a close frame was already sent.
        """
        return [self._control(Opcode.PING, data)]

    def send_pong(self, data: BytesLike = b"") -> List[bytes]:
        """Frame an unsolicited pong (RFC 6455 section 5.5.3).

        Raises:
            ValueError: more than 125 bytes of payload.
            RuntimeError: a close frame was already sent.
        """
        return [self._control(Opcode.PONG, data)]

    def _control(self, opcode: int, data: BytesLike) -> bytes:
        self._check_can_send()
        data = data.encode("utf-8") if isinstance(data, str) else _as_bytes(data)
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payloads are limited to 125 bytes")
        return self._frame(opcode, data)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> List[bytes]:
        """Start the closing handshake (RFC 6455 section 5.5.1); later calls send nothing.

        Args:
            code: the close code (1000 by default; 1005 sends an empty close frame).
            reason: a reason of at most 123 bytes of UTF-8.

        Returns:
            The close frame to write, or nothing if a close frame went already.

        Raises:
            ValueError: an invalid code or a reason that is too long.
        """
        return self._close_frame(code, reason, serialize_close(code, reason))

    def _close_frame(self, code: int, reason: str, payload: bytes) -> List[bytes]:
        if self.close_sent is not None or self.state is State.CLOSED:
            return []
        self.state = State.CLOSING
        self.close_sent = (code, reason)
        self._send_rest = None  # A message cut short by the close is never finished.
        self.message_pending = False
        self._ending_changed()
        return [self._frame(Opcode.CLOSE, payload)]

    # -- the end -----------------------------------------------------------------------

    def _ending_changed(self) -> None:
        """Update :attr:`can_send` and :attr:`should_close_transport` after
        :attr:`close_sent`, :attr:`close_rcvd`, :attr:`eof_received` or :attr:`failed`
        changed."""
        self.can_send = self.close_sent is None and not self.eof_received
        both_closed = self.close_sent is not None and self.close_rcvd is not None
        self.should_close_transport = (
            self.eof_received or self.failed or (both_closed and self.side is Side.SERVER)
        )

    def transport_closed(self, *, close_unsent: bool = False) -> None:
        """The I/O layer closed the transport (or it was cut).

        Args:
            close_unsent: this end's close frame was queued but never left (the transport
                was cut while it waited behind a stalled write). If the peer's close frame
                never came either, no close frame went either way: the close code is then
                1006 (RFC 6455 section 7.1.5), whatever :meth:`send_close` was asked.

        Bytes :meth:`feed` kept and :meth:`next_events` did not parse yet are dropped:
        the stream ends at once.
        """
        self._drop_input()
        if not self.eof_received:
            self.receive_eof()
        if close_unsent and self.close_sent is not None:
            self.close_unsent = True

    @property
    def closed_normally(self) -> bool:
        """Whether the close counts as normal (1000, 1001 or 1005, and not failed): what
        ends ``for message in ws`` quietly."""
        return self.close_code in OK_CLOSE_CODES and not self.failed

    @property
    def close_code(self) -> int:
        """The peer's close code; else this end's; 1006 if no close frame went either way."""
        if self.close_unsent and self.close_rcvd is None and not self.failed:
            return CloseCode.ABNORMAL_CLOSURE
        if self.failed and self.close_sent is not None:
            return self.close_sent[0]
        if self.close_rcvd is not None:
            return self.close_rcvd[0]
        if self.close_sent is not None:
            return self.close_sent[0]
        return CloseCode.ABNORMAL_CLOSURE

    @property
    def close_reason(self) -> str:
        """The reason that goes with :attr:`close_code`."""
        if self.close_unsent and self.close_rcvd is None and not self.failed:
            return ""
        if self.failed and self.close_sent is not None:
            return self.close_sent[1]
        if self.close_rcvd is not None:
            return self.close_rcvd[1]
        if self.close_sent is not None:
            return self.close_sent[1]
        return ""

    def closed_error(self, cause: Optional[BaseException] = None) -> ConnectionClosed:
        """The error that operations on the closed connection raise.

        Args:
            cause: why the transport ended, when it was not the peer's fault (a reset, a
                timeout); the peer's :class:`~wsclient.ProtocolError` takes precedence.

        Returns:
            :class:`~wsclient.ConnectionClosedOK` for a normal close, else
            :class:`~wsclient.ConnectionClosedError`, with the code and reason of
            :attr:`close_code` and :attr:`close_reason`.
        """
        cls = ConnectionClosedOK if self.closed_normally else ConnectionClosedError
        error = cls(known_close_code(self.close_code), self.close_reason)
        error.__cause__ = self.error or cause
        return error


class PreparedMessage:
    """A message encoded once to be sent on many connections (:func:`~wsclient.broadcast`).

    The text is encoded to UTF-8 once, and the frame a server sends it in without
    compression (no mask) is built once, by the first connection that needs it.

    Args:
        message: ``str`` for a text message, bytes-like for a binary one (copied if it is
            not ``bytes``, so the caller may reuse its buffer).

    Raises:
        TypeError: ``message`` is neither ``str`` nor bytes-like.
    """

    __slots__ = ("opcode", "payload", "_frame")

    def __init__(self, message: Union[str, BytesLike]) -> None:
        opcode, payload = _encode(message)
        self.opcode = opcode
        self.payload: bytes = payload if isinstance(payload, bytes) else bytes(payload)
        self._frame: Optional[List[bytes]] = None

    def plain_frame(self) -> List[bytes]:
        """The message as one unmasked, uncompressed frame (built on the first call)."""
        if self._frame is None:
            header = serialize_header(self.opcode, len(self.payload), fin=True, rsv1=False, mask_key=None)
            self._frame = [header + self.payload] if len(self.payload) <= _JOIN_LIMIT else [header, self.payload]
        return self._frame


def _encode(message: Union[str, BytesLike]) -> Tuple[int, BytesLike]:
    if isinstance(message, str):
        return _TEXT, message.encode("utf-8")
    return _BINARY, _as_bytes(message)


def _as_bytes(data: BytesLike) -> BytesLike:
    """Any bytes-like object as one that counts bytes: ``len()`` of a memoryview of an
    ``array('i')``, or of a 2-D one, is not its size in bytes, and a frame's length must be."""
    if isinstance(data, (bytes, bytearray)):
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"a message is str or bytes-like, not {type(data).__name__}") from None
    return view.cast("B") if view.c_contiguous else view.tobytes()
