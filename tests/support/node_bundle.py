"""Stand-in runtime artifacts made from this machine's real binaries, and a bundle built from them.

containerd's tarball holds Debian's real containerd, ctr and shim; runc is Debian's runc. The CNI plugins,
buildkit and nerdctl stand-ins are small executables (their real binaries are not needed to test the
installer's placement of them).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from tests.support import session_cache
from tests.support.http_server import MirrorServer

TOP = "k8s-bundle-1.29.6-rocky9-amd64"
REAL_CONTAINERD = ("/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2")


# The parts of calico-typha.yaml the installer edits, in the upstream shape (the real file is tested in
# test_cluster_calico.py from ../shared).
CALICO_STANDIN = """kind: ConfigMap
apiVersion: v1
metadata: {name: calico-config, namespace: kube-system}
data: {calico_backend: bird}
---
kind: DaemonSet
apiVersion: apps/v1
metadata: {name: calico-node, namespace: kube-system}
spec:
  template:
    spec:
      containers:
        - name: calico-node
          image: docker.io/calico/node:v3.28.0
          env:
            - {name: CALICO_IPV4POOL_IPIP, value: Always}
---
kind: Deployment
apiVersion: apps/v1
metadata: {name: calico-typha, namespace: kube-system}
spec:
  replicas: 1
  template:
    spec:
      containers:
        - {name: calico-typha, image: docker.io/calico/typha:v3.28.0}
"""


def reproducible_tarball(members: List[Tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    # gzip's header keeps a time too: fixed, so the same members make the same bytes (and the same bundle).
    # Level 1: the real containerd binaries (83 MB) take 1.4 CPU-seconds instead of 12.8 at gzip's default 9,
    # for a tarball 14% larger; the installer reads either the same way.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            info.mtime = 1700000000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _script(text: str) -> bytes:
    return f"#!/bin/sh\necho '{text}'\n".encode()


def runtime_artifacts() -> Dict[str, Tuple[str, bytes, bool]]:
    """name -> (file name, bytes, noarch)"""
    return dict(_runtime_artifacts())


@functools.lru_cache(maxsize=1)
def _runtime_artifacts() -> Dict[str, Tuple[str, bytes, bool]]:
    """Made once per process: compressing the real containerd binaries (about 80 MB) takes seconds, and the
    bytes are the same each time (reproducible_tarball fixes every time in it)."""
    containerd = [(f"bin/{Path(p).name}", Path(p).read_bytes()) for p in REAL_CONTAINERD]
    cni = [(f"./{name}", _script(f"cni {name} v1.4.0")) for name in ("bridge", "host-local", "loopback", "portmap")]
    return {
        "containerd": ("containerd-1.6.33-linux-amd64.tar.gz", reproducible_tarball(containerd), False),
        "runc": ("runc.amd64", Path(shutil.which("runc") or "/usr/sbin/runc").read_bytes(), False),
        "cni-plugins": ("cni-plugins-linux-amd64-v1.4.0.tgz", reproducible_tarball(cni), False),
        "buildkit": (
            "buildkit-v0.11.6.linux-amd64.tar.gz",
            reproducible_tarball([("bin/buildkitd", _script("buildkitd")), ("bin/buildctl", _script("buildctl"))]),
            False,
        ),
        "nerdctl": (
            "nerdctl-1.4.0-linux-amd64.tar.gz",
            reproducible_tarball(
                [("nerdctl", _script("nerdctl 1.4.0")), ("containerd-rootless.sh", _script("rootless"))]
            ),
            False,
        ),
        "calico-manifest": ("calico-typha.yaml", CALICO_STANDIN.encode(), True),
    }


def node_release_manifest(mirror: MirrorServer, extra: Optional[dict] = None) -> dict:
    files = []
    for name, (filename, data, noarch) in runtime_artifacts().items():
        path = f"/downloads.example.invalid/{name}/{filename}"
        mirror.add(path, data)
        entry = {"name": name, "version": "1.0.0", "url": f"https://downloads.example.invalid/{name}/{filename}"}
        digest = hashlib.sha256(data).hexdigest()
        if noarch:
            entry.update(arch="noarch", sha256=digest)
        else:
            entry["url"] = entry["url"].replace("amd64", "{arch}")
            entry["sha256"] = {"amd64": digest}
        if name == "runc":
            entry["executable"] = True
        files.append(entry)
    manifest = {
        "kubernetes": "1.29.6",
        "os": {"rocky9": {"rpms": True, "aliases": ["alma9", "rhel9"]}},
        "arches": ["amd64"],
        "files": files,
    }
    manifest.update(extra or {})
    return manifest


def build_node_bundle(
    mirror: MirrorServer, work: Path, extra_args: Tuple[str, ...] = (), extra_manifest: Optional[dict] = None
) -> Path:
    """`bundler build` of the stand-in release into `work` (release.yaml, cache/, out/TOP.tar, and TOP/ unpacked);
    returns work/TOP. The artifacts are served on `mirror` either way. The default bundle (no extra arguments or
    manifest) is built once per test run and copied (tests/support/session_cache.py): the build is the same."""
    work.mkdir(parents=True, exist_ok=True)
    manifest = yaml.safe_dump(node_release_manifest(mirror, extra_manifest))
    if not extra_args and extra_manifest is None:
        shared = session_cache.built_once(
            session_cache.key_of("node bundle", manifest), lambda folder: _build(mirror, folder, manifest, ())
        )
        if shared is not None:
            session_cache.copy_into(shared, work)
            return work / TOP
    _build(mirror, work, manifest, extra_args)
    return work / TOP


def _build(mirror: MirrorServer, work: Path, manifest: str, extra_args: Tuple[str, ...]) -> None:
    manifest_path = work / "release.yaml"
    manifest_path.write_text(manifest)
    out = work / "out"
    result = subprocess.run(
        ["python", "-m", "bundler", "build", "--allow-incomplete", "--manifest", str(manifest_path),
         "--mirror", mirror.url,
         "--cache", str(work / "cache"), "--output", str(out), *extra_args],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    subprocess.run(["tar", "-xf", str(out / f"{TOP}.tar"), "-C", str(work)], check=True)
