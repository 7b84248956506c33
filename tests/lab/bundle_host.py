"""A bundle host in the lab (issue 23): a machine on the lab's bridge that alone receives the bundle tarball and
runs `k8s-install.pyz serve`, and nodes that receive only the kit (`k8s-install.pyz`, `SHA256SUMS`, the
signature when signed), their secrets and a cluster.yaml naming the host's registry, and install with
`--bundle-url`. Shared by tests/lab/test_live_bundle_host.py and tests/bench/bundle_host.py.

The host runs this machine's nginx (copied in, tests/lab/test_live_serve.py) and Debian's docker-registry (the
CNCF distribution registry) with `--registry-binary`. nginx's access log, off as serve writes it, is turned on
by `start_bundle_host` as the tests' instrument: what each node was served, and its size.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import yaml

from k8s_install.bundle_format.layout import SIGNATURE_NAMESPACE
from tests.lab.cluster import BUNDLE_DIR, LAB_TOP, ROLES, Run
from tests.lab.node import LabCluster, LabNode
from tests.lab.test_live_serve import give_nginx
from tests.support.cluster_files import SUBNET
from tests.support.registry import REGISTRY_BINARY

HOST = "k8s-bh01"
HOST_IP = f"{SUBNET}.5"
HOST_DIR = f"/srv/{LAB_TOP}"
BUNDLE_URL = f"https://{HOST_IP}:8443"
REGISTRY = f"{HOST_IP}:5443"
ACCESS_LOG = "/var/log/k8s-lab-bundle-access.log"
NODES = (("k8s-mn01", f"{SUBNET}.11/24"), ("k8s-mn02", f"{SUBNET}.22/24"), ("k8s-wn01", f"{SUBNET}.100/24"))
NAMES = tuple(name for name, _ in NODES)
CONTROL_PLANES = ("k8s-mn01", "k8s-mn02")
SITE_DIR = "/root/site"
KIT = ("k8s-install.pyz", "SHA256SUMS", "SHA256SUMS.sig")  # what a node receives of the bundle (.sig if signed)
PULLED = "registry.k8s.io/pause:3.9"
# nginx's default "combined" format: IP - - [time] "GET /path HTTP/1.1" status bytes "referer" "agent"
COMBINED = re.compile(r'^(\S+) \S+ \S+ \[[^\]]+\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+)')


class Served(NamedTuple):
    client: str
    path: str
    status: int
    size: int


def secrets_name(name: str) -> str:
    return "cluster-secrets-worker.yaml" if "wn" in name else "cluster-secrets.yaml"


def sums_of(text: str) -> Dict[str, str]:
    """path -> sha256 of a SHA256SUMS text."""
    listed = {}
    for line in text.splitlines():
        digest, path = line.split("  ", 1)
        listed[path] = digest
    return listed


Signer = Tuple[Path, Path]  # an OpenSSH signing key, and an allowed_signers file trusting it


class HostLab:
    """The bundle host and the three nodes on one bridge, with what the test recorded of their runs."""

    def __init__(
        self, nodes: LabCluster, tarball: Path, site: Path, signer: Optional[Tuple[Path, Path]] = None
    ) -> None:
        """`signer`: (OpenSSH signing key, allowed_signers trusting it): the host's SHA256SUMS is signed with
        it, as `bundler build --sign-key` signs a release, and the nodes check it with --trusted-signers."""
        self.nodes, self.tarball, self.site, self.signer = nodes, tarball, site, signer
        self.runs: Dict[str, List[Run]] = {}

    def __getitem__(self, name: str) -> LabNode:
        return self.nodes.nodes[name]

    @property
    def host(self) -> LabNode:
        return self[HOST]

    def sums(self) -> Dict[str, str]:
        return sums_of(self.host.path(f"{HOST_DIR}/SHA256SUMS").read_text())

    def served(self) -> List[Served]:
        log = self.host.path(ACCESS_LOG)
        found = []
        for line in log.read_text().splitlines() if log.exists() else []:
            matched = COMBINED.match(line)
            if matched:
                client, _method, path, status, size = matched.groups()
                found.append(Served(client, path.lstrip("/"), int(status), int(size)))
        return found

    def install(self, name: str, role: Sequence[str] = (), from_host: bool = True) -> Run:
        """`./k8s-install.pyz --role ... --yes` on the node, from the host (`--bundle-url`) or from the bundle
        unpacked in its folder; cluster.yaml and the secrets from SITE_DIR."""
        source = ["--bundle-url", BUNDLE_URL] if from_host else []
        if self.signer is not None:
            source += ["--trusted-signers", f"{SITE_DIR}/allowed_signers"]
        argv = ["./k8s-install.pyz", *(role or ROLES[name]), "--allow-incomplete", "--yes", *source,
                "--config", f"{SITE_DIR}/cluster.yaml", "--secrets", f"{SITE_DIR}/{secrets_name(name)}"]  # fmt: skip
        runs = self.runs.setdefault(name, [])  # one list per node: nodes may install at once (threads)
        unit = f"k8s-lab-bh-{name}-{len(runs) + 1}"
        started = time.monotonic()
        result = self[name].run(argv, timeout=1800, check=False, cwd=BUNDLE_DIR, unit=unit)
        run = Run(result, time.monotonic() - started)
        runs.append(run)
        return run


def start_bundle_host(lab: HostLab, timings: Dict[str, float]) -> None:
    """The tarball onto the host only, unpacked where nginx's workers may read it, then `serve`."""
    host = lab.host
    give_nginx(host)
    shutil.copy2(REGISTRY_BINARY, host.path("/usr/local/sbin/docker-registry"))
    host.path("/srv").mkdir(exist_ok=True)
    shutil.copy2(lab.tarball, host.path(f"/srv/{lab.tarball.name}"))
    host.run(["tar", "-xf", lab.tarball.name], cwd="/srv", timeout=300)
    if lab.signer is not None:
        sign = ["ssh-keygen", "-q", "-Y", "sign", "-n", SIGNATURE_NAMESPACE, "-f", str(lab.signer[0]),
                str(host.path(f"{HOST_DIR}/SHA256SUMS"))]  # fmt: skip
        subprocess.run(sign, check=True, capture_output=True)
    shutil.copy2(lab.site / "cluster-secrets.yaml", host.path("/root/cluster-secrets.yaml"))
    host.path("/root/cluster-secrets.yaml").chmod(0o600)
    argv = ["./k8s-install.pyz", "serve", "--secrets", "/root/cluster-secrets.yaml", "--yes",
            "--nginx-binary", "/usr/sbin/nginx", "--registry-binary", "/usr/local/sbin/docker-registry"]  # fmt: skip
    started = time.monotonic()
    served = host.run(argv, timeout=600, check=False, cwd=HOST_DIR, unit="k8s-lab-serve")
    timings["bundle host serve"] = time.monotonic() - started
    assert served.returncode == 0, served.stdout + served.stderr
    # the test's own instrument: nginx's access log (serve keeps it off), to see what each node was served
    config = host.path("/etc/k8s-bundle-host/nginx.conf")
    config.write_text(config.read_text().replace("access_log off;", f"access_log {ACCESS_LOG};"))
    host.run(["systemctl", "restart", "k8s-bundle-web.service"])
    fetch = f"curl -s -o /dev/null --cacert /root/ca.crt {BUNDLE_URL}/SHA256SUMS"
    probe = f"for i in $(seq 100); do {fetch} && exit 0; sleep 0.2; done; exit 1"
    host.path("/root/ca.crt").write_text(yaml.safe_load((lab.site / "cluster-secrets.yaml").read_text())["ca_cert"])
    host.run(["sh", "-c", probe])


def give_kit(lab: HostLab, name: str, cluster_yaml: Path) -> None:
    """What the operator copies to a node: the pyz and the sums (and signature) into the bundle folder; the
    role's secrets, cluster.yaml naming the host's registry and the cluster CA as its CA file, in SITE_DIR."""
    node = lab[name]
    folder = node.path(BUNDLE_DIR)
    folder.mkdir(parents=True)
    for kit in KIT:
        source = lab.host.path(f"{HOST_DIR}/{kit}")
        if source.exists():
            shutil.copy2(source, folder / kit)
    site = node.path(SITE_DIR)
    site.mkdir(parents=True)
    if lab.signer is not None:
        shutil.copy2(lab.signer[1], site / "allowed_signers")
    config = yaml.safe_load(cluster_yaml.read_text())
    config["registry"] = {"endpoint": REGISTRY, "ca_file": "cluster-ca.pem"}
    (site / "cluster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    secrets_text = (lab.site / secrets_name(name)).read_text()
    (site / "cluster-ca.pem").write_text(yaml.safe_load(secrets_text)["ca_cert"])
    (site / secrets_name(name)).write_text(secrets_text)
    (site / secrets_name(name)).chmod(0o600)
