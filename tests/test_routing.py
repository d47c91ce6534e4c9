"""wsclient.route(): path templates, parameters, and the 404 a server sends before any upgrade."""

from __future__ import annotations

import socket
import threading
from typing import List

import pytest

import wsclient
from wsclient.http11 import Request
from wsclient.routing import Router


def room(ws, name):
    return ("room", name)


def feed(ws):
    return ("feed",)


def test_templates_match_whole_segments_percent_decoded():
    router = wsclient.route({"/chat/{name}": room, "/feed": feed})
    assert router.match("/chat/lobby") == (room, {"name": "lobby"})
    assert router.match("/chat/blue%20sky?x=1") == (room, {"name": "blue sky"})
    assert router.match("/feed?since=3") == (feed, {})
    assert router.match("ws://example.com/feed") == (feed, {})  # an absolute target
    for unmatched in ["/chat/", "/chat/a/b", "/chat", "/feed/", "/", "/other"]:
        assert router.match(unmatched) is None, unmatched


def test_templates_are_tried_in_order():
    first, second = (lambda ws, **kw: 1), (lambda ws, **kw: 2)
    router = wsclient.route({"/a/{x}": first, "/a/b": second})
    assert router.match("/a/b") == (first, {"x": "b"})
    assert router.templates == ["/a/{x}", "/a/b"]


def test_several_parameters():
    router = wsclient.route({"/{org}/rooms/{room}": lambda ws, org, room: None})
    assert router.match("/acme/rooms/42")[1] == {"org": "acme", "room": "42"}


@pytest.mark.parametrize("template", ["chat/{x}", "/a{x}", "/{x}b", "/{1x}", "/{x}/{x}", "/{}", "/{a-b}"])
def test_bad_templates_are_refused_at_once(template):
    with pytest.raises(ValueError):
        wsclient.route({template: feed})


def test_wrong_types_are_refused():
    with pytest.raises(TypeError):
        wsclient.route([("/a", feed)])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wsclient.route({"/a": "not callable"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        wsclient.route({b"/a": feed})  # type: ignore[dict-item]


def test_process_request_answers_404_for_an_unknown_path():
    router = wsclient.route({"/feed": feed})
    assert router.process_request(Request("GET", "/feed")) is None
    refused = router.process_request(Request("GET", "/nope?x"))
    assert refused.status == 404 and b"/nope" in refused.body


def test_a_router_called_by_hand_on_an_unknown_path_raises():
    class FakeRequest:
        path = "/nope"

    class Conn:
        request = FakeRequest()

    with pytest.raises(LookupError):
        Router({"/feed": feed})(Conn())


def test_serve_routes_by_path_with_parameters(run_server):
    seen: List[str] = []

    def chat(ws, name):
        seen.append(name)
        ws.send(f"welcome to {name}")
        for message in ws:
            ws.send(f"{name}: {message}")

    def news(ws):
        ws.send("news")

    server = run_server(wsclient.route({"/chat/{name}": chat, "/news": news}))
    base = server.uri.rstrip("/")
    with wsclient.connect(base + "/chat/blue%20room") as ws:
        assert ws.recv(timeout=5) == "welcome to blue room"
        ws.send("hi")
        assert ws.recv(timeout=5) == "blue room: hi"
    with wsclient.connect(base + "/news?x=1") as ws:
        assert ws.recv(timeout=5) == "news"
    with pytest.raises(wsclient.InvalidStatus) as refused:
        wsclient.connect(base + "/chat/a/b")
    assert refused.value.response.status == 404
    assert seen == ["blue room"]  # the unmatched path never reached a handler


def test_unknown_path_is_404_before_any_upgrade(run_server):
    """A plain GET to an unknown path gets 404, not the 426 an upgrade check would give:
    the path is checked first; a known one then gets 426."""
    server = run_server(wsclient.route({"/feed": lambda ws: None}))
    for path, status in (("/nope", b"404"), ("/feed", b"426")):
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=5) as raw:
            raw.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = raw.recv(4096)
                assert chunk, answer
                answer += chunk
        assert answer.split(b" ")[1] == status, answer


def test_route_and_process_request_together(run_server):
    def auth(request):
        if request.headers["Authorization"] != "Bearer token":
            return 401, {"WWW-Authenticate": "Bearer"}, "no"
        return None

    server = run_server(wsclient.route({"/feed": lambda ws: ws.send("in")}), process_request=auth)
    base = server.uri.rstrip("/")
    with pytest.raises(wsclient.InvalidStatus) as refused:
        wsclient.connect(base + "/other", headers={"Authorization": "Bearer token"})
    assert refused.value.response.status == 404
    with pytest.raises(wsclient.InvalidStatus) as refused:
        wsclient.connect(base + "/feed")
    assert refused.value.response.status == 401
    with wsclient.connect(base + "/feed", headers={"Authorization": "Bearer token"}) as ws:
        assert ws.recv(timeout=5) == "in"
