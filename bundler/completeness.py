"""What a bundle must hold for the node installer to make a working node, checked against the plan before
anything large is fetched: Kubernetes' three tools, the container runtime, the CNI plugins, the images
kubeadm pulls, and the Calico manifest with the images it names.

A part counts when a file artifact or an RPM of one of its names is in the plan. Only targets that
install from RPMs are supported: binary installs (`rpms: false`) lack the kubelet unit and kubeadm
drop-in on the node side, so such a target is refused until the installer has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Tuple

from bundler.oci.reference import parse_reference

KUBEADM_REGISTRY = "registry.k8s.io"
CALICO_MANIFEST = "calico-manifest"


@dataclass(frozen=True)
class Part:
    what: str
    names: Tuple[str, ...]  # a file artifact or an RPM package of any of these names provides it


PARTS = (
    Part("kubeadm", ("kubeadm",)),
    Part("kubelet", ("kubelet",)),
    Part("kubectl", ("kubectl",)),
    Part("containerd", ("containerd", "containerd.io")),
    Part("runc", ("runc",)),
    Part("CNI plugins", ("cni-plugins", "kubernetes-cni", "containernetworking-plugins")),
)


def kubeadm_images(kubernetes: str) -> List[Tuple[str, str]]:
    """(repository, required tag or "" for any) of every image `kubeadm config images list` names."""
    own = [(f"{KUBEADM_REGISTRY}/{name}", f"v{kubernetes}") for name in
           ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")]  # fmt: skip
    return own + [(f"{KUBEADM_REGISTRY}/{name}", "") for name in ("etcd", "coredns/coredns", "pause")]


@dataclass(frozen=True)
class Inventory:
    """What the plan will put into the bundle."""

    os_id: str
    installs_rpms: bool  # Kubernetes from OS packages: RPMs, or .debs on Debian and Ubuntu targets
    kubernetes: str
    files: Tuple[str, ...]  # file artifact names
    rpms: Tuple[str, ...]  # package names of the closure (RPMs or .debs)
    images: Tuple[str, ...]  # full image names
    images_from_files: Tuple[str, ...]


def missing_parts(inventory: Inventory) -> List[str]:
    """Every missing part, as the user should read it; empty when the bundle is complete."""
    if not inventory.installs_rpms:
        return [
            f"target {inventory.os_id} installs Kubernetes from binaries, which the node installer does not support "
            "yet (no kubelet unit or kubeadm drop-in): build for an EL9 target (rocky9, alma9, rhel9)"
        ]
    missing = []
    have = set(inventory.files) | set(inventory.rpms)
    for part in PARTS:
        if not have.intersection(part.names):
            missing.append(f"{part.what} (a file or an RPM named {' or '.join(part.names)})")
    images = _repositories(inventory.images)
    for repository, tag in kubeadm_images(inventory.kubernetes):
        tags = images.get(repository, set())
        if not tags or (tag and tag not in tags):
            missing.append(f"image {repository}{':' + tag if tag else ''} (kubeadm pulls it)")
    if CALICO_MANIFEST not in inventory.files:
        missing.append(f"the Calico manifest (a file named {CALICO_MANIFEST})")
    elif CALICO_MANIFEST not in inventory.images_from_files:
        missing.append(f"Calico's images (list {CALICO_MANIFEST} in images_from_files)")
    return missing


def _repositories(names: Iterable[str]) -> dict:
    found: dict = {}
    for name in names:
        ref = parse_reference(name, "image")
        found.setdefault(f"{ref.registry}/{ref.repository}", set()).add(ref.tag or "")
    return found
