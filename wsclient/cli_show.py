"""How the command line shows things: a message as a line (binary as hex or base64, JSON
pretty-printed on request) and colours for direction and errors.

Colours are used only when the stream is a terminal, ``TERM`` is not ``dumb`` and
``NO_COLOR`` is unset or empty (https://no-color.org).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
from typing import Any, Tuple, Union

__all__ = ["BINARY_FORMATS", "Formatter", "Palette", "wants_colour", "parse_binary", "reason_of"]

#: The values of ``--binary-format``.
BINARY_FORMATS = ("hex", "base64")

_RESET = "\x1b[0m"
_COLOURS = {
    "received": "\x1b[36m",  # cyan: from the peer
    "sent": "\x1b[32m",      # green: from us
    "control": "\x1b[35m",   # magenta: pings and pongs
    "info": "\x1b[2m",       # dim: banners, close reports
    "error": "\x1b[31m",     # red
}


def wants_colour(stream: Any) -> bool:
    """Whether to colour what goes to ``stream``.

    Args:
        stream: a file object (``sys.stdout``, ``sys.stderr``).

    Returns:
        True for a terminal, unless ``NO_COLOR`` is set (not empty) or ``TERM`` is ``dumb``.
    """
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # No isatty, or a closed stream.
        return False


class Palette:
    """Wraps text in the colour of its role, or leaves it alone when colours are off.

    Args:
        enabled: use colours.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def paint(self, role: str, text: str, *, invisible: Tuple[str, str] = ("", "")) -> str:
        """``text`` in the colour of ``role``.

        Args:
            role: ``received``, ``sent``, ``control``, ``info`` or ``error``.
            text: the text (one line or several).
            invisible: put around each escape sequence (``("\\001", "\\002")`` tells
                readline that a prompt's escapes take no room on screen).

        Returns:
            The text, coloured when colours are on.
        """
        if not self.enabled:
            return text
        start, end = invisible
        return f"{start}{_COLOURS[role]}{end}{text}{start}{_RESET}{end}"


class Formatter:
    """Turns a received message into the text printed for it.

    Args:
        binary_format: ``"hex"`` or ``"base64"`` for binary messages.
        pretty_json: print a text message that is JSON indented over several lines.
    """

    def __init__(self, *, binary_format: str = "hex", pretty_json: bool = False) -> None:
        if binary_format not in BINARY_FORMATS:
            raise ValueError(f"binary_format must be one of {', '.join(BINARY_FORMATS)}, not {binary_format!r}")
        self.binary_format = binary_format
        self.pretty_json = pretty_json

    def format(self, message: Union[str, bytes]) -> str:
        """The text for a message: text with CR and LF escaped (so one message is one line),
        or indented JSON; binary as ``[binary N bytes] HEX`` or ``[binary N bytes] base64:B64``.

        Args:
            message: a received message.

        Returns:
            The text, without a final newline.
        """
        if isinstance(message, str):
            if self.pretty_json:
                try:
                    value = json.loads(message)
                except ValueError:
                    pass
                else:
                    return json.dumps(value, indent=2, ensure_ascii=False)
            return message.replace("\r", "\\r").replace("\n", "\\n")
        if self.binary_format == "base64":
            return f"[binary {len(message)} bytes] base64:{base64.b64encode(message).decode('ascii')}"
        return f"[binary {len(message)} bytes] {bytes(message).hex()}"


def parse_binary(text: str, binary_format: str) -> bytes:
    """The bytes a user typed after ``/binary``, in hex (spaces allowed) or base64.

    Args:
        text: what the user typed.
        binary_format: ``"hex"`` or ``"base64"``.

    Returns:
        The bytes.

    Raises:
        ValueError: not hex (or base64), with a message fit for the user.
    """
    if binary_format == "base64":
        try:
            return base64.b64decode(text.strip(), validate=True)
        except ValueError:
            raise ValueError(f"/binary takes base64 (--binary-format base64), e.g. /binary AP8Q, not {text!r}") from None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"/binary takes hexadecimal bytes, e.g. /binary 00ff10, not {text!r}") from None


def reason_of(exc: OSError) -> str:
    """An OSError's message without the file name that the caller shows its own way.

    Args:
        exc: the error.

    Returns:
        The message.
    """
    return exc.strerror if exc.strerror and not isinstance(exc, ssl.SSLError) else str(exc)
