"""A chat server: every message is broadcast to every connected client.

``wsclient.broadcast`` never waits for a slow client: it skips it for that message.
Try it with two terminals running ``python -m wsclient connect ws://127.0.0.1:8765/``.
"""

import argparse

import wsclient


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    args = parser.parse_args(argv)

    def chat(ws: wsclient.WebSocket) -> None:
        name = f"{ws.remote_address[0]}:{ws.remote_address[1]}"
        wsclient.broadcast(server.connections, f"* {name} joined")
        for message in ws:
            wsclient.broadcast(server.connections, f"{name}: {message}")

    with wsclient.serve(chat, args.host, args.port) as server:
        print(server.uri, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")


if __name__ == "__main__":
    main()
