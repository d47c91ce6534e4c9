"""How the command line shows messages and colours (:mod:`wsclient.cli_show`), and where the
interactive client keeps its history (:func:`wsclient.cli_interactive.history_path`)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from wsclient.cli_interactive import history_path
from wsclient.cli_show import Formatter, Palette, parse_binary, wants_colour


def test_text_is_one_line_and_binary_hex_or_base64() -> None:
    plain = Formatter()
    assert plain.format("two\nlines\r") == "two\\nlines\\r"
    assert plain.format(b"\x00\xff") == "[binary 2 bytes] 00ff"
    assert Formatter(binary_format="base64").format(b"\x00\xff\x10") == "[binary 3 bytes] base64:AP8Q"
    with pytest.raises(ValueError):
        Formatter(binary_format="octal")


def test_json_is_pretty_printed_only_when_asked_and_only_when_json() -> None:
    pretty = Formatter(pretty_json=True)
    assert pretty.format('{"a":[1,"é"]}') == '{\n  "a": [\n    1,\n    "é"\n  ]\n}'
    assert pretty.format("not {json") == "not {json"
    assert Formatter().format('{"a":1}') == '{"a":1}'


def test_parse_binary() -> None:
    assert parse_binary("00 ff10", "hex") == b"\x00\xff\x10"
    assert parse_binary("AP8Q", "base64") == b"\x00\xff\x10"
    with pytest.raises(ValueError, match=r"/binary takes hexadecimal bytes, e.g. /binary 00ff10, not 'zz'"):
        parse_binary("zz", "hex")
    with pytest.raises(ValueError, match=r"/binary takes base64"):
        parse_binary("!!", "base64")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_for_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert wants_colour(Tty()) and not wants_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "")  # empty: as if unset (no-color.org)
    assert wants_colour(Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_colour(Tty())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not wants_colour(Tty())
    assert Palette(False).paint("error", "x") == "x"
    assert Palette(True).paint("error", "x") == "\x1b[31mx\x1b[0m"


def test_history_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert history_path() == tmp_path / "wsclient" / "history"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # ignored, as the XDG spec says
    assert history_path() == Path.home() / ".local" / "share" / "wsclient" / "history"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert history_path() == Path.home() / ".local" / "share" / "wsclient" / "history"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert history_path() == tmp_path / "Roaming" / "wsclient" / "history"
