"""Image references: `calico/node:v3.28.0` read as `docker.io/calico/node:v3.28.0`, validated and split."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from bundler.errors import BundlerError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKER_HUB_API = "registry-1.docker.io"  # where Docker Hub's distribution API answers

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class ImageRef:
    registry: str  # as named: docker.io, registry.k8s.io, 127.0.0.1:5000
    repository: str  # library/busybox, calico/node
    tag: Optional[str] = None
    digest: Optional[str] = None

    @property
    def repo_name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def name(self) -> str:
        """The full name the image keeps in the bundle and in containerd."""
        if self.tag:
            return f"{self.repo_name}:{self.tag}"
        return f"{self.repo_name}@{self.digest}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when one is known, else the tag."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, self.tag, digest)


def is_digest(value: str) -> bool:
    return bool(_DIGEST.match(value))


def parse_reference(text: str, where: str = "image") -> ImageRef:
    """Normalise a reference as docker does: add docker.io/ and library/ where needed, :latest if untagged."""
    original = text
    text = text.strip()
    digest: Optional[str] = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not is_digest(digest):
            raise BundlerError(f"{where}: {original!r} has digest {digest!r}; expected sha256:<64 hex digits>")
    first, slash, rest = text.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, remainder = first, rest
    else:
        registry, remainder = DOCKER_HUB, text
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    tag: Optional[str] = None
    last = remainder.rsplit("/", 1)[-1]
    if ":" in last:
        remainder, tag = remainder.rsplit(":", 1)
        if not _TAG.match(tag):
            raise BundlerError(f"{where}: {original!r} has an invalid tag {tag!r}")
    if registry == DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    if not _HOST.match(registry):
        raise BundlerError(f"{where}: {original!r} has an invalid registry host {registry!r}")
    if not _REPOSITORY.match(remainder):
        raise BundlerError(
            f"{where}: {original!r} is not a valid image name (lowercase letters, digits, . _ - and / only)"
        )
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry, remainder, tag, digest)


def api_host(registry: str) -> str:
    """The host serving the distribution API for a registry name (Docker Hub answers elsewhere)."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry
