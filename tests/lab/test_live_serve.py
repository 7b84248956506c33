"""`k8s-install.pyz serve` live on a lab node with systemd as PID 1: the units start, the readiness polls pass,
firewalld opens the ports, curl on the node fetches files and manifests by digest over TLS from the cluster
CA, a re-run changes nothing, reset closes and removes it all.

The node root is the lab's Debian one: this machine's nginx (and the libraries it needs that the root lacks) is
copied into the node, and the bundle's `registry` artifact is Debian's docker-registry (the same program).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, List

import pytest
import yaml

from tests.conftest import StandInRelease
from tests.k8s_install.serve.test_serve import NGINX, TOP, add_registry_artifact
from tests.lab.node import LabCluster, LabNode
from tests.support.image_fixtures import build_bundle
from tests.support.registry import REGISTRY_BINARY, Registry

pytestmark = pytest.mark.xdist_group("lab-serve")  # a node and a bundle of its own: runs beside the shared lab

ADDRESS = "10.213.9.21/24"
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
])  # fmt: skip


@pytest.fixture
def bundle_host(lab_root_dir: Path) -> Iterator[LabNode]:
    work = Path(tempfile.mkdtemp(prefix="k8sserve-", dir="/var/tmp"))  # short: overlay options are long
    nodes = LabCluster(lab_root_dir, work)
    try:
        node = nodes.add("k8s-bh01", ADDRESS)
        give_nginx(node)
        yield node
    finally:
        nodes.close()
        shutil.rmtree(work, ignore_errors=True)


def give_nginx(node: LabNode) -> None:
    """This machine's nginx into the node, with the shared libraries its root does not have."""
    shutil.copy2(NGINX, node.path("/usr/sbin/nginx"))
    listed = subprocess.run(["ldd", NGINX], capture_output=True, text=True, check=True).stdout
    for line in listed.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and parts[1].split():
            library = Path(parts[1].split()[0])
            if library.is_absolute() and not node.path(str(library)).exists():
                node.path(str(library.parent)).mkdir(parents=True, exist_ok=True)
                shutil.copy2(library, node.path(str(library)))


def serve(node: LabNode, *extra: str) -> subprocess.CompletedProcess:
    argv = ["/srv/bundle/k8s-install.pyz", "serve", *extra, "--secrets", "/root/cluster-secrets.yaml",
            "--nginx-binary", "/usr/sbin/nginx"]  # fmt: skip
    return node.run(argv, timeout=600, unit=f"k8s-serve-{extra[0] if extra else 'run'}", check=False)


def curl(node: LabNode, url: str, into: str, *extra: str) -> None:
    node.run(["curl", "-sS", "--fail", "--cacert", "/root/ca.crt", *extra, "-o", into, url])


def test_serve_live_on_a_systemd_node(
    bundle_host: LabNode, release: StandInRelease, registry: Registry, tmp_path: Path
) -> None:
    node = bundle_host
    add_registry_artifact(release, Path(REGISTRY_BINARY).read_bytes())
    release.set_images([f"{registry.host}/test/busybox:1.0", "registry.k8s.io/pause:3.9"])
    built = build_bundle(release, tmp_path, "--insecure-registry", registry.host,
                         "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored")  # fmt: skip
    assert built.returncode == 0, built.stderr
    subprocess.run(["tar", "-xf", str(tmp_path / "out" / f"{TOP}.tar"), "-C", str(tmp_path)], check=True)
    shutil.copytree(tmp_path / TOP, node.path("/srv/bundle"))
    from k8s_install.cluster.secrets import generate_secrets, write_secrets

    secrets = generate_secrets("servelab")
    write_secrets(node.path("/root/cluster-secrets.yaml"), secrets)
    node.path("/root/ca.crt").write_text(secrets.ca_cert_pem)

    # a port another program holds is named before anything changes
    node.run(["systemd-run", "--unit=squatter", "--property=Type=exec", "python3", "-m", "http.server", "8443"])
    node.run(["sh", "-c", "for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8443/ && exit 0; "
              "sleep 0.2; done; exit 1"])  # fmt: skip
    taken = serve(node, "--yes")
    assert taken.returncode == 1 and "port 8443 is in use by another program" in taken.stderr, taken.stderr
    assert not node.path("/etc/k8s-bundle-host").exists()
    node.run(["systemctl", "stop", "squatter"])

    first = serve(node, "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    address = ADDRESS.split("/")[0]
    assert f"bundle host: files at https://{address}:8443/, images at {address}:5443" in first.stdout
    assert "open firewalld service k8s-bundle-host (8443/tcp, 5443/tcp)" in first.stdout
    for unit in ("k8s-bundle-web.service", "k8s-bundle-registry.service"):
        assert node.active(unit), node.run(["journalctl", "-u", unit, "--no-pager"], check=False).stdout[-2000:]

    curl(node, f"https://{address}:8443/SHA256SUMS", "/root/sums")
    sums = (tmp_path / TOP / "SHA256SUMS").read_bytes()
    assert node.path("/root/sums").read_bytes() == sums
    listed = dict(reversed(line.split("  ", 1)) for line in sums.decode().splitlines())
    curl(node, f"https://{address}:8443/bundle.yaml", "/root/bundle.yaml")
    assert hashlib.sha256(node.path("/root/bundle.yaml").read_bytes()).hexdigest() == listed["bundle.yaml"]
    images = yaml.safe_load((tmp_path / TOP / "bundle.yaml").read_text())["images"]
    for image in images:
        repository = image["name"].split("/", 1)[1].rsplit(":", 1)[0]
        url = f"https://{address}:5443/v2/{repository}/manifests/{image['digest']}"
        curl(node, url, "/root/manifest", "-H", f"Accept: {ACCEPT}")
        assert "sha256:" + hashlib.sha256(node.path("/root/manifest").read_bytes()).hexdigest() == image["digest"]
    assert node.run(["firewall-cmd", "--query-service=k8s-bundle-host"], check=False).returncode == 0

    again = serve(node, "--yes")
    assert again.returncode == 0 and "done: 0 change(s) applied" in again.stdout, again.stdout + again.stderr
    status = serve(node, "status").stdout
    assert "active: active" in status and f"registry: {len(images)} of {len(images)} bundled images stored" in status

    reset = serve(node, "reset", "--yes")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert not node.active("k8s-bundle-web.service") and not node.active("k8s-bundle-registry.service")
    gone: List[str] = ["/etc/k8s-bundle-host", "/var/lib/k8s-bundle-host", "/etc/systemd/system/k8s-bundle-web.service",
                       "/usr/local/bin/registry", "/etc/firewalld/services/k8s-bundle-host.xml"]  # fmt: skip
    assert [path for path in gone if node.path(path).exists()] == []
    assert node.run(["firewall-cmd", "--query-service=k8s-bundle-host"], check=False).returncode != 0
