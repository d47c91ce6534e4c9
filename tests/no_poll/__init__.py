"""The no-poll mode of the test suite (``WSCLIENT_TEST_NO_POLL=1``); see ``sitecustomize``."""
