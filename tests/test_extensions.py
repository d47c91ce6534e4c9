"""Tests for wsclient.extensions: extension header syntax and permessage-deflate negotiation."""

from __future__ import annotations

from typing import List

import pytest

from wsclient import extensions
from wsclient.deflate import DeflateOptions, DeflateParams
from wsclient.exceptions import NegotiationError
from wsclient.extensions import client_accept, client_offer, parse_extensions, server_accept

PMD = "permessage-deflate"


# --- Header parsing ----------------------------------------------------------------------


def test_parse_extensions() -> None:
    values = [
        "permessage-deflate; client_max_window_bits, permessage-deflate",
        ' x-foo ;a=1;b="two" ; c = "3" , , permessage-deflate;server_max_window_bits=10\t',
        "",
        'y;q="a\\-b"',
    ]
    assert parse_extensions(values) == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("permessage-deflate", []),
        ("x-foo", [("a", "1"), ("b", "two"), ("c", "3")]),
        ("permessage-deflate", [("server_max_window_bits", "10")]),
        ("y", [("q", "a-b")]),
    ]
    assert parse_extensions([]) == []


@pytest.mark.parametrize(
    "value",
    [
        "permessage-deflate;",
        "permessage-deflate x",
        "a; b=",
        'a; b="unterminated',
        'a; b="not a token"',
        'a; b=""',
        "a;=1",
        ";a",
        "a, ;b",
        "a=b",
        "a; b=c d",
        "pérmessage-deflate",
        "a; b=\"1\"x",
    ],
)
def test_parse_extensions_syntax_errors(value: str) -> None:
    with pytest.raises(NegotiationError):
        parse_extensions([value])


# --- Client negotiation ------------------------------------------------------------------


def test_client_offer() -> None:
    assert client_offer(DeflateOptions()) == "permessage-deflate; client_max_window_bits"
    everything = DeflateOptions(
        client_max_window_bits=10,
        server_max_window_bits=12,
        client_no_context_takeover=True,
        server_no_context_takeover=True,
    )
    assert client_offer(everything) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=12; client_max_window_bits=10"
    )


def test_client_accept_no_extension() -> None:
    assert client_accept(DeflateOptions(), []) is None
    assert client_accept(DeflateOptions(), [""]) is None


def test_client_accept_plain_response() -> None:
    assert client_accept(DeflateOptions(), ["permessage-deflate"]) == DeflateParams()


def test_client_accept_all_parameters() -> None:
    params = client_accept(
        DeflateOptions(),
        [
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            'server_max_window_bits="11"; client_max_window_bits=9'
        ],
    )
    assert params == DeflateParams(11, 9, True, True)


@pytest.mark.parametrize("bits", range(8, 16))
def test_client_accepts_each_window_size(bits: int) -> None:
    response = f"permessage-deflate; server_max_window_bits={bits}"
    server_side = client_accept(DeflateOptions(), [response])
    assert server_side == DeflateParams(server_max_window_bits=bits)
    response = f"permessage-deflate; client_max_window_bits={bits}"
    client_side = client_accept(DeflateOptions(), [response])
    assert client_side == DeflateParams(client_max_window_bits=bits)


def test_client_keeps_its_own_limits() -> None:
    # Section 7.1.2.2: a client that offered 10 never compresses with more.
    params = client_accept(
        DeflateOptions(client_max_window_bits=10), ["permessage-deflate; client_max_window_bits=12"]
    )
    assert params is not None and params.client_max_window_bits == 10
    params = client_accept(DeflateOptions(client_max_window_bits=10), ["permessage-deflate"])
    assert params is not None and params.client_max_window_bits == 10
    # A client that asked for client_no_context_takeover resets whatever the answer.
    params = client_accept(DeflateOptions(client_no_context_takeover=True), ["permessage-deflate"])
    assert params is not None and params.client_no_context_takeover
    # The server may limit itself, or drop its context, without being asked.
    params = client_accept(
        DeflateOptions(server_max_window_bits=12),
        ["permessage-deflate; server_max_window_bits=9; server_no_context_takeover"],
    )
    assert params == DeflateParams(9, 15, True, False)


@pytest.mark.parametrize(
    "options, values",
    [
        (DeflateOptions(), ["x-foo"]),
        (DeflateOptions(), ["permessage-deflate, x-foo"]),
        (DeflateOptions(), ["permessage-deflate, permessage-deflate"]),
        (DeflateOptions(), ["permessage-deflate", "permessage-deflate"]),
        (DeflateOptions(), ["permessage-deflate; foo"]),
        (DeflateOptions(), ["permessage-deflate; foo=1"]),
        (DeflateOptions(), [f"{PMD}; server_no_context_takeover; server_no_context_takeover"]),
        (DeflateOptions(), [f"{PMD}; server_max_window_bits=10; server_max_window_bits=10"]),
        (DeflateOptions(), [f"{PMD}; client_max_window_bits=10; client_max_window_bits=11"]),
        (DeflateOptions(), ["permessage-deflate; server_no_context_takeover=1"]),
        (DeflateOptions(), ["permessage-deflate; client_no_context_takeover=true"]),
        (DeflateOptions(), ["permessage-deflate; server_max_window_bits"]),
        (DeflateOptions(), ["permessage-deflate; client_max_window_bits"]),
        (DeflateOptions(), ["permessage-deflate; server_max_window_bits=7"]),
        (DeflateOptions(), ["permessage-deflate; server_max_window_bits=16"]),
        (DeflateOptions(), ["permessage-deflate; server_max_window_bits=010"]),
        (DeflateOptions(), ["permessage-deflate; server_max_window_bits=+9"]),
        (DeflateOptions(), ["permessage-deflate; client_max_window_bits=0"]),
        (DeflateOptions(), ['permessage-deflate; client_max_window_bits="08"']),
        (DeflateOptions(), ["permessage-deflate; client_max_window_bits=1e1"]),
        (DeflateOptions(server_max_window_bits=10), [f"{PMD}; server_max_window_bits=11"]),
        (DeflateOptions(server_max_window_bits=10), ["permessage-deflate"]),
        (DeflateOptions(server_no_context_takeover=True), ["permessage-deflate"]),
        (DeflateOptions(), ["permessage-deflate; x"]),
    ],
)
def test_client_rejects_invalid_responses(options: DeflateOptions, values: List[str]) -> None:
    with pytest.raises(NegotiationError):
        client_accept(options, values)


def test_client_rejects_client_max_window_bits_it_did_not_offer() -> None:
    # client_offer() always offers the parameter, so this rule is checked on the matching
    # step directly (RFC 7692 section 7.1.2.2).
    with pytest.raises(NegotiationError, match="not offered"):
        extensions._check_response({}, {"client_max_window_bits": 10})
    assert extensions._check_response({"client_max_window_bits": None}, {"client_max_window_bits": 10})


# --- Server negotiation ------------------------------------------------------------------


def test_server_accepts_the_default_offer() -> None:
    answer = server_accept(DeflateOptions(), [client_offer(DeflateOptions())])
    assert answer == ("permessage-deflate", DeflateParams())


def test_server_without_offer() -> None:
    assert server_accept(DeflateOptions(), []) is None
    assert server_accept(DeflateOptions(), ["x-foo; bar, x-webkit-deflate-frame"]) is None


def test_server_picks_the_first_acceptable_offer() -> None:
    values = [
        "x-foo, permessage-deflate; foo=1",  # unknown parameter
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",  # duplicate
        "permessage-deflate; server_max_window_bits=16, permessage-deflate; server_max_window_bits",
        f"{PMD}; client_max_window_bits=7, {PMD}; client_max_window_bits=08",
        "permessage-deflate; server_no_context_takeover=yes",
        f"{PMD}; server_max_window_bits=11, {PMD}; server_max_window_bits=12",
    ]
    answer = server_accept(DeflateOptions(), values)
    assert answer == ("permessage-deflate; server_max_window_bits=11", DeflateParams(11, 15))


def test_server_declines_everything_invalid() -> None:
    values = ["permessage-deflate; foo", "permessage-deflate; server_max_window_bits=99"]
    assert server_accept(DeflateOptions(), values) is None


def test_server_requiring_a_client_window_skips_offers_without_the_parameter() -> None:
    options = DeflateOptions(client_max_window_bits=10)
    values = ["permessage-deflate", "permessage-deflate; client_max_window_bits"]
    assert server_accept(options, values) == (
        "permessage-deflate; client_max_window_bits=10",
        DeflateParams(client_max_window_bits=10),
    )
    assert server_accept(options, ["permessage-deflate"]) is None
    # A smaller hint from the client is kept; a larger one is lowered.
    assert server_accept(options, ["permessage-deflate; client_max_window_bits=9"]) == (
        "permessage-deflate; client_max_window_bits=9",
        DeflateParams(client_max_window_bits=9),
    )
    assert server_accept(options, ["permessage-deflate; client_max_window_bits=12"]) == (
        "permessage-deflate; client_max_window_bits=10",
        DeflateParams(client_max_window_bits=10),
    )


def test_server_requirements_added_to_the_response() -> None:
    options = DeflateOptions(
        server_max_window_bits=10, server_no_context_takeover=True, client_no_context_takeover=True
    )
    assert server_accept(options, ["permessage-deflate"]) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10",
        DeflateParams(10, 15, True, True),
    )
    # The client asking for a smaller server window wins; a larger request is lowered.
    answer = server_accept(options, ["permessage-deflate; server_max_window_bits=9"])
    assert answer is not None and answer[1] == DeflateParams(9, 15, True, True)
    answer = server_accept(options, ["permessage-deflate; server_max_window_bits=14"])
    assert answer is not None and answer[1] == DeflateParams(10, 15, True, True)


def test_server_honours_client_requests() -> None:
    offer = (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=12; client_max_window_bits=11"
    )
    assert server_accept(DeflateOptions(), [offer]) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=12; client_max_window_bits=11",
        DeflateParams(12, 11, True, True),
    )


@pytest.mark.parametrize("bits", range(8, 16))
def test_server_accepts_each_window_size(bits: int) -> None:
    answer = server_accept(DeflateOptions(), [f"permessage-deflate; server_max_window_bits={bits}"])
    assert answer == (f"permessage-deflate; server_max_window_bits={bits}", DeflateParams(bits, 15))
    answer = server_accept(DeflateOptions(), [f"permessage-deflate; client_max_window_bits={bits}"])
    assert answer == (f"permessage-deflate; client_max_window_bits={bits}", DeflateParams(15, bits))
    options = DeflateOptions(client_max_window_bits=bits)
    answer = server_accept(options, ["permessage-deflate; client_max_window_bits"])
    response = "permessage-deflate" + ("" if bits == 15 else f"; client_max_window_bits={bits}")
    assert answer == (response, DeflateParams(15, bits))


def test_server_syntax_error_is_a_negotiation_error() -> None:
    with pytest.raises(NegotiationError) as info:
        server_accept(DeflateOptions(), ["permessage-deflate; ="])
    assert info.value.status == 400
