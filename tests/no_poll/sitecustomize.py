"""Make this Python wait as one without poll() does (Windows), when the suite asks for it.

``WSCLIENT_TEST_NO_POLL=1`` set: :func:`remove_poll` takes ``select.poll``, ``epoll``,
``kqueue`` and ``devpoll`` away and makes ``selectors.DefaultSelector`` the ``select()``
one; :func:`remove_thread_signals` takes ``signal.pthread_kill`` away, which Windows lacks
too (so the interactive command line reads its lines as it does there).
tests/conftest.py calls both in the test process, and puts this folder first on the
``PYTHONPATH`` of the processes the tests start (the command line, the examples, peers), in
which Python imports this module at startup as ``sitecustomize``.
"""

from __future__ import annotations

import os
import select
import selectors
import signal

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


def remove_thread_signals() -> None:
    """Remove ``signal.pthread_kill`` (signalling one thread) from this process.

    SIGUSR1 and the other signals Windows lacks stay: peers the tests start (gunicorn)
    install handlers for them.
    """
    if hasattr(signal, "pthread_kill"):
        delattr(signal, "pthread_kill")


if requested():
    remove_poll()
    remove_thread_signals()
