"""A small OCI distribution client for pushing, in the standard library only (it runs inside the zipapp).

http.client over TLS verified with the system CAs plus an optional `--ca-file` (never turned off; plain
HTTP only when asked for by name, for loopback test registries). Authentication answers the registry's
challenge: Basic with the credentials of an auth file, or Bearer with a token fetched from the realm the
registry names (with the same credentials). The Authorization header is only ever sent to the registry's
own host and its token realm.

Credentials come from a file in the format of `podman login`/`docker login` (`auths` -> host -> `auth`,
base64 of `user:password`), never from the command line.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Dict, Optional, Tuple, Union
from urllib.parse import urlencode, urljoin, urlsplit

from k8s_install.errors import InstallError

Body = Union[bytes, IO[bytes], None]
_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"|([A-Za-z_]+)=([^\s,"]+)')
TIMEOUT = 60.0


@dataclass(frozen=True)
class Credential:
    username: str
    password: str


@dataclass(frozen=True)
class Response:
    status: int
    headers: Dict[str, str]  # lower-case names
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def read_auth_file(path: Path, host: str) -> Optional[Credential]:
    """The credential for `host` in a podman/docker auth file; None when the file has no entry for it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InstallError(f"{path}: cannot read the auth file: {error.strerror}") from None
    except ValueError:
        raise InstallError(
            f'{path}: the auth file is not JSON (expected {{"auths": {{HOST: {{"auth": ...}}}}}})'
        ) from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        raise InstallError(f'{path}: no "auths" object: write it as podman login or docker login do')
    for key, entry in auths.items():
        if _host_of(str(key)) != host or not isinstance(entry, dict):
            continue
        try:
            user, sep, password = base64.b64decode(str(entry.get("auth", "")), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep, password = "", "", ""
        if not sep or not user:
            raise InstallError(f"{path}: auths.{key}.auth is not base64 of USER:PASSWORD")
        return Credential(user, password)
    return None


def _host_of(key: str) -> str:
    return urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]


def parse_challenge(header: str) -> Tuple[str, Dict[str, str]]:
    """`Bearer realm="https://auth/token",service="registry"` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in _PARAM.finditer(rest):
        key = match.group(1) or match.group(3)
        params[key.lower()] = match.group(2) if match.group(1) else match.group(4)
    return scheme.lower(), params


def tls_context(ca_file: Optional[str]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            raise InstallError(f"--ca-file {ca_file}: not a readable PEM CA bundle ({error})") from None
    return context


class RegistryClient:
    """Requests to one registry (`host[:port]`), authenticated on demand, one connection reused."""

    def __init__(
        self,
        host: str,
        credential: Optional[Credential] = None,
        ca_file: Optional[str] = None,
        plain_http: bool = False,
    ) -> None:
        self.host = host
        self.scheme = "http" if plain_http else "https"
        self.base = f"{self.scheme}://{host}"
        self.credential = credential
        self.context = None if plain_http else tls_context(ca_file)
        self.authorization: Dict[str, str] = {}  # scope -> Authorization header value
        self._connection: Optional[http.client.HTTPConnection] = None

    # -- transport ---------------------------------------------------------------------------------
    def _connect(self, netloc: str, scheme: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=TIMEOUT, context=self.context)
        return http.client.HTTPConnection(netloc, timeout=TIMEOUT)

    def _send(self, method: str, url: str, headers: Dict[str, str], body: Body) -> Response:
        parts = urlsplit(url)
        if parts.netloc != self.host or parts.scheme != self.scheme:
            raise InstallError(f"{self.host} sent us to {parts.scheme}://{parts.netloc}: refusing to follow it")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            if self._connection is None:
                self._connection = self._connect(self.host, self.scheme)
            try:
                self._connection.request(method, target, body=body, headers=headers)
                answer = self._connection.getresponse()
                data = answer.read()
                return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2 or not (body is None or isinstance(body, bytes)):
                    raise InstallError(f"{self.host} closed the connection during {method} {parts.path}") from None
            except ssl.SSLCertVerificationError as error:
                self.close()
                raise InstallError(
                    f"{self.host}: TLS certificate not trusted ({error.verify_message}): pass --ca-file with its CA"
                ) from None
            except (OSError, http.client.HTTPException) as error:
                self.close()
                raise InstallError(f"cannot reach registry {self.host}: {error}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- requests with authentication ----------------------------------------------------------------
    def request(
        self, method: str, path_or_url: str, scope: str, headers: Optional[Dict[str, str]] = None, body: Body = None
    ) -> Response:
        """One request; on 401 answer the challenge and send it again (a file body is rewound)."""
        url = urljoin(self.base, path_or_url)
        sent = dict(headers or {})
        if scope in self.authorization:
            sent["Authorization"] = self.authorization[scope]
        response = self._send(method, url, sent, body)
        if response.status != 401:
            return response
        self._authenticate(response.header("www-authenticate"), scope)
        sent["Authorization"] = self.authorization[scope]
        if body is not None and not isinstance(body, bytes):
            body.seek(0)
        return self._send(method, url, sent, body)

    def _authenticate(self, header: str, scope: str) -> None:
        scheme, params = parse_challenge(header)
        if self.credential is None:
            raise InstallError(f"{self.host} asks for credentials: pass --auth-file with an entry for {self.host}")
        if scheme == "basic":
            pair = f"{self.credential.username}:{self.credential.password}".encode()
            self.authorization[scope] = "Basic " + base64.b64encode(pair).decode()
            return
        if scheme == "bearer" and params.get("realm"):
            self.authorization[scope] = "Bearer " + self._token(params, scope)
            return
        raise InstallError(f"{self.host} asks for an authentication we do not speak: {header[:80]!r}")

    def _token(self, params: Dict[str, str], scope: str) -> str:
        realm = urlsplit(params["realm"])
        if realm.scheme != "https" and not (realm.scheme == "http" and self.scheme == "http"):
            raise InstallError(f"{self.host}: token realm {params['realm']} is not https: refusing to send credentials")
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", part) for part in scope.split()]  # several scopes: one parameter each
        target = realm.path + "?" + urlencode(query) + (f"&{realm.query}" if realm.query else "")
        assert self.credential is not None
        pair = f"{self.credential.username}:{self.credential.password}".encode()
        connection = self._connect(realm.netloc, realm.scheme)
        try:
            connection.request("GET", target, headers={"Authorization": "Basic " + base64.b64encode(pair).decode()})
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as error:
            raise InstallError(f"cannot reach the token service {realm.netloc} of {self.host}: {error}") from None
        finally:
            connection.close()
        if answer.status in (401, 403):
            raise InstallError(
                f"{self.host}: the credentials in --auth-file were refused (token service said {answer.status})"
            )
        try:
            document = json.loads(data)
            return str(document.get("token") or document["access_token"])
        except (ValueError, KeyError, AttributeError):
            raise InstallError(f"{self.host}: the token service answered {answer.status} without a token") from None

    def check(self, response: Response, expected: Tuple[int, ...], what: str) -> Response:
        if response.status in expected:
            return response
        detail = response.body[:200].decode("utf-8", "replace").strip()
        if response.status == 401:
            raise InstallError(f"{self.host}: {what}: the credentials in --auth-file were refused")
        if response.status == 403:
            raise InstallError(f"{self.host}: {what}: denied (403); does this account may push there?")
        raise InstallError(f"{self.host}: {what}: HTTP {response.status} {detail}")
