"""The images a node's role will run, checked in containerd before kubeadm starts anything.

An air-gapped node can never pull: an image kubeadm or the CNI names that is missing from containerd's
`k8s.io` namespace would make kubeadm's preflight try to pull it, or the kubelet retry it forever while
`kubeadm init` waits minutes for a control plane that never starts. So the installer asks the installed
kubeadm for its own list (`kubeadm config images list`, the release's etcd, CoreDNS and pause included),
adds the images of the rendered Calico manifest and containerd's sandbox image, keeps what the role runs,
and stops with one line naming every image that is neither in containerd nor in the bundle.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Callable, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from k8s_install.errors import InstallError
from k8s_install.images.names import parse_image_name

CONTROL_PLANE_ONLY = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
Runner = Callable[[List[str]], "subprocess.CompletedProcess[bytes]"]  # Host.run: output as bytes


class NeededImage(NamedTuple):
    name: str  # as the container runtime names it (docker.io/library/... spelled out)
    why: str  # who asks for it: "kubeadm", "Calico", "containerd's sandbox"


def normalized(reference: str) -> str:
    """`calico/node:v3.28.0` -> `docker.io/calico/node:v3.28.0`, `busybox` -> `docker.io/library/busybox:latest`:
    the name containerd's CRI gives an image (images/names.py), so references written either way compare equal."""
    name, at, digest = reference.partition("@")
    parsed = parse_image_name(name)
    full = f"{parsed.registry}/{parsed.repository}"
    if not at or ":" in name.rsplit("/", 1)[-1]:
        full += f":{parsed.reference}"
    return f"{full}{at}{digest}"


def repository_name(reference: str) -> str:
    """The last path part without tag or digest: `registry.k8s.io/etcd:3.6.4-0` -> `etcd`."""
    return reference.partition("@")[0].rsplit("/", 1)[-1].split(":", 1)[0]


def cluster_configuration(api_version: str, kubernetes_version: str, image_repository: str) -> str:
    """The smallest kubeadm file that makes `kubeadm config images list` name this cluster's images."""
    return (
        f"apiVersion: {api_version}\nkind: ClusterConfiguration\nkubernetesVersion: v{kubernetes_version.lstrip('v')}\n"
        f"imageRepository: {image_repository}\n"
    )


def kubeadm_images(kubeadm: str, configuration: str, run: Runner) -> List[str]:
    """What the installed kubeadm pulls for this configuration, one image a line on its stdout."""
    with tempfile.TemporaryDirectory(prefix="k8s-install-images-") as folder:
        path = os.path.join(folder, "cluster-configuration.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(configuration)
        result = run([kubeadm, "config", "images", "list", "--config", path])
    if result.returncode != 0:
        reason = ((result.stderr or b"").decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"`kubeadm config images list` failed (exit {result.returncode}): {reason}")
    lines = (line.strip() for line in (result.stdout or b"").decode("utf-8", "replace").splitlines())
    return [line for line in lines if line and " " not in line]


def for_role(kubeadm_list: Iterable[str], role: str, external_etcd: bool) -> List[str]:
    """kubeadm's images this role runs: a worker runs kube-proxy, CoreDNS and pause; a control plane all of
    them, etcd only when it is stacked."""
    kept = []
    for image in kubeadm_list:
        part = repository_name(image)
        if part == "etcd" and external_etcd:
            continue
        if role != "control-plane" and part in CONTROL_PLANE_ONLY:
            continue
        kept.append(image)
    return kept


def needed_images(kubeadm_list: Sequence[str], cni: Sequence[str], sandbox: str) -> List[NeededImage]:
    """Every image once, the first reason kept."""
    seen: dict = {}
    for names, why in (
        (kubeadm_list, "kubeadm"),
        (cni, "Calico"),
        ([sandbox] if sandbox else [], "containerd's sandbox"),
    ):
        for name in names:
            seen.setdefault(normalized(name), why)
    return [NeededImage(name, why) for name, why in seen.items()]


def missing_images(needed: Iterable[NeededImage], have: Iterable[str]) -> List[NeededImage]:
    """The needed images not among `have` (containerd's images, or the bundle's where containerd cannot be asked)."""
    names = {normalized(name) for name in have}
    return [image for image in needed if image.name not in names]


def missing_line(missing: Sequence[NeededImage], role: str, where: str) -> str:
    names = ", ".join(f"{image.name} ({image.why})" for image in missing)
    return (
        f"{len(missing)} image(s) this {role} needs are not in {where}: {names}; an offline node cannot pull them, "
        "so kubeadm was not started: build the bundle from a release manifest that lists them (`kubeadm config "
        "images list` names kubeadm's), or import them with `ctr -n k8s.io images import FILE`, then run this again"
    )


def missing_verdict(
    missing: Sequence[NeededImage], role: str, where: str, site_registry: str, incomplete: Sequence[str]
) -> Optional[Tuple[str, bool]]:
    """(what to say, whether it stops the run), or None when nothing is missing. With a site registry
    (cluster.yaml `registry:`) containerd can pull them: a note. From a bundle built --allow-incomplete the
    operator accepted missing parts: a warning. Otherwise nothing can supply them: the error."""
    if not missing:
        return None
    if site_registry:
        names = ", ".join(image.name for image in missing)
        return f"note: not in {where}: {names}; containerd pulls them through the site registry {site_registry}", False
    line = missing_line(missing, role, where)
    if incomplete:
        return f"warning: {line} (--allow-incomplete: going on)", False
    return line, True
