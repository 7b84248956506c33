"""The site's registry in the lab: a real `docker-registry` (TLS from a test CA, htpasswd) in a namespace of its
own on the lab's bridge, three nodes installed live with a cluster.yaml naming it (a copy passed with --config,
its CA file beside it, the account in the secrets), then each node's containerd pulls, through its CRI plugin
as kubelet does, a workload image only the site registry holds, under an upstream name (quay.io/...).

Its own three nodes (booted like the session's, closed at the end), so the session cluster's order is untouched.
Taking `registry:` out again and re-running removes what the installer wrote.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import yaml

from tests.lab.cluster import BUNDLE_DIR, ROLES, LiveCluster, booted_lab
from tests.lab.conftest import TIMINGS
from tests.support.cluster_files import SUBNET
from tests.support.cri_client import CriImageClient
from tests.support.registry import REGISTRY_BINARY, Registry, make_certificate, make_htpasswd
from tests.support.test_images import PushedImages

NODES = ("k8s-mn01", "k8s-mn02", "k8s-wn01")
REGISTRY_IP = f"{SUBNET}.50"
ENDPOINT = f"{REGISTRY_IP}:5000"
PREFIX = "site"
WORKLOAD = "quay.io/acme/app:2.0"  # the site registry holds it as site/acme/app:2.0; no bundle carries it
USER, PASSWORD = "kubelet-pull", "lab-Pull-77"
SITE_DIR = "/root/site"
# Its own nodes (registry_cluster): under pytest-xdist it runs beside the other lab modules, in the other worker
pytestmark = pytest.mark.xdist_group("lab-site-registry")


def secrets_name(name: str) -> str:
    return "cluster-secrets-worker.yaml" if "wn" in name else "cluster-secrets.yaml"


@pytest.fixture(scope="module")
def registry_cluster(
    lab_root_dir: Path, lab_bundle: Tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveCluster]:
    with booted_lab(lab_root_dir, *lab_bundle, "k8sreg-", TIMINGS) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def site_registry(
    registry_cluster: LiveCluster, pushed_images: PushedImages, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The registry on the lab's bridge, holding the workload image; returns its CA certificate."""
    work = tmp_path_factory.mktemp("lab-site-registry")
    tls = make_certificate(work / "pki", "site", ip=REGISTRY_IP)
    htpasswd = make_htpasswd(work / "htpasswd", USER, PASSWORD)
    layout = work / "app-layout"
    source_storage = work / "source"
    shutil.copytree(pushed_images.storage, source_storage)
    with Registry(source_storage, work / "source-registry") as source:  # loopback, plain: only to read from
        copy = ["skopeo", "copy", "--src-tls-verify=false", f"docker://{source.host}/test/app:2.0", f"oci:{layout}:app"]
        subprocess.run(copy, check=True, capture_output=True)
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(work / "storage")}},
        "http": {
            "addr": ENDPOINT,
            "secret": "lab-only",
            "tls": {"certificate": str(tls["cert"]), "key": str(tls["key"])},
        },
        "auth": {"htpasswd": {"realm": "lab-site", "path": str(htpasswd)}},
    }
    (work / "registry.yml").write_text(yaml.safe_dump(config))
    lab = registry_cluster.nodes.lab
    lab.add_host("registry", f"{REGISTRY_IP}/24")
    lab.start("registry", [REGISTRY_BINARY, "serve", str(work / "registry.yml")], "site-registry")
    certs = work / "ca-only"
    certs.mkdir()
    shutil.copy(tls["cert"], certs / "ca.crt")
    probe = [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        str(tls["cert"]),
        f"https://{ENDPOINT}/v2/",
    ]
    deadline = time.monotonic() + 30
    while lab.run("registry", probe).stdout != "401":  # up, and asking for the account
        assert time.monotonic() < deadline, "the site registry did not answer in the lab"
        time.sleep(0.2)
    push = ["skopeo", "copy", "--dest-cert-dir", str(certs), "--dest-creds", f"{USER}:{PASSWORD}",
            f"oci:{layout}:app", f"docker://{ENDPOINT}/{PREFIX}/acme/app:2.0"]  # fmt: skip
    pushed = lab.run("registry", push, timeout=120)
    assert pushed.returncode == 0, pushed.stderr
    return tls["cert"]


def install(cluster: LiveCluster, name: str, *extra: str) -> subprocess.CompletedProcess:
    argv = ["./k8s-install.pyz", *ROLES[name], "--allow-incomplete", "--yes", *extra]
    cluster.count += 1
    return cluster[name].run(argv, timeout=900, check=False, cwd=BUNDLE_DIR, unit=f"k8s-lab-reg-{cluster.count}")


def place_site_files(cluster: LiveCluster, name: str, ca: Path) -> List[str]:
    """cluster.yaml naming the registry (a copy beside the bundle, as the docs say), its CA beside it, and the
    secrets with the account; returns the installer options that use them."""
    node = cluster[name]
    folder = node.path(SITE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(node.path(f"{BUNDLE_DIR}/cluster.yaml").read_text())
    config["registry"] = {"endpoint": ENDPOINT, "ca_file": "site-ca.pem", "prefix": PREFIX}
    (folder / "cluster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(ca, folder / "site-ca.pem")
    secrets = yaml.safe_load(node.path(f"/root/{secrets_name(name)}").read_text())
    secrets.update(registry_username=USER, registry_password=PASSWORD)
    (folder / secrets_name(name)).write_text(yaml.safe_dump(secrets, sort_keys=False))
    (folder / secrets_name(name)).chmod(0o600)
    return ["--config", f"{SITE_DIR}/cluster.yaml", "--secrets", f"{SITE_DIR}/{secrets_name(name)}"]


def node_socket(cluster: LiveCluster, name: str, work: Path) -> str:
    """The node's containerd socket, seen from the host through its PID 1's root (a short link to it)."""
    link = work / f"{name}.sock"
    link.symlink_to(f"/proc/{cluster[name].leader}/root/run/containerd/containerd.sock")
    return str(link)


def test_every_nodes_runtime_pulls_a_workload_image_through_the_site_registry(
    registry_cluster: LiveCluster, site_registry: Path
) -> None:
    for name in NODES:
        options = place_site_files(registry_cluster, name, site_registry)
        result = install(registry_cluster, name, *options)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    work = Path(tempfile.mkdtemp(prefix="cri-", dir="/tmp"))
    try:
        for name in NODES:
            node = registry_cluster[name]
            hosts = node.path("/etc/containerd/certs.d/quay.io/hosts.toml").read_text()
            assert f'[host."https://{ENDPOINT}/v2/{PREFIX}"]' in hosts
            assert oct(node.path("/etc/containerd/config.toml").stat().st_mode & 0o777) == "0o600"
            with CriImageClient(node_socket(registry_cluster, name, work)) as cri:
                assert cri.image_status(WORKLOAD) is None
                reference = cri.pull_image(WORKLOAD)  # as kubelet asks: no account in the request
                status = cri.image_status(WORKLOAD)
            assert status is not None and status.id == reference, name
            listed = node.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"]).stdout.split()
            assert WORKLOAD in listed and "registry.k8s.io/pause:3.9" in listed, name  # the bundle's still there
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_second_run_changes_nothing_and_taking_registry_out_removes_its_files(
    registry_cluster: LiveCluster, site_registry: Path
) -> None:
    name = "k8s-wn01"
    options = ["--config", f"{SITE_DIR}/cluster.yaml", "--secrets", f"{SITE_DIR}/{secrets_name(name)}"]
    again = install(registry_cluster, name, *options)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "[registry-mirrors] containerd pulls through the site registry (cluster.yaml registry:): ok" in again.stdout
    assert "[containerd] containerd, buildkitd, nerdctl and crictl configuration: ok" in again.stdout
    plain = install(registry_cluster, name)  # the bundle's cluster.yaml: no registry
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "remove /etc/containerd/certs.d/quay.io/hosts.toml" in plain.stdout
    node = registry_cluster[name]
    assert not node.path("/etc/containerd/certs.d/quay.io").exists()
    assert oct(node.path("/etc/containerd/config.toml").stat().st_mode & 0o777) == "0o644"
