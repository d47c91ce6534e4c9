"""Open a connected, maybe TLS-wrapped, socket for a WebSocket URI under one deadline.

:func:`open_socket` is what ``connect()`` calls before the opening handshake: it resolves the
name, connects over TCP (Happy Eyeballs, below), or through a proxy, or over a unix socket, or
takes a socket the caller already connected, and wraps it in TLS for ``wss://`` (TLS inside
TLS through an ``https://`` proxy, :class:`wsclient.tls.TLSInTLS`). HTTP proxies get TCP (and
TLS) here and ``CONNECT`` from :mod:`wsclient.proxy`; SOCKS proxies are reached with PySocks
(:func:`socks_connect`), which opens the socket itself, its errors mapped to
:class:`~wsclient.exceptions.ProxyError`. Failing to resolve or reach a proxy is a
``ProxyError`` too (chained to the ``OSError``); failing to reach a target directly is the
``OSError`` itself.

One ``deadline`` bounds all of it. It is a :func:`time.monotonic` time, not a duration, so
the steps share it: DNS, each TCP attempt, the TLS handshake with a proxy, the SOCKS or
``CONNECT`` negotiation and the TLS handshake with the target each get only the time left.
``None`` means no bound. When it passes, the builtin :class:`TimeoutError` is raised.

:func:`socket.getaddrinfo` cannot be given a timeout, and the standard library has no other
resolver, so under a deadline the lookup runs in a daemon thread that is abandoned (it ends by
itself when the system resolver gives up) if the deadline passes first. IP literals and
lookups without a deadline run in the calling thread.

A name with several addresses is connected to as RFC 8305 (Happy Eyeballs version 2)
describes: the addresses are interleaved by family (IPv6, IPv4, IPv6...: section 4), a new
attempt starts every :data:`ATTEMPT_DELAY` seconds (250 ms, section 5) or as soon as the
previous one fails, the attempts run side by side within the one deadline, the first to
connect wins and the others are closed. A dead IPv6 route then costs 250 ms, not the
whole timeout.

Failures say what to do, their types unchanged (:func:`wsclient.exceptions.add_hint`): an
unreachable address names ``host:port`` and every address tried; a certificate that is not
trusted names the host and the ways to trust it; a TLS handshake answered by something else
than TLS asks "is this a ws:// server?", and :func:`hint_opening_failure` asks the reverse
for a ``ws://`` request answered by a TLS server.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import os
import selectors
import socket
import ssl
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, NoReturn, Optional, Sequence, Tuple

import socks

from . import tls
from .exceptions import InvalidHTTP, ProxyError, add_hint
from .headers import HeadersLike
from .proxy import ProxyURL, authority, http_connect
from .sockio import remaining

if TYPE_CHECKING:  # pragma: no cover
    from .uri import WebSocketURI

__all__ = [
    "ATTEMPT_DELAY",
    "open_socket",
    "open_tunnel",
    "connect_tcp",
    "connect_addresses",
    "resolve",
    "socks_connect",
    "start_tls",
    "hint_opening_failure",
]

logger = logging.getLogger(__name__)

# (family, type, proto, canonname, sockaddr), as socket.getaddrinfo() gives them.
AddrInfo = Tuple[socket.AddressFamily, socket.SocketKind, int, str, Tuple[Any, ...]]

#: Seconds between the start of one connection attempt and the next (RFC 8305 section 5,
#: "Connection Attempt Delay": 250 ms recommended).
ATTEMPT_DELAY = 0.25

#: What a non-blocking ``connect()`` answers while the connection is under way.
_IN_PROGRESS = frozenset(
    code for code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR,
                      getattr(errno, "WSAEWOULDBLOCK", None)) if code is not None
)

#: The verification codes of a certificate valid, but not for the name or address asked
#: (OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH).
_NAME_MISMATCH = frozenset((62, 64))

#: OpenSSL's reasons for a TLS handshake that met something else than TLS.
_NOT_TLS_REASONS = frozenset((
    "WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG", "UNEXPECTED_EOF_WHILE_READING", "HTTP_REQUEST",
    "RECORD_LENGTH_MISMATCH", "BAD_RECORD_TYPE",
))

#: PySocks' proxy type for each SOCKS scheme.
_PYSOCKS_TYPES = {
    "socks4": socks.SOCKS4, "socks4a": socks.SOCKS4, "socks5": socks.SOCKS5, "socks5h": socks.SOCKS5,
}


@functools.lru_cache(maxsize=256)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def _literal_family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def resolve(
    host: str, port: int, *, deadline: Optional[float], family: int = socket.AF_UNSPEC
) -> Sequence[AddrInfo]:
    """:func:`socket.getaddrinfo` for a TCP connection, bounded by ``deadline``.

    Args:
        host: a host name or an IP address (IPv6 without brackets).
        port: the port.
        deadline: a :func:`time.monotonic` time, or ``None``.
        family: ``AF_UNSPEC`` (IPv6 and IPv4), ``AF_INET`` or ``AF_INET6``.

    Returns:
        The ``(family, type, proto, canonname, sockaddr)`` tuples, in the system's order.

    Raises:
        socket.gaierror: the name does not resolve (passed through unchanged).
        TimeoutError: the deadline passed first.
    """
    literal = _is_ip(host)
    if literal and "%" not in host and family in (socket.AF_UNSPEC, _literal_family(host)):
        # What getaddrinfo() answers for an address, without its C call and its conversion
        # of each number to an enum (together about 7 us, a fiftieth of a local handshake).
        family = _literal_family(host)
        sockaddr = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
    flags = socket.AI_NUMERICHOST if literal else 0
    if flags or deadline is None:
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP, flags)
    timeout = remaining(deadline, f"resolving {host!r}")
    outcome: List[Any] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(
                socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            )
        except BaseException as exc:  # handed to the waiting thread
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"wsclient-resolve-{host}", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"timed out resolving {host!r}")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    found: Sequence[AddrInfo] = outcome[0]
    return found


def _set_nodelay(sock: socket.socket) -> None:
    # Asked of any socket: one that is not TCP (a unix socket) refuses it. Cheaper than
    # asking first: sock.family and sock.type each convert a number to an enum.
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def _interleave(addresses: Sequence[AddrInfo]) -> List[AddrInfo]:
    """The addresses, families alternating, starting with the first's (RFC 8305 section 4)."""
    families: Dict[int, List[AddrInfo]] = {}
    for info in addresses:
        families.setdefault(info[0], []).append(info)
    queues = list(families.values())
    order: List[AddrInfo] = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order


def _start_attempt(info: AddrInfo) -> Tuple[socket.socket, int]:
    """A non-blocking socket with a ``connect()`` to ``info`` begun, and its errno (0 when
    already connected, one of :data:`_IN_PROGRESS` while under way)."""
    family, type_, proto, _name, sockaddr = info
    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
        code = sock.connect_ex(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock, code


def _address(info: AddrInfo) -> str:
    return authority(str(info[4][0]), int(info[4][1]))


def _tried(failures: Sequence[Tuple[AddrInfo, BaseException]], pending: Sequence[AddrInfo]) -> str:
    """"tried A (why), B (why)": every address attempted and what became of it."""
    items = [f"{_address(info)} ({getattr(exc, 'strerror', None) or exc})" for info, exc in failures]
    items += [f"{_address(info)} (no answer)" for info in pending]
    return "tried " + ", ".join(items) if items else "no address tried yet"


def connect_addresses(
    addresses: Sequence[AddrInfo],
    *,
    deadline: Optional[float],
    what: str,
    delay: float = ATTEMPT_DELAY,
) -> socket.socket:
    """Connect to the first of ``addresses`` that accepts, Happy Eyeballs style (RFC 8305).

    Attempts start in interleaved family order, each ``delay`` seconds after the previous
    one or at once when the previous one failed; they run side by side until one connects
    (the others are then closed) or all have failed. The sockets of failed and losing
    attempts are always closed.

    Args:
        addresses: :func:`socket.getaddrinfo` results, in the resolver's order.
        deadline: a :func:`time.monotonic` time bounding all attempts, or ``None``.
        what: what is being connected to, ``host:port``, for messages.
        delay: seconds between the starts of two attempts.

    Returns:
        The connected socket, with ``TCP_NODELAY``, its timeout the time left (blocking
        without a deadline).

    Raises:
        OSError: every address failed: the last failure, type unchanged
            (:class:`ConnectionRefusedError`...), with a hint naming ``what`` and every
            address tried.
        TimeoutError: the deadline passed first (the message names the addresses tried).
    """
    order = _interleave(addresses)
    if not order:
        raise OSError(f"no address to connect to for {what}")
    if len(order) == 1:
        return _ready(_connect_one(order[0], deadline=deadline, what=what), deadline, what)
    selector = selectors.DefaultSelector()
    pending: Dict[socket.socket, AddrInfo] = {}
    failures: List[Tuple[AddrInfo, BaseException]] = []
    winner: Optional[socket.socket] = None
    next_start = time.monotonic()
    try:
        while winner is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"timed out connecting to {what}: "
                                   f"{_tried(failures, list(pending.values()))}")
            if order and now >= next_start:
                info = order.pop(0)
                try:
                    sock, code = _start_attempt(info)
                except OSError as exc:  # no such family here (IPv6 off), no fd left...
                    failures.append((info, exc))
                    next_start = now
                    continue
                next_start = now + delay
                if code == 0:
                    winner = sock
                elif code in _IN_PROGRESS:
                    pending[sock] = info
                    selector.register(sock, selectors.EVENT_WRITE)
                else:
                    sock.close()
                    failures.append((info, OSError(code, os.strerror(code))))
                    next_start = now
                continue
            if not pending:
                break  # every address failed
            wake = next_start if order else None
            if deadline is not None:
                wake = deadline if wake is None else min(wake, deadline)
            for key, _events in selector.select(None if wake is None else max(wake - now, 0.0)):
                sock = key.fileobj  # type: ignore[assignment]  # registered as a socket above
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code == 0 and winner is None:
                    winner = sock
                    continue
                if code != 0:
                    failures.append((pending[sock], OSError(code, os.strerror(code))))
                    next_start = time.monotonic()  # section 5: the next one at once
                selector.unregister(sock)
                del pending[sock]
                sock.close()
    finally:
        for sock in pending:
            if sock is not winner:
                sock.close()
        selector.close()
    if winner is None:
        _raise_failure(failures, what)
    return _ready(winner, deadline, what)


def _connect_one(info: AddrInfo, *, deadline: Optional[float], what: str) -> socket.socket:
    """A blocking ``connect()`` bounded by the deadline: one address needs no selector."""
    try:
        sock = socket.socket(info[0], info[1], info[2])
    except OSError as exc:  # no such family here (IPv6 off), no fd left...
        _raise_failure([(info, exc)], what)
    try:
        sock.settimeout(remaining(deadline, f"connecting to {what}"))
        sock.connect(info[4])
    except TimeoutError:
        sock.close()
        raise TimeoutError(f"timed out connecting to {what}: {_tried([], [info])}") from None
    except OSError as exc:
        sock.close()
        _raise_failure([(info, exc)], what)
    except BaseException:
        sock.close()
        raise
    return sock


def _raise_failure(failures: Sequence[Tuple[AddrInfo, BaseException]], what: str) -> NoReturn:
    """Raise the last failure, with a hint naming every address tried."""
    for failed, error in failures:
        logger.debug("connecting to %s at %s failed: %s", what, _address(failed), error)
    last = failures[-1][1]
    add_hint(last, f"cannot connect to {what}: {_tried(failures, [])}; "
                   "is the server running and listening there?")
    raise last


def _ready(sock: socket.socket, deadline: Optional[float], what: str) -> socket.socket:
    """The connected socket with the time left as its timeout, and ``TCP_NODELAY``."""
    try:
        sock.settimeout(remaining(deadline, f"connecting to {what}"))
    except BaseException:
        sock.close()
        raise
    _set_nodelay(sock)
    return sock


def connect_tcp(host: str, port: int, *, deadline: Optional[float]) -> socket.socket:
    """A TCP connection to ``host:port``: its addresses (IPv6 and IPv4) tried as
    :func:`connect_addresses` does (Happy Eyeballs).

    Args:
        host: a host name or an IP address (IPv6 without brackets).
        port: the port.
        deadline: a :func:`time.monotonic` time bounding DNS and all attempts, or ``None``.

    Returns:
        The connected socket, with ``TCP_NODELAY``, still carrying the last timeout.

    Raises:
        OSError: the last attempt's error, its type unchanged (:class:`ConnectionRefusedError`,
            :class:`socket.gaierror`...), with a hint naming every address tried.
        TimeoutError: the deadline passed.
    """
    try:
        addresses = resolve(host, port, deadline=deadline)
    except socket.gaierror as exc:
        add_hint(exc, f"cannot resolve the host name {host!r}")
        raise
    return connect_addresses(addresses, deadline=deadline, what=authority(host, port))


def start_tls(
    sock: Any,
    context: ssl.SSLContext,
    server_hostname: str,
    *,
    deadline: Optional[float],
    proxy: bool = False,
) -> Any:
    """Wrap ``sock`` in TLS and complete the handshake before ``deadline``.

    An :class:`ssl.SSLSocket` (the TLS to an ``https://`` proxy) gets a
    :class:`~wsclient.tls.TLSInTLS`; anything else :meth:`ssl.SSLContext.wrap_socket`.
    ``context`` is used as given, never modified.

    Args:
        sock: a connected socket; on failure it is closed.
        context: the TLS context.
        server_hostname: the name for SNI and certificate checking (SNI is not sent for an
            IP address; the certificate must then name the address).
        deadline: a :func:`time.monotonic` time, or ``None``.
        proxy: the peer is an ``https://`` proxy (for the hint a failure carries).

    Returns:
        The TLS socket, with the last timeout still set.

    Raises:
        ssl.SSLCertVerificationError: the certificate is not trusted or names another host
            (with a hint naming the host and the ways to trust it).
        ssl.SSLError, OSError: the handshake failed (with a hint where the cause is
            likely: a peer that does not speak TLS, a refusal by alert).
        TimeoutError: the deadline passed.
    """
    try:
        if isinstance(sock, ssl.SSLSocket):
            wrapped: Any = tls.TLSInTLS(sock, context, server_hostname=server_hostname)
        else:
            wrapped = context.wrap_socket(
                sock, server_hostname=server_hostname, do_handshake_on_connect=False
            )
    except BaseException:
        sock.close()
        raise
    try:
        wrapped.settimeout(remaining(deadline, f"before the TLS handshake with {server_hostname}"))
        wrapped.do_handshake()
    except OSError as exc:
        wrapped.close()
        _hint_handshake_failure(exc, server_hostname, proxy=proxy)
        raise
    except BaseException:
        wrapped.close()
        raise
    return wrapped


def _hint_handshake_failure(exc: OSError, host: str, *, proxy: bool) -> None:
    """Add to a failed TLS handshake with ``host`` what the user can do about it."""
    if isinstance(exc, TimeoutError):
        return
    option = "proxy_ssl_context" if proxy else "ssl_context"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "verification failed"
        if exc.verify_code in _NAME_MISMATCH:
            add_hint(exc, f"the certificate the server presented is not valid for {host!r} "
                          f"({why}): connect with a name the certificate lists")
        else:
            add_hint(exc, f"the certificate of {host} is not trusted ({why}). To trust the CA "
                          "that signed it (or a self-signed certificate itself), pass "
                          f"{option}=wsclient.client_ssl_context("
                          "cafile='ca.pem') (or system_trust=True for the operating system's "
                          "store), or set SSL_CERT_FILE=ca.pem, or use --cafile ca.pem on the "
                          "command line")
        return
    reason = getattr(exc, "reason", None) or ""
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError,
                        BrokenPipeError, ConnectionAbortedError)) or reason in _NOT_TLS_REASONS:
        if proxy:
            add_hint(exc, f"proxy {host} did not answer the TLS handshake with TLS: is this "
                          "an http:// proxy? (https:// means TLS to the proxy)")
        else:
            add_hint(exc, f"{host} did not answer the TLS handshake with TLS: is this a ws:// "
                          "server? (ws:// has no TLS; wss:// needs a TLS port)")
    elif "ALERT" in reason:
        add_hint(exc, f"{host} refused the TLS handshake ({reason}): it may require a client "
                      "certificate (wsclient.client_ssl_context(certfile=..., keyfile=...)) or "
                      "a TLS version or cipher this side does not offer")


def hint_opening_failure(exc: BaseException, uri: "WebSocketURI") -> None:
    """Add a hint to an error met sending the opening request or reading its answer over
    a socket :func:`open_socket` returned.

    A ``ws://`` request that a TLS server cuts off (reset, closed without an HTTP answer,
    or answered with a TLS alert instead of HTTP) asks "is this a wss:// server?"; a
    ``wss://`` session that the server ends with a TLS alert or without a word (with TLS
    1.3, how a server requiring client certificates refuses one it does not trust) says
    a client certificate may be needed. Other errors are left as they are.

    Args:
        exc: the error, about to be re-raised; its type is not changed.
        uri: the URI being opened.
    """
    where = authority(uri.host, uri.port)
    if not uri.secure:
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, InvalidHTTP)):
            add_hint(exc, f"{where} gave no HTTP answer to the ws:// request: "
                          "is this a wss:// server? (a TLS server drops plain HTTP)")
    elif isinstance(exc, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)) or (
        isinstance(exc, ssl.SSLError) and "ALERT" in (exc.reason or "")
    ):
        why = getattr(exc, "reason", None) or exc.strerror or "closed"
        add_hint(exc, f"{where} ended the TLS session before answering ({why}): it may "
                      "require a client certificate that it trusts "
                      "(wsclient.client_ssl_context(certfile=..., keyfile=...))")


class _DeadlineSocksSocket(socks.socksocket):
    """A PySocks socket whose every wait during negotiation ends at one deadline.

    PySocks applies one timeout to each operation; here each ``recv_into``/``send`` it makes
    (through :meth:`socket.socket.makefile`) gets only the time left before the deadline.
    """

    deadline: Optional[float] = None

    def _bound(self) -> None:
        socket.socket.settimeout(self, remaining(self.deadline, "negotiating with a SOCKS proxy"))

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._bound()
        return int(super().recv_into(*args, **kwargs))

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._bound()
        return int(super().send(*args, **kwargs))


def _unwrap(exc: BaseException) -> BaseException:
    """The innermost error of a PySocks error (it wraps its own errors in others)."""
    while isinstance(exc, socks.ProxyError) and exc.socket_err is not None:
        exc = exc.socket_err
    return exc


def _socks_failure(exc: BaseException, proxy: ProxyURL, target: str) -> BaseException:
    """The exception to raise for a PySocks failure during negotiation."""
    cause = _unwrap(exc)
    if isinstance(cause, TimeoutError):
        return TimeoutError(f"SOCKS negotiation with proxy {proxy} timed out")
    if isinstance(cause, socks.SOCKS5AuthError):
        return ProxyError(f"proxy {proxy} refused authentication: {cause.msg}")
    if isinstance(cause, (socks.SOCKS5Error, socks.SOCKS4Error)):
        return ProxyError(f"proxy {proxy} could not open a tunnel to {target}: {cause.msg}")
    if isinstance(cause, socks.GeneralProxyError) and "closed" in cause.msg:
        return ProxyError(
            f"proxy {proxy} closed the connection during SOCKS negotiation for {target} "
            "(other credentials wanted, a target it cannot reach, or another SOCKS version)"
        )
    return ProxyError(f"SOCKS negotiation with proxy {proxy} for {target} failed: {cause}")


#: The longest host name PySocks sends correctly in a SOCKS5 request: it writes the
#: length byte as UTF-8, so 128-255 become two bytes and the proxy misreads the request.
SOCKS5_MAX_HOST_NAME = 127


def _check_socks_target(proxy: ProxyURL, host: str) -> None:
    """SOCKS4 has no IPv6; socks4 and socks5 need an address (resolved by the caller);
    socks5h names are limited to :data:`SOCKS5_MAX_HOST_NAME` bytes."""
    if proxy.scheme.startswith("socks4") and ":" in host:
        raise ProxyError(f"SOCKS4 cannot reach the IPv6 address {host}; use socks5 or socks5h")
    if proxy.scheme == "socks5h" and not _is_ip(host) and len(host) > SOCKS5_MAX_HOST_NAME:
        raise ProxyError(
            f"socks5h cannot send a {len(host)}-byte host name (at most {SOCKS5_MAX_HOST_NAME} "
            "here); use socks5, which resolves it locally"
        )
    if not proxy.remote_dns and not _is_ip(host):
        raise ValueError(f"{proxy.scheme} resolves locally: pass an address, not {host!r}")


def socks_connect(
    proxy: ProxyURL,
    addresses: Sequence[AddrInfo],
    host: str,
    port: int,
    *,
    deadline: Optional[float],
) -> socket.socket:
    """Connect to a SOCKS proxy and open a tunnel to ``host:port``, with PySocks.

    Args:
        proxy: the SOCKS proxy.
        addresses: the proxy's addresses (:func:`socket.getaddrinfo` results), tried in turn
            until one accepts a TCP connection.
        host: the target: an IP address for ``socks4``/``socks5`` (they resolve locally),
            an IP address or a name for ``socks4a``/``socks5h`` (the proxy resolves it).
        port: the target port.
        deadline: a :func:`time.monotonic` time bounding connection and negotiation, or
            ``None``.

    Returns:
        A plain connected :class:`socket.socket` carrying the tunnel, in blocking mode.

    Raises:
        ProxyError: no address of the proxy accepted a connection, the proxy refused the
            credentials or the tunnel, or broke the protocol.
        TimeoutError: the deadline passed.
        ValueError: ``host`` is a name for a scheme that resolves locally.
    """
    _check_socks_target(proxy, host)
    proxy_type, rdns = _PYSOCKS_TYPES[proxy.scheme], proxy.remote_dns
    target = authority(host, port)
    last: Optional[BaseException] = None
    for family, _type, _proto, _name, sockaddr in addresses:
        sock = _DeadlineSocksSocket(socket.AddressFamily(family), socket.SOCK_STREAM)
        sock.deadline = deadline
        sock.set_proxy(proxy_type, sockaddr[0], sockaddr[1], rdns, proxy.username, proxy.password)
        try:
            sock.settimeout(remaining(deadline, f"connecting to proxy {proxy}"))
            sock.connect((host, port))
        except socks.ProxyConnectionError as exc:  # the TCP connection to the proxy failed
            sock.close()
            last = _unwrap(exc)
            if isinstance(last, TimeoutError):
                raise TimeoutError(f"connecting to proxy {proxy} timed out") from None
            continue
        except (socks.ProxyError, OSError) as exc:
            sock.close()
            raise _socks_failure(exc, proxy, target) from _unwrap(exc)
        except BaseException:
            sock.close()
            raise
        logger.debug("SOCKS tunnel to %s via %s", target, proxy)
        plain = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        plain.settimeout(None)
        return plain
    raise ProxyError(f"cannot connect to proxy {proxy}: {last}") from last


def open_tunnel(
    proxy: ProxyURL,
    host: str,
    port: int,
    *,
    deadline: Optional[float],
    proxy_ssl_context: Optional[ssl.SSLContext] = None,
    proxy_headers: HeadersLike = None,
) -> Tuple[Any, bytes]:
    """A socket connected to ``host:port`` through ``proxy``, and the bytes after its answer.

    For ``socks4://`` and ``socks5://`` the target's name is resolved here (``socks4``:
    IPv4 only) and the first address used; ``socks4a://`` and ``socks5h://`` hand the name to
    the proxy and never resolve it. ``https://`` proxies get TLS first, with
    ``proxy_ssl_context`` (default :func:`wsclient.tls.client_context`) and the proxy's name.

    Args:
        proxy: the proxy.
        host: the target host (IPv6 without brackets).
        port: the target port.
        deadline: a :func:`time.monotonic` time bounding everything, or ``None``.
        proxy_ssl_context: the TLS context for an ``https://`` proxy.
        proxy_headers: extra header fields for an HTTP proxy's ``CONNECT``.

    Returns:
        ``(sock, leftover)``: the tunnel (an :class:`ssl.SSLSocket` for an ``https://``
        proxy) and the bytes the proxy sent after its ``CONNECT`` answer (SOCKS: ``b""``).

    Raises:
        ProxyError: the proxy cannot be resolved or reached, refused, or failed (TLS with
            an ``https://`` proxy included).
        ssl.SSLCertVerificationError: the ``https://`` proxy's certificate is not trusted.
        socket.gaierror: ``socks4``/``socks5`` and the target's name does not resolve.
        TimeoutError: the deadline passed.
    """
    try:
        addresses = resolve(proxy.host, proxy.port, deadline=deadline)
    except TimeoutError:
        raise
    except OSError as exc:
        raise ProxyError(f"cannot resolve proxy {proxy}: {exc}") from exc
    if proxy.is_socks:
        target = host
        if not proxy.remote_dns and not _is_ip(host):
            family = socket.AF_INET if proxy.scheme == "socks4" else socket.AF_UNSPEC
            target = resolve(host, port, deadline=deadline, family=family)[0][4][0]
        return socks_connect(proxy, addresses, target, port, deadline=deadline), b""
    try:
        sock: Any = connect_addresses(addresses, deadline=deadline, what=f"proxy {proxy}")
    except TimeoutError:
        raise
    except OSError as exc:
        raise _with_notes(ProxyError(f"cannot connect to proxy {proxy}: {exc}"), exc) from exc
    if proxy.scheme == "https":
        context = proxy_ssl_context or tls.client_context()
        try:
            sock = start_tls(sock, context, proxy.host, deadline=deadline, proxy=True)
        except TimeoutError:
            raise TimeoutError(f"TLS handshake with proxy {proxy} timed out") from None
        except ssl.SSLCertVerificationError:
            raise  # As for a wss:// server: documented, passed through.
        except OSError as exc:  # A plain-HTTP proxy answering TLS, a reset, a TLS alert...
            raise _with_notes(ProxyError(f"TLS with proxy {proxy} failed: {exc}"), exc) from exc
    try:
        leftover = http_connect(sock, proxy, host, port, deadline=deadline, headers=proxy_headers)
    except BaseException:
        sock.close()
        raise
    return sock, leftover


def _with_notes(error: ProxyError, cause: BaseException) -> ProxyError:
    """``error``, carrying the hints (PEP 678 notes) of the ``cause`` it wraps."""
    for note in getattr(cause, "__notes__", []):
        add_hint(error, note)
    return error


def _connect_unix(path: str, deadline: Optional[float]) -> socket.socket:
    family = getattr(socket, "AF_UNIX", None)
    if family is None:  # Windows: Python has no AF_UNIX there.
        raise ValueError(f"unix domain sockets are not available on this platform ({sys.platform}): connect over TCP instead")
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(remaining(deadline, f"connecting to {path!r}"))
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def open_socket(
    uri: "WebSocketURI",
    *,
    deadline: Optional[float],
    proxy: Optional[ProxyURL] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    proxy_ssl_context: Optional[ssl.SSLContext] = None,
    proxy_headers: HeadersLike = None,
    sock: Optional[socket.socket] = None,
    unix_path: Optional[str] = None,
) -> Tuple[Any, bytes]:
    """Open the connection a WebSocket handshake for ``uri`` goes over.

    Exactly one way is taken: ``sock`` (already connected; TLS is still added for
    ``wss://``), else ``unix_path``, else ``proxy``, else a direct TCP connection to
    ``uri.host:uri.port``. ``proxy`` is ignored when ``sock`` or ``unix_path`` is given.
    For ``wss://`` the result is wrapped in TLS with ``ssl_context`` (default
    :func:`wsclient.tls.client_context`) and ``server_hostname=uri.host``.

    Args:
        uri: the WebSocket URI; with ``sock`` or ``unix_path`` it still gives the TLS
            server name (and, to the caller, ``Host`` and the resource).
        deadline: a :func:`time.monotonic` time bounding DNS, TCP, proxy negotiation and TLS
            (see the module docstring), or ``None`` for no bound.
        proxy: the proxy to go through, from :func:`wsclient.proxy.select_proxy`.
        ssl_context: the TLS context for ``wss://``; never modified.
        proxy_ssl_context: the TLS context for an ``https://`` proxy; never modified.
        proxy_headers: extra header fields for an HTTP proxy's ``CONNECT``.
        sock: a connected stream socket to use; this function owns it from now on and closes
            it if it fails.
        unix_path: the path of a unix domain socket to connect to.

    Returns:
        ``(sock, leftover)``: a socket-like object (a :class:`socket.socket`, an
        :class:`ssl.SSLSocket` or a :class:`~wsclient.tls.TLSInTLS`) in blocking mode with
        no timeout, and the bytes a proxy already sent from the server (feed them to the
        protocol before reading the socket).

    Raises:
        OSError: DNS failure, refused connection and the like, unchanged.
        ssl.SSLCertVerificationError: the server's certificate is not trusted.
        ProxyError: the proxy refused or failed.
        TimeoutError: the deadline passed.
        ValueError: both ``sock`` and ``unix_path`` were given.
    """
    if sock is not None and unix_path is not None:
        raise ValueError("give sock or unix_path, not both")
    leftover = b""
    conn: Any
    if sock is not None:
        conn = sock
        _set_nodelay(conn)
    elif unix_path is not None:
        conn = _connect_unix(unix_path, deadline)
    elif proxy is not None:
        conn, leftover = open_tunnel(
            proxy,
            uri.host,
            uri.port,
            deadline=deadline,
            proxy_ssl_context=proxy_ssl_context,
            proxy_headers=proxy_headers,
        )
    else:
        conn = connect_tcp(uri.host, uri.port, deadline=deadline)
    try:
        if uri.secure:
            if leftover:
                raise ProxyError(f"proxy {proxy} sent data before the TLS handshake began")
            conn = start_tls(conn, ssl_context or tls.client_context(), uri.host, deadline=deadline)
        conn.settimeout(None)
    except BaseException:
        conn.close()
        raise
    logger.debug("connected to %s:%s%s", uri.host, uri.port, f" via {proxy}" if proxy else "")
    return conn, leftover
