"""The newer releases as data (1.29.15, 1.30.14, 1.31.14): pins, images, package repository per minor, a build of
each manifest from the loopback mirror, and what the installer renders per release (kubeadm API version,
containerd config format)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Dict

import pytest
import tomllib
import yaml

from bundler import paths
from bundler.checksums import load_pins
from bundler.manifest import load_release
from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import ArtifactFile, BundleManifest, Image
from k8s_install.cluster.kubeadm import api_version, render_init_config, render_join_config
from k8s_install.cluster.secrets import ClusterSecrets, generate_secrets
from k8s_install.node.host import Host
from k8s_install.steps.containerd import containerd_config
from tests.conftest import SHARED, run_bundler
from tests.support import containerd_v3_keys, kubeadm_v1beta3, kubeadm_v1beta4
from tests.support.cluster import load, seed_data
from tests.support.http_server import MirrorServer

NEW = ("1.29.15", "1.30.14", "1.31.14")
# ../shared/pins/UPGRADES.md section 1: `kubeadm config images list` per release (etcd, coredns, pause)
KUBEADM_IMAGES = {
    "1.29.15": ("3.5.16-0", "v1.11.1", "3.9"),
    "1.30.14": ("3.5.15-0", "v1.11.3", "3.9"),
    "1.31.14": ("3.5.24-0", "v1.11.3", "3.10"),
}
# the runtime line each release carries (docs/releases.md)
RUNTIME = {
    "1.29.6": ("1.6.33", "1.1.12", "1.4.0"),
    "1.29.15": ("1.7.27", "1.2.6", "1.4.1"),
    "1.30.14": ("2.0.6", "1.2.6", "1.4.1"),
    "1.31.14": ("2.1.5", "1.3.4", "1.8.0"),
}
SCHEMAS = {**kubeadm_v1beta3.SCHEMAS, **kubeadm_v1beta4.SCHEMAS}


@pytest.mark.parametrize("version", NEW)
def test_every_file_is_pinned_for_both_arches(version: str) -> None:
    """Every file of the manifest, the binary-install ones (kept for a future target) included."""
    release = load_release(version, None)
    pins = load_pins(paths.checksums_path(version))
    for spec in release.files:
        for arch in ("amd64", "arm64"):
            url = spec.url.replace("{arch}", arch)
            assert url in pins, url
    versions = {spec.name: spec.version for spec in release.files}
    assert (versions["containerd"], versions["runc"], versions["cni-plugins"]) == RUNTIME[version]
    assert versions["kubeadm"] == versions["kubelet"] == versions["kubectl"] == version


@pytest.mark.parametrize("version", NEW)
def test_pins_are_the_shared_ones(version: str) -> None:
    source = SHARED / "pins" / f"k8s-{version}.yaml"
    if not source.is_file():
        pytest.skip("../shared/pins is not beside this checkout")
    shared = {a["url"]: a["sha256"] for a in yaml.safe_load(source.read_text())["artifacts"]}
    pins = load_pins(paths.checksums_path(version))
    assert {url: pins[url] for url in shared} == shared
    carried = load_pins(paths.checksums_path("1.29.6"))
    for url, digest in pins.items():
        assert url in shared or carried[url] == digest, url  # nerdctl, buildkit, Calico: 1.29.6's pins


@pytest.mark.parametrize("version", NEW)
def test_images_and_package_repository_of_the_release(version: str) -> None:
    release = load_release(version, None)
    etcd, coredns, pause = KUBEADM_IMAGES[version]
    components = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
    assert list(release.images) == [f"registry.k8s.io/{c}:v{version}" for c in components] + [
        f"registry.k8s.io/etcd:{etcd}",
        f"registry.k8s.io/coredns/coredns:{coredns}",
        f"registry.k8s.io/pause:{pause}",
    ]
    minor = ".".join(version.split(".")[:2])
    rpm = release.raw["rpm"]["rocky9"]
    kubernetes = next(repo for repo in rpm["repositories"] if repo["id"] == "kubernetes")
    assert kubernetes["baseurl"] == f"https://pkgs.k8s.io/core:/stable:/v{minor}/rpm/"
    assert kubernetes["gpgkey"] == f"https://pkgs.k8s.io/core:/stable:/v{minor}/rpm/repodata/repomd.xml.key"
    assert [p for p in rpm["packages"] if p.startswith("kube")] == [
        f"kubeadm = {version}",
        f"kubelet = {version}",
        f"kubectl = {version}",
    ]
    from bundler.rpm.spec import rpm_spec

    spec = rpm_spec(release.raw, "rocky9", str(release.source))  # the builder's own reading of the section
    assert spec is not None and [repo.id for repo in spec.repositories] == ["kubernetes", "baseos", "appstream"]


def test_supported_versions_are_listed_oldest_first() -> None:
    assert paths.supported_versions() == ["1.29.6", *NEW]


# -- a build of each release's manifest: every upstream URL served by the loopback mirror ------------------------


def standin_manifest(version: str, mirror: MirrorServer, work: Path) -> Path:
    """The real manifest with stand-in bytes behind each real URL (amd64), pinned inline (the real pins are for
    the real bytes). Images and RPMs are left out: their sources are tested in test_images_* / test_rpm_*."""
    data = yaml.safe_load(paths.manifest_path(version).read_text())
    for entry in data["files"]:
        url = entry["url"] if entry.get("arch") == "noarch" else entry["url"].replace("{arch}", "amd64")
        content = hashlib.sha512(url.encode()).digest() * 64
        mirror.add("/" + url.split("://", 1)[1], content)
        digest = hashlib.sha256(content).hexdigest()
        entry["sha256"] = digest if entry.get("arch") == "noarch" else {"amd64": digest}
    for key in ("images", "images_from_files", "rpm"):
        data.pop(key, None)
    path = work / f"k8s-{version}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("version", NEW)
def test_build_of_the_release_from_the_mirror(version: str, mirror: MirrorServer, tmp_path: Path) -> None:
    manifest = standin_manifest(version, mirror, tmp_path)
    result = run_bundler(
        "build", "--manifest", str(manifest), "--mirror", mirror.url, "--cache", str(tmp_path / "cache"),
        "--output", str(tmp_path / "out"), "--allow-incomplete",  # images and RPMs are left out (see above)
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    top = f"k8s-bundle-{version}-rocky9-amd64"
    with tarfile.open(tmp_path / "out" / f"{top}.tar") as archive:
        record = yaml.safe_load(archive.extractfile(f"{top}/bundle.yaml").read())  # type: ignore[union-attr]
    assert record["kubernetes"] == version
    by_name = {a["name"]: a for a in record["artifacts"]}
    assert by_name["containerd"]["version"] == RUNTIME[version][0]
    # registry: the bundle host's OCI registry (`k8s-install.pyz serve`)
    # an EL9 bundle takes kubeadm, kubelet, kubectl (and crictl) from the release's RPM repository
    assert {a["name"] for a in record["artifacts"]} == {
        "containerd", "runc", "cni-plugins", "buildkit", "nerdctl", "registry", "helm", "calico-manifest"}  # fmt: skip
    files = {entry["name"]: entry for entry in yaml.safe_load(manifest.read_text())["files"]}
    assert files["kubeadm"]["url"] == f"https://dl.k8s.io/release/v{version}/bin/linux/{{arch}}/kubeadm"


# -- what the installer renders per release -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def secrets() -> ClusterSecrets:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the CA")
    return generate_secrets("seed")


def kubeadm_documents(text: str) -> Dict[str, dict]:
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    for doc in docs:
        assert kubeadm_v1beta3.unknown_keys(doc, SCHEMAS[(doc["apiVersion"], doc["kind"])]) == [], doc["kind"]
    return {doc["kind"]: doc for doc in docs}


@pytest.mark.parametrize(
    "version, expected",
    [("1.29.6", "v1beta3"), ("1.29.15", "v1beta3"), ("1.30.14", "v1beta3"), ("1.31.14", "v1beta4")],
)
def test_kubeadm_configs_use_the_api_of_the_release(version: str, expected: str, secrets: ClusterSecrets) -> None:
    assert api_version(version) == f"kubeadm.k8s.io/{expected}"
    config = load(seed_data(kubernetes_version=version), bundle=version)
    init = kubeadm_documents(render_init_config(config, config.first_control_plane, secrets))
    assert init["InitConfiguration"]["apiVersion"] == init["ClusterConfiguration"]["apiVersion"] == api_version(version)
    assert init["ClusterConfiguration"]["kubernetesVersion"] == f"v{version}"
    worker = kubeadm_documents(render_join_config(config, config.workers[0], secrets))["JoinConfiguration"]
    control = kubeadm_documents(render_join_config(config, config.control_planes[1], secrets))["JoinConfiguration"]
    node_ip = str(config.workers[0].ip)
    if expected == "v1beta4":
        assert worker["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": node_ip}]
        assert worker["timeouts"] == {"discovery": "5m0s"} and "timeout" not in worker["discovery"]
    else:
        assert worker["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": node_ip}
        assert worker["discovery"]["timeout"] == "5m0s"
    assert control["controlPlane"]["certificateKey"] == secrets.certificate_key


def test_v1beta4_schema_refuses_the_v1beta3_shapes() -> None:
    join = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "JoinConfiguration",
        "discovery": {"timeout": "5m0s"},
        "nodeRegistration": {"kubeletExtraArgs": {"node-ip": "10.0.0.1"}},
    }
    found = kubeadm_v1beta3.unknown_keys(join, SCHEMAS[("kubeadm.k8s.io/v1beta4", "JoinConfiguration")])
    assert found == ["discovery.timeout", "nodeRegistration.kubeletExtraArgs (expected a list)"]


OFFLINE_HOST = Host(Path("/nonexistent"))  # a --root run: not this machine


def node_with_runtime(version: str, pause: str, host: Host = OFFLINE_HOST) -> SimpleNamespace:
    manifest = BundleManifest(
        kubernetes=version,
        os="rocky9",
        arch="amd64",
        artifacts=(ArtifactFile("containerd", "files/x", "", 0, version=RUNTIME[version][0]),),
        images=(Image(f"registry.k8s.io/pause:{pause}", ""),),
    )
    return SimpleNamespace(bundle=Bundle(Path("/nonexistent"), manifest), host=host)


@pytest.mark.parametrize("version", ["1.29.6", "1.29.15"])
def test_containerd_1x_config_is_version_2_read_by_the_real_containerd(version: str, tmp_path: Path) -> None:
    if shutil.which("containerd") is None:
        pytest.skip("needs containerd (installed by .ci/run)")
    text = containerd_config(node_with_runtime(version, "3.9"))  # type: ignore[arg-type]
    assert tomllib.loads(text)["version"] == 2
    path = tmp_path / "config.toml"
    path.write_text(text)
    dump = subprocess.run(["containerd", "--config", str(path), "config", "dump"], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert 'sandbox_image = "registry.k8s.io/pause:3.9"' in dump.stdout
    assert "SystemdCgroup = true" in dump.stdout


@pytest.mark.parametrize("version, pause", [("1.30.14", "3.9"), ("1.31.14", "3.10")])
def test_containerd_2x_config_is_version_3_with_the_pinned_sandbox(version: str, pause: str, tmp_path: Path) -> None:
    text = containerd_config(node_with_runtime(version, pause))  # type: ignore[arg-type]
    parsed = tomllib.loads(text)
    assert parsed["version"] == 3
    assert containerd_v3_keys.unknown_keys(parsed) == []
    plugins = parsed["plugins"]
    assert plugins[containerd_v3_keys.IMAGES]["pinned_images"] == {"sandbox": f"registry.k8s.io/pause:{pause}"}
    runc = plugins[containerd_v3_keys.RUNTIME]["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is True and runc["runtime_type"] == "io.containerd.runc.v2"
    assert "sandbox_image" not in text  # the v2 key: containerd 2.x reads it only from a version 2 file


def container_node_host(root: Path, cap_bnd: str) -> Host:
    """A live host whose processes' bounding set is `cap_bnd` (hex, as /proc/self/status shows it)."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/status").write_text(f"Name:\tpython3\nCapBnd:\t{cap_bnd}\n")
    host = Host(root)
    host.live = True  # this test's root plays the running machine
    return host


FULL_CAPS = "000001ffffffffff"
WITHOUT_SYS_RESOURCE = f"{0x1FFFFFFFFFF & ~(1 << 24):016x}"  # e.g. an LXC or systemd-nspawn node


@pytest.mark.parametrize("version", ["1.29.6", "1.31.14"])
def test_a_node_without_cap_sys_resource_gets_restrict_oom_score_adj(version: str, tmp_path: Path) -> None:
    """lab-real: without it runc fails every pod ("can't get final child's PID from pipe: EOF")."""
    pause = "3.9" if version == "1.29.6" else "3.10"
    text = containerd_config(node_with_runtime(version, pause, container_node_host(tmp_path, WITHOUT_SYS_RESOURCE)))  # type: ignore[arg-type]
    parsed = tomllib.loads(text)
    if parsed["version"] == 3:
        assert containerd_v3_keys.unknown_keys(parsed) == []
        assert parsed["plugins"][containerd_v3_keys.RUNTIME]["restrict_oom_score_adj"] is True
        return
    assert parsed["plugins"]["io.containerd.grpc.v1.cri"]["restrict_oom_score_adj"] is True
    if shutil.which("containerd") is None:
        pytest.skip("needs containerd (installed by .ci/run)")
    path = tmp_path / "config.toml"
    path.write_text(text)
    dump = subprocess.run(["containerd", "--config", str(path), "config", "dump"], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert "restrict_oom_score_adj = true" in dump.stdout


@pytest.mark.parametrize("version", ["1.29.6", "1.31.14"])
def test_a_normal_host_keeps_containerds_oom_score_adj_default(version: str, tmp_path: Path) -> None:
    pause = "3.9" if version == "1.29.6" else "3.10"
    text = containerd_config(node_with_runtime(version, pause, container_node_host(tmp_path, FULL_CAPS)))  # type: ignore[arg-type]
    assert "restrict_oom_score_adj" not in text
    offline = containerd_config(node_with_runtime(version, pause))  # type: ignore[arg-type]
    assert "restrict_oom_score_adj" not in offline  # a --root run: not this machine's capabilities


def test_the_v3_key_check_catches_a_v2_key_in_a_v3_file() -> None:
    bad = {"version": 3, "plugins": {containerd_v3_keys.IMAGES: {"sandbox_image": "x"}}}
    assert containerd_v3_keys.unknown_keys(bad) == [f"plugins.{containerd_v3_keys.IMAGES}.sandbox_image"]


def test_the_containerd_here_cannot_check_version_3(tmp_path: Path) -> None:
    """Why the v3 check is structural: Debian's containerd 1.6 accepts a version 3 file and silently ignores its
    io.containerd.cri.v1.* tables (the sandbox image stays containerd's default)."""
    if shutil.which("containerd") is None:
        pytest.skip("needs containerd (installed by .ci/run)")
    path = tmp_path / "config.toml"
    path.write_text(containerd_config(node_with_runtime("1.31.14", "3.10")))  # type: ignore[arg-type]
    dump = subprocess.run(["containerd", "--config", str(path), "config", "dump"], capture_output=True, text=True)
    if dump.returncode == 0 and "pause:3.10" in dump.stdout:
        pytest.fail("this containerd reads config version 3: validate with it instead of the key list")
