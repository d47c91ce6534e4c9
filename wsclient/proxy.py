"""Proxies: which one to use (option, environment, ``no_proxy``) and how to speak to it.

:func:`select_proxy` chooses the proxy; ``http://`` and ``https://`` proxies open a tunnel
with ``CONNECT`` (RFC 9110 section 9.3.6), written here (:func:`http_connect`, over a socket
:mod:`wsclient.transport` connected). SOCKS proxies are reached through PySocks, which opens
the socket itself, so that part lives in :mod:`wsclient.transport`.

Decisions worth knowing:

- Default ports follow curl: 443 for ``https://``, 1080 for every other scheme (``http://``
  included). A URL without a scheme is an ``http://`` proxy, as for curl and requests.
- The environment (``proxy="auto"``): ``wss://`` reads ``wss_proxy`` then ``https_proxy``,
  ``ws://`` reads ``ws_proxy`` then ``http_proxy``, both then ``all_proxy``. For each name the
  lower-case variable wins over the upper-case one, and an empty value counts as unset (curl,
  requests). As :mod:`urllib.request` does against "httpoxy", ``HTTP_PROXY`` in upper case is
  ignored when ``REQUEST_METHOD`` is set (a CGI script, whose ``HTTP_*`` variables come from
  request headers). ``no_proxy``/``NO_PROXY`` then exempts hosts (:func:`should_bypass`).
- ``no_proxy`` applies only to proxies from the environment: a proxy URL given explicitly is
  always used, as requests does with its ``proxies=`` argument.
- Credentials in the URL are percent-decoded. ``http(s)://`` proxies get them as
  ``Proxy-Authorization: Basic`` (UTF-8) in the first ``CONNECT``; a ``407`` answer is then
  final (credentials were rejected, or there were none to send) and raises
  :class:`ProxyError` with ``status=407``. SOCKS5 uses them for username/password
  authentication (RFC 1929), which needs both: a SOCKS5 URL with a user name and no (or an
  empty) password is an :class:`InvalidURI` rather than credentials silently left out.
  SOCKS4 sends the user name as its user id and has no password.
- ``socks4://`` and ``socks5://`` resolve the target locally; ``socks4a://`` and
  ``socks5h://`` pass the name to the proxy, and the client never resolves it.
- Failures of the proxy become :class:`ProxyError` (chained to the cause); a timeout stays the
  builtin :class:`TimeoutError`. No message, log line or ``repr`` shows the proxy password.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import logging
import os
import re
import socket
import urllib.parse
from typing import TYPE_CHECKING, Mapping, Optional, Tuple, Union

from .exceptions import InvalidHTTP, InvalidURI, ProxyError
from .headers import Headers, HeadersLike
from .http11 import Request, ResponseParser
from .sockio import remaining, send_all
from .uri import parse_host_name, parse_ipv6, redact

if TYPE_CHECKING:  # pragma: no cover
    from .uri import WebSocketURI

__all__ = [
    "DEFAULT_PROXY_PORTS", "SOCKS5_MAX_CREDENTIAL", "ProxyURL", "parse_proxy_url", "proxy_from_environment",
    "should_bypass", "select_proxy", "authority", "connect_request", "http_connect",
]

logger = logging.getLogger(__name__)

#: The port of each proxy scheme when the URL names none (as curl chooses).
DEFAULT_PROXY_PORTS = {
    "http": 1080, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080,
}

#: Whether the proxy resolves the target's name, per SOCKS scheme.
SOCKS_REMOTE_DNS = {"socks4": False, "socks4a": True, "socks5": False, "socks5h": True}

#: The longest SOCKS5 user name or password, in UTF-8 bytes. RFC 1929 section 2 allows 255,
#: but PySocks writes each length as a UTF-8 encoded character, two bytes from 128 on.
SOCKS5_MAX_CREDENTIAL = 127

#: Bytes read from the proxy at a time while waiting for the answer to ``CONNECT``.
_READ_SIZE = 65536

@dataclasses.dataclass(frozen=True, repr=False)
class ProxyURL:
    """A parsed proxy URL; ``str()`` and ``repr()`` never show the password.

    Attributes:
        scheme: ``"http"``, ``"https"``, ``"socks4"``, ``"socks4a"``, ``"socks5"`` or
            ``"socks5h"``.
        host: host name (lower case) or IP address (IPv6 without brackets).
        port: TCP port (see :data:`DEFAULT_PROXY_PORTS`).
        username: percent-decoded user name, or ``None``.
        password: percent-decoded password, or ``None``.
    """

    scheme: str
    host: str
    port: int
    username: Optional[str] = None
    password: Optional[str] = None

    @property
    def is_socks(self) -> bool:
        """Whether this is a SOCKS proxy (else an HTTP ``CONNECT`` proxy)."""
        return self.scheme in SOCKS_REMOTE_DNS

    @property
    def remote_dns(self) -> bool:
        """Whether the proxy resolves the target's name (all but socks4 and socks5)."""
        return SOCKS_REMOTE_DNS.get(self.scheme, True)

    def __str__(self) -> str:
        userinfo = ""
        if self.username is not None:
            userinfo = urllib.parse.quote(self.username, safe="")
            userinfo += ":***@" if self.password is not None else "@"
        host = f"[{self.host.replace('%', '%25')}]" if ":" in self.host else self.host
        return f"{self.scheme}://{userinfo}{host}:{self.port}"

    def __repr__(self) -> str:
        password = None if self.password is None else "***"
        return (
            f"ProxyURL(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r}, "
            f"username={self.username!r}, password={password!r})"
        )


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse a proxy URL such as ``"socks5h://user:secret@127.0.0.1:1080"``.

    Args:
        url: ``scheme://[user[:password]@]host[:port][/]``; without ``scheme://`` it is an
            ``http://`` proxy.

    Returns:
        The :class:`ProxyURL`.

    Raises:
        TypeError: ``url`` is not a ``str``.
        InvalidURI: an unknown scheme, a missing host, a bad port, a path, query or
            fragment, a lone surrogate, or SOCKS5 credentials that cannot be sent (a user
            name without a password, or either longer than :data:`SOCKS5_MAX_CREDENTIAL`),
            or an HTTP proxy user name with a ``:`` (percent-encoded) that Basic auth cannot
            carry; the message never contains the password.
    """
    if not isinstance(url, str):
        raise TypeError(f"proxy URL must be a str, not {type(url).__name__}")
    text = url.strip()
    shown = redact(text)
    try:  # A lone surrogate (os.environ holding bytes that are not UTF-8) fits in no request.
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidURI(f"unencodable character (a lone surrogate) in proxy URL {shown!r}") from None
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urllib.parse.urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        parts = None  # Raised below: urllib's message (its __context__) may hold the password.
    if parts is None:
        raise InvalidURI(f"invalid host or port in proxy URL {shown!r}")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PROXY_PORTS:
        raise InvalidURI(
            f"unsupported proxy scheme {scheme!r} in {shown!r}: "
            "use http, https, socks4, socks4a, socks5 or socks5h"
        )
    if not host or re.search(r"[\s/\\@]", host):
        raise InvalidURI(f"missing or invalid host in proxy URL {shown!r}")
    if ":" in host:  # urllib has checked the brackets; the zone (%25eth0) is still encoded.
        host = parse_ipv6(host, shown)
    else:
        host = parse_host_name(host, shown)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidURI(f"a proxy URL has no path, query or fragment: {shown!r}")
    if port == 0:
        raise InvalidURI(f"port 0 in proxy URL {shown!r}")
    # An empty user name with a password (http://:secret@proxy) is sent as such: RFC 7617
    # allows it, and curl does the same.
    username = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    if username is None or (not username and not password):
        username = password = None
    elif scheme in ("socks5", "socks5h"):
        _check_socks5_credentials(username, password, shown)
    elif scheme in ("http", "https") and ":" in username:
        # Basic auth joins them with a colon: the proxy would split this name in two.
        raise InvalidURI(
            f"a user name for HTTP Basic auth cannot contain ':' (RFC 7617 section 2): {shown!r}"
        )
    return ProxyURL(scheme, host, port or DEFAULT_PROXY_PORTS[scheme], username, password)


def _check_socks5_credentials(username: str, password: Optional[str], shown: str) -> None:
    """RFC 1929 section 2: a user name and a password of at least one byte each."""
    if not username:
        raise InvalidURI(f"SOCKS5 authentication (RFC 1929) needs a user name: {shown!r}")
    if not password:
        raise InvalidURI(
            f"SOCKS5 authentication (RFC 1929) needs a password with the user name: {shown!r}"
        )
    for what, value in (("user name", username), ("password", password)):
        if len(value.encode("utf-8")) > SOCKS5_MAX_CREDENTIAL:
            raise InvalidURI(
                f"the SOCKS5 {what} in {shown!r} is longer than {SOCKS5_MAX_CREDENTIAL} bytes"
            )


def _getenv(environ: Mapping[str, str], name: str) -> Optional[str]:
    """The lower-case variable, else the upper-case one; empty values count as unset."""
    for key in (name.lower(), name.upper()):
        if key == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
            continue  # httpoxy: in CGI, HTTP_PROXY comes from a "Proxy:" request header
        value = environ.get(key, "").strip()
        if value:
            return value
    return None


def proxy_from_environment(
    uri: "WebSocketURI", environ: Mapping[str, str] = os.environ
) -> Optional[str]:
    """The proxy URL the environment gives for ``uri``, or ``None`` to connect directly.

    ``wss://`` uses ``wss_proxy`` then ``https_proxy``; ``ws://`` uses ``ws_proxy`` then
    ``http_proxy``; both fall back to ``all_proxy``. Lower case wins over upper case. A host
    that ``no_proxy`` (or ``NO_PROXY``) matches gets ``None``.

    Args:
        uri: the WebSocket URI to connect to.
        environ: the environment, :data:`os.environ` by default.

    Returns:
        The proxy URL as written in the environment, or ``None``.
    """
    names = ("wss_proxy", "https_proxy") if uri.secure else ("ws_proxy", "http_proxy")
    url = None
    for name in names + ("all_proxy",):
        url = _getenv(environ, name)
        if url:
            break
    if url is None:
        return None
    no_proxy = _getenv(environ, "no_proxy")
    if no_proxy and should_bypass(uri.host, uri.port, no_proxy):
        logger.debug("no_proxy exempts %s:%s from the proxy", uri.host, uri.port)
        return None
    return url


def _ip(text: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _split_entry(entry: str) -> Tuple[str, Optional[int]]:
    """``name``, ``name:port``, ``[v6]``, ``[v6]:port``, a CIDR range: (name, port or None).

    Raises:
        ValueError: the port is not a number.
    """
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        if rest.startswith("/"):  # [::1]/128
            return name + rest, None
        return name, (int(rest[1:]) if rest.startswith(":") else None)
    if entry.count(":") == 1:  # host:port; an IPv6 address has at least two colons
        name, _, port = entry.partition(":")
        if not port.isdigit():
            raise ValueError(entry)
        return name, int(port)
    return entry, None


def _matches(host: str, name: str) -> bool:
    """Whether the ``no_proxy`` entry ``name`` (no port) covers ``host``."""
    host_ip = _ip(host)
    if "/" in name:
        try:
            network = ipaddress.ip_network(name, strict=False)
        except ValueError:
            return False
        return host_ip is not None and host_ip.version == network.version and host_ip in network
    name_ip = _ip(name)
    if name_ip is not None or host_ip is not None:
        return name_ip == host_ip
    if name.startswith("*."):
        name = name[1:]
    name = name.strip(".")
    return bool(name) and (host == name or host.endswith("." + name))


def should_bypass(host: str, port: int, no_proxy: str) -> bool:
    """Whether a ``no_proxy`` value exempts ``host:port`` from the proxy.

    ``no_proxy`` holds entries separated by commas and/or white space, compared without
    regard to case:

    - ``*`` matches every host;
    - a host name matches itself and its subdomains: ``example.com``, ``.example.com`` and
      ``*.example.com`` all match ``example.com`` and ``a.example.com``, not
      ``badexample.com``;
    - an IPv4 or IPv6 address (brackets optional) matches that address;
    - a CIDR range (``10.0.0.0/8``, ``::1/128``) matches the addresses in it;
    - any of these followed by ``:port`` (``[::1]:8080`` for IPv6) matches that port only.

    Host names are not resolved: an address entry matches only a URI that names an address.

    Args:
        host: the target host (IPv6 with or without brackets).
        port: the target port.
        no_proxy: the ``no_proxy`` value.

    Returns:
        ``True`` when some entry matches.
    """
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.rstrip(".")
    for entry in re.split(r"[\s,]+", no_proxy.strip().lower()):
        if entry == "*":
            return True
        if not entry:
            continue
        try:
            name, entry_port = _split_entry(entry)
        except ValueError:
            continue  # a malformed entry matches nothing
        if entry_port is not None and entry_port != port:
            continue
        if _matches(host, name):
            return True
    return False


def select_proxy(
    uri: "WebSocketURI", proxy: Optional[str], environ: Mapping[str, str] = os.environ
) -> Optional[ProxyURL]:
    """The proxy to reach ``uri`` through, from the ``proxy=`` option of ``connect()``.

    Args:
        uri: the WebSocket URI to connect to.
        proxy: ``"auto"`` reads the environment (:func:`proxy_from_environment`, with
            ``no_proxy``); ``None`` connects directly; any other string is a proxy URL that
            is always used (``no_proxy`` does not apply to it).
        environ: the environment for ``"auto"``, :data:`os.environ` by default.

    Returns:
        The :class:`ProxyURL`, or ``None`` for a direct connection.

    Raises:
        TypeError: ``proxy`` is neither ``None`` nor a ``str``.
        InvalidURI: the proxy URL (given or from the environment) is invalid.
    """
    if proxy is None:
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be 'auto', None or a URL string, not {type(proxy).__name__}")
    if proxy == "auto":
        url = proxy_from_environment(uri, environ)
        return parse_proxy_url(url) if url is not None else None
    return parse_proxy_url(proxy)


def authority(host: str, port: int) -> str:
    """``host:port``, the host bracketed if IPv6 (RFC 3986 section 3.2.2)."""
    if ":" in host:  # IPv6, with its zone escaped as in a URI (RFC 6874)
        return f"[{host.replace('%', '%25')}]:{port}"
    return f"{host}:{port}"


def connect_request(
    proxy: ProxyURL, host: str, port: int, headers: HeadersLike = None
) -> bytes:
    """The ``CONNECT`` request for a tunnel to ``host:port`` (RFC 9110 section 9.3.6).

    It carries ``Host``, ``Proxy-Authorization: Basic`` when the proxy URL has credentials
    (RFC 7617), and ``headers``, which replace fields of the same name. Nothing else: the
    target's own headers (``Authorization`` included) never go to the proxy.

    Args:
        proxy: the proxy, for its credentials.
        host: the target host (IPv6 without brackets; it is bracketed here).
        port: the target port.
        headers: extra fields for the proxy (a mapping, pairs or :class:`Headers`).

    Returns:
        The request head, bytes.

    Raises:
        ValueError: a header name or value that is invalid (a CR or LF, say).
    """
    target = authority(host, port)
    fields = Headers([("Host", target)])
    if proxy.username is not None:
        credentials = f"{proxy.username}:{proxy.password or ''}".encode("utf-8")
        fields["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    extra = Headers(headers)
    for name in {name.lower() for name in extra}:
        if name in fields:
            del fields[name]
    for name, value in extra.items():
        fields.add(name, value)
    return Request("CONNECT", target, fields).serialize()


def http_connect(
    sock: socket.socket,
    proxy: ProxyURL,
    host: str,
    port: int,
    *,
    deadline: Optional[float],
    headers: HeadersLike = None,
) -> bytes:
    """Open a tunnel to ``host:port`` through an HTTP proxy ``sock`` is connected to.

    Sends :func:`connect_request` and reads the answer with the handshake's head limits.

    Args:
        sock: a socket connected to the proxy (an :class:`ssl.SSLSocket` for ``https://``).
        proxy: the proxy.
        host: the target host (a name is passed on; the proxy resolves it).
        port: the target port.
        deadline: a :func:`time.monotonic` time that bounds the exchange, or ``None``.
        headers: extra header fields for the proxy.

    Returns:
        The bytes the proxy sent after its answer: the start of the tunnelled stream.

    Raises:
        ProxyError: a non-2xx answer (``.status`` set; ``407`` when the proxy wants
            credentials or rejected them), an invalid answer, or the proxy closed early.
        TimeoutError: the deadline passed.
    """
    target = authority(host, port)
    logger.debug("CONNECT %s via %s", target, proxy)
    parser = ResponseParser(head_only=True)
    try:
        send_all(sock, connect_request(proxy, host, port, headers), deadline)
        while True:
            sock.settimeout(remaining(deadline))
            data = sock.recv(_READ_SIZE)
            try:
                response = parser.feed(data)
            except InvalidHTTP as exc:
                what = "closed the connection without a complete" if not data else "sent an invalid"
                raise ProxyError(f"proxy {proxy} {what} answer to CONNECT: {exc}") from exc
            if response is not None:
                break
    except TimeoutError:
        raise TimeoutError(f"proxy {proxy} did not answer CONNECT {target} in time") from None
    except ProxyError:
        raise
    except OSError as exc:
        raise ProxyError(f"proxy {proxy} failed during CONNECT {target}: {exc}") from exc
    status = int(response.status)
    if 200 <= status < 300:
        return parser.leftover
    message = f"proxy {proxy} refused CONNECT {target}: {status} {response.reason}".rstrip()
    if status == 407:
        if proxy.username is None:
            message += " (the proxy wants credentials: put user:password@ in the proxy URL)"
        else:
            message += " (the proxy rejected the credentials)"
    raise ProxyError(message, status=status)
