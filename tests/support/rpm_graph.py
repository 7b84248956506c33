"""A package graph shaped like the real Kubernetes one, across two repositories, built once per session.

kubernetes repo: kubeadm (1.29.6 and a newer 1.30.0 the pin must skip; x86_64 and aarch64) -> kubelet,
kubectl, cri-tools, kubernetes-cni >= 1.2.0 (1.2.0 and 1.3.0 exist). kubelet -> conntrack (provided by
conntrack-tools), socat, iptables >= 1.4.21, /usr/sbin/ethtool (a file in primary.xml), a file only
filelists.xml names, `(iptables-nft-services or ebtables)`, `(kubelet-selinux if selinux-policy)`, util-linux.
base repo: the providers, ethtool twice (2:6.2 must beat 0:6.5 by epoch), and the minimal-install set.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.support.rpm_repo import FakeRpm, build_rpms, make_repo, missing_tools
from tests.support.signing import SigningKey

BINARY_ARCHES = ("x86_64", "aarch64")
K8S_RELEASE = "150500.1.1"
ASSUMED = ["glibc", "bash", "util-linux", "selinux-policy"]
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


KUBELET_UNIT = (
    "[Unit]\nDescription=kubelet\n[Service]\nExecStart=/usr/bin/kubelet\n[Install]\nWantedBy=multi-user.target\n"
)


def kubernetes_packages() -> List[FakeRpm]:
    kubelet_requires = [
        "conntrack", "socat", "iptables >= 1.4.21", "kubernetes-cni >= 1.2.0", "/usr/sbin/ethtool",
        "/usr/share/k8s-test/marker", "(iptables-nft-services or ebtables)",
        "(kubelet-selinux if selinux-policy)", "util-linux",
    ]  # fmt: skip
    kubeadm_requires = [
        "kubelet >= 1.19.0",
        "kubectl >= 1.19.0",
        "kubernetes-cni >= 1.2.0",
        "cri-tools >= 1.28.0",
    ]

    def binary(name: str, version: str, requires: List[str]) -> FakeRpm:
        files = {f"/usr/bin/{name}": f"{name}-{version}"}
        if name == "kubelet":  # as the real RPM: the unit the installer enables
            files["/usr/lib/systemd/system/kubelet.service"] = KUBELET_UNIT
        return FakeRpm(name, version, K8S_RELEASE, arches=BINARY_ARCHES, requires=requires, files=files)

    return [
        binary("kubeadm", "1.29.6", kubeadm_requires),
        binary("kubeadm", "1.30.0", kubeadm_requires),
        binary("kubelet", "1.29.6", kubelet_requires),
        binary("kubectl", "1.29.6", []),
        FakeRpm("cri-tools", "1.29.0", release=K8S_RELEASE, arches=BINARY_ARCHES),
        FakeRpm("kubelet-selinux", "1.0", requires=["selinux-policy"]),
        *[
            FakeRpm("kubernetes-cni", version, release=K8S_RELEASE, arches=BINARY_ARCHES,
                    files={f"/opt/cni/bin/{p}": f"kubernetes-cni-{version}-{p}" for p in CNI_PLUGINS})
            for version in ("1.2.0", "1.3.0")
        ],
    ]  # fmt: skip


def base_packages() -> List[FakeRpm]:
    return [
        FakeRpm("conntrack-tools", "1.4.7", provides=["conntrack"], requires=["libnetfilter_cthelper", "glibc"]),
        FakeRpm("libnetfilter_cthelper", "1.0.0", requires=["glibc"]),
        FakeRpm("socat", "1.7.4.1", requires=["glibc"]),
        FakeRpm("iptables", "1.8.10", files={"/usr/sbin/iptables": "iptables"}),
        FakeRpm("ethtool", "6.2", epoch=2, files={"/usr/sbin/ethtool": "ethtool-2:6.2"}),
        FakeRpm("ethtool", "6.5", files={"/usr/sbin/ethtool": "ethtool-0:6.5"}),
        FakeRpm("k8s-test-data", "1.0", files={"/usr/share/k8s-test/marker": "marker"}),
        FakeRpm("ebtables", "1.8.10", requires=["glibc"]),
        FakeRpm("chrony", "4.5", requires=["glibc", "bash"]),
        FakeRpm("glibc", "2.34"),
        FakeRpm("bash", "5.1.8"),
        FakeRpm("util-linux", "2.37.4", requires=["glibc"]),
        FakeRpm("selinux-policy", "38.1"),
    ]


MINIMAL_X86_64 = {
    "kubeadm": "1.29.6", "kubelet": "1.29.6", "kubectl": "1.29.6", "cri-tools": "1.29.0",
    "kubernetes-cni": "1.3.0", "conntrack-tools": "1.4.7", "libnetfilter_cthelper": "1.0.0",
    "socat": "1.7.4.1", "iptables": "1.8.10", "ethtool": "2:6.2", "k8s-test-data": "1.0",
    "ebtables": "1.8.10", "kubelet-selinux": "1.0", "chrony": "4.5",
}  # fmt: skip
FULL_EXTRA = {
    "glibc": "2.34",
    "bash": "5.1.8",
    "util-linux": "2.37.4",
}  # kubelet-selinux: its condition is off


class RpmGraph:
    def __init__(self, root: Path, rpms: Optional[Dict[str, Path]] = None) -> None:
        self.root = root
        self.rpms: Dict[str, Path] = rpms or build_rpms(kubernetes_packages() + base_packages(), root / "build")
        kubernetes = {p.name for p in kubernetes_packages()}
        self.kubernetes_rpms = [p for name, p in self.rpms.items() if name.rsplit("-", 2)[0] in kubernetes]
        self.base_rpms = [p for p in self.rpms.values() if p not in self.kubernetes_rpms]

    def repo(self, name: str, rpms: List[Path], compress: str = "gz") -> Path:
        return make_repo(self.root / "repos" / name, rpms, compress)

    def copy(self, root: Path) -> RpmGraph:
        """The same RPM files copied under `root` (to be signed, say)."""
        (root / "copied").mkdir(parents=True)
        return RpmGraph(
            root, {name: Path(shutil.copy2(path, root / "copied" / name)) for name, path in self.rpms.items()}
        )


@pytest.fixture(scope="session")
def rpm_graph(tmp_path_factory: pytest.TempPathFactory) -> RpmGraph:
    missing = missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install rpm createrepo-c)")
    return RpmGraph(tmp_path_factory.mktemp("rpm-graph"))


@pytest.fixture(scope="session")
def signing_key() -> Iterator[SigningKey]:
    """The repositories' throwaway key, for every test that signs the graph's RPMs or repomd.xml."""
    key = SigningKey("k8s-test-repo")
    yield key
    key.close()


@pytest.fixture(scope="session")
def impostor() -> Iterator[SigningKey]:
    """Another key: what a tampered mirror or a swapped key signs with."""
    key = SigningKey("impostor")
    yield key
    key.close()


@pytest.fixture(scope="session")
def signed_graph(rpm_graph: RpmGraph, signing_key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> RpmGraph:
    """The graph's RPMs, copied and signed by `signing_key` (once per session)."""
    graph = rpm_graph.copy(tmp_path_factory.mktemp("signed-graph"))
    signing_key.sign_rpms(list(graph.rpms.values()))
    return graph
