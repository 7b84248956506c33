"""HTTP to registries: where an image is fetched from, authentication, redirects, retries.

Where: `https://HOST/v2/...` (Docker Hub: registry-1.docker.io). `--insecure-registry HOST` means plain
HTTP for that host, only when asked. `--registry-mirror HOST=URL` fetches HOST's images from URL while they
keep their names: the URL's path is a repository prefix (`registry.k8s.io=https://m.example/google_containers`
fetches `registry.k8s.io/pause:3.9` as `m.example/google_containers/pause:3.9`).

Auth: a 401 with `WWW-Authenticate: Bearer realm=...` gets a token from the realm (anonymously, or with the
host's credentials), `Basic` sends the credentials. A redirect to another host (blob storage) never carries
the Authorization header, and an https address never redirects to http.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Mapping, Optional, Sequence, Tuple
from urllib.parse import urljoin, urlsplit

import requests

from bundler.errors import BundlerError
from bundler.http_session import ThreadSessions
from bundler.network_errors import connect_failure, proxy_for, short_reason
from bundler.oci.auth import Challenge, Credential, parse_challenge
from bundler.oci.reference import ImageRef, api_host
from bundler.retry import RETRYABLE_STATUS, Retryable, with_retries

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Mirror:
    base: str  # scheme://host[:port]
    prefix: str  # repository prefix ("" for none)


@dataclass(frozen=True)
class RegistryOptions:
    ca_bundle: Optional[str] = None
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5
    insecure: FrozenSet[str] = frozenset()
    mirrors: Mapping[str, Mirror] = field(default_factory=dict)
    credentials: Mapping[str, Credential] = field(default_factory=dict)
    offline: bool = False  # manifests by digest and blobs come from the cache only


@dataclass(frozen=True)
class Endpoint:
    """One repository on one server: what the HTTP requests of one image go to."""

    base: str
    host: str
    repository: str

    def url(self, kind: str, reference: str) -> str:
        return f"{self.base}/v2/{self.repository}/{kind}/{reference}"


def parse_mirrors(values: Sequence[str], insecure: FrozenSet[str]) -> Dict[str, Mirror]:
    mirrors: Dict[str, Mirror] = {}
    for value in values:
        host, eq, url = value.partition("=")
        parts = urlsplit(url)
        if not eq or not host or parts.scheme not in ("http", "https") or not parts.netloc:
            raise BundlerError(f"--registry-mirror {value!r}: expected HOST=https://MIRROR[/PREFIX]")
        if parts.scheme == "http" and parts.netloc not in insecure:
            raise BundlerError(
                f"--registry-mirror {value!r}: plain http needs --insecure-registry {parts.netloc} as well"
            )
        mirrors[host] = Mirror(f"{parts.scheme}://{parts.netloc}", parts.path.strip("/"))
    return mirrors


def endpoint_for(ref: ImageRef, options: RegistryOptions) -> Endpoint:
    mirror = options.mirrors.get(ref.registry)
    if mirror is not None:
        repository = f"{mirror.prefix}/{ref.repository}" if mirror.prefix else ref.repository
        return Endpoint(mirror.base, urlsplit(mirror.base).netloc, repository)
    host = api_host(ref.registry)
    scheme = "http" if host in options.insecure or ref.registry in options.insecure else "https"
    return Endpoint(f"{scheme}://{host}", host, ref.repository)


class Transport:
    """Thread-safe: one `requests.Session` per thread; bearer tokens shared per (host, repository)."""

    def __init__(self, options: RegistryOptions) -> None:
        self.options = options
        self._sessions = ThreadSessions(options.ca_bundle)
        self._lock = threading.Lock()
        self._tokens: Dict[Tuple[str, str], str] = {}
        self._basic: Dict[str, bool] = {}

    def _session(self) -> requests.Session:
        return self._sessions.get()

    def _auth_header(self, endpoint: Endpoint, host: str) -> Dict[str, str]:
        """What to send to `host`: its bearer token for this repository, or basic credentials (own host)."""
        with self._lock:
            token = self._tokens.get((host, endpoint.repository))
            basic = self._basic.get(host)
        if token:
            return {"Authorization": f"Bearer {token}"}
        credential = self.options.credentials.get(endpoint.host)
        if basic and credential and host == endpoint.host:
            return {"Authorization": requests.auth._basic_auth_str(credential.username, credential.password)}
        return {}

    def get(self, endpoint: Endpoint, url: str, headers: Dict[str, str], what: str) -> requests.Response:
        """GET with auth, redirects and retries; returns an open streamed 200/206 response."""
        return with_retries(
            lambda: self._follow(endpoint, url, headers, what), self.options.retries, self.options.backoff, what, url
        )

    def _follow(self, endpoint: Endpoint, url: str, headers: Dict[str, str], what: str) -> requests.Response:
        """One request and its redirects. Each host is authenticated on its own challenge, once; the
        Authorization header is built per host, so it never follows a redirect to another host."""
        challenged = set()
        for _ in range(MAX_REDIRECTS + 3):
            host = urlsplit(url).netloc
            try:
                response = self._session().get(
                    url, headers={**headers, **self._auth_header(endpoint, host)}, stream=True,
                    allow_redirects=False, timeout=(self.options.timeout, self.options.timeout),
                )  # fmt: skip
            except requests.exceptions.SSLError as error:
                raise BundlerError(
                    f"{what}: TLS verification failed for {host}: {short_reason(error)}; "
                    "pass --ca-file with the registry's CA (a plain-HTTP registry needs --insecure-registry)"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as error:
                failure = connect_failure(error, url)
                if isinstance(failure, BundlerError):
                    raise BundlerError(f"{what}: {failure}") from None
                raise failure from None
            status = response.status_code
            if status in (200, 206):
                return response
            response.close()
            if status in RETRYABLE_STATUS:
                raise Retryable(f"HTTP {status}")
            if status == 401 and host not in challenged:
                challenged.add(host)
                self._authenticate(endpoint, host, url, response.headers.get("WWW-Authenticate", ""), what)
                continue
            if status not in (301, 302, 303, 307, 308):
                raise self._status_error(endpoint, response, what, url)
            target = urljoin(url, response.headers.get("Location", ""))
            if urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https":
                raise BundlerError(f"{what}: {host} redirected to plain http ({urlsplit(target).netloc}); refused")
            url = target
        raise BundlerError(f"{what}: too many redirects or authentication rounds from {endpoint.host}")

    def _authenticate(self, endpoint: Endpoint, host: str, url: str, header: str, what: str) -> None:
        challenge = parse_challenge(header)
        # credentials go only to the registry they were given for (and its token realm)
        credential = self.options.credentials.get(endpoint.host) if host == endpoint.host else None
        if challenge is None:
            raise BundlerError(
                f"{what}: {host} answered HTTP 401 without a WWW-Authenticate challenge, as no registry does: "
                "check the registry address (a proxy or login page in the way?)"
            )
        if challenge.scheme not in ("bearer", "basic"):
            raise BundlerError(
                f"{what}: {host} asks for {challenge.scheme} authentication (HTTP 401); "
                "only registry tokens (Bearer) and Basic are supported"
            )
        if challenge.scheme == "basic":
            if credential is None:
                raise _needs_credentials(endpoint, what)
            with self._lock:
                self._basic[host] = True
            return
        token = self._fetch_token(endpoint, host, _repository_in(url, endpoint), challenge, credential, what)
        with self._lock:
            self._tokens[(host, endpoint.repository)] = token

    def _fetch_token(
        self,
        endpoint: Endpoint,
        host: str,
        repository: str,
        challenge: Challenge,
        credential: Optional[Credential],
        what: str,
    ) -> str:
        realm = challenge.get("realm") or ""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BundlerError(f"{what}: {host} names an unusable token realm {realm!r}")
        if (
            parts.scheme == "http"
            and not endpoint.base.startswith("http://")
            and parts.netloc not in self.options.insecure
        ):
            raise BundlerError(
                f"{what}: token realm {realm} is plain http; name it with --insecure-registry to allow it"
            )
        params = {"scope": challenge.get("scope") or f"repository:{repository}:pull"}
        if challenge.get("service"):
            params["service"] = challenge.get("service") or ""
        auth = (credential.username, credential.password) if credential else None
        try:
            response = self._session().get(realm, params=params, auth=auth, timeout=self.options.timeout)
        except requests.exceptions.SSLError as error:
            raise BundlerError(
                f"{what}: TLS verification failed for {parts.netloc}: {short_reason(error)}; pass --ca-file"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as error:
            via = f" through the proxy {proxy}" if (proxy := proxy_for(realm)) else ""
            raise BundlerError(f"{what}: cannot reach the token service {realm}{via}: {short_reason(error)}") from None
        if response.status_code == 401:
            raise _needs_credentials(endpoint, what) if credential is None else _denied(endpoint, what)
        if response.status_code != 200:
            raise BundlerError(f"{what}: token service {realm} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise BundlerError(f"{what}: token service {realm} answered something that is not JSON") from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BundlerError(f"{what}: token service {realm} gave no token")
        return token

    def _status_error(self, endpoint: Endpoint, response: requests.Response, what: str, url: str) -> BundlerError:
        status = response.status_code
        if status == 401:
            if self.options.credentials.get(endpoint.host) is None:
                return _needs_credentials(endpoint, what)
            return _denied(endpoint, what)
        if status == 403:
            return _denied(endpoint, what)
        if status == 404:
            return BundlerError(f"{what}: not found on {endpoint.host} (HTTP 404 for {url}); check the name and tag")
        if status == 400 and urlsplit(url).scheme == "http":  # Go's TLS servers answer plain HTTP so
            return BundlerError(
                f"{what}: HTTP 400 {response.reason} from {url}: if {urlsplit(url).netloc} speaks HTTPS, drop "
                "--insecure-registry for it (and pass --ca-file if its certificate is private)"
            )
        return BundlerError(f"{what}: HTTP {status} {response.reason} from {url}")


def _repository_in(url: str, endpoint: Endpoint) -> str:
    """The repository a `/v2/<repository>/manifests|blobs/<ref>` URL names (another one after a redirect)."""
    path = urlsplit(url).path
    if "/v2/" in path:
        head = path.split("/v2/", 1)[1]
        for kind in ("/manifests/", "/blobs/"):
            if kind in head:
                return head.rsplit(kind, 1)[0]
    return endpoint.repository


def _needs_credentials(endpoint: Endpoint, what: str) -> BundlerError:
    return BundlerError(
        f"{what}: {endpoint.host} requires credentials (HTTP 401); give --registry-auth "
        f"{endpoint.host}=USER:PASSWORD_FILE or log in with docker login (~/.docker/config.json)"
    )


def _denied(endpoint: Endpoint, what: str) -> BundlerError:
    return BundlerError(
        f"{what}: {endpoint.host} refused the credentials for {endpoint.repository} (HTTP 401/403); "
        "check the user, the password file and the access rights"
    )
