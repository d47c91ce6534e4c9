"""The layering of DESIGN.md, checked on the source with ``ast``.

- The sans-I/O core imports no socket, ssl, threading, select, selectors, time or asyncio,
  and nothing from the I/O layer.
- Imports point downward only: ``client`` and ``server`` never import each other, and no
  core module imports an I/O module.
- No module defers a package import into a function to dodge a cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import List, Set

import pytest

import wsclient

PACKAGE = Path(wsclient.__file__).parent
CORE = ["version", "exceptions", "uri", "frames", "close", "utf8", "headers", "http11", "handshake", "deflate",
        "extensions", "protocol", "forwarded", "routing"]
FORBIDDEN_IN_CORE = {"socket", "ssl", "threading", "select", "selectors", "time", "asyncio"}


def imports(module: str) -> Set[str]:
    """Every module ``module`` imports: stdlib names as is, package modules as ``.name``."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add((node.module or "").split(".")[0])
            elif node.module:
                found.add("." + node.module.split(".")[0])
            else:  # from . import x
                found.update("." + alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("module", CORE)
def test_core_module_is_sans_io(module: str) -> None:
    found = imports(module)
    assert not found & FORBIDDEN_IN_CORE, sorted(found & FORBIDDEN_IN_CORE)
    package_imports = {name[1:] for name in found if name.startswith(".")}
    assert package_imports <= set(CORE), sorted(package_imports - set(CORE))


def test_client_and_server_never_import_each_other() -> None:
    assert ".server" not in imports("client")
    assert ".client" not in imports("server")


def test_wsgi_sits_beside_the_server() -> None:
    # wsclient.wsgi shares the opening's decision, not the server's accept loop.
    assert ".opening" in imports("wsgi")
    assert not {".server", ".client", ".listener"} & imports("wsgi")


def test_reconnecting_sits_below_the_client_and_reconnect_above_it() -> None:
    # connect(reconnect=...) hands a dial callable down to reconnecting; reconnect() calls
    # connect() from above: no cycle.
    assert {".reconnecting", ".backoff"} <= imports("client")
    assert not {".client", ".redial", ".server"} & imports("reconnecting")
    assert not {".client", ".redial", ".reconnecting", ".connection", ".server"} & imports("backoff")
    assert ".client" in imports("redial")
    assert ".redial" not in imports("client")


@pytest.mark.parametrize("part", ["opening", "listener"])
def test_the_servers_parts_sit_below_the_server(part: str) -> None:
    assert f".{part}" in imports("server")
    assert not {".server", ".client", ".opening", ".listener"} & imports(part)


def test_every_core_module_is_checked() -> None:
    # A new module must be placed in a layer on purpose, not slip through unchecked.
    io_layer = {"__init__", "__main__", "cli", "tls", "proxy", "sockio", "transport", "watcher", "gate", "readiness",
                "channel", "background", "duplex", "connection", "opening", "listener", "client",
                "server", "pytest_plugin", "workers", "options", "inbox", "outbox", "wsgi",
                "backoff", "reconnecting", "redial",
                "cli_status", "cli_show", "cli_session", "cli_connect", "cli_pipe", "cli_interactive",
                "cli_serve", "cli_replay", "cli_demo", "recording", "replay"}
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == set(CORE) | io_layer


@pytest.mark.parametrize("module", sorted(path.stem for path in PACKAGE.glob("*.py")))
def test_no_package_import_inside_a_function(module: str) -> None:
    # An import deferred into a function hides a cycle: the idea belongs elsewhere.
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    deferred = [
        f"line {node.lineno}"
        for func in ast.walk(tree)
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(func)
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("wsclient"))
    ]
    assert not deferred, deferred


def private_accesses(module: str) -> List[str]:
    """Every place ``module`` reads or calls another object's or module's underscore name:
    ``obj._name`` where ``obj`` is not ``self`` or ``cls``, and ``from .x import _name``."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            dunder = name.startswith("__") and name.endswith("__")
            if name.startswith("_") and not dunder:
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    found.append(f"{module}.py:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{module}.py:{node.lineno}: import {alias.name}"
                      for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


@pytest.mark.parametrize("module", sorted(path.stem for path in PACKAGE.glob("*.py")))
def test_no_module_uses_another_objects_private_names(module: str) -> None:
    # A leading underscore means "this object (or module) only": others go through
    # named, documented methods (DESIGN.md, "Compose, do not slice").
    assert private_accesses(module) == []


def test_the_private_name_check_finds_a_violation(tmp_path, monkeypatch) -> None:
    (tmp_path / "bad.py").write_text("def f(ws):\n    return ws._duplex\nfrom .x import _y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert sorted(private_accesses("bad")) == ["bad.py:2: ws._duplex", "bad.py:3: import _y"]
