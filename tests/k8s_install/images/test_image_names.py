"""Image names as containerd reads them, and the path `images push` stores an image under: for every spelling
of a Docker Hub name and for the other registries, push and the nodes' mirror (hosts.toml) agree."""

from __future__ import annotations

import pytest

from k8s_install.images.names import ImageName, image_registry, parse_image_name
from k8s_install.images.push import target_for

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nginx:1.25", ImageName("docker.io", "library/nginx", "1.25")),
        ("library/nginx:1.25", ImageName("docker.io", "library/nginx", "1.25")),
        ("docker.io/nginx:1.25", ImageName("docker.io", "library/nginx", "1.25")),
        ("docker.io/library/nginx:1.25", ImageName("docker.io", "library/nginx", "1.25")),
        ("index.docker.io/nginx:1.25", ImageName("docker.io", "library/nginx", "1.25")),
        ("nginx", ImageName("docker.io", "library/nginx", "latest")),
        ("docker.io/nginx", ImageName("docker.io", "library/nginx", "latest")),
        (f"nginx@{DIGEST}", ImageName("docker.io", "library/nginx", DIGEST)),
        (f"nginx:1.25@{DIGEST}", ImageName("docker.io", "library/nginx", DIGEST)),
        ("calico/node:v3.28.0", ImageName("docker.io", "calico/node", "v3.28.0")),
        ("registry.k8s.io/pause:3.9", ImageName("registry.k8s.io", "pause", "3.9")),
        ("registry.k8s.io/coredns/coredns:v1.11.1", ImageName("registry.k8s.io", "coredns/coredns", "v1.11.1")),
        ("quay.io/tigera/operator:v1.34.0", ImageName("quay.io", "tigera/operator", "v1.34.0")),
        ("ghcr.io/acme/app", ImageName("ghcr.io", "acme/app", "latest")),
        ("localhost/app:1", ImageName("localhost", "app", "1")),
        ("10.0.0.5:5443/team/tool:2", ImageName("10.0.0.5:5443", "team/tool", "2")),
        # containerd does not take registry-1.docker.io for Docker Hub: a registry of its own, path kept
        ("registry-1.docker.io/nginx:1", ImageName("registry-1.docker.io", "nginx", "1")),
    ],
)
def test_a_name_reads_as_containerd_reads_it(name: str, expected: ImageName) -> None:
    assert parse_image_name(name) == expected
    assert image_registry(name) == expected.registry


@pytest.mark.parametrize(
    ("name", "prefix", "repository", "reference"),
    [
        ("nginx:1.25", "", "library/nginx", "1.25"),
        ("library/nginx:1.25", "", "library/nginx", "1.25"),
        ("docker.io/nginx", "", "library/nginx", "latest"),
        ("nginx:1.25", "mirror/k8s", "mirror/k8s/library/nginx", "1.25"),
        ("docker.io/nginx", "mirror", "mirror/library/nginx", "latest"),
        ("registry.k8s.io/pause:3.9", "mirror", "mirror/pause", "3.9"),
        ("quay.io/tigera/operator:v1.34.0", "/mirror/", "mirror/tigera/operator", "v1.34.0"),
        (f"ghcr.io/acme/app@{DIGEST}", "mirror", "mirror/acme/app", DIGEST),
        # named after the target registry itself: pulled by that name, without a mirror, so kept as named
        ("harbor.site.lan:443/team/tool:2", "mirror", "team/tool", "2"),
    ],
)
def test_push_stores_an_image_under_the_path_the_mirror_asks_for(
    name: str, prefix: str, repository: str, reference: str
) -> None:
    target = target_for(name, prefix, "harbor.site.lan:443")
    assert (target.repository, target.reference) == (repository, reference)
    # what containerd requests through the mirror of the name's registry: /v2/[prefix/]<path>/manifests/<ref>
    parsed = parse_image_name(name)
    if parsed.registry != "harbor.site.lan:443":
        assert target.repository == "/".join(part for part in (prefix.strip("/"), parsed.repository) if part)
