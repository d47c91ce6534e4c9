"""Agreeing on extensions in the handshake: ``Sec-WebSocket-Extensions`` and permessage-deflate.

A client lists the extensions it wants in ``Sec-WebSocket-Extensions`` and the server
answers with those it accepts (RFC 6455 section 9.1). The only extension wsclient speaks is
permessage-deflate, whose parameters both ends agree on here (RFC 7692 section 7.1).
Negotiation is four pure functions over the header's values: :func:`client_offer` and
:func:`client_accept` for the client, :func:`server_accept` for the server, and
:func:`parse_extensions` beneath them. They turn :class:`~wsclient.deflate.DeflateOptions`
(what a user wants) into :class:`~wsclient.deflate.DeflateParams` (what both ends agreed),
which :class:`~wsclient.deflate.PerMessageDeflate` then compresses with.

Decisions worth knowing:

- Window bits 8 are accepted everywhere the RFC allows them, though zlib cannot compress
  with a 256-byte window: :mod:`wsclient.deflate` explains how its codec stays valid.
- A server declines an offer it cannot meet, or one with unknown, duplicate or invalid
  parameters, and goes on without compression; a client fails the connection on any
  answer that breaks RFC 7692 section 7.1.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

from .deflate import DEFAULT_WINDOW_BITS, DeflateOptions, DeflateParams
from .exceptions import NegotiationError

__all__ = [
    "EXTENSION_NAME",
    "client_accept",
    "client_offer",
    "parse_extensions",
    "server_accept",
]

EXTENSION_NAME = "permessage-deflate"

Params = List[Tuple[str, Optional[str]]]
Extensions = List[Tuple[str, Params]]

_PARAM_NAMES = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)
# RFC 7230 section 3.2.6 token and quoted-string; RFC 7692 section 7.1.2 window bits.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*)"')
_WINDOW_BITS = re.compile(r"8|9|1[0-5]")


# --- Header syntax (RFC 6455 section 9.1) ----------------------------------------------


def _skip_ows(value: str, pos: int) -> int:
    while pos < len(value) and value[pos] in " \t":
        pos += 1
    return pos


def _token(value: str, pos: int, what: str) -> Tuple[str, int]:
    match = _TOKEN.match(value, pos)
    if match is None:
        raise NegotiationError(f"expected {what} at position {pos} in {value!r}")
    return match.group(), _skip_ows(value, match.end())


def _param_value(value: str, pos: int) -> Tuple[str, int]:
    if not value.startswith('"', pos):
        return _token(value, pos, "a parameter value")
    match = _QUOTED.match(value, pos)
    if match is None:
        raise NegotiationError(f"unterminated quoted string in {value!r}")
    text = re.sub(r"\\(.)", r"\1", match.group(1))
    if not _TOKEN.fullmatch(text):  # RFC 6455 section 9.1: unquoted, it must be a token
        raise NegotiationError(f"quoted value {text!r} is not a token in {value!r}")
    return text, _skip_ows(value, match.end())


def _parse_value(value: str, extensions: Extensions) -> None:
    pos = 0
    while True:
        pos = _skip_ows(value, pos)
        if pos < len(value) and value[pos] == ",":  # empty list elements are allowed
            pos += 1
            continue
        if pos == len(value):
            return
        name, pos = _token(value, pos, "an extension name")
        params: Params = []
        while value.startswith(";", pos):
            pos = _skip_ows(value, pos + 1)
            param, pos = _token(value, pos, "a parameter name")
            argument = None
            if value.startswith("=", pos):
                pos = _skip_ows(value, pos + 1)
                argument, pos = _param_value(value, pos)
            params.append((param, argument))
        extensions.append((name, params))
        if pos < len(value) and value[pos] != ",":
            raise NegotiationError(f"unexpected {value[pos]!r} at position {pos} in {value!r}")


def parse_extensions(values: Sequence[str]) -> Extensions:
    """Parse ``Sec-WebSocket-Extensions`` header values (RFC 6455 section 9.1).

    Args:
        values: every value of the header, in order; each may hold a comma-separated list.

    Returns:
        ``(name, params)`` for each extension in order, ``params`` being ``(name, value)``
        pairs where ``value`` is ``None`` for a bare parameter and quoted values come
        unquoted.

    Raises:
        NegotiationError: a syntax error.
    """
    extensions: Extensions = []
    for value in values:
        _parse_value(value, extensions)
    return extensions


# --- Negotiation (RFC 7692 section 7.1) ------------------------------------------------


def _read_params(params: Params, *, response: bool) -> Dict[str, Optional[int]]:
    """Check one offer's or response's parameters; ValueError if RFC 7692 section 7.1 forbids.

    Returns a dict holding each parameter present: True for the no_context_takeover flags,
    the window bits, or None for an offer's bare client_max_window_bits.
    """
    found: Dict[str, Optional[int]] = {}
    for name, value in params:
        if name not in _PARAM_NAMES:
            raise ValueError(f"unknown parameter {name!r}")
        if name in found:
            raise ValueError(f"duplicate parameter {name!r}")
        if name.endswith("_no_context_takeover"):
            if value is not None:
                raise ValueError(f"{name} takes no value, got {value!r}")
            found[name] = True
        elif value is None:  # section 7.1.2.2: a bare value only in an offer
            if response or name == "server_max_window_bits":
                raise ValueError(f"{name} needs a value")
            found[name] = None
        elif not _WINDOW_BITS.fullmatch(value):
            raise ValueError(f"{name} must be 8 to 15 without leading zeroes, not {value!r}")
        else:
            found[name] = int(value)
    return found


def _header(params: Dict[str, Optional[int]]) -> str:
    """Format parameters shaped as :func:`_read_params` returns them."""
    parts = [EXTENSION_NAME]
    for name, value in params.items():
        parts.append(name if value is None or value is True else f"{name}={value}")
    return "; ".join(parts)


def _offer(options: DeflateOptions) -> Dict[str, Optional[int]]:
    offer: Dict[str, Optional[int]] = {}
    for name in ("server_no_context_takeover", "client_no_context_takeover"):
        if getattr(options, name):
            offer[name] = True
    if options.server_max_window_bits is not None:
        offer["server_max_window_bits"] = options.server_max_window_bits
    offer["client_max_window_bits"] = options.client_max_window_bits  # None: bare
    return offer


def client_offer(options: DeflateOptions) -> str:
    """The ``Sec-WebSocket-Extensions`` value a client sends (RFC 7692 section 7.1).

    ``client_max_window_bits`` is always offered: bare, so the server may limit the
    client's window, or with the client's own limit.

    Args:
        options: what the client wants.

    Returns:
        e.g. ``"permessage-deflate; client_max_window_bits"``.
    """
    return _header(_offer(options))


def _check_response(
    offered: Dict[str, Optional[int]], got: Dict[str, Optional[int]]
) -> DeflateParams:
    """Match a valid response to the offer it answers (RFC 7692 sections 7.1.1 and 7.1.2)."""
    if "client_max_window_bits" in got and "client_max_window_bits" not in offered:
        raise NegotiationError("server sent client_max_window_bits, which was not offered")
    if "server_no_context_takeover" in offered and "server_no_context_takeover" not in got:
        raise NegotiationError("server did not accept the requested server_no_context_takeover")
    server_bits = got.get("server_max_window_bits") or DEFAULT_WINDOW_BITS
    asked = offered.get("server_max_window_bits") or DEFAULT_WINDOW_BITS
    if server_bits > asked:
        raise NegotiationError(
            f"server_max_window_bits={server_bits} is more than the {asked} requested"
        )
    # Section 7.1.2.2: a client that offered a value never uses more than it.
    client_bits = min(
        got.get("client_max_window_bits") or DEFAULT_WINDOW_BITS,
        offered.get("client_max_window_bits") or DEFAULT_WINDOW_BITS,
    )
    return DeflateParams(
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
        server_no_context_takeover="server_no_context_takeover" in got,
        client_no_context_takeover="client_no_context_takeover" in got
        or "client_no_context_takeover" in offered,
    )


def client_accept(options: DeflateOptions, values: Sequence[str]) -> Optional[DeflateParams]:
    """Check the server's ``Sec-WebSocket-Extensions`` against the client's offer.

    Args:
        options: the options :func:`client_offer` was given.
        values: every value of the header in the server's response (maybe none).

    Returns:
        The agreed parameters, or ``None`` if the server declined compression.

    Raises:
        NegotiationError: the server accepted an extension not offered, answered more
            than once, or broke a rule of RFC 7692 section 7.1; the client must fail the
            connection.
    """
    extensions = parse_extensions(values)
    if not extensions:
        return None
    for name, _ in extensions:
        if name != EXTENSION_NAME:
            raise NegotiationError(f"server accepted extension {name!r}, which was not offered")
    if len(extensions) > 1:
        raise NegotiationError(f"server accepted {EXTENSION_NAME} more than once")
    try:
        got = _read_params(extensions[0][1], response=True)
    except ValueError as exc:
        raise NegotiationError(f"invalid {EXTENSION_NAME} response: {exc}") from exc
    return _check_response(_offer(options), got)


def _answer_offer(
    options: DeflateOptions, offer: Dict[str, Optional[int]]
) -> Optional[Tuple[str, DeflateParams]]:
    """The server's response to one valid offer, or None if it cannot meet it."""
    answer: Dict[str, Optional[int]] = {}
    for name in ("server_no_context_takeover", "client_no_context_takeover"):
        if getattr(options, name) or name in offer:  # sections 7.1.1.1 and 7.1.1.2
            answer[name] = True
    if "server_max_window_bits" in offer or options.server_max_window_bits is not None:
        answer["server_max_window_bits"] = min(  # section 7.1.2.1
            offer.get("server_max_window_bits") or DEFAULT_WINDOW_BITS,
            options.server_max_window_bits or DEFAULT_WINDOW_BITS,
        )
    limit = options.client_max_window_bits or DEFAULT_WINDOW_BITS
    if "client_max_window_bits" not in offer:
        if limit < DEFAULT_WINDOW_BITS:
            return None  # section 7.1.2.2: then the client may use 15 bits
    elif offer["client_max_window_bits"] is not None or limit < DEFAULT_WINDOW_BITS:
        answer["client_max_window_bits"] = min(
            offer["client_max_window_bits"] or DEFAULT_WINDOW_BITS, limit
        )
    params = DeflateParams(
        server_max_window_bits=answer.get("server_max_window_bits") or DEFAULT_WINDOW_BITS,
        client_max_window_bits=answer.get("client_max_window_bits") or DEFAULT_WINDOW_BITS,
        server_no_context_takeover="server_no_context_takeover" in answer,
        client_no_context_takeover="client_no_context_takeover" in answer,
    )
    return _header(answer), params


def server_accept(
    options: DeflateOptions, values: Sequence[str]
) -> Optional[Tuple[str, DeflateParams]]:
    """Pick the first acceptable permessage-deflate offer (RFC 7692 sections 5.1 and 7.1).

    Offers with unknown, duplicate or invalid parameters are declined, as are offers the
    server's options cannot meet; other extensions are ignored.

    Args:
        options: what the server accepts and requires.
        values: every value of ``Sec-WebSocket-Extensions`` in the client's request.

    Returns:
        ``(response header value, agreed parameters)``, or ``None`` to go on without
        compression.

    Raises:
        NegotiationError: the header is not valid syntax (answer 400).
    """
    for name, params in parse_extensions(values):
        if name != EXTENSION_NAME:
            continue
        try:
            offer = _read_params(params, response=False)
        except ValueError:
            continue
        answer = _answer_offer(options, offer)
        if answer is not None:
            return answer
    return None
