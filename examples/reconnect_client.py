"""A feed client that survives server restarts: connect(reconnect=...) with on_connect.

The client subscribes in ``on_connect``, which runs after every (re)connection, so the
subscription comes back with the connection. Each message carries a sequence number: the
client resumes from the next one it needs and skips any it already has (messages received
before a drop are still returned, so a resumed feed may repeat a few).

With no ``--uri`` it runs a self-contained demonstration: it starts a feed server, follows
the feed, restarts the server on the same port part-way, and shows the client coming back
on its own.
"""

import argparse
import logging
import threading

import wsclient

FEED_LENGTH = 20


class FeedClient:
    """Follows a feed of ``m<sequence>`` messages, resuming after each reconnection."""

    def __init__(self, uri, topic="prices"):
        self.topic = topic
        self.next_seq = 0  # The first sequence number not yet handled.
        self.received = []
        self.ws = wsclient.connect(
            uri,
            proxy=None,
            reconnect=wsclient.Backoff(initial=0.1, maximum=2.0),
            on_connect=self.subscribe,
        )

    def subscribe(self, ws):
        """Runs after every (re)connection, before anything queued is sent."""
        ws.send(f"subscribe {self.topic} from {self.next_seq}")

    def follow(self, count, on_message=None):
        """Handle messages until ``count`` distinct ones arrived; return them."""
        while self.next_seq < count:
            message = self.ws.recv(timeout=30)
            seq = int(message[1:])
            if seq < self.next_seq:
                continue  # A repeat after resuming.
            self.next_seq = seq + 1
            self.received.append(message)
            if on_message is not None:
                on_message(seq)
        return self.received

    def close(self):
        self.ws.close()


def feed_until(limit):
    """The demo server's handler: ``subscribe <topic> from <n>`` starts the feed at ``n``;
    it publishes up to ``limit`` (a server about to be restarted stops early)."""

    def feed(ws):
        _, _topic, _, start = ws.recv().split()
        for seq in range(int(start), limit):
            ws.send(f"m{seq}")
        for _ in ws:  # Stay connected until the client leaves or the server stops.
            pass

    return feed


def start_server(port=0, limit=FEED_LENGTH):
    server = wsclient.serve(feed_until(limit), "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def demo():
    server = start_server(limit=FEED_LENGTH // 2)  # Goes down half-way through the feed.
    port = server.port
    client = FeedClient(server.uri)
    restarted = threading.Event()

    def restart():
        nonlocal server
        server.shutdown()  # The client sees 1001 "going away" and reconnects.
        server.server_close()
        server = start_server(port)  # Same port: connections are refused meanwhile.
        restarted.set()

    def on_message(seq):
        if seq == FEED_LENGTH // 2 - 1 and not restarted.is_set():
            threading.Thread(target=restart).start()

    answers = client.follow(FEED_LENGTH, on_message)
    reconnects = client.ws.reconnects
    client.close()
    restarted.wait(30)
    server.shutdown()
    server.server_close()
    print(f"received {len(answers)} messages after {reconnects} reconnection(s)")
    return answers, reconnects


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uri", help="a feed server to follow (default: the self-contained demo)")
    parser.add_argument("--verbose", action="store_true", help="log each drop and attempt")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO)
    if args.uri:
        client = FeedClient(args.uri)
        try:
            for message in client.follow(10):
                print(message)
        finally:
            client.close()
        return client.received, client.ws.reconnects
    return demo()


if __name__ == "__main__":
    main()
