"""The client's address behind trusted reverse proxies, from ``X-Forwarded-For``.

A reverse proxy (nginx, HAProxy) connects to the server itself, so the socket's peer is the
proxy. Proxies append the address they received a request from to ``X-Forwarded-For``
(``client, proxy1, proxy2``), but anyone can send that header, so it is believed only as far
as trusted proxies vouch for it: starting from the socket's peer, each trusted hop's entry
(the right-most one not yet read) names the hop before it; the client is the first address
that is not a trusted proxy (the "right-most untrusted entry" rule). Without trusted
proxies the header is ignored. ``Forwarded`` (RFC 7239) is not read.

Pure functions on text and :mod:`ipaddress` values: no sockets.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, List, Optional, Sequence, Union

__all__ = ["TrustedProxies", "parse_trusted", "client_address", "UNIX"]

#: The entry of ``trusted_proxies`` that trusts peers on a unix domain socket (a proxy on
#: the same host, e.g. nginx's ``proxy_pass http://unix:/run/ws.sock``).
UNIX = "unix"

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class TrustedProxies:
    """A set of trusted proxy networks (and maybe unix-socket peers).

    Args:
        networks: the trusted networks (a single address is a /32 or /128 network).
        unix: whether a peer on a unix domain socket is trusted.
    """

    def __init__(self, networks: Sequence[IPNetwork], *, unix: bool = False) -> None:
        self.networks = list(networks)
        self.unix = unix

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return False
        address = _unmapped(address)
        return any(address in network for network in self.networks)

    def __repr__(self) -> str:
        entries = [str(network) for network in self.networks] + ([UNIX] if self.unix else [])
        return f"TrustedProxies({entries!r})"


def parse_trusted(entries: Iterable[str]) -> TrustedProxies:
    """Read a ``trusted_proxies`` option: addresses, CIDR networks, or ``"unix"``.

    Args:
        entries: e.g. ``["127.0.0.1", "10.0.0.0/8", "::1", "unix"]``.

    Returns:
        The trusted proxies.

    Raises:
        TypeError: ``entries`` is a single string rather than a list of them.
        ValueError: an entry is neither an address, a network nor ``"unix"`` (a network
            with host bits set, such as ``10.0.0.1/8``, is refused as a likely typo).
    """
    if isinstance(entries, (str, bytes)):
        raise TypeError("trusted_proxies is a list of addresses or networks, not one string")
    networks: List[IPNetwork] = []
    unix = False
    for entry in entries:
        if entry == UNIX:
            unix = True
            continue
        try:
            network = ipaddress.ip_network(entry)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network") from exc
        if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == 128:
            mapped = network.network_address.ipv4_mapped
            if mapped is not None:
                network = ipaddress.IPv4Network(mapped)
        networks.append(network)
    return TrustedProxies(networks, unix=unix)


def parse_entry(text: str) -> Optional[IPAddress]:
    """One ``X-Forwarded-For`` entry as an address, or None when it is not one.

    Accepts ``203.0.113.7``, ``203.0.113.7:5000``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:5000`` (the port, which some proxies add, is dropped). ``unknown``
    and obfuscated identifiers (RFC 7239 section 6) are not addresses.

    Args:
        text: the entry, surrounding spaces allowed.

    Returns:
        The address (an IPv4-mapped IPv6 address as its IPv4 address), or None.
    """
    text = text.strip()
    if text.startswith("["):
        text, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        return _unmapped(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_address(peer: Optional[str], forwarded_for: Optional[Sequence[str]],
                   trusted: Optional[TrustedProxies]) -> Optional[str]:
    """The client's address: the socket peer, or from ``X-Forwarded-For`` behind trusted proxies.

    Walks the entries from the right while the hop that wrote them is trusted. An entry
    that is not an address stops the walk at the trusted hop that wrote it (its address is
    the nearest one known). When every entry is a trusted proxy, the left-most one is the
    client.

    Args:
        peer: the socket peer's host (``remote_address[0]``), or None or ``""`` for a unix
            domain socket.
        forwarded_for: every ``X-Forwarded-For`` header value, in order (None when absent).
        trusted: the trusted proxies, or None to ignore the header.

    Returns:
        The client's address as text (normalised, e.g. ``"2001:db8::1"``), or ``peer``
        (None for a unix socket peer) when the header is not believed.
    """
    if trusted is None or not forwarded_for:
        return peer or None
    on_unix = not peer
    hop: Optional[IPAddress] = None if on_unix else parse_entry(peer or "")
    if not ((on_unix and trusted.unix) or hop in trusted):
        return peer or None
    entries = [entry for value in forwarded_for for entry in value.split(",")]
    for entry in reversed(entries):
        address = parse_entry(entry)
        if address is None:
            break
        hop = address
        if hop not in trusted:
            break
    return None if hop is None else str(hop)


def _unmapped(address: IPAddress) -> IPAddress:
    """``::ffff:192.0.2.1`` as ``192.0.2.1`` (a dual-stack socket's IPv4 peer)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
