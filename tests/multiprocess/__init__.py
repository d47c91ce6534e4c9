"""Beyond one process: workers on one port, reverse proxies in front, Redis between them."""
