"""The Debian 12 lab: the lab's own Debian root as a Debian node, and a `--os debian12` bundle built for it by the
real `bundler build` from loopback sources.

- root: the cached base (tests/lab/root.py) with the lab's stand-ins only, not dressed as EL9: Debian's
  os-release, /etc/chrony/chrony.conf, /etc/hosts and fstab stay Debian's. keepalived and haproxy (in the base
  for the EL9 lab) are disabled, as on a node that has not run the installer; firewalld stays, so the firewall
  checks are the EL9 lab's.
- bundle: apt resolves the real release's `deb: debian12: packages` as it does for a real build, against two
  repositories served on loopback and signed by a throwaway key: `kubernetes`, a flat repository of stand-in
  kubeadm, kubelet and kubectl .debs made with dpkg-deb (launchers of the lab's stand-in program, and
  kubelet.service, as the real .debs own; with the real kubelet's dependencies on Debian packages); and
  `bookworm`, the base's installed packages as an index (Debian's own control fields from its dpkg status).
  The node's packages (chrony, keepalived, haproxy, conntrack, ...) are counted installed (`installed:`), as they
  are on the lab's nodes, so the bundle carries the three stand-ins: Debian's real .debs cannot be fetched here.
  Resolution on Debian's full signed index is tests/lab/test_debian_metadata.py's (about 50 s of apt alone);
  here it would only slow the lab. The node installs with real apt from the bundle's repository alone.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from tests.lab import standins
from tests.lab.bundle import REPO_ROOT, buildkit_standin, debian_containerd_version, replace_file_artifact
from tests.lab.root import BOOTSTRAP_PACKAGES, NODE_PACKAGES, built_base, dressed_root
from tests.support.deb_repo import FakeDeb, make_repository
from tests.support.http_server import MirrorServer
from tests.support.node_bundle import node_release_manifest
from tests.support.signing import SigningKey

DEBIAN_TARGET = "debian12"
KUBE_VERSION = "1.29.6-1.1"
DEBIAN_HOST = "deb.example.invalid"
K8S_HOST = "pkgs.example.invalid"
NOT_ENABLED_BEFORE_INSTALL = ("keepalived.service", "haproxy.service", "nftables.service")


def debian_root(timings: Dict[str, float]) -> Path:
    """The base with the lab's stand-ins, as a Debian 12 node; built once per recipe (this file's too), like the
    EL9 root."""
    return dressed_root("debian", dress_as_debian, [Path(__file__)], timings, "debian root")


def dress_as_debian(root: Path) -> None:
    etc = root / "etc"
    (etc / "machine-id").write_text("")  # each node gets its own
    (etc / "hostname").write_text("localhost\n")
    program = root / standins.STANDIN_PATH.lstrip("/")
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text(standins.PROGRAM)
    program.chmod(0o755)
    modprobe = root / "usr/local/sbin/modprobe"
    modprobe.write_text(standins.MODPROBE)
    modprobe.chmod(0o755)
    dropin = etc / "systemd/system/chrony.service.d/k8s-lab.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(standins.chrony_dropin("/etc/chrony/chrony.conf"))
    subprocess.run(["systemctl", f"--root={root}", "disable", "--quiet", *NOT_ENABLED_BEFORE_INSTALL], check=True)
    subprocess.run(["systemctl", f"--root={root}", "mask", "--quiet", "getty@tty1.service"], check=True)


def kube_debs() -> List[FakeDeb]:
    """Stand-in kubeadm, kubelet and kubectl .debs, with the real ones' dependencies on Debian's packages."""
    debs = []
    for name in ("kubeadm", "kubelet", "kubectl"):
        files: Tuple[Tuple[str, str], ...] = ((f"/usr/bin/{name}", standins.launcher(name)),)
        depends = ""
        if name == "kubelet":
            files += (("/lib/systemd/system/kubelet.service", standins.KUBELET_UNIT),)
            depends = "iptables (>= 1.4.21), conntrack, socat, ethtool, mount, util-linux"
        elif name == "kubeadm":
            depends = "kubelet (>= 1.19.0), kubectl (>= 1.19.0)"
        debs.append(FakeDeb(name, KUBE_VERSION, "amd64", depends=depends, files=files))
    return debs


STATUS_ONLY = ("Status", "Conffiles", "Config-Version")  # dpkg's own fields, not an index's


def installed_index(status: str) -> str:
    """The base's installed packages as a Packages index: Debian's own control fields (Depends, Provides, Priority,
    Essential...) from its dpkg status, with a Filename, Size and SHA256 no .deb stands behind: the builder
    counts every one installed (`installed:`), so it never fetches one."""
    stanzas = []
    for stanza in status.split("\n\n"):
        if "\nStatus: install ok installed" not in f"\n{stanza}":
            continue
        kept, skipping = [], False
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t"):
                if not skipping:
                    kept.append(line)
                continue
            skipping = line.split(":", 1)[0] in STATUS_ONLY
            if not skipping:
                kept.append(line)
        fields = dict(line.split(": ", 1) for line in kept if ": " in line and line[:1] not in (" ", "\t"))
        name, version, arch = fields["Package"], fields["Version"], fields["Architecture"]
        digest = hashlib.sha256(f"{name} {version}".encode()).hexdigest()
        kept += [f"Filename: pool/main/{name}_{version.split(':')[-1]}_{arch}.deb", "Size: 1", f"SHA256: {digest}"]
        stanzas.append("\n".join(kept))
    return "\n\n".join(stanzas) + "\n"


def bookworm_repository(base: Path, signer: SigningKey) -> Dict[str, bytes]:
    """dists/bookworm/InRelease and main/binary-amd64/Packages of the base's installed packages, signed by `signer`."""
    with tempfile.TemporaryDirectory() as folder:
        dist = Path(folder) / "dists/bookworm"
        index = dist / "main/binary-amd64"
        index.mkdir(parents=True)
        (index / "Packages").write_text(installed_index((base / "var/lib/dpkg/status").read_text()))
        options = []
        for field, value in (("Suite", "bookworm"), ("Codename", "bookworm"), ("Components", "main"),
                             ("Architectures", "amd64")):  # fmt: skip
            options += ["-o", f"APT::FTPArchive::Release::{field}={value}"]
        release = subprocess.run(["apt-ftparchive", *options, "release", "."], cwd=dist, capture_output=True,
                                 check=True).stdout  # fmt: skip
        (dist / "InRelease").write_bytes(signer.clearsign(release))
        return {str(p.relative_to(folder)): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def debian_release(mirror: MirrorServer, signer: SigningKey) -> dict:
    """The release manifest: the lab's runtime files and a `deb: debian12:` section served from the mirror."""
    from tests.lab.conftest import TIMINGS  # the lab's figures (a conftest module: imported when first needed)

    for path, data in bookworm_repository(built_base(TIMINGS), signer).items():
        mirror.add(f"/{DEBIAN_HOST}/debian/{path}", data)
    mirror.add(f"/{DEBIAN_HOST}/key.asc", signer.public)
    kubernetes = make_repository(kube_debs(), signer, "/")
    for path, data in kubernetes.files.items():
        mirror.add(f"/{K8S_HOST}/deb/{path}", data)
    mirror.add(f"/{K8S_HOST}/deb/Release.key", signer.public)
    manifest = node_release_manifest(mirror)
    replace_file_artifact(manifest, mirror, "buildkit", buildkit_standin())
    for entry in manifest["files"]:
        if entry["name"] == "containerd":
            entry["version"] = debian_containerd_version()
    manifest["os"] = {DEBIAN_TARGET: {"debs": True}}
    repositories = [
        {"id": "kubernetes", "url": f"https://{K8S_HOST}/deb/", "suite": "/", "key": f"https://{K8S_HOST}/deb/Release.key",
         "key_fingerprint": signer.fingerprint},
        {"id": "bookworm", "url": f"https://{DEBIAN_HOST}/debian/", "suite": "bookworm", "components": ["main"],
         "key": f"https://{DEBIAN_HOST}/key.asc", "key_fingerprint": signer.fingerprint, "minimal_system": True},
    ]  # fmt: skip
    real = yaml.safe_load((REPO_ROOT / "manifests/k8s-1.29.6.yaml").read_text())
    packages = real["deb"][DEBIAN_TARGET]["packages"]  # the real release's list
    # the lab's nodes have these from the base (a real node gets them from the bundle: the real build's `installed`
    # is [apt]); every package the base has from mmdebstrap's --include counts as installed
    installed = sorted({"apt", *BOOTSTRAP_PACKAGES, *NODE_PACKAGES})
    manifest["deb"] = {DEBIAN_TARGET: {"repositories": repositories, "packages": packages, "installed": installed}}
    return manifest


def bundle_top(tarball: Path) -> str:
    return tarball.name[: -len(".tar")]
