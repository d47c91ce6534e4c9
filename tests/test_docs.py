"""Every public name of wsclient has a docstring: what ``help()`` and an IDE show a user.

Public means: the names in ``wsclient.__all__``; the methods and properties of those classes
(``WebSocket``, ``WebSocketServer`` and the rest) whose names do not start with ``_``; every
module of the package; the functions and classes in each module's ``__all__``. Docstrings
are read from the object itself, never inherited from a base class. Type aliases (``Message``,
``HeadersLike``...) cannot carry one and are left out.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any, List, Tuple

import pytest

import wsclient


def has_doc(obj: Any) -> bool:
    return bool((getattr(obj, "__doc__", None) or "").strip())


def modules() -> List[ModuleType]:
    found = [wsclient]
    for info in pkgutil.iter_modules(wsclient.__path__):
        found.append(importlib.import_module(f"wsclient.{info.name}"))
    return found


def members(cls: type) -> List[Tuple[str, Any]]:
    """The public methods and properties ``cls`` has from wsclient (its own or a base's)."""
    found = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, name)
        target = raw.fget if isinstance(raw, property) else getattr(raw, "__func__", raw)
        if not (inspect.isfunction(target) or isinstance(raw, property)):
            continue  # data: enum members, constants
        if (getattr(target, "__module__", None) or "").startswith("wsclient"):
            found.append((name, target))
    return found


@pytest.mark.parametrize("name", wsclient.__all__)
def test_top_level_name_has_a_docstring(name: str) -> None:
    assert has_doc(getattr(wsclient, name)), f"wsclient.{name} has no docstring"


@pytest.mark.parametrize("cls", [wsclient.WebSocket, wsclient.WebSocketServer],
                         ids=lambda cls: cls.__name__)
def test_the_two_main_classes_document_what_users_call(cls: type) -> None:
    names = [name for name, _ in members(cls)]
    for expected in ("send", "recv", "close", "ping") if cls is wsclient.WebSocket else (
            "serve_forever", "shutdown", "server_close"):
        assert expected in names  # the walk does see the methods users call


def test_websocket_documents_its_plain_attributes() -> None:
    """``request``, ``response`` and ``subprotocol`` are plain attributes, which cannot hold
    docstrings: the class docstring describes them."""
    for attribute in ("request", "response", "subprotocol"):
        assert f"{attribute}:" in (wsclient.WebSocket.__doc__ or ""), attribute


@pytest.mark.parametrize("name", [name for name in wsclient.__all__
                                  if inspect.isclass(getattr(wsclient, name))])
def test_public_methods_have_docstrings(name: str) -> None:
    cls = getattr(wsclient, name)
    missing = [member for member, target in members(cls) if not has_doc(target)]
    assert not missing, f"wsclient.{name}: no docstring on {', '.join(missing)}"


def test_every_module_and_its_exports_have_docstrings() -> None:
    missing = []
    for module in modules():
        if not has_doc(module):
            missing.append(module.__name__)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not has_doc(obj):
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"no docstring: {', '.join(missing)}"
