"""HTTP header fields: the multi-valued, case-insensitive :class:`Headers` and the field rules.

A header section is an ordered list of ``name: value`` fields where names ignore case and a
name may repeat (RFC 9110 section 5). This module holds that value and the rules a field
must follow to be written or accepted: a name is a token (RFC 9110 section 5.6.2), a value
holds no control character but HTAB (RFC 9110 section 5.5), and comma-separated lists may
be spread over several values (RFC 9110 section 5.6.1). Nothing here knows about request
lines, status lines or parsing bytes: :mod:`wsclient.http11` does that.

Decisions worth knowing:

- Header values are text decoded from and encoded to ISO-8859-1, as :mod:`http.client` does.
- Reading follows :class:`http.client.HTTPMessage` (a missing name gives ``None``), writing a
  mapping (``headers[name] = value`` replaces every value).
- ``repr()`` masks the values of :data:`SECRET_HEADERS`, and no error message shows a value.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union, overload

__all__ = [
    "SECRET_HEADERS",
    "Headers",
    "HeadersLike",
    "is_token",
    "has_control_character",
    "parse_token_list",
    "header_contains_token",
]

#: Header fields whose values ``repr()`` masks.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB (RFC 9110 5.5)
# A value with neither a control character nor text beyond ISO-8859-1: both checks at once.
_GOOD_VALUE_RE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# Field names already found to be tokens: the same dozen names come in every handshake.
# Bounded, so names a peer makes up cannot grow it without limit.
_TOKEN_NAMES: "set[str]" = set()
_TOKEN_NAMES_MAX = 256

HeadersLike = Union["Headers", Mapping[str, str], Iterable[Tuple[str, str]], None]


class Headers:
    """HTTP header fields: case-insensitive, multi-valued, ordered.

    Reading behaves like :class:`http.client.HTTPMessage`: ``headers["Name"]`` is the first
    value or ``None``, ``get_all()`` every value, iteration gives names with repeats. Writing
    behaves like a mapping: ``headers[name] = value`` replaces every value (``HTTPMessage``
    appends), ``del headers[name]`` removes every value and raises :class:`KeyError` when
    there is none; :meth:`add` appends.

    Names must be tokens and values may not hold control characters (CR, LF, NUL...), so a
    user-supplied header cannot inject another one (:class:`ValueError`). Values are stripped
    of surrounding spaces and must be encodable as ISO-8859-1.

    Args:
        headers: ``None``, another :class:`Headers`, a mapping, or ``(name, value)`` pairs.

    Raises:
        TypeError: ``headers`` is of another type, or a name or value is not a ``str``.
        ValueError: an invalid name or value.
    """

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as a list is

    def __init__(self, headers: HeadersLike = None) -> None:
        self._items: List[Tuple[str, str]] = []
        # The names lower-cased, in step with _items: a lookup compares without lowering
        # every name each time.
        self._keys: List[str] = []
        if headers is None:
            return
        if isinstance(headers, Headers):
            self._items = headers.items()
            self._keys = [name.lower() for name, _ in self._items]
            return
        if isinstance(headers, (str, bytes, bytearray)):
            raise TypeError("headers must be a mapping or a list of (name, value) pairs")
        pairs = headers.items() if hasattr(headers, "items") else headers
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                # Never show the pair: its value may be a secret.
                raise TypeError(f"expected (name, value) pairs, got a {type(pair).__name__}")
            self.add(*pair)

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping the values already there.

        Raises:
            TypeError: ``name`` or ``value`` is not a ``str``.
            ValueError: ``name`` is not a token or ``value`` holds a control character.
        """
        field = _check_field(name, value)
        self._items.append(field)
        self._keys.append(name.lower())

    @overload
    def get(self, name: str) -> Optional[str]: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    @overload
    def get(self, name: str, default: Optional[str]) -> Optional[str]: ...

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of ``name``, or ``default``."""
        key = name.lower()
        if key not in self._keys:
            return default
        return self._items[self._keys.index(key)][1]

    def get_all(self, name: str, default: Optional[List[str]] = None) -> Optional[List[str]]:
        """Every value of ``name`` in order, or ``default`` (``None``) if there is none."""
        key = name.lower()
        if key not in self._keys:
            return default
        return [item[1] for item_key, item in zip(self._keys, self._items) if item_key == key]

    def __getitem__(self, name: str) -> Optional[str]:
        return self.get(name)

    def __setitem__(self, name: str, value: str) -> None:
        field = _check_field(name, value)
        key = name.lower()
        self._remove(key)
        self._items.append(field)
        self._keys.append(key)

    def __delitem__(self, name: str) -> None:
        if not self._remove(name.lower()):
            raise KeyError(name)

    def _remove(self, key: str) -> bool:
        """Remove every field whose lower-cased name is ``key``; whether there was one."""
        if key not in self._keys:
            return False
        kept = [(item_key, item) for item_key, item in zip(self._keys, self._items) if item_key != key]
        self._keys = [item_key for item_key, _ in kept]
        self._items = [item for _, item in kept]
        return True

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name.lower() in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> List[str]:
        """Every field name, in order and with repeats, as :class:`http.client.HTTPMessage`."""
        return [name for name, _ in self._items]

    def values(self) -> List[str]:
        """Every field value, in order."""
        return [value for _, value in self._items]

    def items(self) -> List[Tuple[str, str]]:
        """Every ``(name, value)`` pair, in order, names in their original case."""
        return list(self._items)

    def copy(self) -> "Headers":
        """A shallow copy."""
        return Headers(self)

    def serialize(self) -> bytes:
        """``Name: value\\r\\n`` for each field, without the final empty line."""
        return "".join(f"{name}: {value}\r\n" for name, value in self._items).encode("latin-1")

    def grouped(self) -> Dict[str, List[str]]:
        """Every value by lower-cased name, in order (what equality compares)."""
        grouped: Dict[str, List[str]] = {}
        for key, (_, value) in zip(self._keys, self._items):
            grouped.setdefault(key, []).append(value)
        return grouped

    def __eq__(self, other: object) -> bool:
        """Equal when each name has the same values in the same order (names ignore case)."""
        if not isinstance(other, Headers):
            try:
                other = Headers(other)  # type: ignore[arg-type]  # any object: one Headers() refuses is unequal
            except (TypeError, ValueError):
                return NotImplemented
        return self.grouped() == other.grouped()

    def __repr__(self) -> str:
        shown = [
            (name, "***" if name.lower() in SECRET_HEADERS else value)
            for name, value in self._items
        ]
        return f"Headers({shown!r})"


def _check_field(name: str, value: str) -> Tuple[str, str]:
    """Validate a header field (RFC 9110 section 5); return it with the value stripped."""
    if not isinstance(name, str) or not isinstance(value, str):
        # Never show the value: it may be a secret.
        kinds = f"{type(name).__name__} and {type(value).__name__}"
        raise TypeError(f"header names and values must be str, got {kinds}")
    if name not in _TOKEN_NAMES or type(name) is not str:
        if not _TOKEN_RE.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if len(_TOKEN_NAMES) < _TOKEN_NAMES_MAX and type(name) is str:
            _TOKEN_NAMES.add(name)
    if not _GOOD_VALUE_RE.fullmatch(value):
        if _BAD_VALUE_RE.search(value):
            raise ValueError(f"control character in the value of header {name!r}")
        raise ValueError(f"the value of header {name!r} is not ISO-8859-1 text")
    return name, value.strip(" \t")


def is_token(text: str) -> bool:
    """Whether ``text`` is a token: a field name, a method (RFC 9110 section 5.6.2).

    Args:
        text: the text to check.

    Returns:
        ``True`` when ``text`` is one or more token characters and nothing else.
    """
    return _TOKEN_RE.fullmatch(text) is not None


def has_control_character(text: str) -> bool:
    """Whether ``text`` holds a control character other than HTAB.

    Such characters (CR, LF, NUL...) are not allowed in a field value (RFC 9110 section
    5.5) nor in a reason phrase (RFC 9112 section 4).

    Args:
        text: the text to check.

    Returns:
        ``True`` when ``text`` holds one of U+0000-U+0008, U+000A-U+001F or U+007F.
    """
    return _BAD_VALUE_RE.search(text) is not None


def parse_token_list(values: Iterable[str]) -> List[str]:
    """Split comma-separated lists spread over several header values (RFC 9110 section 5.6.1).

    Args:
        values: header values, e.g. ``headers.get_all("Connection") or []``.

    Returns:
        The elements, stripped, empty ones dropped, in order.
    """
    elements = []
    for value in values:  # Loops, not generators: this runs in every handshake.
        for element in value.split(","):
            element = element.strip(" \t")
            if element:
                elements.append(element)
    return elements


def header_contains_token(headers: Headers, name: str, token: str) -> bool:
    """Whether any value of header ``name`` lists ``token``, ignoring case.

    Args:
        headers: the headers to look in.
        name: the header name, e.g. ``"Connection"``.
        token: the element to find, e.g. ``"upgrade"``.

    Returns:
        ``True`` when one element of the comma lists equals ``token`` case-insensitively.
    """
    key = token.lower()
    for element in parse_token_list(headers.get_all(name) or ()):
        if element.lower() == key:
            return True
    return False
