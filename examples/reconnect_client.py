"""A client that reconnects with exponential backoff and jitter when the server goes away.

With no ``--uri`` it runs a self-contained demonstration: it starts an echo server, talks
to it, restarts the server on the same port, and shows the client coming back.
"""

import argparse
import random
import threading
import time

import wsclient


def connect_with_backoff(uri, *, attempts=10, base=0.1, cap=5.0):
    """Connect, retrying failures after base * 2**n seconds (capped), with full jitter."""
    for attempt in range(attempts):
        try:
            return wsclient.connect(uri, timeout=5, proxy=None)
        except (OSError, wsclient.InvalidHandshake) as exc:  # Refused, reset, 503...
            delay = random.uniform(0, min(cap, base * 2**attempt))
            print(f"attempt {attempt + 1} failed ({exc}); retrying in {delay:.2f} s")
            time.sleep(delay)
    raise ConnectionError(f"gave up on {uri} after {attempts} attempts")


def run_client(uri, messages, pause=0.0):
    """Send each message and read the answer, reconnecting whenever the connection drops.

    Returns the answers and how many times the client reconnected.
    """
    answers, reconnects, ws = [], 0, connect_with_backoff(uri)
    for message in messages:
        time.sleep(pause)
        while True:
            try:
                ws.send(message)
                answers.append(ws.recv(timeout=5))
                break
            except wsclient.ConnectionClosed as exc:
                print(f"connection closed ({exc.code}); reconnecting")
                ws = connect_with_backoff(uri)
                reconnects += 1
    ws.close()
    return answers, reconnects


def echo(ws):
    for message in ws:
        ws.send(message)


def start_server(port=0):
    server = wsclient.serve(echo, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def demo():
    server = start_server()
    uri, port = server.uri, server.port
    results = []
    messages = [f"m{i}" for i in range(20)]
    client = threading.Thread(target=lambda: results.extend(run_client(uri, messages, pause=0.05)))
    client.start()

    def restart():
        nonlocal server
        server.shutdown()  # Clients see 1001 "going away".
        server.server_close()
        time.sleep(0.3)  # The server is down for a moment: connections are refused.
        server = start_server(port)

    time.sleep(0.3)  # Let a few messages through first.
    restart()
    client.join(60)
    server.shutdown()
    server.server_close()
    answers, reconnects = results
    print(f"received {len(answers)} answers after {reconnects} reconnection(s)")
    return answers, reconnects


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uri", help="a server to talk to (default: the self-contained demo)")
    args = parser.parse_args(argv)
    if args.uri:
        return run_client(args.uri, ["hello"] * 10)
    return demo()


if __name__ == "__main__":
    main()
