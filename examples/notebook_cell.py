"""What a notebook cell looks like: connect, send, and read with timeouts.

Every call has a bound, so a cell never hangs; ``recv(timeout=...)`` raises the builtin
``TimeoutError`` and leaves the connection usable. Here the server is a loopback one that
answers after a moment; in a notebook it would be your service's URI.
"""

import json
import threading
import time

import wsclient


def slow_json_echo(ws):
    for message in ws:
        time.sleep(0.2)
        ws.send(json.dumps({"echo": json.loads(message)}))


def main():
    server = wsclient.serve(slow_json_echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    # --- the cell ---
    ws = wsclient.connect(server.uri, timeout=5, proxy=None)
    ws.send(json.dumps({"query": "status"}))
    try:
        reply = ws.recv(timeout=0.05)
    except TimeoutError:
        print("nothing yet after 50 ms; the connection is still fine")
        reply = ws.recv(timeout=5)
    data = json.loads(reply)
    print(data)
    ws.close()
    # --- end of the cell ---

    server.shutdown()
    server.server_close()
    return data


if __name__ == "__main__":
    main()
