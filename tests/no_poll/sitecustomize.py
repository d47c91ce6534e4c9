"""Make this Python wait as one without poll() does (Windows), when the suite asks for it.

``WSCLIENT_TEST_NO_POLL=1`` set: :func:`remove_poll` takes ``select.poll``, ``epoll``,
``kqueue`` and ``devpoll`` away and makes ``selectors.DefaultSelector`` the ``select()``
one. tests/conftest.py calls it in the test process, and puts this folder first on the
``PYTHONPATH`` of the processes the tests start (the command line, the examples, peers), in
which Python imports this module at startup as ``sitecustomize``.
"""

from __future__ import annotations

import os
import select
import selectors

VARIABLE = "WSCLIENT_TEST_NO_POLL"


def requested() -> bool:
    """Whether the environment asks for the no-poll mode."""
    return os.environ.get(VARIABLE, "") not in ("", "0")


def remove_poll() -> None:
    """Remove every waiting mechanism but ``select()`` from this process."""
    for name in ("poll", "epoll", "kqueue", "devpoll"):
        if hasattr(select, name):
            delattr(select, name)
    selectors.DefaultSelector = selectors.SelectSelector  # type: ignore[misc]


if requested():
    remove_poll()
