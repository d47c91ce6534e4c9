"""The package's version: the one place it is written.

``setup.cfg`` reads it (``version = attr: wsclient.version.__version__``), ``wsclient``
re-exports it as ``wsclient.__version__``, and the handshake puts it in the default
``User-Agent`` and ``Server`` headers. This module imports nothing, so any module may
import it without a cycle.
"""

__version__ = "0.1.0"
