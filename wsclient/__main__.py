"""``python -m wsclient``: runs the command line (:func:`wsclient.cli.main`)."""

from __future__ import annotations

import sys

from .cli import build_parser, main

__all__ = ["main", "build_parser"]

if __name__ == "__main__":
    sys.exit(main())
