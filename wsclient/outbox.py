"""The sending part of a connection: who may write, and what waits to be written.

Writers share one socket. Whoever holds :attr:`Outbox.write_lock` writes, one frame at a
time, framing it under the same lock so frames reach the wire in the order they were
framed (which permessage-deflate's shared window needs). A data message also holds
:attr:`Outbox.message_lock` from its first frame to its last, so messages never
interleave, while control frames (which only take the write lock) may go out between the
fragments of a large message.

Control frames the reader must send (pongs, the close reply, keepalive pings) cannot wait
for the write lock (the reader must never block), so they are queued here and written by
the current lock holder at its next frame boundary, or at once if nobody writes. Once the
closing handshake is over, :attr:`Outbox.close_after_write` says the transport closes as
soon as what is queued is out. Bytes a write could not finish before its deadline are the
channel's ``unsent``; :attr:`Outbox.pending` counts them too.

The queue is guarded by the connection's state lock: hold it for :meth:`queue` and
:meth:`take`.
"""

from __future__ import annotations

import threading
from typing import List

from .channel import Channel

__all__ = ["Outbox"]


class Outbox:
    """The write and message locks, queued control frames, and the close-after-write flag.

    Args:
        channel: the connection's socket, whose ``unsent`` bytes count as pending.

    Attributes:
        control: the queued control frames (test it for emptiness without the state
            lock; change it only through :meth:`queue` and :meth:`take`).
        write_lock: held while framing and writing one frame.
        message_lock: held from a data message's first frame to its last.
        close_after_write: the closing handshake is over: close the transport once
            nothing is pending.
    """

    def __init__(self, channel: Channel) -> None:
        self.write_lock = threading.Lock()
        self.message_lock = threading.Lock()
        self.close_after_write = False
        self._channel = channel
        self.control: List[bytes] = []

    @property
    def pending(self) -> bool:
        """Whether anything waits to be written: control frames, or unsent bytes."""
        return bool(self.control or self._channel.unsent)

    def queue(self, frames: List[bytes]) -> None:
        """Queue control frames for the next writer (hold the state lock)."""
        self.control += frames

    def take(self) -> List[bytes]:
        """Take the queued control frames, to write before anything else (hold the state
        lock and the write lock)."""
        frames, self.control = self.control, []
        return frames
