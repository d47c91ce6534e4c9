"""ws:// and wss:// URIs, parsed into a frozen value (RFC 6455 section 3, RFC 3986).

:func:`parse_uri` turns a string into a :class:`WebSocketURI`: whether TLS is used, the host
(IPv6 without brackets, host names lower-cased and IDNA-encoded), the port (defaults applied),
the resource to put in the request line (path and query, exactly as given but with characters
a request target cannot carry percent-encoded) and the percent-decoded userinfo.
:func:`resolve_redirect` resolves a ``Location`` header against a URI.

Decisions worth knowing:

- A fragment, even an empty ``#``, is an error (RFC 6455 section 3).
- Control characters anywhere, and leading or trailing whitespace, are errors; a space or a
  non-ASCII character inside the path or query is percent-encoded (as UTF-8), and so is
  every other character RFC 3986 does not allow there (``"<>\\^`{|}[]`` and a ``%`` that does
  not start an escape). Escapes already present are kept exactly as written.
- An empty port (``ws://host:/``) means the default port (RFC 3986 section 3.2.3).
- Host names use the characters of DNS names (letters, digits, ``-``, ``.`` and ``_``);
  non-ASCII names are converted with Python's ``idna`` codec (IDNA 2003).
- An IPv6 zone (``[fe80::1%25eth0]``) is kept in :attr:`WebSocketURI.host` as ``fe80::1%eth0``.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from typing import Optional, Tuple
from urllib.parse import unquote

from .exceptions import InvalidURI

__all__ = ["DEFAULT_PORTS", "WebSocketURI", "parse_uri", "parse_host_name", "parse_ipv6", "resolve_redirect", "redact"]

#: The port each scheme uses when the URI names none (RFC 6455 section 3).
DEFAULT_PORTS = {"ws": 80, "wss": 443}

#: Schemes a redirect may name, and the WebSocket scheme each maps to.
REDIRECT_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Where the user information starts in a URI, malformed ones included ("ws:/", "socks5//").
_SCHEME_PREFIX_RE = re.compile(r"//|[A-Za-z][A-Za-z0-9+.\-]*:?/{1,2}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HOST_RE = re.compile(r"[a-z0-9._\-]+")
_PORT_RE = re.compile(r"[0-9]*")
# Characters RFC 3986 does not allow in a path or query (section 3.3 and 3.4), plus a "%"
# that does not start a two-digit escape.
_NOT_ALLOWED_RE = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]")


@dataclasses.dataclass(frozen=True, repr=False)
class WebSocketURI:
    """A parsed ``ws://`` or ``wss://`` URI.

    Attributes:
        secure: ``True`` for ``wss://`` (TLS).
        host: the host name (lower-cased, IDNA-encoded), IPv4 address or IPv6 address
            (without brackets).
        port: the TCP port, the scheme's default when the URI names none.
        resource: the request target: path and ``?query``, ``"/"`` when the path is empty.
        user: the percent-decoded user name, or ``None``.
        password: the percent-decoded password, or ``None``; never shown by ``repr()``.
    """

    secure: bool
    host: str
    port: int
    resource: str = "/"
    user: Optional[str] = None
    password: Optional[str] = None

    @property
    def scheme(self) -> str:
        """``"wss"`` or ``"ws"``."""
        return "wss" if self.secure else "ws"

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: the host, bracketed if IPv6, ``:port`` unless default."""
        host = self.host
        if ":" in host:
            host = "[" + host.replace("%", "%25") + "]"
        if self.port != DEFAULT_PORTS[self.scheme]:
            host += f":{self.port}"
        return host

    @property
    def uri(self) -> str:
        """The full URI, without the userinfo."""
        return f"{self.scheme}://{self.host_header}{self.resource}"

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        password = None if self.password is None else "***"
        return (
            f"WebSocketURI(secure={self.secure!r}, host={self.host!r}, port={self.port!r}, "
            f"resource={self.resource!r}, user={self.user!r}, password={password!r})"
        )


def parse_uri(uri: str) -> WebSocketURI:
    """Parse a ``ws://`` or ``wss://`` URI (RFC 6455 section 3).

    Args:
        uri: the URI, e.g. ``"wss://user:pw@example.com:8443/chat?room=1"``.

    Returns:
        The :class:`WebSocketURI`.

    Raises:
        TypeError: ``uri`` is not a ``str``.
        InvalidURI: another scheme, a fragment, a missing host, a bad port, an unbracketed
            IPv6 address, a control character, a lone surrogate or surrounding whitespace.
            The message never contains the password.
    """
    if type(uri) is str and "@" not in uri:  # Not kept: a URI carrying a password.
        return _parse_uri_cached(uri)
    return _parse_uri(uri)


@functools.lru_cache(maxsize=256)
def _parse_uri_cached(uri: str) -> WebSocketURI:
    """Programs connect to a few URIs again and again: each is parsed once (the value is
    frozen; errors are raised each time, not kept)."""
    return _parse_uri(uri)


def _parse_uri(uri: str) -> WebSocketURI:
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str, not {type(uri).__name__}")
    shown = redact(uri)
    if _CONTROL_RE.search(uri):
        raise InvalidURI(f"control character in URI {shown!r}")
    if uri != uri.strip():
        raise InvalidURI(f"leading or trailing whitespace in URI {shown!r}")
    try:  # A lone surrogate (os.environ, sys.argv) could not be sent in any header.
        uri.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidURI(f"unencodable character (a lone surrogate) in URI {shown!r}") from None
    match = _SCHEME_RE.match(uri)
    scheme = match.group(1).lower() if match else ""
    if scheme not in DEFAULT_PORTS:
        what = f"scheme {scheme!r}" if scheme else "no scheme"
        raise InvalidURI(f"{shown!r} has {what}; a WebSocket URI starts with ws:// or wss://")
    rest = uri[len(scheme) + 1 :]
    if not rest.startswith("//"):
        raise InvalidURI(f"{shown!r} lacks '//' after '{scheme}:'")
    if "#" in rest:
        raise InvalidURI(f"{shown!r} has a fragment; RFC 6455 section 3 forbids them")
    authority, resource = _split_authority(rest[2:])
    user, password, hostport = _split_userinfo(authority)
    host, port = _parse_hostport(hostport, DEFAULT_PORTS[scheme], shown)
    resource = _encode_resource(resource, shown)
    return WebSocketURI(scheme == "wss", host, port, resource, user, password)


def _split_authority(rest: str) -> Tuple[str, str]:
    """Split ``authority/path?query`` into the authority and the rest."""
    end = len(rest)
    for delimiter in "/?":
        index = rest.find(delimiter)
        if index != -1:
            end = min(end, index)
    return rest[:end], rest[end:]


def _split_userinfo(authority: str) -> Tuple[Optional[str], Optional[str], str]:
    """Split ``user:password@host:port``, percent-decoding user and password."""
    userinfo, at, hostport = authority.rpartition("@")
    if not userinfo:
        return None, None, hostport
    user, colon, password = userinfo.partition(":")
    return unquote(user), (unquote(password) if colon else None), hostport


def _parse_hostport(hostport: str, default_port: int, shown: str) -> Tuple[str, int]:
    """Parse ``host[:port]``; IPv6 literals are bracketed (RFC 3986 section 3.2.2)."""
    if hostport.startswith("["):
        literal, bracket, after = hostport[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise InvalidURI(f"malformed IPv6 literal in {shown!r}")
        host = parse_ipv6(literal, shown)
        port_text = after[1:] if after else ""
    else:
        if hostport.count(":") > 1:
            raise InvalidURI(f"IPv6 address must be in brackets (ws://[::1]/) in {shown!r}")
        host, _, port_text = hostport.partition(":")
        host = parse_host_name(host, shown)
    if not _PORT_RE.fullmatch(port_text):
        raise InvalidURI(f"port {port_text!r} is not a number in {shown!r}")
    # At most 6 significant digits: enough to be out of range, and int() refuses over 4300.
    port = int(port_text.lstrip("0")[:6] or "0") if port_text else default_port
    if not 1 <= port <= 65535:
        raise InvalidURI(f"port {port} is out of range 1-65535 in {shown!r}")
    return host, port


def parse_ipv6(literal: str, shown: str) -> str:
    """Validate the inside of ``[...]``, with an optional ``%25zone`` (RFC 6874).

    Args:
        literal: what is between the brackets.
        shown: the whole URI or URL as it may be shown in the error (password masked).

    Returns:
        The address, lower-cased, with ``%zone`` decoded.

    Raises:
        InvalidURI: not an IPv6 address, or a zone with other than unreserved characters.
    """
    address, percent, zone = literal.partition("%25")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise InvalidURI(f"invalid IPv6 address {address!r} in {shown!r}") from None
    zone = unquote(zone)
    if percent and not re.fullmatch(r"[A-Za-z0-9\-._~]+", zone):  # RFC 6874 ZoneID: unreserved
        raise InvalidURI(f"invalid IPv6 zone in {shown!r}")
    return address.lower() + ("%" + zone if percent else "")


def parse_host_name(host: str, shown: str) -> str:
    """Validate a host name or IPv4 address; lower-case it and IDNA-encode it.

    Args:
        host: the host as written (percent-encoding allowed).
        shown: the whole URI or URL as it may be shown in the error (password masked).

    Returns:
        The host, ready for DNS.

    Raises:
        InvalidURI: empty, not encodable with IDNA, or not a name DNS can carry.
    """
    host = unquote(host)
    if not host:
        raise InvalidURI(f"missing host in {shown!r}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURI(f"host {host!r} is not a valid internationalized name") from None
    host = host.lower()
    name = host[:-1] if host.endswith(".") else host  # One final dot: the root (fully qualified).
    labels = name.split(".")
    if not _HOST_RE.fullmatch(host) or "" in labels:
        raise InvalidURI(f"invalid host {host!r} in {shown!r}")
    if len(name) > 253 or max(map(len, labels)) > 63:  # RFC 1035 section 2.3.4
        raise InvalidURI(f"host name too long (labels up to 63 bytes, 253 in all) in {shown!r}")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidURI(f"invalid IPv4 address {host!r} in {shown!r}") from None
    return host


def _encode_resource(resource: str, shown: str) -> str:
    """Percent-encode what a request target cannot carry; ``"/"`` for an empty path."""
    if not resource.startswith("/"):
        resource = "/" + resource
    try:
        return _NOT_ALLOWED_RE.sub(_percent_encode, resource)
    except UnicodeEncodeError:
        raise InvalidURI(f"unencodable character in the path of {shown!r}") from None


def _percent_encode(match: "re.Match[str]") -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def redact(uri: str) -> str:
    """``uri`` with its password (``:password@``) replaced by ``***``.

    Malformed URIs included (``socks5//u:pw@h``, ``ws:/u:pw@h``, ``u:pw@h``, ``u:p@ss@h``,
    ``http://u:p/ss@h``): everything from the first ``:`` after the scheme up to the last
    ``@`` is masked, since an unencoded ``@`` or ``/`` may be part of the password. (An
    ``@`` later in a path masks more than the password; these strings are for messages.)

    Args:
        uri: a URI or proxy URL as the user wrote it, well formed or not.

    Returns:
        The text to show in a message or a log line.
    """
    head, at, tail = uri.rpartition("@")
    if not at:
        return uri
    scheme = _SCHEME_PREFIX_RE.match(head)
    start = scheme.end() if scheme else 0
    user, colon, _ = head[start:].partition(":")
    if not colon:
        return uri
    return f"{head[:start]}{user}:***@{tail}"


def resolve_redirect(base: WebSocketURI, location: str) -> WebSocketURI:
    """Resolve a ``Location`` header against the URI that was redirected.

    ``location`` may be absolute (``ws``, ``wss``, ``http`` mapped to ``ws``, ``https``
    mapped to ``wss``), scheme-relative (``//host/path``) or relative (RFC 3986 section 5.2).
    A fragment in ``location`` is dropped, since it is never sent; an empty reference (which
    would redirect to the same URI) is an error. The base's user and
    password are carried only to the same host and port and never from ``wss`` to ``ws``.

    Args:
        base: the URI of the request that got the redirect.
        location: the ``Location`` header value.

    Returns:
        The URI to connect to next.

    Raises:
        TypeError: ``location`` is not a ``str``.
        InvalidURI: ``location`` is empty, names another scheme, or resolves to an invalid URI.
    """
    if not isinstance(location, str):
        raise TypeError(f"location must be a str, not {type(location).__name__}")
    location = location.strip().partition("#")[0]
    if not location:
        raise InvalidURI("redirect to an empty Location")
    match = _SCHEME_RE.match(location)
    if match:
        scheme = REDIRECT_SCHEMES.get(match.group(1).lower())
        if scheme is None:
            shown = redact(location)
            raise InvalidURI(f"cannot follow a redirect to {shown!r}: not ws, wss, http or https")
        target = parse_uri(f"{scheme}:{location[match.end() :]}")
    elif location.startswith("//"):
        target = parse_uri(f"{base.scheme}:{location}")
    else:
        resource = _merge(base.resource, location)
        target = parse_uri(f"{base.scheme}://{base.host_header}{resource}")
    carry = (target.host, target.port) == (base.host, base.port) and target.secure >= base.secure
    if target.user is None and carry:
        target = dataclasses.replace(target, user=base.user, password=base.password)
    return target


def _merge(base_resource: str, reference: str) -> str:
    """Resolve a relative reference's path and query (RFC 3986 section 5.2.2)."""
    base_path = base_resource.partition("?")[0]
    path, question, query = reference.partition("?")
    if not path:
        return base_path + "?" + query if question else base_resource
    if not path.startswith("/"):
        path = base_path[: base_path.rfind("/") + 1] + path
    return _remove_dot_segments(path) + ("?" + query if question else "")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, on segments."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments[1:], 1):
        last = index == len(segments) - 1
        if segment == "..":
            if len(output) > 0:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)
