"""Coverage-guided fuzzing of every wsclient parser that reads a peer's bytes, with atheris.

:mod:`fuzz.targets` holds the targets (one function per parser, with the exceptions it
may raise on bad input: anything else is a crash); ``fuzz/corpus/<target>/`` their seed
inputs; ``python -m fuzz`` runs them (see :mod:`fuzz.__main__`). Nothing here imports
wsclient at import time: atheris must instrument it as it is first imported.
"""
