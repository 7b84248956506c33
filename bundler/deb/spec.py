"""The release manifest's `deb:` section: per Debian/Ubuntu target, the apt repositories and the packages.

```yaml
deb:
  debian12:
    repositories:
      - id: kubernetes
        url: https://pkgs.k8s.io/core:/stable:/v1.29/deb/
        suite: /                     # a flat repository: InRelease and Packages beside each other
        key: https://pkgs.k8s.io/core:/stable:/v1.29/deb/Release.key
        mirrors: {aliyun: https://mirrors.aliyun.com/kubernetes-new/core/stable/v1.29/deb/}
      - id: bookworm
        url: https://deb.debian.org/debian/
        suite: bookworm
        components: [main]
        key: https://ftp-master.debian.org/keys/archive-key-12.asc
        key_fingerprint: <hex>       # optional: else checksums/k8s-<version>.keys names it by the key's URL
        minimal_system: true         # a fresh install of the release comes from this suite (not -updates)
    packages: ["kubeadm = 1.29.6-*", socat]   # apt's own `name=version` (a version may end in `*`)
    installed: [apt]                 # counted as installed beside the Essential and Priority: required set
```

Every repository's key must be pinned by fingerprint: InRelease is checked against it before anything in it
is read, and the indexes and packages are checked against the sums it lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from bundler.errors import BundlerError
from bundler.rpm.keys import is_fingerprint, normalize
from bundler.target_section import http_url, string_list, target_entry
from bundler.target_section import repositories as read_repositories

SECTION = "deb"
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_VERSION = re.compile(r"^[A-Za-z0-9.+~:*-]+$")


@dataclass(frozen=True)
class AptRepositorySpec:
    id: str
    url: str  # the repository (the first of arch_urls when the manifest gives one per architecture)
    suite: str  # a codename (bookworm) or a flat repository's folder ("/")
    components: Tuple[str, ...]  # empty for a flat repository
    key: str  # the URL of the repository's public key
    key_fingerprint: Optional[str] = None
    mirrors: Tuple[Tuple[str, str], ...] = ()
    minimal_system: bool = False  # the release's own suite: a fresh install's packages come from here
    arch_urls: Tuple[Tuple[str, str], ...] = ()  # `url: {amd64: …, arm64: …}`: one URL per architecture

    @property
    def flat(self) -> bool:
        return self.suite.endswith("/")

    def url_for(self, arch: str, mirror: Optional[str] = None) -> str:
        url = dict(self.mirrors).get(mirror, self.url) if mirror else self.url
        url = self.url_by_arch.get(arch, url) if not mirror else url
        return url if url.endswith("/") else url + "/"

    @property
    def url_by_arch(self) -> Dict[str, str]:
        return dict(self.arch_urls)

    @property
    def release_dir(self) -> str:
        """Where InRelease lives, relative to the repository's URL."""
        if self.flat:
            return "" if self.suite in ("/", "./") else self.suite.lstrip("./")
        return f"dists/{self.suite}/"


@dataclass(frozen=True)
class PackageRequest:
    name: str
    version: Optional[str] = None  # apt's version, `*` allowed

    @property
    def apt_argument(self) -> str:
        return self.name if self.version is None else f"{self.name}={self.version}"

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name} = {self.version}"


@dataclass(frozen=True)
class DebSpec:
    repositories: Tuple[AptRepositorySpec, ...]
    packages: Tuple[PackageRequest, ...]
    installed: Tuple[str, ...] = ()

    @property
    def mirrorstring_list(self) -> Tuple[str, ...]:
        return tuple(sorted({name for repo in self.repositories for name, _ in repo.mirrors}))


def parse_request(text: str) -> PackageRequest:
    """`name` or `name = version` (also apt's `name=version`)."""
    name, equals, version = (part.strip() for part in text.partition("="))
    if not _NAME.match(name):
        raise ValueError(f"{text!r}: {name!r} is not a Debian package name")
    if equals and not _VERSION.match(version):
        raise ValueError(f"{text!r}: {version!r} is not a Debian version (a trailing * matches any rest)")
    return PackageRequest(name, version if equals else None)


def _repository(entry: Any, where: str) -> AptRepositorySpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        raise BundlerError(f"{where}: must be a mapping with id, url, suite and key")
    suite = entry.get("suite")
    if not isinstance(suite, str) or not suite:
        raise BundlerError(f"{where}: field 'suite' must name the suite (bookworm) or a flat repository's folder (/)")
    components = entry.get("components") or []
    if not isinstance(components, list) or not all(isinstance(c, str) and c for c in components):
        raise BundlerError(f"{where}: field 'components' must be a list of names (main, universe)")
    if suite.endswith("/") and components:
        raise BundlerError(f"{where}: a flat repository (suite {suite!r}) has no components; remove 'components'")
    if not suite.endswith("/") and not components:
        raise BundlerError(f"{where}: suite {suite!r} needs 'components' (main), or end the suite with / if flat")
    fingerprint = entry.get("key_fingerprint")
    if fingerprint is not None and not is_fingerprint(str(fingerprint)):
        raise BundlerError(f"{where}: key_fingerprint {fingerprint!r} is not an OpenPGP fingerprint (40 hex digits)")
    mirrors = entry.get("mirrors") or {}
    if not isinstance(mirrors, dict):
        raise BundlerError(f"{where}: mirrors must map a mirror name to a URL")
    url = entry.get("url")
    arch_urls: Tuple[Tuple[str, str], ...] = ()
    if isinstance(url, dict):
        arch_urls = tuple(sorted((str(arch), http_url(value, f"{where}: url.{arch}")) for arch, value in url.items()))
        url = arch_urls[0][1] if arch_urls else None
    return AptRepositorySpec(
        id=entry["id"],
        url=http_url(url, f"{where}: url"),
        arch_urls=arch_urls,
        suite=suite,
        components=tuple(components),
        key=http_url(entry.get("key"), f"{where}: key"),
        key_fingerprint=normalize(str(fingerprint)) if fingerprint is not None else None,
        mirrors=tuple(sorted((str(k), http_url(v, f"{where}: mirrors.{k}")) for k, v in mirrors.items())),
        minimal_system=_flag(entry, "minimal_system", where),
    )


def _flag(entry: Dict[str, Any], name: str, where: str) -> bool:
    value = entry.get(name, False)
    if not isinstance(value, bool):
        raise BundlerError(f"{where}: field {name!r} must be true or false, got {value!r}")
    return value


def deb_spec(raw: Dict[str, Any], os_id: str, source: str) -> Optional[DebSpec]:
    """The deb section for one target, or None when the manifest has none for it."""
    found = target_entry(raw, SECTION, os_id, source)
    if found is None:
        return None
    where, entry = found
    repositories = read_repositories(
        entry, where, lambda item, index: _repository(item, f"{where}.repositories[{index}]")
    )
    packages = []
    for index, text in enumerate(string_list(entry.get("packages"), f"{where}.packages")):
        try:
            packages.append(parse_request(text))
        except ValueError as error:
            raise BundlerError(f"{where}.packages[{index}]: {error}") from None
    if not packages:
        raise BundlerError(f"{where}: field 'packages' must list at least one package")
    return DebSpec(repositories, tuple(packages), string_list(entry.get("installed"), f"{where}.installed"))
