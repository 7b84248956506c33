"""Test fixture only: a tiny HTTPS server standing in for kube-apiserver on :6443 (answers /healthz).

python -m tests.support.api_standin --cert C --key K --port 6443 --name k8s-mn01
"""

from __future__ import annotations

import argparse
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--name", required=True)
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on (tests on the host: 127.0.0.1)")
    args = parser.parse_args()
    body = f"ok {args.name}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"api stand-in {args.name} on :{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
