"""Interoperability tests: wsclient against real peers (Node's ws, websockets, Chromium, nginx)."""
