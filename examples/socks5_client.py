"""A client that reaches the server through a SOCKS5 proxy.

    python examples/socks5_client.py --proxy socks5://127.0.0.1:1080 --uri ws://example.com/

``socks5h://`` lets the proxy resolve the host name; ``user:password@`` in the proxy URL
authenticates. With no ``--uri`` it starts an echo server on loopback to talk to.
"""

import argparse
import threading

import wsclient


def echo(ws: wsclient.WebSocket) -> None:
    for message in ws:
        ws.send(message)


def talk(uri: str, proxy: str) -> str:
    with wsclient.connect(uri, proxy=proxy, timeout=10) as ws:
        ws.send("through the proxy")
        answer = ws.recv(timeout=10)
    print(f"got {answer!r} via {proxy.split('@')[-1]}")
    return answer


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proxy", required=True, help="e.g. socks5://127.0.0.1:1080")
    parser.add_argument("--uri", help="the server (default: an echo server on loopback)")
    args = parser.parse_args(argv)
    if args.uri:
        return talk(args.uri, args.proxy)
    with wsclient.serve(echo) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return talk(server.uri, args.proxy)


if __name__ == "__main__":
    main()
