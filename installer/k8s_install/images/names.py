"""Image names read as containerd reads them: the registry a name points at and the repository path it asks for.

containerd normalises a name the way docker does (github.com/distribution/reference, ParseNormalizedNamed):
the first path component is a registry host when it holds a `.` or a `:` or is `localhost`, else the name is
Docker Hub's; `index.docker.io` is Docker Hub too; a Docker Hub repository of one component is an official
image under `library/`. So a pod asking for `nginx:1.25` pulls `docker.io/library/nginx:1.25`, and through a
mirror (hosts.toml) containerd asks for `/v2/library/nginx/manifests/1.25`. `images push` and the bundle host
store every image under that same path, so push and mirror can never disagree on where an image is.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io")  # as containerd reads them (registry-1.docker.io is not one)


@dataclass(frozen=True)
class ImageName:
    registry: str  # docker.io, registry.k8s.io, 10.0.0.5:5443
    repository: str  # library/nginx, coredns/coredns: the path a registry or a mirror serves it under
    reference: str  # a tag, or the digest when the name carries one

    @property
    def by_digest(self) -> bool:
        return ":" in self.reference


def parse_image_name(name: str) -> ImageName:
    """`nginx:1.25` -> (docker.io, library/nginx, 1.25); `quay.io/a/b@sha256:...` -> (quay.io, a/b, sha256:...)."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, remainder = first, rest
    else:
        registry, remainder = DOCKER_HUB, name
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    remainder, at, digest = remainder.partition("@")
    last = remainder.rsplit("/", 1)[-1]
    repository, tag = remainder.rsplit(":", 1) if ":" in last else (remainder, "latest")
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return ImageName(registry, repository, digest if at else tag)


def image_registry(name: str) -> str:
    """The registry an image name points at, as containerd resolves it (`pause:3.9` is docker.io's)."""
    return parse_image_name(name).registry
