"""A worker installed from a bundle host (`--bundle-url`) on a simulated node: the real pyz under Python 3.9, a
temporary root, a network namespace in which a real nginx serves the unpacked bundle over TLS with a
certificate of the cluster CA. The node starts with only the pyz and SHA256SUMS; it ends where an install
from the unpacked bundle ends (a plan from the whole folder finds nothing to change), re-runs change nothing,
and reset undoes it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator, List

import pytest

from k8s_install.cluster.secrets import ClusterSecrets
from tests.support.bundle_host import Nginx, sign_server_certificate
from tests.support.cluster_files import write_cluster
from tests.support.node_bundle import TOP, build_node_bundle
from tests.support.prerequisites import require
from tests.support.sandbox import NetNamespace, add_kubelet_unit, make_el9_root
from tests.support.session_cache import shiv_root

pytestmark = [
    pytest.mark.daemons,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, chown)"),
]

WORKER_IP = "10.213.7.100"


@pytest.fixture
def namespace() -> Iterator[NetNamespace]:
    require("ip", "nginx", "openssl")
    with NetNamespace() as created:
        created.add_address(f"{WORKER_IP}/24")
        yield created


@pytest.fixture
def site(cluster_secrets: ClusterSecrets, tmp_path: Path) -> Path:
    write_cluster(tmp_path / "site", cluster_secrets)
    return tmp_path / "site"


@pytest.fixture
def served(mirror, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    return build_node_bundle(mirror, tmp_path / "build")


@pytest.fixture
def host(served: Path, namespace: NetNamespace, cluster_secrets: ClusterSecrets, tmp_path: Path) -> Iterator[Nginx]:
    """The bundle host, inside the node's namespace (tests talk to loopback or their own namespaces only)."""
    certificate = sign_server_certificate(tmp_path / "tls", cluster_secrets.ca_cert_pem, cluster_secrets.ca_key_pem)
    with Nginx(served, tmp_path / "nginx", certificate, prefix=namespace.prefix()) as server:
        yield server


@pytest.fixture
def node_folder(served: Path, tmp_path: Path) -> Path:
    """What the operator copies to the node: the pyz and SHA256SUMS, nothing else of the bundle."""
    folder = tmp_path / "node-bundle" / TOP
    folder.mkdir(parents=True)
    for name in ("k8s-install.pyz", "SHA256SUMS"):
        shutil.copy2(served / name, folder / name)
    return folder


def node(python39: str, folder: Path, root: Path, namespace: NetNamespace, site: Path, *args: str) -> List[str]:
    identity = [
        "--role",
        "worker",
        "--config",
        str(site / "cluster.yaml"),
        "--secrets",
        str(site / "cluster-secrets.yaml"),
    ]
    return namespace.prefix() + [python39, str(folder / "k8s-install.pyz"), "--root", str(root), *identity, *args]


def run(command: List[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_a_worker_installs_from_the_bundle_host_as_from_the_unpacked_bundle(
    python39: str, served: Path, host: Nginx, node_folder: Path, namespace: NetNamespace, site: Path, tmp_path: Path
) -> None:
    root = make_el9_root(tmp_path / "node")
    add_kubelet_unit(root)
    from_host = ["--bundle-url", host.url, "--allow-incomplete"]  # the stand-in bundle lacks images and packages
    first = run(node(python39, node_folder, root, namespace, site, "install", *from_host, "--yes"), tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "[runtime-binaries]" in first.stdout and "fetched" in first.stdout
    assert (root / "usr/local/bin/containerd").read_bytes() == Path("/usr/bin/containerd").read_bytes()
    assert not (node_folder / "files/calico-typha.yaml").exists()  # the first control plane's, not a worker's
    requested = {path for path, _status, _sent in host.requests()}
    assert "/files/calico-typha.yaml" not in requested

    again = run(node(python39, node_folder, root, namespace, site, "install", *from_host, "--yes"), tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fetched 0 file(s)" in again.stdout and "done: 0 change(s) applied" in again.stdout

    # the same node, planned from the whole unpacked bundle: the install from the host left nothing to do
    whole = run(node(python39, served, root, namespace, site, "plan", "--allow-incomplete"), tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert "plan: 0 change(s) pending" in whole.stdout, whole.stdout

    reset = run(namespace.prefix() + [python39, str(node_folder / "k8s-install.pyz"), "--root", str(root),
                                      "reset", "--yes"], tmp_path)  # fmt: skip
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert not (root / "usr/local/bin/containerd").exists()
