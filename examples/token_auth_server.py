"""A server that lets in only clients with the right ``?token=``: 401 otherwise.

``process_request`` runs before the upgrade; returning a response refuses it. With no
arguments the example starts the server, tries a wrong and a right token, and stops.
"""

import argparse
import hmac
import threading
import urllib.parse

import wsclient

TOKEN = "s3cret"


def check_token(request):
    query = urllib.parse.urlsplit(request.path).query
    token = urllib.parse.parse_qs(query).get("token", [""])[0]
    if hmac.compare_digest(token.encode(), TOKEN.encode()):
        return None  # Go on with the WebSocket handshake.
    return wsclient.Response(401, [("WWW-Authenticate", 'Bearer realm="example"')], b"a valid ?token= is required\n")


def hello(ws):
    ws.send(f"welcome, you are in ({ws.request.path.split('?')[0]})")


def demo(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wsclient.connect(server.uri + "?token=wrong", proxy=None)
    except wsclient.InvalidStatus as exc:
        print(f"wrong token: {int(exc.response.status)}, {exc.response.headers['WWW-Authenticate']}")
    with wsclient.connect(server.uri + "?token=" + TOKEN, proxy=None) as ws:
        greeting = ws.recv(timeout=5)
        print(f"right token: {greeting}")
    return greeting


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, help="serve forever on this port (default: run the demo)")
    args = parser.parse_args(argv)
    with wsclient.serve(hello, "127.0.0.1", args.port or 0, process_request=check_token) as server:
        if args.port is None:
            return demo(server)
        print(server.uri, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
