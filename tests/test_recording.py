"""The recording file format (:mod:`wsclient.recording`): written, read back, and refused when wrong."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from wsclient.recording import FORMAT_VERSION, Event, Recorder, RecordingError, read


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_written_lines_are_the_documented_format_and_read_back(tmp_path: Path) -> None:
    clock = Clock()
    out = io.StringIO()
    recorder = Recorder(out, uri="wss://bob:s3cret@example.com/feed", subprotocol="chat", clock=clock)
    clock.now += 0.25
    recorder.message("server", "héllo\n")
    clock.now += 0.25
    recorder.message("client", b"\x00\xff")
    recorder.control("client", "ping", b"\x01")
    recorder.control("server", "pong", b"\x01")
    clock.now += 1
    recorder.close("client", 1000, "bye")
    recorder.close("server", 1000, "bye")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    header = lines[0]
    assert header["wsclient-recording"] == FORMAT_VERSION
    assert header["uri"] == "wss://bob:***@example.com/feed"  # never the password
    assert header["subprotocol"] == "chat" and header["started"].endswith("Z")
    assert lines[1:] == [
        {"t": 0.25, "from": "server", "type": "text", "text": "héllo\n"},
        {"t": 0.5, "from": "client", "type": "binary", "base64": "AP8="},
        {"t": 0.5, "from": "client", "type": "ping", "base64": "AQ=="},
        {"t": 0.5, "from": "server", "type": "pong", "base64": "AQ=="},
        {"t": 1.5, "from": "client", "type": "close", "code": 1000, "reason": "bye"},
        {"t": 1.5, "from": "server", "type": "close", "code": 1000, "reason": "bye"},
    ]
    assert "héllo" in out.getvalue()  # readable by people: not escaped

    path = tmp_path / "r.jsonl"
    path.write_text(out.getvalue(), encoding="utf-8")
    recording = read(str(path))
    assert (recording.uri, recording.subprotocol) == ("wss://bob:***@example.com/feed", "chat")
    assert [(e.time, e.sender, e.type, e.data, e.code, e.reason, e.line) for e in recording.events] == [
        (0.25, "server", "text", "héllo\n", None, "", 2),
        (0.5, "client", "binary", b"\x00\xff", None, "", 3),
        (0.5, "client", "ping", b"\x01", None, "", 4),
        (0.5, "server", "pong", b"\x01", None, "", 5),
        (1.5, "client", "close", None, 1000, "bye", 6),
        (1.5, "server", "close", None, 1000, "bye", 7),
    ]


def test_unknown_keys_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"wsclient-recording": 1, "future": true}\n\n'
                    '{"t": 1, "from": "server", "type": "text", "text": "x", "note": "later versions"}\n',
                    encoding="utf-8")
    recording = read(str(path))
    assert recording.uri == "" and recording.subprotocol is None
    assert recording.events == [Event(1.0, "server", "text", "x", line=3)]


HEADER = '{"wsclient-recording": 1}\n'


@pytest.mark.parametrize("content, message", [
    ("", "empty, not a wsclient recording"),
    ("not json\n", "line 1: not JSON"),
    ('[1]\n', 'line 1: not a wsclient recording'),
    ('{"wsclient-recording": 2}\n', "line 1: recording format version 2; this wsclient reads 1 to 1"),
    (HEADER + '[]\n', "line 2: an event is a JSON object"),
    (HEADER + '{"t": -1, "from": "client", "type": "text", "text": ""}\n', 'line 2: "t" must be a number'),
    (HEADER + '{"t": "1", "from": "client", "type": "text", "text": ""}\n', 'line 2: "t" must be a number'),
    (HEADER + '{"t": 0, "from": "both", "type": "text", "text": ""}\n', 'line 2: "from" must be'),
    (HEADER + '{"t": 0, "from": "client", "type": "cont"}\n', 'line 2: "type" must be one of'),
    (HEADER + '{"t": 0, "from": "client", "type": "text"}\n', 'line 2: a text message needs "text"'),
    (HEADER + '{"t": 0, "from": "client", "type": "binary", "base64": "***"}\n', 'line 2: "base64" is not valid'),
    (HEADER + '{"t": 0, "from": "client", "type": "ping"}\n', 'line 2: a ping needs "base64"'),
    (HEADER + '{"t": 0, "from": "client", "type": "close", "code": 99}\n', 'line 2: a close needs a "code"'),
    (HEADER + '{"t": 0, "from": "client", "type": "close", "code": 1000, "reason": 5}\n', '"reason" must be'),
])
def test_a_bad_file_is_refused_naming_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RecordingError) as info:
        read(str(path))
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_recorder_refuses_an_undocumented_event() -> None:
    recorder = Recorder(io.StringIO(), uri="ws://h/")
    with pytest.raises(ValueError):
        recorder.event(Event(0.0, "proxy", "text", "x"))
    with pytest.raises(ValueError):
        recorder.event(Event(0.0, "client", "continuation", b""))


def test_describe_cuts_long_payloads() -> None:
    assert Event(0, "client", "text", "a" * 100).describe() == f"text {'a' * 60 + '...'!r}"
    assert Event(0, "client", "binary", bytes(40)).describe() == f"binary 40 bytes {'00' * 32}..."
    assert Event(0, "server", "close", code=4000, reason="x").describe() == "close 4000 'x'"


def test_nothing_is_written_after_end() -> None:
    out = io.StringIO()
    recorder = Recorder(out, uri="ws://h/")
    recorder.close("client", 1000)
    recorder.end()
    recorder.control("server", "pong", b"late")
    assert len(out.getvalue().splitlines()) == 2
