"""The conformance suite: every case against wsclient's server and against its client.

Server role: the driver connects to ``wsclient.serve`` (an echo handler) as a raw client.
Client role: the driver listens as a raw server and ``wsclient.connect`` (an echo loop in a
thread) connects to it. Each case passes when what the driver saw on the wire and what the
wsclient application saw match one of the outcomes the RFC allows.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Dict, List

import pytest

import wsclient

from .cases import for_role
from .driver import encode_frame, client_handshake, server_handshake
from .endpoints import ApiResult, echo_loop
from .model import CLIENT, SERVER, Case, Outcome, Send, as_bytes
from .runner import Observed, Runner, judge_wire

OK_CODES = (1000, 1001, 1005)


def _id(case: Case) -> str:
    return f"{case.group}-{case.id}"


def judge_api(outcome: Outcome, api: ApiResult) -> "str | None":
    """Why what the wsclient application saw is not ``outcome``, or None if it is."""
    if api.note:
        return api.note
    exc = api.exc
    if outcome.kind == "refused":
        return None if isinstance(exc, wsclient.InvalidHandshake) else "connect() did not raise InvalidHandshake"
    if outcome.kind == "closes":
        if not api.closed_by_app or exc is not None or api.close_code != outcome.api_code:
            return f"close() should return with close_code {outcome.api_code}"
        return None
    want = wsclient.ConnectionClosedOK if outcome.api_code in OK_CODES and outcome.kind != "fail" else wsclient.ConnectionClosedError
    if type(exc) is not want or exc.code != outcome.api_code:  # type: ignore[union-attr]
        return f"expected {want.__name__}({outcome.api_code})"
    if api.close_code != outcome.api_code:
        return f"ws.close_code is {api.close_code}, expected {outcome.api_code}"
    if outcome.api_reason is not None and exc.reason != outcome.api_reason:  # type: ignore[union-attr]
        return f"reason {exc.reason!r}, expected {outcome.api_reason!r}"  # type: ignore[union-attr]
    broke = isinstance(exc.__cause__, wsclient.ProtocolError)
    if broke != (outcome.kind == "fail"):
        return "__cause__ should be a ProtocolError" if outcome.kind == "fail" else "__cause__ is a ProtocolError"
    return None


def verdict(case: Case, obs: Observed, api: ApiResult) -> None:
    reasons: List[str] = []
    for outcome in case.expect:
        why = judge_wire(outcome, obs) or judge_api(outcome, api)
        if why is None:
            return
        reasons.append(f"  - {outcome.describe()}: {why}")
    pytest.fail(
        f"{case.id} {case.title}\n  RFC 6455 {case.rfc}\n  on the wire: {obs.describe()}\n"
        f"  the wsclient application: {api}\n  no allowed outcome matches:\n" + "\n".join(reasons),
        pytrace=False,
    )


def _params(role: str) -> list:
    """The role's cases; a case wsclient does not pass yet (``pending``) as a strict xfail."""
    return [
        pytest.param(c, id=_id(c), marks=pytest.mark.xfail(strict=True, reason=c.pending)) if c.pending
        else pytest.param(c, id=_id(c))
        for c in for_role(role)
    ]


def _first_frame(case: Case, *, client: bool) -> bytes:
    """The first action's bytes, for cases that send it with the handshake."""
    if not case.with_handshake:
        return b""
    send = case.script[0]
    assert isinstance(send, Send)
    key = b"\x01\x02\x03\x04" if client else None
    return encode_frame(send.opcode, as_bytes(send.payload), fin=send.fin, rsv=send.rsv, mask_key=key)


def _skip_first(case: Case) -> Case:
    if not case.with_handshake:
        return case
    from dataclasses import replace

    return replace(case, script=case.script[1:])


@pytest.mark.parametrize("case", _params(SERVER))
def test_server_role(case: Case, echo_servers) -> None:
    """The driver is the client; wsclient's server echoes."""
    deadline = time.monotonic() + case.timeout
    port = echo_servers.port(case.options)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    local_port = sock.getsockname()[1]
    try:
        peer, _, negotiated = client_handshake(
            sock, f"127.0.0.1:{port}", offer=case.offer, extra=_first_frame(case, client=True),
            chop=case.handshake_chop, upgrade=case.upgrade, lowercase=case.lowercase,
        )
        if case.accepts is not None:
            assert (negotiated is not None) == case.accepts, f"permessage-deflate offer {'declined' if case.accepts else 'accepted'}"
        obs = Runner(_skip_first(case), peer, wsclient_is_server=True, deadline=deadline).run()
    finally:
        sock.close()
    verdict(case, obs, echo_servers.result(local_port, timeout=10))


@pytest.mark.parametrize("case", _params(CLIENT))
def test_client_role(case: Case) -> None:
    """The driver is the server; a wsclient client echoes."""
    deadline = time.monotonic() + case.timeout
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)
    uri = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
    results: Dict[str, ApiResult] = {}

    def client() -> None:
        try:
            ws = wsclient.connect(uri, proxy=None, ping_interval=None, timeout=10, **dict(case.options))
        except Exception as exc:
            results["api"] = ApiResult(exc, None)
            return
        try:
            results["api"] = echo_loop(ws)
        finally:
            ws.close()

    thread = threading.Thread(target=client, name="conformance-client", daemon=True)
    thread.start()
    try:
        sock, _ = listener.accept()
        try:
            peer, _ = server_handshake(
                sock, answer=case.answer, extra=_first_frame(case, client=False),
                chop=case.handshake_chop, upgrade=case.upgrade, lowercase=case.lowercase,
            )
            if case.accepts is not None:
                assert (peer.deflate is not None) == case.accepts, "permessage-deflate not agreed"
            obs = Runner(_skip_first(case), peer, wsclient_is_server=False, deadline=deadline).run()
        finally:
            sock.close()
    finally:
        listener.close()
        thread.join(15)
    assert not thread.is_alive(), "the wsclient client did not finish"
    verdict(case, obs, results.get("api", ApiResult(None, None, note="no result from the client thread")))
