"""A real HTTP server on a free loopback port serving in-memory files, with scripted faults.

Faults per path: `fail_status` (a list of statuses answered first, to HEAD or GET, e.g. [500]), `drop_after` (close the
connection after N bytes, once), `delay` (seconds to sleep before answering), `throttle`, `stall_after` (send N
bytes, then nothing: a server that hangs mid-download), `no_head` (HEAD answers 405: the size is unknown before the
download). Range requests are honoured.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional


@dataclass
class Served:
    data: bytes
    fail_status: List[int] = field(default_factory=list)
    drop_after: Optional[int] = None
    delay: float = 0.0
    throttle: float = 0.0  # seconds to sleep after each 64 KiB sent
    stall_after: Optional[int] = None  # send N bytes of the body, then nothing until the server stops
    no_head: bool = False  # answer HEAD with 405, as servers without HEAD do: the size is unknown until the GET
    sent: int = 0  # body bytes written so far by throttled answers (a client that gave up stops it short)


class MirrorServer:
    def __init__(self) -> None:
        self.files: Dict[str, Served] = {}
        self.requests: List[tuple] = []  # GETs: (path, Range header)
        self.heads: List[str] = []  # HEADs (the builder asks sizes while it plans)
        self.stopping = threading.Event()  # releases the handlers stalled by `stall_after`
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                server.heads.append(self.path)
                served = server.files.get(self.path)
                if served is not None and served.delay:
                    time.sleep(served.delay)
                status = 404 if served is None else served.fail_status.pop(0) if served.fail_status else 200
                if served is not None and served.no_head:
                    status = 405
                self.send_response(status)
                self.send_header("Content-Length", str(len(served.data)) if served and status == 200 else "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, self.headers.get("Range")))
                served = server.files.get(self.path)
                if served is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if served.delay:
                    time.sleep(served.delay)
                if served.fail_status:
                    status = served.fail_status.pop(0)
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                header = self.headers.get("Range")
                if header and header.startswith("bytes=") and header.endswith("-"):
                    start = int(header[len("bytes=") : -1])
                body = served.data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(served.data) - 1}/{len(served.data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if served.drop_after is not None:
                    cut = served.drop_after
                    served.drop_after = None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if served.stall_after is not None:
                    self.wfile.write(body[: served.stall_after])
                    self.wfile.flush()
                    server.stopping.wait()
                    self.close_connection = True
                    return
                if served.throttle:
                    for start in range(0, len(body), 1 << 16):
                        self.wfile.write(body[start : start + (1 << 16)])
                        self.wfile.flush()
                        served.sent += len(body[start : start + (1 << 16)])
                        time.sleep(served.throttle)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> MirrorServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, path: str, data: bytes, **faults: object) -> None:
        self.files[path] = Served(data, **faults)  # type: ignore[arg-type]
