"""Properties of :mod:`wsclient.utf8`: the incremental validator agrees with Python's own
decoder on every input, and fails at the first byte after which no valid text can follow."""

from __future__ import annotations

from typing import List, Optional

from hypothesis import example, given, strategies as st

from wsclient.exceptions import ProtocolError
from wsclient.utf8 import Utf8Decoder, decode_text

from .strategies import splits

#: Bytes built from UTF-8 fragments and stray bytes, so invalid sequences are near-valid.
_pieces = st.one_of(
    st.text(max_size=4).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=3),
    st.sampled_from([b"\xed\xa0", b"\xed\x9f\xbf", b"\xf4\x90", b"\xf4\x8f\xbf\xbf", b"\xe0\x80",
                     b"\xf0\x8f", b"\xc0\x80", b"\xc2", b"\xef\xbf\xbf", b"\xf5", b"\x80"]),
)
utf8ish = st.lists(_pieces, max_size=8).map(b"".join)


def _possible_prefix(data: bytes) -> bool:
    """Whether some valid UTF-8 text begins with ``data`` (by Python's strict decoder)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.end == len(data)
    return True


def _first_bad_byte(data: bytes) -> Optional[int]:
    for i in range(len(data)):
        if not _possible_prefix(data[: i + 1]):
            return i
    return None


@given(utf8ish | st.binary(max_size=24))
@example(b"\xed\xa0\x80")
@example(b"\xf4\x90\x80\x80")
def test_whole_agrees_with_python(data: bytes) -> None:
    try:
        expected: Optional[str] = data.decode("utf-8")
    except UnicodeDecodeError:
        expected = None
    try:
        got: Optional[str] = decode_text(data)
    except ProtocolError as exc:
        assert exc.code == 1007
        got = None
    assert got == expected


@given(utf8ish | st.binary(max_size=24), st.data())
def test_incremental_agrees_and_fails_at_the_same_byte(data: bytes, draw: st.DataObject) -> None:
    pieces = draw.draw(splits(data))
    decoder = Utf8Decoder()
    bad = _first_bad_byte(data)
    text: List[str] = []
    fed = 0
    for n, piece in enumerate(pieces):
        final = n == len(pieces) - 1
        try:
            text.append(decoder.decode(piece, final))
        except ProtocolError as exc:
            assert exc.code == 1007
            if bad is None:  # Valid prefix throughout: only the end can be incomplete.
                assert final
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    raise AssertionError("valid UTF-8 refused")
            else:  # Failed with the piece holding the first bad byte, not later, not sooner.
                assert fed <= bad < fed + len(piece) or (final and fed + len(piece) <= bad)
            return
        fed += len(piece)
        if bad is not None:
            assert fed <= bad, f"byte {bad} is invalid, yet {fed} bytes were accepted"
    assert "".join(text) == data.decode("utf-8")


@given(st.text(), st.data())
def test_valid_text_in_any_split(text: str, draw: st.DataObject) -> None:
    data = text.encode("utf-8")
    decoder = Utf8Decoder()
    pieces = draw.draw(splits(data))
    out = "".join(decoder.decode(p, i == len(pieces) - 1) for i, p in enumerate(pieces))
    assert out == text


TRICKY = [b"\xed\xa0\x80", b"\xed\xbf", b"\xf4\x90\x80\x80", b"\xe0\x80\x80", b"\xf0\x8f\xbf",
          b"\xc0\xaf", b"a\xf5", b"\xe2\x82", b"\xf0\x9f\x98", b"ok\xed\x9f\xbf"]


def test_tricky_inputs_byte_by_byte() -> None:
    for data in TRICKY:
        decoder = Utf8Decoder()
        bad = _first_bad_byte(data)
        for i in range(len(data)):
            try:
                decoder.decode(data[i : i + 1], i == len(data) - 1)
            except ProtocolError:
                assert bad == i or (bad is None and i == len(data) - 1), (data, i, bad)
                break
        else:
            assert bad is None and data.decode("utf-8") is not None, data
