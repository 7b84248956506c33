"""Before kubeadm, every image the role will run must be in containerd: an offline node cannot pull, and a
missing image would otherwise make kubeadm try (and the kubelet retry forever). Checked against a real
containerd (started by the test) with a stand-in kubeadm that answers `config images list` as kubeadm does."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import List

import pytest

from k8s_install.images.containerd_import import present_images
from k8s_install.images.needed import (
    NeededImage,
    cluster_configuration,
    for_role,
    kubeadm_images,
    missing_images,
    missing_line,
    missing_verdict,
    needed_images,
    normalized,
)
from k8s_install.roles import steps_for
from tests.support.containerd import Containerd
from tests.support.registry import Registry

# what kubeadm 1.29 prints for `kubeadm config images list --kubernetes-version v1.29.6` (../shared/pins/UPGRADES.md)
KUBEADM_129 = [
    "registry.k8s.io/kube-apiserver:v1.29.6",
    "registry.k8s.io/kube-controller-manager:v1.29.6",
    "registry.k8s.io/kube-scheduler:v1.29.6",
    "registry.k8s.io/kube-proxy:v1.29.6",
    "registry.k8s.io/coredns/coredns:v1.11.1",
    "registry.k8s.io/pause:3.9",
    "registry.k8s.io/etcd:3.5.12-0",
]
CALICO = ["docker.io/calico/cni:v3.28.0", "calico/node:v3.28.0"]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("calico/node:v3.28.0", "docker.io/calico/node:v3.28.0"),
        ("busybox", "docker.io/library/busybox:latest"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ("127.0.0.1:5000/test/app", "127.0.0.1:5000/test/app:latest"),
        ("localhost/app:1", "localhost/app:1"),
        ("quay.io/x/y@sha256:" + "a" * 64, "quay.io/x/y@sha256:" + "a" * 64),
        ("docker.io/nginx", "docker.io/library/nginx:latest"),  # Docker Hub's short names in every spelling
        ("index.docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25"),
        ("nginx:1.25@sha256:" + "a" * 64, "docker.io/library/nginx:1.25@sha256:" + "a" * 64),
    ],
)
def test_references_compare_as_containerd_names_them(reference: str, expected: str) -> None:
    assert normalized(reference) == expected


@pytest.mark.parametrize(
    ("role", "external_etcd", "dropped"),
    [
        ("worker", False, {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}),
        ("control-plane", False, set()),
        ("control-plane", True, {"etcd"}),
    ],
)
def test_each_role_needs_what_it_runs(role: str, external_etcd: bool, dropped: set) -> None:
    kept = for_role(KUBEADM_129, role, external_etcd)
    assert {image.rsplit("/", 1)[-1].split(":")[0] for image in set(KUBEADM_129) - set(kept)} == dropped


@pytest.mark.parametrize(("role", "first"), [("worker", False), ("control-plane", False), ("control-plane", True)])
def test_the_image_check_comes_right_before_kubeadm(role: str, first: bool) -> None:
    names = [step.name for step in steps_for(role, first)]
    assert names.index("role-images") == names.index("kubeadm") - 1
    assert names.index("images") < names.index("role-images")


def standin_kubeadm(tmp_path: Path, listed: List[str], exit_code: int = 0) -> Path:
    """Prints `listed` for `config images list --config F` and keeps F; anything else is an error."""
    script = tmp_path / "kubeadm"
    seen = tmp_path / "kubeadm-config.yaml"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2 $3 $4" = "config images list --config" ] || { echo "unexpected: $*" >&2; exit 9; }\n'
        f'cp "$5" {seen}\n'
        + "".join(f"echo {image}\n" for image in listed)
        + ("echo 'could not convert cfg to an internal cfg' >&2\n" if exit_code else "")
        + f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def run_bytes(argv: List[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, timeout=60)


def test_kubeadm_is_asked_with_the_cluster_configuration(tmp_path: Path) -> None:
    kubeadm = standin_kubeadm(tmp_path, KUBEADM_129)
    configuration = cluster_configuration("kubeadm.k8s.io/v1beta3", "1.29.6", "registry.k8s.io")
    assert kubeadm_images(str(kubeadm), configuration, run_bytes) == KUBEADM_129
    written = (tmp_path / "kubeadm-config.yaml").read_text()
    assert "kind: ClusterConfiguration" in written and "kubernetesVersion: v1.29.6" in written


def test_kubeadm_failing_to_list_is_one_line(tmp_path: Path) -> None:
    from k8s_install.errors import InstallError

    kubeadm = standin_kubeadm(tmp_path, [], exit_code=1)
    with pytest.raises(InstallError, match=r"^`kubeadm config images list` failed \(exit 1\): could not convert"):
        kubeadm_images(str(kubeadm), "kind: ClusterConfiguration\n", run_bytes)


@pytest.mark.daemons
@pytest.mark.root
def test_missing_images_in_a_real_containerd_are_named_in_one_line(
    containerd: Containerd, registry: Registry, tmp_path: Path
) -> None:
    source = f"{registry.host}/test/busybox:1.0"
    pulled = containerd.run_ctr("images", "pull", "--plain-http", source)
    assert pulled.returncode == 0, pulled.stderr
    for name in ("registry.k8s.io/kube-proxy:v1.29.6", "registry.k8s.io/pause:3.9", "docker.io/calico/cni:v3.28.0"):
        assert containerd.run_ctr("images", "tag", source, name).returncode == 0
    # the same names in another namespace do not count: the kubelet sees only k8s.io
    containerd.run_ctr("images", "pull", "--plain-http", source, namespace="default")
    containerd.run_ctr("images", "tag", source, "registry.k8s.io/coredns/coredns:v1.11.1", namespace="default")

    kubeadm = standin_kubeadm(tmp_path, KUBEADM_129)
    listed = kubeadm_images(str(kubeadm), cluster_configuration("kubeadm.k8s.io/v1beta3", "1.29.6", "x"), run_bytes)
    present = present_images(containerd.ctr, containerd.socket)
    worker = needed_images(for_role(listed, "worker", False), CALICO, "registry.k8s.io/pause:3.9")
    missing = missing_images(worker, present)
    assert missing == [
        NeededImage("registry.k8s.io/coredns/coredns:v1.11.1", "kubeadm"),
        NeededImage("docker.io/calico/node:v3.28.0", "Calico"),
    ]
    line = missing_line(missing, "worker", "containerd (namespace k8s.io)")
    assert "\n" not in line
    assert line.startswith("2 image(s) this worker needs are not in containerd (namespace k8s.io): ")
    assert "registry.k8s.io/coredns/coredns:v1.11.1 (kubeadm), docker.io/calico/node:v3.28.0 (Calico)" in line
    assert "kubeadm was not started" in line

    plane = missing_images(needed_images(for_role(listed, "control-plane", False), CALICO, ""), present)
    assert {image.name.rsplit("/", 1)[-1] for image in plane} == {
        "kube-apiserver:v1.29.6", "kube-controller-manager:v1.29.6", "kube-scheduler:v1.29.6",
        "coredns:v1.11.1", "etcd:3.5.12-0", "node:v3.28.0",
    }  # fmt: skip

    # imported (here: tagged) into k8s.io, nothing is missing any more
    for image in missing:
        assert containerd.run_ctr("images", "tag", source, image.name).returncode == 0
    assert missing_images(worker, present_images(containerd.ctr, containerd.socket)) == []


MISSING = [NeededImage("registry.k8s.io/etcd:3.6.4-0", "kubeadm")]


@pytest.mark.parametrize(
    ("missing", "site", "incomplete", "starts", "fatal"),
    [
        ([], "", [], None, None),  # all there: nothing said
        (MISSING, "", [], "1 image(s) this control-plane needs are not in containerd", True),
        (MISSING, "", ["image registry.k8s.io/etcd"], "warning: 1 image(s)", False),  # --allow-incomplete
        (MISSING, "registry.site:5443", [], "note: not in containerd (namespace k8s.io): registry.k8s.io/etcd", False),
    ],
    ids=["present", "stop", "allow-incomplete", "site-registry"],
)
def test_a_missing_image_stops_the_run_unless_something_can_supply_it(missing, site, incomplete, starts, fatal) -> None:  # type: ignore[no-untyped-def]
    said = missing_verdict(missing, "control-plane", "containerd (namespace k8s.io)", site, incomplete)
    if starts is None:
        assert said is None
        return
    assert said is not None and said[0].startswith(starts) and said[1] is fatal and "\n" not in said[0]
    if site:
        assert said[0].endswith("containerd pulls them through the site registry registry.site:5443")
