"""The conformance suite: a raw-frame driver plays the peer against wsclient's client and server.

See docs/development.rst ("Conformance suite") and ``cases/`` for what is covered.
"""
