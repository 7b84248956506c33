"""Put the test RPM graph behind the loopback mirror and name it in a stand-in release's `rpm:` section."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Dict, List, Optional

from tests.support.rpm_graph import ASSUMED, CNI_PLUGINS, RpmGraph
from tests.support.rpm_repo import serve_directory
from tests.support.signing import SigningKey

HOST = "rpms.example.invalid"
PACKAGES = ["kubeadm = 1.29.6", "kubelet = 1.29.6", "kubectl = 1.29.6", "chrony"]


def cni_tarball() -> bytes:
    """A stand-in cni-plugins v1.4.0 tarball laid out like the real one (./bridge, ./host-local, ...)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in CNI_PLUGINS + ("vrf",):
            data = f"cni-plugins-1.4.0-{name}".encode()
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def add_rpm_section(
    release, graph: RpmGraph, name: str = "default", base_rpms: Optional[List[Path]] = None,
    compress: str = "gz", repo_extra: Optional[Dict[str, object]] = None, signer: Optional[SigningKey] = None,
    pin: str = "sha256",
) -> Dict[str, str]:  # fmt: skip
    """Serve a kubernetes repo and a per-arch base repo; returns repo id -> served URL prefix.

    With a signer, both repomd.xml files get a detached signature and both repositories pin its key (by the
    key file's sha256, or with pin="fingerprint" by its OpenPGP fingerprint)."""
    mirror = release.mirror
    sign = signer.sign_detached if signer else (lambda path: path)
    kubernetes = graph.repo(f"{name}-kubernetes", graph.kubernetes_rpms)
    sign(kubernetes / "repodata" / "repomd.xml")
    base_rpms = graph.base_rpms if base_rpms is None else base_rpms
    prefixes = {"kubernetes": f"/{HOST}/{name}/kubernetes"}
    serve_directory(mirror, prefixes["kubernetes"], kubernetes)
    for arch in ("x86_64", "aarch64"):
        base = graph.repo(f"{name}-base-{arch}", base_rpms, compress)
        sign(base / "repodata" / "repomd.xml")
        serve_directory(mirror, f"/{HOST}/{name}/base/{arch}", base)
    prefixes["base"] = f"/{HOST}/{name}/base/x86_64"
    kubernetes_repo: Dict[str, object] = {"id": "kubernetes", "baseurl": f"https://{HOST}/{name}/kubernetes/"}
    base_repo: Dict[str, object] = {"id": "base", "baseurl": f"https://{HOST}/{name}/base/{{arch}}/"}
    kubernetes_repo.update(repo_extra or {})
    if signer is not None:
        mirror.add(f"/{HOST}/{name}/key.asc", signer.public)
        key = {"gpgkey": f"https://{HOST}/{name}/key.asc"}
        if pin == "sha256":
            key["gpgkey_sha256"] = hashlib.sha256(signer.public).hexdigest()
        else:
            key["gpgkey_fingerprint"] = signer.fingerprint
        kubernetes_repo.update(key)
        base_repo.update(key)
    release.manifest["rpm"] = {
        "rocky9": {
            "repositories": [kubernetes_repo, base_repo],
            "packages": PACKAGES,
            "assumed_installed": ASSUMED,
        }
    }
    add_cni_plugins(release)
    release.write()
    return prefixes


def add_cni_plugins(release) -> None:  # type: ignore[no-untyped-def]
    """The cni-plugins tarball an EL9 release names (its plugins are laid over the kubernetes-cni RPM's)."""
    data = cni_tarball()
    url_path = "/releases/cni-plugins/cni-plugins-linux-{arch}-v1.4.0.tgz"
    files = release.manifest["files"]
    files[:] = [entry for entry in files if entry["name"] != "cni-plugins"]
    files.append(
        {"name": "cni-plugins", "version": "1.4.0", "url": f"https://downloads.example.invalid{url_path}",
         "sha256": {arch: hashlib.sha256(data).hexdigest() for arch in ("amd64", "arm64")}}
    )  # fmt: skip
    for arch in ("amd64", "arm64"):
        release.mirror.add(f"/downloads.example.invalid{url_path.replace('{arch}', arch)}", data)
