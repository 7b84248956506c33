"""The manifest's `rpm:` section: per target OS, the repositories, the packages and the assumed set.

```yaml
rpm:
  rocky9:
    repositories:
      - id: kubernetes
        baseurl: https://pkgs.k8s.io/core:/stable:/v1.29/rpm/     # {arch}: x86_64 / aarch64
        gpgkey: https://pkgs.k8s.io/core:/stable:/v1.29/rpm/repodata/repomd.xml.key
        gpgkey_fingerprint: <hex> # optional (else checksums/k8s-<version>.keys names it by the key's URL);
                                  # when pinned, repomd.xml.asc must verify against this key
        gpgkey_sha256: <hex>     # optional, older form of a pin: the key file's sha256
        metadata_signed: false   # optional: the repository publishes no repomd.xml.asc (Rocky, Fedora, EPEL,
                                 # RHEL): its pinned key then checks only the packages (default: signed
                                 # whenever the key is pinned)
        mirrors: {aliyun: https://mirrors.aliyun.com/kubernetes-new/core/stable/v1.29/rpm/}
    packages: ["kubeadm = 1.29.6", socat]   # `name` or `name OP version`; a version pins the name
    host_packages: [nginx]                  # optional: resolved into the repository too, for the bundle host
                                            # (`k8s-install.pyz serve`), never installed on the nodes
    assumed_installed: [glibc, bash]        # left out of the minimal closure
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from bundler.errors import BundlerError
from bundler.rpm.deps import parse_simple
from bundler.rpm.keys import is_fingerprint, normalize
from bundler.rpm.repodata import Dependency
from bundler.target_section import http_url, string_list, target_entry
from bundler.target_section import repositories as read_repositories

SECTION = "rpm"
RPM_ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}


def rpm_arch(arch: str) -> str:
    return RPM_ARCHES.get(arch, arch)


@dataclass(frozen=True)
class RepositorySpec:
    id: str
    baseurl: str
    gpgkey: Optional[str] = None
    gpgkey_sha256: Optional[str] = None
    gpgkey_fingerprint: Optional[str] = None
    mirrors: Tuple[Tuple[str, str], ...] = ()
    metadata_signed: Optional[bool] = None  # None: signed whenever the key is pinned; False: never signed

    def url_for(self, arch: str, mirror: Optional[str] = None) -> str:
        """The base URL for one arch, from the named mirror when this repository has one."""
        url = dict(self.mirrors).get(mirror, self.baseurl) if mirror else self.baseurl
        url = url.replace("{arch}", rpm_arch(arch))
        return url if url.endswith("/") else url + "/"


@dataclass(frozen=True)
class RpmSpec:
    repositories: Tuple[RepositorySpec, ...]
    packages: Tuple[Dependency, ...]
    assumed_installed: Tuple[str, ...]
    host_packages: Tuple[Dependency, ...] = ()  # in the repository for `serve`; nodes do not install them

    @property
    def requests(self) -> Tuple[Dependency, ...]:
        """Everything the repository must hold: the nodes' packages, then the bundle host's."""
        return self.packages + self.host_packages

    @property
    def mirror_names(self) -> Tuple[str, ...]:
        return tuple(sorted({name for repo in self.repositories for name, _ in repo.mirrors}))


def _repository(entry: Any, where: str) -> RepositorySpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        raise BundlerError(f"{where}: must be a mapping with id and baseurl")
    key_sum = entry.get("gpgkey_sha256")
    if key_sum is not None:
        key_sum = str(key_sum).lower()
        if len(key_sum) != 64 or any(c not in "0123456789abcdef" for c in key_sum):
            raise BundlerError(f"{where}: gpgkey_sha256 {key_sum!r} is not a sha256 hex digest")
        if not entry.get("gpgkey"):
            raise BundlerError(f"{where}: gpgkey_sha256 is set but gpgkey (the key's URL) is not")
    fingerprint = entry.get("gpgkey_fingerprint")
    if fingerprint is not None:
        if not is_fingerprint(str(fingerprint)):
            raise BundlerError(
                f"{where}: gpgkey_fingerprint {fingerprint!r} is not an OpenPGP fingerprint (40 hex digits)"
            )
        if not entry.get("gpgkey"):
            raise BundlerError(f"{where}: gpgkey_fingerprint is set but gpgkey (the key's URL) is not")
    metadata_signed = _metadata_signed(entry, where)
    mirrors = entry.get("mirrors") or {}
    if not isinstance(mirrors, dict):
        raise BundlerError(f"{where}: mirrors must map a mirror name to a base URL")
    return RepositorySpec(
        id=entry["id"],
        baseurl=http_url(entry.get("baseurl"), f"{where}: baseurl"),
        gpgkey=http_url(entry["gpgkey"], f"{where}: gpgkey") if entry.get("gpgkey") else None,
        gpgkey_sha256=key_sum,
        gpgkey_fingerprint=normalize(str(fingerprint)) if fingerprint is not None else None,
        mirrors=tuple(sorted((str(k), http_url(v, f"{where}: mirrors.{k}")) for k, v in mirrors.items())),
        metadata_signed=metadata_signed,
    )


def _metadata_signed(entry: Dict[str, Any], where: str) -> Optional[bool]:
    """`metadata_signed`: whether the repository signs repomd.xml (repomd.xml.asc); None when not given."""
    if "metadata_signed" not in entry:
        return None
    value = entry["metadata_signed"]
    if not isinstance(value, bool):
        raise BundlerError(
            f"{where}: metadata_signed must be true or false (false: the repository publishes no "
            f"repomd.xml.asc), got {value!r}"
        )
    if not entry.get("gpgkey"):
        raise BundlerError(
            f"{where}: metadata_signed is set but gpgkey (the key's URL) is not: without a key neither the "
            "metadata nor the packages can be checked; add the repository's gpgkey or remove metadata_signed"
        )
    return value


def _repository_where(where: str, index: int, entry: Any) -> str:
    """`<manifest>: rpm.<os>.repositories[<i>]`, with the repository's id when it has one."""
    name = entry.get("id") if isinstance(entry, dict) else None
    return f"{where}.repositories[{index}]" + (f" (repository {name})" if isinstance(name, str) else "")


def rpm_spec(raw: Dict[str, Any], os_id: str, source: str) -> Optional[RpmSpec]:
    """The rpm section for one target OS, or None when the manifest has none for it."""
    found = target_entry(raw, SECTION, os_id, source)
    if found is None:
        return None
    where, entry = found
    repositories = read_repositories(
        entry, where, lambda item, index: _repository(item, _repository_where(where, index, item))
    )
    packages = _dependencies(entry, "packages", where)
    if not packages:
        raise BundlerError(f"{where}: field 'packages' must list at least one package")
    host_packages = _dependencies(entry, "host_packages", where)
    both = {p.name for p in packages} & {p.name for p in host_packages}
    if both:
        raise BundlerError(f"{where}.host_packages: {sorted(both)[0]} is in packages already (nodes install it)")
    assumed = string_list(entry.get("assumed_installed"), f"{where}.assumed_installed")
    return RpmSpec(repositories, packages, assumed, host_packages)


def _dependencies(entry: Dict[str, Any], field: str, where: str) -> Tuple[Dependency, ...]:
    found = []
    for index, text in enumerate(string_list(entry.get(field), f"{where}.{field}")):
        try:
            found.append(parse_simple(text))
        except ValueError as error:
            raise BundlerError(f"{where}.{field}[{index}]: {error}") from None
    return tuple(found)
