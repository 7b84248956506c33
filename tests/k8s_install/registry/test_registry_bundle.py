"""`bundler build --cluster` with `registry.ca_file`: the CA travels beside the bundle's cluster.yaml, listed in
bundle.yaml and SHA256SUMS, and the nodes read it from there; a missing one stops the build before downloads."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from k8s_install.bundle_format.bundle import load_bundle
from k8s_install.cluster.config import load_cluster_config
from tests.conftest import StandInRelease, run_bundler
from tests.k8s_install.cluster.test_cluster_cli import TOP, build
from tests.support.registry import make_certificate

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the CAs")


def cluster_with_registry(folder: Path) -> Path:
    assert run_bundler("cluster", "init", "--dir", str(folder), "--k8s", "1.29.6").returncode == 0
    config = folder / "cluster.yaml"
    data = yaml.safe_load(config.read_text())
    data["registry"] = {"endpoint": "harbor.site.lan:443", "ca_file": "site-ca.pem", "prefix": "mirror"}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def test_the_registry_ca_travels_beside_the_bundles_cluster_yaml(release: StandInRelease, tmp_path: Path) -> None:
    config = cluster_with_registry(tmp_path / "c")
    ca = make_certificate(tmp_path / "pki", "site")["cert"]
    shutil.copy(ca, tmp_path / "c" / "site-ca.pem")
    result = build(release, tmp_path, "--cluster", str(config))
    assert result.returncode == 0, result.stderr
    tarball = tmp_path / "out" / f"{TOP}.tar"
    with tarfile.open(tarball) as archive:
        carried = archive.extractfile(f"{TOP}/site-ca.pem").read()  # type: ignore[union-attr]
        names = archive.getnames()
    assert carried == ca.read_bytes()
    assert not any("secret" in name or name.endswith(".key") for name in names)
    assert run_bundler("verify", str(tarball)).returncode == 0
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    bundle = load_bundle(tmp_path / TOP)
    entry = bundle.manifest.registry_ca
    assert entry is not None and (entry.path, entry.cluster) == ("site-ca.pem", "k8s-cluster")
    assert bundle.manifest.cluster_config is not None and bundle.manifest.cluster_config.path == "cluster.yaml"
    assert "site-ca.pem" in (tmp_path / TOP / "SHA256SUMS").read_text()
    on_node = load_cluster_config(tmp_path / TOP / "cluster.yaml", "1.29.6").config.registry
    assert on_node is not None and on_node.ca_pem == ca.read_text()


def test_a_missing_ca_file_stops_the_build_with_one_line(release: StandInRelease, tmp_path: Path) -> None:
    config = cluster_with_registry(tmp_path / "c")
    result = build(release, tmp_path, "--cluster", str(config))
    assert result.returncode == 1
    assert f"{config}: registry.ca_file: {tmp_path / 'c' / 'site-ca.pem'}: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.rpm"))
