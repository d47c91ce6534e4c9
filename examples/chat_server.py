"""A chat server: every message is broadcast to every connected client.

Text messages go out as ``"HOST:PORT: text"``; binary messages are relayed as they are (binary,
unchanged), since there is no text to prefix them with.

``wsclient.broadcast`` never waits for a client that stopped reading: it skips it for that
message and returns it, and this server logs each one it skipped.
Try it with two terminals running ``python -m wsclient connect ws://127.0.0.1:8765/``.
"""

import argparse
import logging
from typing import Union

import wsclient


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    args = parser.parse_args(argv)

    def send_all(message: Union[str, bytes]) -> None:
        for skipped in wsclient.broadcast(server.connections, message):
            logging.warning("%s is not reading: skipped %r", skipped.remote_address, message[:40])

    def chat(ws: wsclient.WebSocket) -> None:
        name = f"{ws.remote_address[0]}:{ws.remote_address[1]}"
        send_all(f"* {name} joined")
        for message in ws:
            send_all(f"{name}: {message}" if isinstance(message, str) else message)

    with wsclient.serve(chat, args.host, args.port) as server:
        print(server.uri, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")


if __name__ == "__main__":
    main()
