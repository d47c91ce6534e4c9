"""Routing by path: one handler per path template, ``{name}`` segments as arguments.

:func:`route` turns ``{"/chat/{room}": chat, "/feed": feed}`` into a :class:`~wsclient.routing.Router`, a
handler for :func:`wsclient.serve` (or :class:`wsclient.wsgi.WebSocketApp`). The server
asks the router before any upgrade (:meth:`Router.process_request`), so a path no
template matches is answered ``404`` and never becomes a connection; a matching one
runs ``handler(ws, **params)``, each ``{name}`` segment percent-decoded. Templates are
tried in the order given; the query string takes no part in matching.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Pattern, Tuple
from urllib.parse import unquote, urlsplit

from .handshake import reject_response
from .http11 import Request, Response

__all__ = ["Router", "route", "request_hook"]

#: ``{name}``: a segment parameter; the name is a Python identifier (it becomes a keyword).
_PARAM_RE = re.compile(r"\{([^{}]*)\}")


class Router:
    """Handlers chosen by the request's path; build one with :func:`~wsclient.route`.

    Args:
        routes: path templates (``"/chat/{room}"``) mapped to handlers.

    Raises:
        TypeError: ``routes`` is not a mapping of str to callables.
        ValueError: a template that does not start with ``/``, holds a parameter that is
            not a Python identifier, repeats a name, or has text beside a parameter in
            one segment (``/a{b}``).
    """

    def __init__(self, routes: Mapping[str, Callable[..., Any]]) -> None:
        if not isinstance(routes, Mapping):
            raise TypeError(f"routes must be a mapping of path templates to handlers, not {type(routes).__name__}")
        self._routes: List[Tuple[str, Pattern[str], Callable[..., Any]]] = []
        for template, handler in routes.items():
            if not isinstance(template, str):
                raise TypeError(f"a path template must be a str, not {type(template).__name__}")
            if not callable(handler):
                raise TypeError(f"the handler for {template!r} must be callable")
            self._routes.append((template, _compile(template), handler))

    @property
    def templates(self) -> List[str]:
        """The path templates, in the order they are tried."""
        return [template for template, _, _ in self._routes]

    def match(self, path: str) -> Optional[Tuple[Callable[..., Any], Dict[str, str]]]:
        """The handler for a request target and its parameters.

        Args:
            path: the request target (path and query, or an absolute URI), as sent.

        Returns:
            ``(handler, params)`` for the first template that matches, else None.
        """
        target = urlsplit(path).path if "://" in path else path.partition("?")[0]
        for _, pattern, handler in self._routes:
            found = pattern.fullmatch(target)
            if found is not None:
                return handler, {name: unquote(value) for name, value in found.groupdict().items()}
        return None

    def process_request(self, request: Request) -> Optional[Response]:
        """The server's check before the upgrade: ``404`` for a path no template matches.

        Args:
            request: the client's request.

        Returns:
            None to go on with the upgrade, else the ``404`` response.
        """
        if self.match(request.path) is None:
            return reject_response(404, f"no WebSocket endpoint at {request.path.partition('?')[0]}")
        return None

    def __call__(self, ws: Any) -> Any:
        """Run the handler matching ``ws.request.path`` as ``handler(ws, **params)``.

        Raises:
            LookupError: no template matches (the server answers these ``404`` before
                the upgrade, so only a router called by hand meets it).
        """
        found = self.match(ws.request.path)
        if found is None:
            raise LookupError(f"no route for {ws.request.path!r}")
        handler, params = found
        return handler(ws, **params)

    def __repr__(self) -> str:
        return f"<wsclient.Router {self.templates!r}>"


def route(routes: Mapping[str, Callable[..., Any]]) -> Router:
    """A handler that dispatches on the request's path.

    ``wsclient.serve(wsclient.route({"/chat/{room}": chat, "/feed": feed}))`` runs
    ``chat(ws, room="lobby")`` for ``/chat/lobby`` and answers ``404`` before any
    upgrade for a path no template matches. A ``{name}`` matches one non-empty path
    segment, percent-decoded; templates are tried in the order given; the query string
    is ignored for matching (it stays in ``ws.request.path``).

    Args:
        routes: path templates mapped to handlers, each called as ``handler(ws, **params)``.

    Returns:
        The router, to pass as the server's handler.

    Raises:
        TypeError, ValueError: as :class:`~wsclient.routing.Router`.
    """
    return Router(routes)


def request_hook(
    handler: Callable[..., Any], process_request: Optional[Callable[[Request], Any]]
) -> Optional[Callable[[Request], Any]]:
    """The ``process_request`` of a server whose handler may be a :class:`~wsclient.routing.Router`.

    Args:
        handler: the server's handler.
        process_request: the user's hook, or None.

    Returns:
        ``process_request`` itself when ``handler`` is no router; else a hook that asks
        the router first (its ``404`` for an unknown path), then ``process_request``.

    Raises:
        TypeError: ``process_request`` is neither callable nor None.
    """
    if process_request is not None and not callable(process_request):
        raise TypeError(f"process_request must be callable or None, not {type(process_request).__name__}")
    if not isinstance(handler, Router):
        return process_request
    if process_request is None:
        return handler.process_request
    router, user_hook = handler, process_request

    def routed(request: Request) -> Any:
        refused = router.process_request(request)
        return refused if refused is not None else user_hook(request)

    return routed


def _compile(template: str) -> Pattern[str]:
    """The regular expression of a path template.

    Raises:
        ValueError: as :class:`~wsclient.routing.Router` documents.
    """
    if not template.startswith("/"):
        raise ValueError(f"path template {template!r} must start with /")
    names: List[str] = []
    parts: List[str] = []
    for segment in template.split("/"):
        found = _PARAM_RE.fullmatch(segment)
        if found is None:
            if "{" in segment or "}" in segment:
                raise ValueError(f"path template {template!r}: a parameter must be a whole segment, like /{{name}}")
            parts.append(re.escape(segment))
            continue
        name = found.group(1)
        if not name.isidentifier():
            raise ValueError(f"path template {template!r}: {name!r} is not a valid parameter name")
        if name in names:
            raise ValueError(f"path template {template!r} repeats the parameter {name!r}")
        names.append(name)
        parts.append(f"(?P<{name}>[^/]+)")
    return re.compile("/".join(parts))
