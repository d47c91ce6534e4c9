"""A chat server whose messages reach the clients of every process, through Redis pub/sub.

``wsclient.broadcast`` reaches the clients of one process. With several processes (behind
nginx or HAProxy, or sharing a port with ``--reuse-port``), every process subscribes to one
Redis channel and publishes each chat message to it; Redis hands every message to every
subscribed process, and each one broadcasts it to its own clients. A process never
broadcasts its own messages directly: they come back from Redis like everyone else's, so
all clients see all messages in the one order Redis gives them.

The pattern to copy is :class:`RedisRelay` (about thirty lines). Try it::

    redis-server --port 6379 --save '' &
    python examples/redis_chat.py --port 8001 &
    python examples/redis_chat.py --port 8002 &
    python -m wsclient connect ws://127.0.0.1:8001/     # in one terminal
    python -m wsclient connect ws://127.0.0.1:8002/     # in another

Needs the ``redis`` package (``pip install redis``): a dependency of this example, not of
wsclient.
"""

import argparse
import threading

import redis

import wsclient


class RedisRelay:
    """Publishes to a Redis channel; relays what the channel carries to this process's clients.

    Args:
        url: the Redis server, e.g. ``redis://127.0.0.1:6379/0``.
        channel: the pub/sub channel every process of the service uses.
    """

    def __init__(self, url: str, channel: str) -> None:
        self.channel = channel
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.redis.pubsub()
        self.pubsub.subscribe(channel)
        # Wait for Redis to confirm, so no message published from now on is missed.
        confirmation = self.pubsub.get_message(timeout=10)
        if confirmation is None or confirmation["type"] != "subscribe":
            raise RuntimeError(f"Redis did not confirm the subscription: {confirmation!r}")
        self.stopping = threading.Event()
        self.thread = None

    def publish(self, message: str) -> None:
        """Send ``message`` to the clients of every process (this one included)."""
        self.redis.publish(self.channel, message)

    def start(self, server: wsclient.WebSocketServer) -> None:
        """Relay every message of the channel to ``server``'s clients, from a thread."""

        def relay() -> None:
            while not self.stopping.is_set():
                item = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if item is not None and item["type"] == "message":
                    # Never waits: a client busy at this instant misses this message.
                    wsclient.broadcast(server.connections, item["data"])

        self.thread = threading.Thread(target=relay, name="redis-relay", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(5)
        self.pubsub.close()
        self.redis.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis server's URL")
    parser.add_argument("--channel", default="wsclient-chat", help="the pub/sub channel")
    parser.add_argument("--reuse-port", action="store_true", help="share the port with other processes")
    args = parser.parse_args(argv)

    relay = RedisRelay(args.redis, args.channel)

    def chat(ws: wsclient.WebSocket) -> None:
        name = f"{ws.remote_address[0]}:{ws.remote_address[1]}"
        relay.publish(f"* {name} joined")
        for message in ws:
            relay.publish(f"{name}: {message}")

    try:
        with wsclient.serve(chat, args.host, args.port, reuse_port=args.reuse_port) as server:
            relay.start(server)
            print(server.uri, flush=True)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                print("stopped")
    finally:
        relay.close()


if __name__ == "__main__":
    main()
