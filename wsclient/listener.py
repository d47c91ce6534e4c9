"""The server's listening socket: bind it, accept from it, refuse at once, stop and resume.

A :class:`Listener` binds TCP (IPv4 or IPv6, maybe ``SO_REUSEPORT``) or a unix socket,
accepts without blocking, and answers a client it will not serve with an HTTP status and
no thread. It keeps one file descriptor spare, so that out of descriptors a client still
gets 503 rather than silence. While a server shuts down it stops listening, so clients are
answered at once instead of waiting in the backlog, and it listens again when the server
serves again. Which clients to serve, and the threads that serve them, are
:mod:`wsclient.server`'s.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import platform
import socket
import sys
import threading
import time
from typing import Any, Optional, Tuple, Union

from .handshake import reject_response

__all__ = ["Listener", "ServerAddress", "reuse_port_option", "set_reuse_port"]

logger = logging.getLogger("wsclient")

#: At most one "accept failed" line per this many seconds (out of descriptors, every
#: client in the backlog fails alike).
_ACCEPT_ERROR_LOG_INTERVAL = 5.0

ServerAddress = Union[Tuple[str, int], Tuple[str, int, int, int], str]


class Listener:
    """A bound, listening socket that accepts without blocking.

    Args:
        address: ``(host, port)`` (``port=0`` picks a free port; an IPv6 host binds
            IPv6), or a ``str`` path for a unix domain socket.
        reuse_port: set ``SO_REUSEPORT`` (TCP only).
        backlog: the listen backlog.
        tls: the server speaks TLS: a refused client is disconnected, not answered (an
            HTTP answer would need a TLS handshake first).

    Attributes:
        socket: the listening socket (the same object, and descriptor, for its life).
        address: the bound address, as ``getsockname()`` gives it.
        unix_path: the unix socket's path, or None.

    Raises:
        ValueError: ``reuse_port=True`` on a unix socket or without ``SO_REUSEPORT``; a unix
            socket where the system has none (Windows); a port outside 0-65535.
        OSError: the address cannot be bound.
    """

    def __init__(self, address: ServerAddress, *, reuse_port: bool, backlog: int, tls: bool) -> None:
        self.socket = _bind(address, reuse_port=reuse_port, backlog=backlog)
        self.address = self.socket.getsockname()
        self.unix_path = address if isinstance(address, str) else None
        self._backlog = backlog
        self._tls = tls
        self._lock = threading.Lock()
        self._listening = True  # False once stop() made the kernel refuse clients.
        self._closed = False
        # Out of file descriptors, this one is given up to accept a client and answer 503.
        self._spare_fd: Optional[int] = os.open(os.devnull, os.O_RDONLY)
        self._fd_errors_logged_at = -math.inf

    def accept(self) -> Optional[Tuple[socket.socket, Any]]:
        """The next client waiting, without blocking.

        Returns:
            ``(socket, address)``, or None: nobody is waiting, or accept() failed (logged,
            at most every 5 s; out of descriptors, the client was answered 503).
        """
        try:
            return self.socket.accept()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:  # EMFILE and friends: log, keep serving.
            self._accept_failed(exc)
            return None

    def refuse(self, sock: socket.socket, status: int, message: str) -> None:
        """Answer ``status`` at once without a thread, and close (never blocks: a fresh
        socket's buffer is empty). Over TLS, just close."""
        try:
            if not self._tls:
                sock.setblocking(False)
                sock.send(reject_response(status, message).serialize())
        except OSError:
            pass
        finally:
            sock.close()

    def stop(self) -> None:
        """Stop listening until :meth:`resume`, so that clients connecting while the
        server shuts down (or before it closes) are answered at once instead of waiting in
        the backlog: the queued ones get 503, and the kernel refuses the rest.

        On Linux, ``shutdown(SHUT_RD)`` on a listening TCP socket stops it listening (new
        clients get ECONNREFUSED; one that slips in after the 503s is reset) and takes it
        out of its ``SO_REUSEPORT`` group, so new clients go to the other workers; a unix
        listener refuses new clients and keeps its queue for accept(). Other systems refuse
        ``shutdown()`` on a listener: there only the queued clients are answered.
        """
        with self._lock:
            if not self._listening or self._closed:
                return
        self._refuse_backlog()
        try:
            self.socket.shutdown(socket.SHUT_RD)
        except OSError:  # ENOTCONN outside Linux: still listening.
            return
        with self._lock:
            self._listening = False
        self._refuse_backlog()  # A unix listener keeps its queue.

    def resume(self) -> None:
        """Listen again after :meth:`stop`: same address, same descriptor.

        Raises:
            OSError: the address cannot be bound again (a port that ``port=0`` picked was
                released by the stop, and something else took it since).
        """
        with self._lock:
            if self._listening or self._closed:
                return
            if self.unix_path is not None:
                self._replace_unix_socket()
            else:
                try:
                    self.socket.bind(self.address)  # A port bind() picked was released.
                except OSError as exc:
                    if exc.errno != errno.EINVAL:  # EINVAL: still bound (an explicit port).
                        raise
                self.socket.listen(self._backlog)
            self._listening = True

    def close(self) -> None:
        """Close the socket and the spare descriptor, and remove the unix socket's path."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.socket.close()
        if self._spare_fd is not None:
            os.close(self._spare_fd)
            self._spare_fd = None
        if self.unix_path is not None:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass

    def _refuse_backlog(self) -> None:
        """Answer 503 to the clients already queued (at most a backlog's worth)."""
        for _ in range(self._backlog + 1):
            try:
                sock, _ = self.socket.accept()
            except OSError:  # Empty (BlockingIOError), or not listening.
                return
            self.refuse(sock, 503, "shutting down")

    def _replace_unix_socket(self) -> None:
        """A unix listener stays shut: a new one takes the path and the old descriptor
        (``fileno()`` stays the same, for selectors)."""
        assert self.unix_path is not None
        try:
            os.unlink(self.unix_path)
        except FileNotFoundError:
            pass
        fresh = _bind(self.unix_path, reuse_port=False, backlog=self._backlog)
        try:
            os.dup2(fresh.fileno(), self.socket.fileno(), inheritable=False)
        finally:
            fresh.close()

    def _accept_failed(self, exc: OSError) -> None:
        """accept() failed. Out of file descriptors, give up the spare one to accept the
        client and answer 503: otherwise it would wait in the backlog, unanswered, and
        the listening socket would stay readable (a busy loop)."""
        now = time.monotonic()
        if now - self._fd_errors_logged_at >= _ACCEPT_ERROR_LOG_INTERVAL:
            self._fd_errors_logged_at = now  # One line per burst, not one per client.
            logger.error("accept failed: %s", exc)
        if exc.errno in (errno.EMFILE, errno.ENFILE) and self._spare_fd is not None:
            os.close(self._spare_fd)
            self._spare_fd = None
            try:
                sock, _ = self.socket.accept()
            except OSError:
                pass
            else:
                self.refuse(sock, 503, "the server is out of file descriptors")
        if self._spare_fd is None:
            try:
                self._spare_fd = os.open(os.devnull, os.O_RDONLY)
                return
            except OSError:  # Still none free (another thread took it).
                pass
        time.sleep(0.05)  # Rather than spin on a listening socket that stays readable.


def reuse_port_option(module: Any = socket) -> int:
    """The ``SO_REUSEPORT`` socket option, or a clear error where the platform lacks it.

    Args:
        module: where to look the option up (the :mod:`socket` module).

    Returns:
        The option's number, for ``setsockopt(SOL_SOCKET, option, 1)``.

    Raises:
        ValueError: the platform has no ``SO_REUSEPORT`` (e.g. Windows), so several
            processes cannot share one port; run one process per port behind a proxy.
    """
    option = getattr(module, "SO_REUSEPORT", None)
    if option is None:
        raise ValueError(f"reuse_port=True needs SO_REUSEPORT, which this platform does not have "
                         f"({_system()}): run one process per port behind a reverse proxy instead")
    return int(option)


def _system() -> str:
    """The system's name for an error message: "Windows", "Linux", "Darwin"..."""
    return platform.system() or sys.platform


def set_reuse_port(sock: socket.socket) -> None:
    """Set ``SO_REUSEPORT`` on ``sock``.

    Raises:
        ValueError: the platform has no ``SO_REUSEPORT``, or its kernel refuses it.
    """
    option = reuse_port_option()
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
    except OSError as exc:  # Defined by the headers, refused by the kernel (ENOPROTOOPT).
        raise ValueError(f"reuse_port=True: this system refuses SO_REUSEPORT ({exc})") from exc


def _bind(address: ServerAddress, *, reuse_port: bool, backlog: int) -> socket.socket:
    """Create, bind and listen: IPv4, IPv6 or unix, with SO_REUSEADDR."""
    if isinstance(address, str):
        if reuse_port:
            raise ValueError("reuse_port=True applies to TCP ports, not unix sockets")
        family = getattr(socket, "AF_UNIX", None)
        if family is None:  # Windows: Python has no AF_UNIX there.
            raise ValueError(f"unix domain sockets are not available on this platform ({_system()}): "
                             "bind a TCP port on 127.0.0.1 instead")
        sock = socket.socket(family, socket.SOCK_STREAM)
    else:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if reuse_port:
            set_reuse_port(sock)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OverflowError as exc:  # A port outside 0-65535.
        sock.close()
        raise ValueError(str(exc)) from None
    except BaseException:
        sock.close()
        raise
    return sock
