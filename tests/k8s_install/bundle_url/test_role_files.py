"""Which images a worker leaves to the control planes, by name (table-driven, in process)."""

from __future__ import annotations

import pytest

from k8s_install.bundle_format.model import Image
from k8s_install.bundle_url.role_files import is_control_plane_image


@pytest.mark.parametrize(
    "name, control_plane_only",
    [
        ("registry.k8s.io/kube-apiserver:v1.30.14", True),
        ("registry.k8s.io/kube-controller-manager:v1.30.14", True),
        ("registry.k8s.io/kube-scheduler:v1.30.14", True),
        ("registry.k8s.io/etcd:3.5.15-0", True),
        ("mirror.example:5000/k8s/etcd@sha256:" + "a" * 64, True),
        ("registry.k8s.io/kube-proxy:v1.30.14", False),
        ("registry.k8s.io/pause:3.9", False),
        ("registry.k8s.io/coredns/coredns:v1.11.3", False),
        ("docker.io/calico/node:v3.28.0", False),
        ("mirror.example:5000/etcd-operator:1.0", False),
        ("mirror.example:5000/kube-apiserver-proxy", False),
    ],
)
def test_control_plane_images_by_repository_name(name: str, control_plane_only: bool) -> None:
    assert is_control_plane_image(Image(name, "sha256:" + "0" * 64)) is control_plane_only


def test_a_worker_leaves_the_charts_and_plain_files_to_the_bundle_host() -> None:
    from k8s_install.bundle_format.model import BundleManifest, Chart, PlainFile
    from k8s_install.bundle_url.role_files import files_without_blobs

    sha = "a" * 64
    manifest = BundleManifest(
        kubernetes="1.29.6", os="rocky9", arch="amd64",
        charts=(Chart("demo", "0.1.0", "charts/demo-0.1.0.tgz", sha, 1, "https://charts.example.invalid"),),
        plain_files=(PlainFile("notes.txt", "files/plain/notes.txt", sha, 1, "notes.txt"),),
    )  # fmt: skip
    sums = {"bundle.yaml", "k8s-install.pyz", "charts/demo-0.1.0.tgz", "charts/index.yaml", "files/plain/notes.txt"}
    assert files_without_blobs(manifest, sums, "worker") == {"bundle.yaml", "k8s-install.pyz"}
    assert files_without_blobs(manifest, sums, "control-plane") == sums
