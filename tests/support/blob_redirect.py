"""A registry front that needs basic auth, relays manifests to a real docker-registry and answers blob
requests with a 307 to a separate "blob storage" server (another port, so another host for the client),
as registries backed by object storage do. The storage server records the headers it was sent."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Tuple

import requests


def _serve(handler: type) -> Tuple[ThreadingHTTPServer, str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"127.0.0.1:{httpd.server_address[1]}"


class BlobRedirectFront:
    def __init__(self, backend: str, user: str, password: str, drop_after: int = 0) -> None:
        self.storage_headers: List[Dict[str, str]] = []
        self.drop_after = drop_after  # cut the first blob response longer than this after so many bytes
        front = self
        credentials = (user, password)

        class Storage(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                front.storage_headers.append({k.lower(): v for k, v in self.headers.items()})
                upstream = requests.get(f"{backend}{self.path.split('?')[0]}", auth=credentials, timeout=10)
                body, start = upstream.content, 0
                ranged = self.headers.get("Range", "")
                if ranged.startswith("bytes=") and ranged.endswith("-"):
                    start = int(ranged[len("bytes=") : -1])
                self.send_response(206 if start else upstream.status_code)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if front.drop_after and len(body) > front.drop_after:
                    cut, front.drop_after = front.drop_after, 0
                    self.wfile.write(body[:cut])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        class Front(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if not self.headers.get("Authorization"):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="front"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if "/blobs/" in self.path:
                    self.send_response(307)
                    self.send_header("Location", f"http://{front.storage_host}{self.path}?signature=test")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {
                    "Authorization": self.headers["Authorization"],
                    "Accept": self.headers.get("Accept", ""),
                }
                upstream = requests.get(f"{backend}{self.path}", headers=headers, timeout=10)
                self.send_response(upstream.status_code)
                for name in ("Content-Type", "Docker-Content-Digest", "WWW-Authenticate"):
                    if name in upstream.headers:
                        self.send_header(name, upstream.headers[name])
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

        self.storage, self.storage_host = _serve(Storage)
        self.front, self.host = _serve(Front)

    def stop(self) -> None:
        for server in (self.front, self.storage):
            server.shutdown()
            server.server_close()


class RedirectEverything:
    """Answers every request with a 307 to the same path on `backend`, as registry.k8s.io sends clients on to
    regional registries that challenge for their own (anonymous) tokens."""

    def __init__(self, backend: str) -> None:
        class Redirect(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(307)
                self.send_header("Location", f"{backend}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server, self.host = _serve(Redirect)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
