"""`bundler build`'s command line and names: the Kubernetes version from --cluster or --k8s (v1.29.6 too),
bad arguments exit 2 with build's own usage, bundles named by the asked OS and the cluster, and the offline
`releases` and `hosts` commands (what a firewall request needs, without the network)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.cluster_files import SEED_NODES, cluster_document


def schema(name: str) -> dict:
    return json.loads((REPO / "schemas" / f"{name}.schema.json").read_text())


def build(release: StandInRelease, tmp_path: Path, *extra: str, out: str = "out"):
    return run_bundler(
        "build", "--allow-incomplete", "--mirror", release.mirror.url, "--cache", str(tmp_path / "cache"),
        "--output", str(tmp_path / out), "--retries", "0", *extra,
    )  # fmt: skip


def write_cluster(path: Path, name: str, version: str = "1.29.6") -> Path:
    document = dict(cluster_document(SEED_NODES, name=name), kubernetes_version=version)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# --- bad arguments: exit 2, build's usage -------------------------------------------------------------------

BAD_ARGUMENTS = [
    (["--k8s", "1.99.0"], "Kubernetes 1.99.0 is not supported; supported versions: 1.29.6, 1.29.15"),
    (["--k8s", "1.29.6", "--os", "ubuntu22"], "--os ubuntu22: not a target of Kubernetes 1.29.6; choose one of alma9"),
    (["--k8s", "1.29.6", "--lock", "/nope.yaml"], "--lock /nope.yaml: no such file"),
    (["--manifest", "/nope.yaml"], "--manifest /nope.yaml: no such file"),
    ([], "bundler build needs --k8s VERSION (or --cluster FILE naming kubernetes_version, or --manifest FILE)"),
    (["--k8s", "1.29.6", "--json"], "--json prints the plan: give it with --dry-run"),
]


@pytest.mark.parametrize("arguments,message", BAD_ARGUMENTS, ids=[" ".join(a) or "none" for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_exit_2_with_builds_usage(tmp_path: Path, arguments: list, message: str) -> None:
    result = run_bundler("build", "--cache", str(tmp_path / "c"), "--output", str(tmp_path / "o"), *arguments)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: bundler build ")
    assert result.stderr.strip().splitlines()[-1].startswith(f"bundler build: error: {message}")
    assert not (tmp_path / "c").exists() and not (tmp_path / "o").exists()


def test_cluster_init_with_an_unknown_version_shows_its_own_usage(tmp_path: Path) -> None:
    result = run_bundler("cluster", "init", "--dir", str(tmp_path), "--k8s", "1.99.0")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: bundler cluster init ")


# --- the version, given once ------------------------------------------------------------------------------


def test_k8s_with_a_v_prefix_is_the_same_version(tmp_path: Path) -> None:
    """kubeadm and the release tags write v1.29.6: accepted, as the version it names."""
    result = run_bundler("hosts", "--k8s", "v1.29.6", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kubernetes"] == "1.29.6"
    unknown = run_bundler("build", "--k8s", "v1.99.0", "--output", str(tmp_path))
    assert unknown.returncode == 2 and "Kubernetes 1.99.0 is not supported" in unknown.stderr


def test_build_takes_the_version_from_the_cluster_file(tmp_path: Path) -> None:
    """No --k8s: the cluster.yaml's kubernetes_version chooses the release (shown by --os, checked against
    that release before anything else happens)."""
    cluster = write_cluster(tmp_path / "cluster.yaml", "prod", version="1.30.14")
    result = run_bundler("build", "--cluster", str(cluster), "--os", "ubuntu22", "--output", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "--os ubuntu22: not a target of Kubernetes 1.30.14" in result.stderr


def test_hosts_takes_the_version_from_the_cluster_file(tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path / "cluster.yaml", "prod", version="1.31.14")
    result = run_bundler("hosts", "--cluster", str(cluster), "--json", "--cache", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kubernetes"] == "1.31.14"


def test_build_with_a_cluster_file_naming_no_release_says_so(tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path / "cluster.yaml", "prod", version="1.99.0")
    result = run_bundler("build", "--cluster", str(cluster), "--output", str(tmp_path / "o"), "--cache", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("bundler: error: Kubernetes 1.99.0 is not supported;")


# --- names ------------------------------------------------------------------------------------------------


def test_two_clusters_of_one_release_get_two_bundles(release: StandInRelease, tmp_path: Path) -> None:
    """The cluster's name is in the bundle's name (and its top folder): building for a second cluster never
    overwrites the first one's bundle. --os rhel9 names the bundle rhel9, the target it shares is rocky9."""
    release.manifest["os"]["rocky9"]["aliases"] = ["alma9", "rhel9"]
    release.write()
    names = []
    for cluster in ("prod", "staging"):
        config = write_cluster(tmp_path / f"{cluster}.yaml", cluster)
        result = build(release, tmp_path, "--manifest", str(release.path), "--cluster", str(config), "--os", "rhel9")
        assert result.returncode == 0, result.stderr
        names.append(f"k8s-bundle-1.29.6-rhel9-amd64-{cluster}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{name}.tar" for name in names]
    for name in names:
        with tarfile.open(tmp_path / "out" / f"{name}.tar") as archive:
            assert {member.name.split("/")[0] for member in archive.getmembers()} == {name}
            manifest = yaml.safe_load(archive.extractfile(f"{name}/bundle.yaml").read())  # type: ignore[union-attr]
            sbom = json.loads(archive.extractfile(f"{name}/sbom.spdx.json").read())  # type: ignore[union-attr]
        assert manifest["name"] == name and manifest["os"] == "rocky9" and sbom["name"] == name


# --- offline listings -------------------------------------------------------------------------------------


def test_releases_lists_every_release_and_its_components_offline() -> None:
    text = run_bundler("releases", env={"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    assert text.returncode == 0, text.stderr
    assert (
        "Kubernetes 1.29.6: os rocky9 (also alma9, rhel9), debian12, ubuntu2204, ubuntu2404; arch amd64, arm64"
        in text.stdout
    )
    assert "containerd 1.6.33" in text.stdout and "kubeadm = 1.29.6" in text.stdout
    # the deb targets share one package list: one line names them all
    assert "  debs (debian12, ubuntu2204, ubuntu2404): kubeadm = 1.30.14-1.1, kubelet = 1.30.14-1.1," in text.stdout
    as_json = run_bundler("releases", "--json")
    document = json.loads(as_json.stdout)
    jsonschema.validate(document, schema("releases"))
    versions = [entry["kubernetes"] for entry in document["releases"]]
    assert versions == ["1.29.6", "1.29.15", "1.30.14", "1.31.14"]
    first = document["releases"][0]
    assert {"name": "runc", "version": "1.1.12"} in first["files"]
    assert "registry.k8s.io/pause:3.9" in first["images"] and first["images_from_files"] == ["calico-manifest"]
    for entry in document["releases"]:
        debs = {t["id"] for t in entry["os"] if t["kubernetes_from"] == "debs"}
        assert debs == set(entry["deb_packages"]) == {"debian12", "ubuntu2204", "ubuntu2404"}, entry["kubernetes"]
        assert set(entry["rpm_packages"]) == {"rocky9"}
        assert f"kubeadm = {entry['kubernetes']}-" in entry["deb_packages"]["ubuntu2404"][0]


def test_hosts_lists_what_a_build_contacts_offline(tmp_path: Path) -> None:
    """From the manifest alone: every file, RPM repository, key and registry host, and the CDNs they are known
    to redirect to; a proxy that cannot be reached is never asked (nothing goes to the network)."""
    offline = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    result = run_bundler("hosts", "--k8s", "1.29.6", "--json", "--cache", str(tmp_path / "cache"), env=offline)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("hosts"))
    hosts = {entry["host"]: entry for entry in document["hosts"]}
    assert {"github.com", "raw.githubusercontent.com", "registry.k8s.io", "pkgs.k8s.io", "dl.rockylinux.org"} <= set(
        hosts
    )
    assert "file containerd" in hosts["github.com"]["for"] and "rpm baseos key" in hosts["dl.rockylinux.org"]["for"]
    assert hosts["objects.githubusercontent.com"]["redirect_from"] == "github.com"
    assert all(entry["port"] == 443 and entry["scheme"] == "https" for entry in document["hosts"])
    assert "calico-manifest" in document["unknown"][0]  # its images are known once it is in the cache
    text = run_bundler("hosts", "--k8s", "1.29.6", "--cache", str(tmp_path / "cache"), env=offline)
    assert text.returncode == 0 and "HTTPS_PROXY" in text.stderr
    assert any(line.startswith("registry.k8s.io ") for line in text.stdout.splitlines())


def test_hosts_follow_the_mirrors_and_read_cached_image_lists(release: StandInRelease, tmp_path: Path) -> None:
    """With --mirror and --registry-mirror the upstream hosts drop out; an images_from_files artifact already
    in the cache (as after any build or dry run) adds its images' registries."""
    calico = "spec:\n  containers:\n    - image: quay.io/calico/node:v3\n"
    release.set_images(["registry.k8s.io/pause:3.9"], calico_yaml=calico)
    cached = tmp_path / "cache" / "sha256" / hashlib.sha256(calico.encode()).hexdigest()
    cached.parent.mkdir(parents=True)
    cached.write_text(calico)  # the cache's layout: verified bytes under their sha256
    result = run_bundler(
        "hosts", "--manifest", str(release.path), "--mirror", release.mirror.url, "--cache", str(tmp_path / "cache"),
        "--registry-mirror", "registry.k8s.io=https://mirror.example.org/k8s", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    hosts = {entry["host"] for entry in document["hosts"]}
    assert hosts == {"127.0.0.1", "mirror.example.org", "quay.io", "cdn.quay.io", "cdn01.quay.io", "cdn02.quay.io",
                     "cdn03.quay.io"}  # fmt: skip
    assert document["unknown"] == []
