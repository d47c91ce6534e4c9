"""Group 7, the closing handshake (Autobahn 7.x): RFC 6455 sections 5.5.1, 7 and 7.4.

An endpoint that receives a close frame and has not sent one MUST answer with a close frame
(5.5.1) and then send nothing more; what the peer sends after its close frame is ignored
(no pong, no echo). The server closes TCP first (7.1.1). A close payload is empty, or a
2-byte code plus a UTF-8 reason, at most 125 bytes in all (5.5). Codes that may appear on
the wire: 1000-1003, 1007-1011 and the IANA-registered 1012-1014, and 3000-4999 (7.4).
"""

from __future__ import annotations

from ..model import (
    CLOSE_COMMAND, AwaitClose, Batch, Big, PongOf, Reply, Send, Sync, Text, Hangup, answered, case, close, closes, cont, dropped, fail, ping, text,
)

G = "closing"
VALID = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999)


def _codes() -> list:
    cases = []
    for n, code in enumerate(VALID, 1):
        cases.append(case(f"7.7.{n}", G, f"close with code {code}", [close(code)], answered(code),
                          rfc="7.4.1/7.4.2: a code that may be sent; 5.5.1: answered with a close frame"))
    for n, code in enumerate((1012, 1013, 1014), 14):
        cases.append(case(f"7.7.{n}", G, f"close with code {code} (IANA registry, not in RFC 6455)", [close(code)],
                          answered(code), fail(1002), rfc="7.4.2 reserves 1000-2999; IANA registered it (NON-STRICT)"))
    strict = (0, 999, 1005, 1006, 1015)
    loose = (1004, 1016, 1100, 2000, 2999)
    for n, code in enumerate(strict + loose, 1):
        if code in strict:
            cases.append(case(f"7.9.{n}", G, f"close with code {code}", [close(code)], fail(1002),
                              rfc="7.4.1: 1005, 1006 and 1015 MUST NOT be sent; 7.4.2: 0-999 are not used; 1002"))
        else:
            cases.append(case(f"7.9.{n}", G, f"close with undefined reserved code {code}", [close(code)], fail(1002),
                              answered(code), rfc="7.4.2: reserved for future definition; Autobahn fails it (NON-STRICT)"))
    cases.append(case("7.13.1", G, "close with code 5000", [close(5000)], fail(1002), rfc="7.4.2: no range holds 5000+"))
    cases.append(case("7.13.2", G, "close with code 65535", [close(65535)], fail(1002), rfc="7.4.2"))
    return cases


CASES = [
    case("7.1.1", G, "text, then close at once", [text("Hello World!"), close(1000)],
         answered(1000, Text("Hello World!")), answered(1000),
         rfc="5.5.1: the close reply SHOULD go as soon as practical, so an echo not yet sent may be dropped (NON-STRICT)"),
    case("7.1.2", G, "close twice", [close(1000), close(1000)], answered(1000), rfc="5.5.1: frames after a close are ignored"),
    case("7.1.3", G, "close, then ping", [close(1000), ping(b"Hello World!")], answered(1000),
         rfc="5.5.1: after its close frame an endpoint sends nothing, so no pong"),
    case("7.1.4", G, "close, then text", [close(1000), text("Hello World!")], answered(1000), rfc="5.5.1"),
    case("7.1.5", G, "text fragment, close, last fragment", [text("fragment1", fin=False), close(1000), cont("fragment2")],
         answered(1000), rfc="5.5.1: the message never completes"),
    case("7.1.6", G, "256 KiB text, close, ping", [text(Big(262144)), close(1000), ping(b"Hello World!")],
         answered(1000, Text(Big(262144))), answered(1000), rfc="5.5.1 (NON-STRICT: the echo may or may not precede the close)"),
    case("7.1.7", G, "text echoed, then close", [text("Hello World!"), Sync(1), close(1000)],
         answered(1000, Text("Hello World!")), rfc="5.5.1"),
    case("7.1.8", G, "close frame in one-byte segments", [close(1000, b"bye", chop=1)], answered(1000), rfc="5.5.1"),
    case("7.1.9", G, "text and close in one write", [Batch((text("x"), close(1000)))], answered(1000, Text("x")), answered(1000),
         rfc="5.5.1 (NON-STRICT, as 7.1.1)"),
    case("7.1.10", G, "TCP closed (FIN) without a close frame", [Hangup()], dropped(),
         rfc="7.1.5: no close frame received: the close code is 1006"),
    case("7.1.11", G, "TCP reset without a close frame", [Hangup(reset=True)], dropped(), rfc="7.1.5: 1006"),
    case("7.1.12", G, "text echoed, then TCP closed without a close frame", [text("x"), Sync(1), Hangup()], dropped(Text("x")),
         rfc="7.1.5: 1006"),
    case("7.1.14", G, "close, then TCP FIN at once", [close(4002, b"gone"), Hangup()], answered(4002, reason="gone"),
         rfc="5.5.1, 7.1.5: the close frame arrived, so its code counts"),
    case("7.1.13", G, "fragmented text unfinished, then TCP closed", [text("frag", fin=False), Hangup()], dropped(), rfc="7.1.5"),
    case("7.2.1", G, "wsclient starts the closing handshake (1000)", [text(CLOSE_COMMAND + "1000")], closes(1000),
         rfc="7.1.2; 7.1.1: the server closes TCP first"),
    case("7.2.2", G, "wsclient starts the closing handshake (4001 with a reason)", [text(CLOSE_COMMAND + "4001 bye now")],
         closes(4001), rfc="7.1.2, 7.4.2"),
    case("7.2.3", G, "wsclient starts closing; the driver sends a text and a ping before its reply",
         [text(CLOSE_COMMAND + "1001"), AwaitClose(), ping(b"late"), text("late")], closes(1001, after=(PongOf(b"late"),)),
         rfc="5.5.2: a ping MUST be answered unless a close frame was received (sending one is no excuse);"
             " 5.5.1: no data frame after a close frame, so no echo"),
    case("7.2.4", G, "wsclient starts closing; the driver never answers nor closes (close_timeout=0.5)",
         [text(CLOSE_COMMAND + "1000"), Reply(mute=True)], closes(1000), options={"close_timeout": 0.5},
         rfc="7.1.1: the closing end closes TCP itself after a reasonable time; no close frame came, so the code is its own"),
    case("7.2.5", G, "wsclient starts closing with 1000; the driver answers 1001", [text(CLOSE_COMMAND + "1000"), Reply(1001)],
         closes(1000, api_code=1001), rfc="7.1.5: the close code is the one in the close frame received"),
    case("7.3.1", G, "close with an empty payload", [close(None)], answered(None),
         rfc="5.5.1: the body is optional; 7.1.5: the code is then 1005"),
    case("7.3.2", G, "close with a 1-byte payload", [Send(8, b"\x03")], fail(1002),
         rfc="5.5.1: a body starts with a 2-byte code; 7.4.1 1002"),
    case("7.3.3", G, "close with code 1000 and no reason", [close(1000)], answered(1000), rfc="5.5.1"),
    case("7.3.4", G, "close with code 1000 and a reason", [close(1000, b"Hello World!")], answered(1000, reason="Hello World!"),
         rfc="5.5.1; 7.1.6: the reason is the peer's"),
    case("7.3.5", G, "close with a 123-byte reason (payload 125)", [close(1000, b"*" * 123)], answered(1000, reason="*" * 123),
         rfc="5.5: 125 bytes is the largest control payload"),
    case("7.3.6", G, "close with a 124-byte reason (payload 126)", [close(1000, b"*" * 124)], fail(1002),
         rfc="5.5: control payloads over 125 bytes; 1002"),
    case("7.3.7", G, "close with a multi-byte UTF-8 reason", [close(1000, "κόσμε ✓".encode())], answered(1000, reason="κόσμε ✓"),
         rfc="5.5.1"),
    case("7.5.1", G, "close with an invalid UTF-8 reason", [close(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited")],
         fail(1007), fail(1002), rfc="5.5.1: the reason is UTF-8; 8.1: invalid UTF-8 MUST fail (1007, or 1002: NON-STRICT)"),
    case("7.5.2", G, "close with a reason ending mid-sequence", [close(1000, b"abc\xe2\x82")], fail(1007), fail(1002),
         rfc="8.1 (NON-STRICT as 7.5.1)"),
] + _codes()
