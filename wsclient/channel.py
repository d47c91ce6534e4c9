"""Channel: one socket shared by a reading thread and a writing thread.

A connected socket (plain, TLS, or TLS inside TLS) is set up once: a plain socket stays
blocking and every call but a reader's open-ended wait passes ``MSG_DONTWAIT``; TLS
sockets (and systems without that flag) are made non-blocking. From then on the caller
lets one thread at a time read and one thread at a time write (its own locks order readers
among themselves and writers among themselves), and a read may run while a write does.
The channel gives those threads:

* Waiting with a deadline: :meth:`Channel.wait_readable` and :meth:`Channel.wait_writable`
  wait on the socket until a ``time.monotonic()`` deadline, each direction with its own
  :mod:`wsclient.readiness` waiter made once and reused (one user at a time, as each
  direction has one: ``poll()`` where the system has it, else ``select()``).
  After :meth:`Channel.shutdown` they return at once, so no thread sleeps on a dead socket.
* Reads: :meth:`Channel.recv` waits until a deadline (without one, on a plain socket, in
  ``recv()`` itself, or a server's :class:`~wsclient.gate.Gate` when it has enough readers
  there); :meth:`Channel.recv_nowait` never waits. Both return bytes, ``b""``
  at the end of the stream, or None when nothing is there (yet). Over TLS they also take
  what OpenSSL has already decrypted (``pending()``), which waiting on the socket cannot see.
* Writes of a list of buffers: gathered by one ``sendmsg()`` where the socket has it (plain
  sockets), else one ``send()`` per buffer. A partial write drops what went out and goes on
  with the rest; what a deadline leaves unwritten stays in :attr:`Channel.unsent`, which
  goes out before anything else on the next :meth:`Channel.write`.
* One TLS call at a time: OpenSSL does not allow two threads in one TLS connection at once
  (a read during a write can report a false end of stream), so every TLS ``recv`` and
  ``send`` holds the channel's lock, which is never held while waiting.
* The end: :meth:`Channel.shutdown` (wakes every thread waiting or in ``recv()``), then
  :meth:`Channel.close` once no thread uses the socket any more (the caller knows when; the
  channel does not).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any, List, Optional, Sequence, Union

from .gate import Gate
from .readiness import READ, SHUTDOWN_SLICE, WRITE, Waiter, waiter

__all__ = ["Channel", "Buffer", "DEFAULT_READ_SIZE"]

#: Bytes asked of the socket by one :meth:`Channel.recv_nowait` (64 KiB; 256 KiB made
#: CPython map and unmap the buffer on every read).
DEFAULT_READ_SIZE = 65536

Buffer = Union[bytes, bytearray, memoryview]

# Buffers gathered by one sendmsg(): under IOV_MAX (1024 on Linux and macOS), over which
# sendmsg() fails; a masked 16 MiB payload comes as 1,024 pieces of 16 KiB.
_MAX_GATHER = 512

#: The least a blocking read that may wait long asks for (see :meth:`Channel.recv`).
_IDLE_READ_SIZE = 256

# The flag that makes one call on a blocking socket non-blocking (Linux, the BSDs, macOS).
_DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)

# What a non-blocking socket raises when it cannot go on now (the TLS ones during a
# renegotiation or a read that needs the rest of a record).
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Channel:
    """A connected socket in non-blocking mode, read by one thread while another writes.

    Args:
        sock: a connected ``socket.socket``, ``ssl.SSLSocket`` or
            :class:`wsclient.tls.TLSInTLS`; the channel sets it non-blocking and owns it
            from then on.
        unsent: bytes to write before anything else (a server's 101 response).
        gate: where a reader waiting without a deadline may have to wait its turn (a
            server's: :mod:`wsclient.gate`); None: it always waits in ``recv()``.

    Attributes:
        unsent: bytes a :meth:`write` could not finish before its deadline; the next
            :meth:`write` sends them first. Read it; only the channel assigns it.
        stalled: a :meth:`write` is waiting for the peer to read (its socket buffer is
            full); other threads may read it without a lock.
        error: the ``OSError`` that ended reading (reset by the peer, or the socket closed
            under the reader), once :meth:`recv_nowait` has returned ``b""`` for it; else None.

    Raises:
        OSError: ``errno.EMFILE`` where the system has no ``poll()`` and the socket's
            descriptor is past what ``select()`` can watch (see :mod:`wsclient.readiness`).
    """

    def __init__(self, sock: Any, *, unsent: bytes = b"", gate: Optional[Gate] = None) -> None:
        self.unsent = unsent
        self._gate = gate
        self.error: Optional[OSError] = None
        self.stalled = False
        self._sock = sock
        self._fd: int = sock.fileno()
        self._tls = hasattr(sock, "pending")
        self._tls_lock: Optional[threading.Lock] = threading.Lock() if self._tls else None
        self._sendmsg = isinstance(sock, socket.socket) and not self._tls and hasattr(sock, "sendmsg")
        self._shut = False
        self._closed = False
        # A plain socket stays blocking, so that a reader without a deadline waits in
        # recv() itself; every other call passes MSG_DONTWAIT. Over TLS (one call at a
        # time under a lock) and where MSG_DONTWAIT is missing, the socket is non-blocking.
        self._dontwait = _DONTWAIT if isinstance(sock, socket.socket) and not self._tls else 0
        self._blocking_size = _IDLE_READ_SIZE
        sock.setblocking(bool(self._dontwait))
        # Made once: a waiter per connection, not one per wait. (Called as methods of the
        # waiters: a bound method kept in an attribute is slower to call on CPython 3.11.)
        # The writing one only when a write first waits: most connections never wait to
        # write, and at 10,000 connections each waiter is 300 bytes of memory.
        self._read_waiter = waiter(self._fd, READ)
        self._write_waiter: Optional[Waiter] = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has released the socket."""
        return self._closed

    def fileno(self) -> int:
        """The socket's file descriptor, or -1 once closed."""
        return -1 if self._closed else self._fd

    def wait_readable(self, deadline: Optional[float]) -> bool:
        """Wait until :meth:`recv_nowait` has something to return (bytes or the end).

        Args:
            deadline: a ``time.monotonic()`` value; None waits without limit.

        Returns:
            True when readable (at once if TLS holds decrypted bytes, or after
            :meth:`shutdown`); False at the deadline.
        """
        if self._shut or (self._tls and self._sock.pending()):
            return True
        return self._read_waiter.wait(deadline)

    def wait_writable(self, deadline: Optional[float]) -> bool:
        """Wait until the socket takes more bytes.

        Args:
            deadline: a ``time.monotonic()`` value; None waits without limit.

        Returns:
            True when writable (at once after :meth:`shutdown`); False at the deadline.
        """
        if self._shut:
            return True
        write_waiter = self._write_waiter
        if write_waiter is None:
            write_waiter = self._write_waiter = waiter(self._fd, WRITE)
        if not write_waiter.sees_shutdown:
            # select() may not see a shutdown while it waits to write: wait in slices.
            return self._wait_write_sliced(write_waiter, deadline)
        return write_waiter.wait(deadline)

    def _wait_write_sliced(self, write_waiter: Waiter, deadline: Optional[float]) -> bool:
        """Wait to write in slices of ``SHUTDOWN_SLICE``, looking for a shutdown between."""
        while not self._shut:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return write_waiter.wait(deadline)
            end = now + SHUTDOWN_SLICE if deadline is None else min(deadline, now + SHUTDOWN_SLICE)
            if write_waiter.wait(end):
                return True
        return True

    def recv(self, deadline: Optional[float]) -> Optional[bytes]:
        """Wait for bytes until ``deadline`` and read them.

        Without a deadline on a plain socket this is one blocking ``recv()`` (the hot path
        of a reader waiting for its next message: one system call, not a wait and
        then a ``recv()``); :meth:`shutdown` wakes it. With a gate that has enough readers
        waiting in ``recv()`` already, the reader parks in the gate instead and reads
        when the gate lets it go.

        Args:
            deadline: a ``time.monotonic()`` value; None waits without limit.

        Returns:
            As :meth:`recv_nowait`, and None only at the deadline.
        """
        if deadline is None and self._dontwait and not self._shut:
            # CPython allocates the whole buffer before it blocks: a thread waiting idle
            # would hold 64 KiB. Ask for what the last read brought, rounded up to a power
            # of two (same-sized messages keep taking one read each) and at least 256
            # bytes; after a read that came back full, for much more.
            size = self._blocking_size
            gate = self._gate
            if gate is not None and not gate.enter():
                return self._recv_parked(gate, size)
            try:
                data: bytes = self._sock.recv(size)
            except OSError as exc:
                return self._read_failed(exc)
            finally:
                if gate is not None:
                    gate.leave()
            if size != _IDLE_READ_SIZE or len(data) >= size:  # Else the size stays.
                self._next_size(len(data), size)
            return data
        while self.wait_readable(deadline):
            ready = self.recv_nowait()
            if ready is not None:
                return ready
        return None

    def _recv_parked(self, gate: Gate, size: int) -> bytes:
        """The idle read of :meth:`recv` when the gate says to park (see :mod:`wsclient.gate`)."""
        while gate.park(self._fd):
            try:
                ready = self.recv_nowait(size)
            finally:
                gate.done()
            if ready is not None:
                self._next_size(len(ready), size)
                return ready
        try:  # The gate cannot park this reader: wait in recv() after all.
            data: bytes = self._sock.recv(size)
        except OSError as exc:
            return self._read_failed(exc)
        self._next_size(len(data), size)
        return data

    def _next_size(self, got: int, size: int) -> None:
        """The size the next idle read asks for, after one asked ``size`` and got ``got``."""
        if got == size:
            self._blocking_size = DEFAULT_READ_SIZE
        else:
            self._blocking_size = _IDLE_READ_SIZE if got <= _IDLE_READ_SIZE else 1 << got.bit_length()

    def recv_nowait(self, size: int = DEFAULT_READ_SIZE) -> Optional[bytes]:
        """Read what the socket has now, without waiting.

        Args:
            size: the most bytes to ask the socket for (over TLS, what OpenSSL has already
                decrypted is added to that).

        Returns:
            The bytes; ``b""`` at the end of the stream, or when reading failed (the error
            is kept in :attr:`error`); None if nothing has arrived yet.
        """
        try:
            if self._tls_lock is None:
                data: bytes = self._sock.recv(size, self._dontwait)
            else:
                with self._tls_lock:
                    data = self._sock.recv(size)
        except _WOULD_BLOCK:
            return None
        except OSError as exc:
            return self._read_failed(exc)
        if self._tls_lock is not None and data:
            while self._sock.pending():
                try:
                    with self._tls_lock:
                        more = self._sock.recv(DEFAULT_READ_SIZE)
                except _WOULD_BLOCK:
                    break
                if not more:
                    break
                data += more
        return data

    def _read_failed(self, exc: OSError) -> bytes:
        """A read failed (reset by the peer, or the socket closed under us): keep the first
        error, and report the end of the stream."""
        if self.error is None:
            self.error = exc
        return b""

    def write(self, buffers: Sequence[Buffer], deadline: Optional[float]) -> None:
        """Write :attr:`unsent`, then every buffer, in order.

        Args:
            buffers: what to write (left as it is; the channel works on its own list).
            deadline: a ``time.monotonic()`` value; None waits as long as the peer reads.

        Raises:
            TimeoutError: the deadline passed with bytes left; they are in :attr:`unsent`.
            ConnectionResetError: :meth:`shutdown` was called while waiting.
            OSError: the socket failed (what is left is dropped).
        """
        if self.unsent:
            buffers = [self.unsent, *buffers]
            self.unsent = b""
        else:
            buffers = list(buffers)
        while buffers:
            try:  # _send_some(), inlined: a call per frame is 1 % of a small round trip.
                if self._sendmsg and len(buffers) > 1:
                    sent = self._sock.sendmsg(buffers[:_MAX_GATHER], (), self._dontwait)
                elif self._tls_lock is None:
                    sent = self._sock.send(buffers[0], self._dontwait)
                else:
                    with self._tls_lock:
                        sent = self._sock.send(buffers[0])
            except _WOULD_BLOCK:
                self.stalled = True
                try:
                    writable = self.wait_writable(deadline)
                finally:
                    self.stalled = False
                if not writable:
                    self.unsent = b"".join(buffers)
                    raise TimeoutError("the peer did not read in time") from None
                if self._shut:
                    raise ConnectionResetError("connection closed")
                continue
            if len(buffers) == 1 and sent == len(buffers[0]):
                return  # The usual end: skip the bookkeeping of a partial write.
            buffers = _advance(buffers, sent)

    def write_nowait(self, buffers: Sequence[Buffer]) -> bool:
        """Write ``buffers`` if the socket takes at least one byte of them now.

        For a message that may be skipped (:func:`~wsclient.broadcast`): one system call
        both asks whether the peer reads and writes, where waiting for writability first
        would take two. Call with :attr:`unsent` empty.

        Returns:
            False if the socket took nothing: nothing is kept. True otherwise: what it
            did not take is written as :meth:`write` would with the deadline now.

        Raises:
            TimeoutError: only part was taken; the rest is in :attr:`unsent`.
            OSError: the socket failed.
        """
        try:
            sent = self._send_some(buffers)
        except _WOULD_BLOCK:
            return False
        if len(buffers) != 1 or sent != len(buffers[0]):
            rest = _advance(list(buffers), sent)
            if rest:
                self.write(rest, time.monotonic())
        return True

    def _send_some(self, buffers: Sequence[Buffer]) -> int:
        """One send (or gathered ``sendmsg``) of the first buffers, without waiting."""
        if self._sendmsg and len(buffers) > 1:
            sent: int = self._sock.sendmsg(buffers[:_MAX_GATHER], (), self._dontwait)
        elif self._tls_lock is None:
            sent = self._sock.send(buffers[0], self._dontwait)
        else:
            with self._tls_lock:
                sent = self._sock.send(buffers[0])
        return sent

    def shutdown_write(self) -> bool:
        """Send the end of the stream after the bytes already queued, and go on reading.

        For a server's close (see ``Duplex``): a socket closed while the peer still sends
        is answered with a reset, which drops what the peer had not yet received.

        Returns:
            True if the write side is now shut; False over TLS (shutting TCP down under
            it would end TLS too), after :meth:`shutdown`, or if the socket refused.
        """
        if self._tls or self._shut:
            return False
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        return True

    def shutdown(self) -> None:
        """Shut both directions down: threads waiting wake, reads see the end, writes fail.

        Idempotent; errors (a socket the peer already reset) are ignored.
        """
        if self._shut:
            return
        self._shut = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Release the socket (idempotent); call it once no thread reads or writes.

        Raises:
            OSError: closing failed (the channel stays open).
        """
        if self._closed:
            return
        self._shut = True
        self._sock.close()
        self._closed = True


def _advance(buffers: List[Buffer], sent: int) -> List[Buffer]:
    """Drop ``sent`` bytes from the front of ``buffers`` (a partial write's bookkeeping).

    Args:
        buffers: the buffers that were being written; modified in place.
        sent: how many bytes the socket took.

    Returns:
        ``buffers``, now starting at the first unwritten byte.
    """
    while sent:
        first = buffers[0]
        if sent >= len(first):
            sent -= len(first)
            buffers.pop(0)
        else:
            buffers[0] = memoryview(first)[sent:]
            sent = 0
    return buffers
