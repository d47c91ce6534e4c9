"""A wss:// client that trusts a private CA (a company or test CA) instead of the public ones.

    python examples/wss_client_custom_ca.py --cafile ca.pem --uri wss://localhost:8443/

Verification stays on: the server's certificate must chain to the CA in ``--cafile`` and
name the host in the URI.
"""

import argparse
import ssl

import wsclient


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cafile", required=True, help="the CA certificate(s) to trust (PEM)")
    parser.add_argument("--uri", default="wss://localhost:8443/")
    parser.add_argument("--message", default="hello over TLS")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(cafile=args.cafile)
    with wsclient.connect(args.uri, ssl_context=context, proxy=None, timeout=10) as ws:
        ws.send(args.message)
        answer = ws.recv(timeout=10)
    print(f"got {answer!r} over TLS")
    return answer


if __name__ == "__main__":
    main()
