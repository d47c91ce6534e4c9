"""The receiving part of a connection: messages waiting for ``recv()``, bounded in bytes.

An :class:`Inbox` holds the messages the background reader (or a ``close()`` reading the
peer's answer) received while no application thread was asking for one. It is bounded by
``max_queue`` bytes: when full, the reader stops reading (the watcher pauses the
connection) and TCP pushes back on the peer; when a ``recv()`` has taken it down to half,
reading resumes. Nothing is ever dropped. It also tells waiters that something happened:
threads blocked on its condition and the events :func:`wsclient.wait` registers.

Its state is guarded by the connection's state lock (the condition's lock): hold it for
every method here. The inbox never blocks and knows nothing of sockets.
"""

from __future__ import annotations

import collections
import threading
from typing import Deque, Optional, Set, Tuple, Union

__all__ = ["Inbox", "Message"]

#: A received message: ``str`` for text, ``bytes`` for binary.
Message = Union[str, bytes]

#: The least the reader asks the socket for while the inbox is nearly full, so a large
#: message still arrives in a few reads.
_MIN_READ = 4096


class Inbox:
    """Received messages, oldest first, and who to tell when one arrives.

    Args:
        lock: the connection's state lock, which guards the inbox (and the protocol).
        max_queue: the bound in bytes; None for no bound.

    Attributes:
        messages: the queued messages (read it to test for emptiness; change it only
            through :meth:`put` and :meth:`pop`).
        size: the bytes queued.
        paused: the reader stopped reading because the inbox was full; the :meth:`pop`
            that makes room says so.
        changed: a condition on the state lock, notified by :meth:`notify`.
    """

    def __init__(self, lock: threading.Lock, max_queue: Optional[int]) -> None:
        self.changed = threading.Condition(lock)
        self.max_queue = max_queue
        self.messages: Deque[Message] = collections.deque()
        self.size = 0
        self.paused = False
        self._events: Set[threading.Event] = set()

    def put(self, message: Message) -> None:
        """Queue a message (call :meth:`notify` once a batch is in)."""
        self.messages.append(message)
        self.size += len(message)

    def pop(self) -> Tuple[Message, bool]:
        """Take the oldest message.

        Returns:
            The message, and whether the reader should resume reading (it was paused and
            the inbox is now at most half full).
        """
        message = self.messages.popleft()
        self.size -= len(message)
        if self.paused and (self.max_queue is None or self.size <= self.max_queue // 2):
            self.paused = False
            return message, True
        return message, False

    @property
    def full(self) -> bool:
        """Whether the inbox holds ``max_queue`` bytes or more."""
        return self.max_queue is not None and self.size >= self.max_queue

    def room(self, most: int) -> int:
        """How many bytes the reader should ask the socket for, at most ``most``."""
        if self.max_queue is None:
            return most
        return max(_MIN_READ, min(most, self.max_queue - self.size))

    def notify(self) -> None:
        """Wake the threads waiting on :attr:`changed` and set every registered event."""
        self.changed.notify_all()
        for event in self._events:
            event.set()

    def add_event(self, event: threading.Event) -> None:
        """Set ``event`` at every :meth:`notify` until :meth:`discard_event`."""
        self._events.add(event)

    def discard_event(self, event: threading.Event) -> None:
        """Stop setting ``event``."""
        self._events.discard(event)
