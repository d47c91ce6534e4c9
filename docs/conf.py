"""Sphinx configuration for wsclient's documentation.

Build: ``python -m sphinx -W -n -b html docs docs/_build/html`` (warnings are errors and
every cross-reference must resolve; ``tests/test_docs_build.py`` runs exactly that, and the
doctest builder for the ``testcode`` examples).
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any, List

from docutils import nodes
from docutils.parsers.rst import Directive, directives

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document this checkout, not an installed copy

import wsclient  # noqa: E402
from wsclient import cli  # noqa: E402

project = "wsclient"
author = "wsclient maintainers"
copyright = "2026, wsclient maintainers"
version = release = wsclient.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
]

html_theme = "furo"
html_title = f"wsclient {release}"
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
maximum_signature_line_length = 88  # long signatures: one parameter per line
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# The docs build offline, so there is no intersphinx inventory for the standard library
# and the dependencies: references to their names (in signatures and docstrings) are
# left unresolved on purpose. Only names outside wsclient are listed here; an unresolved
# wsclient name still fails the build.
_EXTERNAL = (
    r"(ssl|socket|socketserver|threading|typing|collections|types|os|io|logging|datetime"
    r"|email|http|json|array|enum|pathlib|subprocess|argparse|functools|inspect|zlib"
    r"|select|selectors|signal|contextlib|dataclasses|re|sys|time|urllib|base64|hashlib"
    r"|ipaddress|multiprocessing|shlex|struct|secrets|codecs|errno|math|warnings|queue"
    r"|random|_typeshed|numpy|pytest|_pytest|werkzeug|flask|gunicorn|redis|truststore"
    r"|certifi|socks)(\..+)?"
)
nitpick_ignore_regex = [
    (r"py:.*", _EXTERNAL),
    # builtins and typing names that Sphinx cannot link without intersphinx
    (r"py:.*", r"(Ellipsis|NoneType|TracebackType|Path|PathLike|SSLContext|Event"
               r"|socket|Callable|Iterable|Iterator|Mapping|Sequence|Any|Optional|Union"
               r"|Literal|Type|BaseException|Exception|OSError|ValueError|TypeError"
               r"|TimeoutError|AssertionError|KeyError|RuntimeError|float|int|str|bytes"
               r"|bool|list|dict|tuple|object|None|memoryview|bytearray|Buffer|Self"
               r"|NoReturn|Generator|Collection|MutableMapping|IO|TextIO|BinaryIO)"),
    # Internal objects that appear in public signatures (a TypeVar, the parts a
    # connection is composed of): design.rst describes them; they are not API.
    (r"py:class", r"wsclient\.(connection\.W|opening\.Negotiator|watcher\.Watcher|gate\.Gate"
                  r"|protocol\.Protocol|protocol\.PreparedMessage|options\.ConnectionOptions)"),
    (r"py:class", r"HeadersLike"),  # the alias, unqualified in signatures
    (r"py:class", r"x in the interval \[0, 1\)\."),  # random.random's docstring, as a default
]

doctest_global_setup = """
import os
os.environ["no_proxy"] = "*"  # no proxy from the environment between the examples and loopback
import wsclient
"""


class CommandLineHelp(Directive):
    """``.. wsclient-help:: [SUBCOMMAND]``: the ``--help`` text of ``python -m wsclient``
    (or of a subcommand), taken from the parser itself, so the page cannot drift from it."""

    optional_arguments = 1
    has_content = False

    def run(self) -> List[Any]:
        argv = (self.arguments or []) + ["--help"]
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.suppress(SystemExit):
            cli.build_parser().parse_args(argv)
        text = output.getvalue().replace(" sphinx-build ", " wsclient ")
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Any) -> None:
    directives.register_directive("wsclient-help", CommandLineHelp)
