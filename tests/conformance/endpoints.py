"""wsclient's end of each case, through its public API only: echo what arrives.

The same loop runs in a ``wsclient.serve`` handler (server role) and in a thread around
``wsclient.connect`` (client role), and records how the connection ended for the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import wsclient

from .model import CLOSE_COMMAND


@dataclass
class ApiResult:
    """What the wsclient application saw.

    Attributes:
        exc: what ``recv()``/``send()`` (or ``connect()``) raised, or None.
        close_code: ``ws.close_code`` at the end.
        closed_by_app: the loop called ``ws.close()`` (a :data:`CLOSE_COMMAND` message).
        note: why there is no result.
    """

    exc: Optional[BaseException]
    close_code: Optional[int]
    closed_by_app: bool = False
    note: str = ""

    def __str__(self) -> str:
        if self.note:
            return self.note
        if self.exc is None:
            return f"close() returned, close_code={self.close_code}"
        cause = self.exc.__cause__
        detail = f", cause {type(cause).__name__}: {cause}" if cause is not None else ""
        return f"{type(self.exc).__name__}({getattr(self.exc, 'code', '')}){detail}, close_code={self.close_code}"


def echo_loop(ws: wsclient.WebSocket) -> ApiResult:
    """Echo every message until the connection closes; a :data:`CLOSE_COMMAND` text makes
    this end call ``close(code, reason)`` instead."""
    try:
        while True:
            message = ws.recv()
            if isinstance(message, str) and message.startswith(CLOSE_COMMAND):
                code, _, reason = message[len(CLOSE_COMMAND) :].partition(" ")
                ws.close(int(code), reason)
                return ApiResult(None, ws.close_code, closed_by_app=True)
            ws.send(message)
    except wsclient.ConnectionClosed as exc:
        # send() raises as soon as a close frame went out, before the TCP connection is
        # closed and close_code is set: finish the closing handshake first.
        ws.close()
        return ApiResult(exc, ws.close_code)
    except Exception as exc:  # reported by the test as a wrong outcome
        return ApiResult(exc, ws.close_code, note=f"unexpected {type(exc).__name__}: {exc}")
