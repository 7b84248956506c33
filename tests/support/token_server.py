"""A token service as docker-registry's `auth: token` expects: it signs RS256 JWTs whose `x5c` header
carries a test certificate that the registry trusts through `rootcertbundle`.

Signing uses the openssl command (no JWT library). Anonymous requests get a token only when
`anonymous` is set; otherwise HTTP basic credentials must match `users`.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from tests.support.registry import make_certificate

ISSUER = "test-token-issuer"
SERVICE = "test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(
        self, work: Path, users: Optional[Dict[str, str]] = None, anonymous: bool = False,
        grant: Tuple[str, ...] = ("pull",),
    ) -> None:  # fmt: skip
        self.keys = make_certificate(work / "token-signer", name="token-signer")
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.keys["cert"]), "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.x5c = base64.b64encode(der).decode()
        self.users = users or {}
        self.anonymous = anonymous
        self.grant = grant  # the actions a token may carry (pushing tests add push)
        self.requests: List[Dict[str, object]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                query = parse_qs(urlsplit(self.path).query)
                user = server._user(self.headers.get("Authorization", ""))
                server.requests.append({"query": query, "user": user})
                if user is None and not server.anonymous:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="token"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                scopes = query.get("scope", [])
                body = json.dumps({"token": server.sign(user or "", scopes), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _user(self, header: str) -> Optional[str]:
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else None

    def registry_config(self) -> Dict[str, str]:
        return {
            "realm": self.url,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(self.keys["cert"]),
        }

    def sign(self, subject: str, scopes: List[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", scope, "")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a in self.grant]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}  # fmt: skip
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.keys["key"])],
            input=signing_input.encode(), check=True, capture_output=True,
        ).stdout  # fmt: skip
        return f"{signing_input}.{_b64url(signature)}"

    def start(self) -> TokenServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
