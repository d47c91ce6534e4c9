"""X-Forwarded-For behind trusted proxies: the right-most untrusted entry, in memory.

The end-to-end checks (through real nginx and HAProxy, with a server that was and was not
told to trust them) are in ``tests/multiprocess``.
"""

from __future__ import annotations

import ipaddress

import pytest

from wsclient.forwarded import client_address, parse_entry, parse_trusted

TRUSTED = parse_trusted(["127.0.0.1", "10.0.0.0/8", "2001:db8:1::/48", "unix"])


@pytest.mark.parametrize("text, expected", [
    ("203.0.113.7", "203.0.113.7"),
    ("  203.0.113.7 ", "203.0.113.7"),
    ("203.0.113.7:5000", "203.0.113.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
])
def test_entries_that_are_addresses(text: str, expected: str) -> None:
    assert str(parse_entry(text)) == expected


@pytest.mark.parametrize("text", ["unknown", "_hidden", "", "203.0.113.7:http", "[2001:db8::1",
                                  "[2001:db8::1]x", "example.com", "300.1.1.1", "1.2.3.4:5:6"])
def test_entries_that_are_not_addresses(text: str) -> None:
    assert parse_entry(text) is None


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", ["203.0.113.7"], None) == "127.0.0.1"


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    assert client_address("198.51.100.9", ["203.0.113.7"], TRUSTED) == "198.51.100.9"


def test_a_trusted_peer_without_the_header_is_the_client() -> None:
    assert client_address("127.0.0.1", None, TRUSTED) == "127.0.0.1"
    assert client_address("127.0.0.1", [], TRUSTED) == "127.0.0.1"


def test_one_trusted_proxy() -> None:
    assert client_address("127.0.0.1", ["203.0.113.7"], TRUSTED) == "203.0.113.7"


def test_the_right_most_untrusted_entry_wins_over_a_spoofed_left_part() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended what it saw.
    assert client_address("127.0.0.1", ["1.1.1.1, 203.0.113.7"], TRUSTED) == "203.0.113.7"


def test_a_chain_of_trusted_proxies_is_walked() -> None:
    header = ["1.1.1.1, 203.0.113.7, 10.1.2.3, 10.9.9.9"]
    assert client_address("127.0.0.1", header, TRUSTED) == "203.0.113.7"


def test_several_header_lines_are_one_list_in_order() -> None:
    assert client_address("127.0.0.1", ["1.1.1.1, 203.0.113.7", "10.1.2.3"], TRUSTED) == "203.0.113.7"


def test_when_every_entry_is_trusted_the_left_most_is_the_client() -> None:
    assert client_address("127.0.0.1", ["10.0.0.5, 10.0.0.6"], TRUSTED) == "10.0.0.5"


def test_a_garbled_entry_stops_at_the_trusted_hop_that_wrote_it() -> None:
    assert client_address("127.0.0.1", ["203.0.113.7, unknown, 10.0.0.6"], TRUSTED) == "10.0.0.6"
    assert client_address("127.0.0.1", ["unknown"], TRUSTED) == "127.0.0.1"
    assert client_address("127.0.0.1", ["203.0.113.7,"], TRUSTED) == "127.0.0.1"


def test_ipv6_entries_and_networks() -> None:
    assert client_address("2001:db8:1::5", ["[2001:db8:2::7]:1234"], TRUSTED) == "2001:db8:2::7"
    assert client_address("2001:db8:2::5", ["203.0.113.7"], TRUSTED) == "2001:db8:2::5"


def test_a_dual_stack_socket_peer_in_mapped_form_is_trusted_as_ipv4() -> None:
    assert client_address("::ffff:127.0.0.1", ["203.0.113.7"], TRUSTED) == "203.0.113.7"
    assert client_address("::ffff:127.0.0.1", ["203.0.113.7"], parse_trusted(["::ffff:127.0.0.1"])) == "203.0.113.7"


def test_unix_socket_peers() -> None:
    assert client_address("", ["203.0.113.7"], TRUSTED) == "203.0.113.7"
    assert client_address("", ["203.0.113.7"], parse_trusted(["127.0.0.1"])) is None
    assert client_address("", None, None) is None
    assert client_address(None, ["unknown"], TRUSTED) is None


def test_parse_trusted() -> None:
    trusted = parse_trusted(["192.0.2.1", "10.0.0.0/8", "::1"])
    assert ipaddress.ip_address("192.0.2.1") in trusted
    assert ipaddress.ip_address("192.0.2.2") not in trusted
    assert ipaddress.ip_address("10.200.0.1") in trusted
    assert ipaddress.ip_address("::1") in trusted
    assert not trusted.unix and "unix" in repr(TRUSTED)
    assert "not an address" not in trusted


@pytest.mark.parametrize("entries", [["localhost"], ["10.0.0.1/8"], ["10.0.0.0/33"], [""]])
def test_parse_trusted_refuses_what_is_not_an_address(entries) -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        parse_trusted(entries)


def test_parse_trusted_refuses_a_single_string() -> None:
    with pytest.raises(TypeError):
        parse_trusted("127.0.0.1")  # type: ignore[arg-type]
