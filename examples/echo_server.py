"""An echo server: every message goes back to its sender.

Run it, then talk to it with ``python examples/echo_client.py --uri ws://127.0.0.1:8765/``
or ``python -m wsclient connect ws://127.0.0.1:8765/``. Ctrl-C stops it cleanly.
"""

import argparse

import wsclient


def echo(ws: wsclient.WebSocket) -> None:
    for message in ws:
        ws.send(message)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    args = parser.parse_args(argv)
    with wsclient.serve(echo, args.host, args.port) as server:
        print(server.uri, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")


if __name__ == "__main__":
    main()
