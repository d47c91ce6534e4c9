"""The conformance suite: a raw-frame driver plays the peer against wsclient's client and server.

See README.rst ("Conformance suite") and ``cases/`` for what is covered.
"""
