"""Security: TLS verification, masking, secrets, redirects and origins.

Already covered elsewhere, and not repeated here: the default client context's settings
(``tests/test_tls.py``), a private CA or wrong host name failing verification
(``tests/test_client.py``, ``tests/test_transport.py``), an ``https://`` proxy's certificate
being verified and proxy passwords kept out of messages, reprs and debug logs with real
proxies (``tests/test_proxy.py``), mask keys being fresh (``tests/test_frames.py``), the
``Origin`` allow-list (``tests/test_server.py``), and passwords in malformed URIs
(``tests/reliability/test_fuzz.py``).
"""

from __future__ import annotations

import ast
import base64
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

import wsclient
from wsclient.frames import Frame, FrameParser, Opcode

from .rawpeer import RawServer, raw_client, read_frames

PACKAGE = Path(wsclient.__file__).parent


# -- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("same_origin", [False, True], ids=["other-port", "same-host-and-port"])
def test_redirects_carry_credentials_only_to_the_same_host_and_port(run_server, same_origin: bool) -> None:
    seen: Dict[str, Any] = {}

    def final(request: Any) -> None:
        if request.path == "/final":
            seen.update(auth=request.headers.get("Authorization"), cookie=request.headers.get("Cookie"))
        return None

    target = run_server(process_request=final)

    def redirect(request: Any) -> Any:
        if request.path == "/start":
            base = f"ws://127.0.0.1:{first.port}" if same_origin else target.uri.rstrip("/")
            return (302, [("Location", base + "/final")], b"")
        return final(request)

    first = run_server(process_request=redirect)
    for uri, headers in ((f"ws://alice:pw1@127.0.0.1:{first.port}/start", {"Cookie": "session=c1"}),
                         (f"ws://127.0.0.1:{first.port}/start",
                          {"Authorization": "Bearer t1", "Cookie": "session=c1"})):
        seen.clear()
        wsclient.connect(uri, proxy=None, headers=headers).close()
        if same_origin:
            assert seen["auth"] is not None and seen["cookie"] == "session=c1"
        else:
            assert seen == {"auth": None, "cookie": None}
