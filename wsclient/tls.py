"""TLS for wsclient: the contexts (the one CA seam) and TLS inside TLS.

:func:`client_ssl_context` is the only place wsclient chooses what a client trusts, in this
order: the CAs the caller names (``cafile``, ``capath``, ``cadata``), else the operating
system's store (``system_trust=True``, through the optional ``truststore`` package), else the
file and directory named by the ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` environment variables
when either is set, else certifi's bundle; certificate verification and host name checking
on, TLS 1.2 or newer. :func:`server_ssl_context` is its server-side twin, which can require
client certificates (mutual TLS). A context the caller passes in is used as given and never
modified, and nothing here ever falls back to an unverified context.

:class:`TLSInTLS` runs a TLS session over a socket that already carries TLS, as needed for a
``wss://`` target reached through an ``https://`` proxy: :meth:`ssl.SSLContext.wrap_socket`
cannot wrap an :class:`ssl.SSLSocket`, so the inner session is an :class:`ssl.SSLObject`
driven through two :class:`ssl.MemoryBIO` buffers.
"""

from __future__ import annotations

import importlib
import os
import socket
import ssl
import threading
import time
from typing import Any, Optional, Tuple, Union

import certifi

from .readiness import READ, WRITE, wait_ready

__all__ = [
    "DEFAULT_MINIMUM_VERSION",
    "CERT_FILE_VARIABLE",
    "CERT_DIR_VARIABLE",
    "client_ssl_context",
    "server_ssl_context",
    "client_context",
    "server_context",
    "TLSInTLS",
]

#: The oldest protocol version the default contexts accept.
DEFAULT_MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

#: The environment variable naming a file where TLS secrets are logged (NSS key log format,
#: read by Wireshark). Honoured by the contexts this module makes only.
KEYLOG_VARIABLE = "SSLKEYLOGFILE"

#: The environment variables that, when set, replace certifi's bundle in the default client
#: context: a PEM file of CA certificates and a directory of hashed ones (OpenSSL's names,
#: as requests and httpx read them).
CERT_FILE_VARIABLE = "SSL_CERT_FILE"
CERT_DIR_VARIABLE = "SSL_CERT_DIR"

#: What to install for ``system_trust=True``.
TRUSTSTORE_EXTRA = 'pip install "wsclient-sync[truststore]"'

Buffer = Union[bytes, bytearray, memoryview]


def check_context(name: str, context: Any) -> None:
    """Check an option that takes a TLS context: an :class:`ssl.SSLContext`, or None.

    Raises:
        TypeError: anything else (a CA file path, say), before any connection.
    """
    if context is not None and not isinstance(context, ssl.SSLContext):
        raise TypeError(f"{name} must be an ssl.SSLContext or None, not {type(context).__name__}")


def _finish_context(context: ssl.SSLContext) -> ssl.SSLContext:
    """Apply the minimum version and ``SSLKEYLOGFILE`` to a context this module made."""
    if context.minimum_version < DEFAULT_MINIMUM_VERSION:  # MINIMUM_SUPPORTED is -2
        context.minimum_version = DEFAULT_MINIMUM_VERSION
    keylog = os.environ.get(KEYLOG_VARIABLE)
    if keylog and hasattr(context, "keylog_filename"):
        context.keylog_filename = keylog
    return context


def _system_context() -> ssl.SSLContext:
    """A client context verifying with the operating system's store, through truststore.

    Raises:
        ModuleNotFoundError: truststore is not installed (the message says how to get it).
    """
    try:
        truststore = importlib.import_module("truststore")
    except ImportError as exc:
        raise ModuleNotFoundError(
            "system_trust=True needs the truststore package, which is not installed: "
            f"{TRUSTSTORE_EXTRA} (or pip install truststore)",
            name="truststore",
        ) from exc
    context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return context


def _environment_trust() -> Tuple[Optional[str], Optional[str]]:
    """``(cafile, capath)`` from ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``; empty means unset."""
    return os.environ.get(CERT_FILE_VARIABLE) or None, os.environ.get(CERT_DIR_VARIABLE) or None


def client_ssl_context(
    *,
    cafile: Optional[str] = None,
    capath: Optional[str] = None,
    cadata: Union[str, bytes, None] = None,
    certfile: Optional[str] = None,
    keyfile: Optional[str] = None,
    password: Optional[str] = None,
    system_trust: bool = False,
) -> ssl.SSLContext:
    """A new client context: verification and host name checking on, TLS 1.2 or newer.

    What it trusts, the first that applies: the CAs named by ``cafile``, ``capath`` and
    ``cadata`` (all that are given, and nothing else); the operating system's store with
    ``system_trust=True``; the file named by ``SSL_CERT_FILE`` and the directory named by
    ``SSL_CERT_DIR`` when either environment variable is set (read at each call);
    certifi's bundle (:func:`certifi.where`). With ``certfile``, the context presents that
    client certificate to servers that ask for one (mutual TLS). When ``SSLKEYLOGFILE`` is
    set, TLS secrets are appended to the file it names (for Wireshark).

    Args:
        cafile: a PEM file of CA certificates to trust.
        capath: a directory of hashed CA certificates (``openssl rehash``) to trust.
        cadata: CA certificates to trust: PEM text (``str``) or DER ``bytes``.
        certfile: a PEM file with the client certificate, then any intermediates (and the
            key, when ``keyfile`` is None).
        keyfile: a PEM file with the client certificate's private key.
        password: the private key's password, if it is encrypted.
        system_trust: trust the operating system's store (Windows, macOS, or the Linux
            distribution's bundle) through the ``truststore`` package, installed with
            the ``truststore`` extra.

    Returns:
        A fresh :class:`ssl.SSLContext` (a ``truststore.SSLContext`` with
        ``system_trust``) with ``verify_mode`` ``CERT_REQUIRED`` and ``check_hostname`` on.

    Raises:
        ValueError: ``system_trust`` together with ``cafile``, ``capath`` or ``cadata``, or
            ``keyfile``/``password`` without ``certfile``.
        TypeError: ``system_trust`` is not a bool.
        ModuleNotFoundError: ``system_trust=True`` and truststore is not installed.
        FileNotFoundError: a file or directory does not exist (one named by
            ``SSL_CERT_FILE``/``SSL_CERT_DIR`` included: the error says which variable).
        ssl.SSLError: a file holds no usable certificate, or the key does not match.
    """
    if not isinstance(system_trust, bool):
        raise TypeError(f"system_trust must be a bool, not {type(system_trust).__name__}")
    explicit = cafile is not None or capath is not None or cadata is not None
    if system_trust and explicit:
        raise ValueError("system_trust=True trusts the operating system's store: "
                         "give it or cafile/capath/cadata, not both")
    if certfile is None and (keyfile is not None or password is not None):
        raise ValueError("keyfile and password go with certfile, which is missing")
    if system_trust:
        context = _system_context()
    elif explicit:
        context = ssl.create_default_context(cafile=cafile, capath=capath, cadata=cadata)
    else:
        env_file, env_dir = _environment_trust()
        if env_file is None and env_dir is None:
            context = ssl.create_default_context(cafile=certifi.where())
        else:
            try:
                context = ssl.create_default_context(cafile=env_file, capath=env_dir)
            except FileNotFoundError as exc:
                exc.strerror = (f"{exc.strerror}: {CERT_FILE_VARIABLE}={env_file!r}, "
                                f"{CERT_DIR_VARIABLE}={env_dir!r}")
                raise
    # create_default_context() sets both already; say it again so that no future default
    # can weaken what this function promises.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile, password)
    return _finish_context(context)


def server_ssl_context(
    certfile: str,
    keyfile: Optional[str] = None,
    password: Optional[str] = None,
    *,
    cafile: Optional[str] = None,
) -> ssl.SSLContext:
    """A new server context with the given certificate chain, TLS 1.2 or newer.

    Args:
        certfile: PEM file with the certificate, then any intermediates (and the key, when
            ``keyfile`` is ``None``).
        keyfile: PEM file with the private key, if not in ``certfile``.
        password: the key's password, if it is encrypted.
        cafile: a PEM file of CA certificates: with it, every client must present a
            certificate signed by one of them (mutual TLS), else the handshake fails.
            Without it, client certificates are not requested.

    Returns:
        A fresh :class:`ssl.SSLContext` for ``serve(ssl_context=...)``.

    Raises:
        FileNotFoundError: a file does not exist.
        ssl.SSLError: the certificate or key is unusable, or they do not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile, password)
    if cafile is not None:
        context.load_verify_locations(cafile=cafile)
        context.verify_mode = ssl.CERT_REQUIRED
    return _finish_context(context)


def client_context(
    *, cafile: Optional[str] = None, capath: Optional[str] = None
) -> ssl.SSLContext:
    """The default client context: :func:`client_ssl_context` with only CA options.

    Args:
        cafile: a PEM file of CA certificates to trust.
        capath: a directory of hashed CA certificates to trust.

    Returns:
        A fresh verifying :class:`ssl.SSLContext`.

    Raises:
        FileNotFoundError, ssl.SSLError: as :func:`client_ssl_context`.
    """
    return client_ssl_context(cafile=cafile, capath=capath)


def server_context(
    certfile: str, keyfile: Optional[str] = None, password: Optional[str] = None
) -> ssl.SSLContext:
    """:func:`server_ssl_context` without client certificates.

    Args:
        certfile, keyfile, password: as :func:`server_ssl_context`.

    Returns:
        A fresh server :class:`ssl.SSLContext`.

    Raises:
        FileNotFoundError, ssl.SSLError: as :func:`server_ssl_context`.
    """
    return server_ssl_context(certfile, keyfile, password)


#: Ciphertext read from the outer socket at a time.
_READ_SIZE = 65536
#: Plaintext encrypted by one call to ``send()``.
_WRITE_SIZE = 65536


def _want_read() -> ssl.SSLWantReadError:
    return ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read)")


def _want_write() -> ssl.SSLWantWriteError:
    return ssl.SSLWantWriteError(
        ssl.SSL_ERROR_WANT_WRITE, "The operation did not complete (write)"
    )


class TLSInTLS:
    """A client TLS session over a socket-like object that itself carries TLS.

    It behaves like the :class:`ssl.SSLSocket` a ``wrap_socket()`` would give, for the
    methods a connection uses, in blocking mode (with or without a timeout) and in
    non-blocking mode. In non-blocking mode ``recv()`` raises :class:`ssl.SSLWantReadError`
    when nothing can be read yet and ``send()`` raises :class:`ssl.SSLWantWriteError` when
    nothing could be written, exactly as a non-blocking ``SSLSocket`` does; as with an
    ``SSLSocket``, a ``send()`` that raised must be retried with the same data. In blocking
    mode a timeout bounds each call as a whole and raises :class:`TimeoutError`.

    :meth:`fileno` is the outer socket's; decrypted bytes that waiting on it cannot see
    are counted by :meth:`pending`: when it is positive, ``recv()`` returns without waiting.
    ``recv()`` and ``send()`` may be called from two threads at once (a reader and a writer).

    The object starts with the timeout of ``sock`` and puts ``sock`` in non-blocking mode for
    good: from then on, use ``sock`` only through this object, which owns and closes it.
    Call :meth:`do_handshake` before exchanging data.

    Args:
        sock: the outer socket, connected (typically an :class:`ssl.SSLSocket` to a proxy).
        context: the context of the inner session; used as given, never modified.
        server_hostname: the inner server's name, for SNI and host name checking.
    """

    def __init__(
        self, sock: Any, context: ssl.SSLContext, *, server_hostname: Optional[str]
    ) -> None:
        self._sock = sock
        self._timeout: Optional[float] = sock.gettimeout()
        sock.setblocking(False)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self._lock = threading.Lock()  # guards the SSLObject, the BIOs and the buffers
        self._plain = bytearray()  # decrypted, not yet returned by recv()
        self._out = bytearray()  # encrypted, not yet accepted by the outer socket
        self._owed = 0  # plaintext encrypted by a send() that then raised SSLWantWriteError
        self._eof = False  # the inner session or the outer socket has ended
        self._error: Optional[BaseException] = None  # found by pending(), raised by recv()
        self._handshake_done = False
        self._closed = False

    # -- what ssl.SSLSocket offers -------------------------------------------------------

    @property
    def context(self) -> ssl.SSLContext:
        """The inner session's context."""
        return self._ssl.context

    @property
    def server_hostname(self) -> Optional[str]:
        """The inner server's name, as given."""
        return self._ssl.server_hostname

    def fileno(self) -> int:
        """The outer socket's file descriptor (``-1`` once closed), to wait on."""
        return -1 if self._closed else self._sock.fileno()

    def gettimeout(self) -> Optional[float]:
        """The timeout of each call: ``None`` (blocking), ``0.0`` (non-blocking) or seconds."""
        return self._timeout

    def settimeout(self, timeout: Optional[float]) -> None:
        """Set the timeout as :meth:`socket.socket.settimeout` does.

        Raises:
            ValueError: ``timeout`` is negative.
        """
        if timeout is not None:
            timeout = float(timeout)
            if timeout < 0:
                raise ValueError("Timeout value out of range")
        self._timeout = timeout

    def setblocking(self, flag: bool) -> None:
        """Blocking (``True``: timeout ``None``) or non-blocking (``False``: timeout 0)."""
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        """Whether the object is in blocking mode (timeout not 0)."""
        return self._timeout != 0.0

    def getsockname(self) -> Any:
        """The outer socket's local address."""
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        """The outer socket's peer address (the proxy's)."""
        return self._sock.getpeername()

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The inner server's certificate, as :meth:`ssl.SSLSocket.getpeercert`."""
        return self._ssl.getpeercert(binary_form)

    def version(self) -> Optional[str]:
        """The inner session's protocol version, e.g. ``"TLSv1.3"``."""
        return self._ssl.version()

    def cipher(self) -> Optional[Tuple[str, str, int]]:
        """The inner session's cipher, as :meth:`ssl.SSLSocket.cipher`."""
        return self._ssl.cipher()

    def selected_alpn_protocol(self) -> Optional[str]:
        """The ALPN protocol the inner server chose, or ``None``."""
        return self._ssl.selected_alpn_protocol()

    def pending(self) -> int:
        """How many bytes ``recv()`` can return without waiting on :meth:`fileno`.

        Counts decrypted bytes held here and by the outer socket; positive as well when the
        next ``recv()`` will return ``b""`` (end of stream) or raise an error it found.
        """
        with self._lock:
            if self._handshake_done and not (self._error or self._plain or self._eof):
                try:
                    self._decrypt()
                except (ssl.SSLError, OSError) as exc:
                    self._error = exc
            ready = len(self._plain) or int(self._eof or self._error is not None)
        outer_pending = getattr(self._sock, "pending", None)
        return ready + (outer_pending() if outer_pending is not None else 0)

    def do_handshake(self) -> None:
        """Run the inner handshake.

        Raises:
            ssl.SSLCertVerificationError: the inner server's certificate is not trusted.
            ssl.SSLWantReadError, ssl.SSLWantWriteError: non-blocking mode, not done yet.
            TimeoutError: blocking mode with a timeout, which expired.
        """
        self._call(self._handshake_step)

    def recv(self, bufsize: int = 1024, flags: int = 0) -> bytes:
        """Up to ``bufsize`` decrypted bytes; ``b""`` at the end of the stream.

        Raises:
            ssl.SSLWantReadError: non-blocking mode and nothing to read yet.
            TimeoutError: blocking mode with a timeout, which expired.
            ValueError: ``flags`` is not 0.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv() on TLSInTLS")
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        data: bytes = self._call(self._recv_step, bufsize)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Like :meth:`recv`, into ``buffer``; the number of bytes stored."""
        view = memoryview(buffer).cast("B")
        size = nbytes or len(view)
        data = self.recv(min(size, len(view)), flags)
        view[: len(data)] = data
        return len(data)

    def send(self, data: Buffer, flags: int = 0) -> int:
        """Encrypt and send the start of ``data``; the number of bytes taken.

        Raises:
            ssl.SSLWantWriteError: non-blocking mode and nothing could be sent; retry later
                with the same data.
            TimeoutError: blocking mode with a timeout, which expired.
            ValueError: ``flags`` is not 0.
        """
        if flags:
            raise ValueError("non-zero flags not allowed in calls to send() on TLSInTLS")
        count: int = self._call(self._send_step, memoryview(data).cast("B"))
        return count

    def sendall(self, data: Buffer, flags: int = 0) -> None:
        """Send all of ``data`` (in non-blocking mode, as far as the outer socket allows)."""
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, flags) :]

    def shutdown(self, how: int) -> None:
        """Shut down the outer connection's TCP stream (no TLS ``close_notify``).

        Like :meth:`ssl.SSLSocket.shutdown`; the outer TLS session stays usable for reading
        what the peer still sends.
        """
        if isinstance(self._sock, socket.socket):
            socket.socket.shutdown(self._sock, how)  # keeps the outer SSLObject
        else:
            self._sock.shutdown(how)

    def close(self) -> None:
        """Close the outer socket; idempotent."""
        if not self._closed:
            self._closed = True
            self._sock.close()

    def __enter__(self) -> "TLSInTLS":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._sock.fileno()}"
        return f"<TLSInTLS {state} server_hostname={self.server_hostname!r}>"

    # -- steps: each runs without waiting, raising SSLWant*Error when it cannot go on ----

    def _call(self, step: Any, *args: Any) -> Any:
        """Run ``step`` once (non-blocking mode) or until done, waiting on the outer socket."""
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        if self._timeout == 0.0:
            return step(*args)
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            try:
                return step(*args)
            except ssl.SSLWantReadError:
                self._wait(READ, deadline)
            except ssl.SSLWantWriteError:
                self._wait(WRITE, deadline)

    def _wait(self, event: int, deadline: Optional[float]) -> None:
        """Wait until the outer socket is ready (:data:`~wsclient.readiness.READ` or
        :data:`~wsclient.readiness.WRITE`), or raise :class:`TimeoutError`."""
        if deadline is not None and deadline - time.monotonic() <= 0:
            raise TimeoutError("The operation timed out")
        if not wait_ready(self._sock, event, deadline):
            raise TimeoutError("The operation timed out")

    def _handshake_step(self) -> None:
        with self._lock:
            while True:
                try:
                    self._ssl.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                self._flush()
                if self._out:
                    raise _want_write()
                if done:
                    self._handshake_done = True
                    return
                self._feed()

    def _recv_step(self, bufsize: int) -> bytes:
        with self._lock:
            self._flush(quiet=True)
            while True:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                if self._plain:
                    data = bytes(self._plain[:bufsize])
                    del self._plain[:bufsize]
                    return data
                if self._eof or not bufsize:
                    return b""
                self._decrypt()
                if not self._plain and not self._eof:
                    self._feed()

    def _send_step(self, data: memoryview) -> int:
        with self._lock:
            self._flush()
            if self._out:
                raise _want_write()
            if self._owed:
                count, self._owed = self._owed, 0
                return count
            if not data:
                return 0
            count = self._ssl.write(data[:_WRITE_SIZE])
            self._flush()
            if self._out:
                self._owed = count
                raise _want_write()
            return count

    # -- helpers, called with the lock held ----------------------------------------------

    def _decrypt(self) -> None:
        """Decrypt every complete record in the incoming BIO into ``_plain``."""
        while True:
            try:
                chunk = self._ssl.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof = True  # close_notify, or a ragged EOF (suppressed like SSLSocket)
                break
            if not chunk:
                self._eof = True
                break
            self._plain += chunk
        self._flush(quiet=True)  # reading may have produced records to send (key update)

    def _feed(self) -> None:
        """Move what the outer socket has into the incoming BIO, or raise SSLWant*Error."""
        try:
            data = self._sock.recv(_READ_SIZE)
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            raise _want_read() from None
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    def _flush(self, *, quiet: bool = False) -> None:
        """Hand the outgoing BIO and ``_out`` to the outer socket, as far as it takes them.

        With ``quiet``, a failing outer socket is left for the next ``send()`` to report
        (reading must still return what arrived, or the end of the stream).
        """
        if self._outgoing.pending:
            self._out += self._outgoing.read()
        while self._out:
            try:
                sent = self._sock.send(self._out)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            except InterruptedError:
                continue
            except OSError:
                if quiet:
                    return
                raise
            del self._out[:sent]
