"""An echo client: send a few messages and print the answers.

With no ``--uri`` it starts its own echo server on loopback, so it runs anywhere.
"""

import argparse
import threading

import wsclient


def echo(ws: wsclient.WebSocket) -> None:
    for message in ws:
        ws.send(message)


def talk(uri: str) -> list:
    answers = []
    with wsclient.connect(uri, timeout=10, proxy=None) as ws:
        for message in ["Hello", b"\x00binary\xff", "Goodbye"]:
            ws.send(message)
            answer = ws.recv(timeout=10)
            print(f"sent {message!r}, got {answer!r}")
            answers.append(answer)
    return answers


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uri", help="an echo server (default: start one on loopback)")
    args = parser.parse_args(argv)
    if args.uri:
        return talk(args.uri)
    with wsclient.serve(echo) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return talk(server.uri)


if __name__ == "__main__":
    main()
