"""Properties of :mod:`wsclient.extensions`: header values round-trip through the parser
with any optional whitespace, and every offer a client makes that a server accepts is
accepted by the client with the same parameters."""

from __future__ import annotations

from typing import List, Optional, Tuple

from hypothesis import given, strategies as st

from wsclient.deflate import DeflateOptions
from wsclient.exceptions import NegotiationError
from wsclient.extensions import client_accept, client_offer, parse_extensions, server_accept

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=10)
ows = st.text(alphabet=" \t", max_size=2)
params = st.lists(st.tuples(tokens, st.none() | tokens, st.booleans()), max_size=4)
extensions = st.lists(st.tuples(tokens, params), max_size=4)


@given(exts=extensions, data=st.data())
def test_header_round_trip(exts: List[Tuple[str, list]], data: st.DataObject) -> None:
    parts = []
    for name, ps in exts:
        text = name
        for pname, value, quoted in ps:
            text += data.draw(ows) + ";" + data.draw(ows) + pname
            if value is not None:
                text += data.draw(ows) + "=" + data.draw(ows) + (f'"{value}"' if quoted else value)
        parts.append(text + data.draw(ows))
    header = ("," + data.draw(ows)).join(parts)
    assert parse_extensions([header]) == [(n, [(p, v) for p, v, _ in ps]) for n, ps in exts]


options = st.builds(
    DeflateOptions,
    client_max_window_bits=st.none() | st.integers(8, 15),
    server_max_window_bits=st.none() | st.integers(8, 15),
    client_no_context_takeover=st.booleans(),
    server_no_context_takeover=st.booleans(),
)


@given(client=options, server=options)
def test_negotiation_agrees(client: DeflateOptions, server: DeflateOptions) -> None:
    answer = server_accept(server, [client_offer(client)])
    if answer is None:
        return
    header, server_params = answer
    client_params = client_accept(client, [header])
    assert client_params == server_params
    if client.client_max_window_bits is not None:
        assert client_params.client_max_window_bits <= client.client_max_window_bits
    if client.server_max_window_bits is not None:
        assert client_params.server_max_window_bits <= client.server_max_window_bits
    if server.server_max_window_bits is not None:
        assert server_params.server_max_window_bits <= server.server_max_window_bits


@given(client=options, text=st.text(max_size=60))
def test_any_answer_is_accepted_or_refused(client: DeflateOptions, text: str) -> None:
    try:
        client_accept(client, [text])
    except NegotiationError:
        pass
    try:
        server_accept(client, [text])
    except NegotiationError:
        pass
