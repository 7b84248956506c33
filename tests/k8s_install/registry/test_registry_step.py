"""The registry-mirrors step and the containerd config on a node root (--root, in-process): the files it writes
with `registry:`, nothing without it, nothing on a re-run, and what it wrote removed when `registry:` goes."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional

import pytest
import tomllib

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import ArtifactFile, BundleManifest, Image
from k8s_install.cluster.model import ClusterConfig, SiteRegistry
from k8s_install.cluster.secrets import ClusterSecrets, generate_secrets
from k8s_install.engine import Node, converge
from k8s_install.images.names import image_registry
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps.containerd import ContainerdConfig, containerd_config
from k8s_install.steps.registry import RegistryMirrors, mirrored_registries
from tests.support import containerd_v3_keys
from tests.support.cluster import load, seed_data

CA = "-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n"
SITE = SiteRegistry("harbor.site.lan:443", "site-ca.pem", "mirror/k8s", CA)
IMAGES = ("registry.k8s.io/pause:3.9", "ghcr.io/acme/app:1.0", "nginx:1.27", "harbor.site.lan:443/team/tool:2")
CONTAINERD_VERSION = {"1.29.6": "1.7.20", "1.31.14": "2.0.5"}


def bundle(kubernetes: str = "1.29.6") -> Bundle:
    manifest = BundleManifest(
        kubernetes=kubernetes, os="rocky9", arch="amd64",
        artifacts=(ArtifactFile("containerd", "files/x", "", 0, version=CONTAINERD_VERSION[kubernetes]),),
        images=tuple(Image(name, "") for name in IMAGES),
    )  # fmt: skip
    return Bundle(Path("/nonexistent"), manifest)


def node(
    root: Path, registry: Optional[SiteRegistry], secrets: Optional[ClusterSecrets], kubernetes: str = "1.29.6"
) -> Node:
    config: ClusterConfig = dataclasses.replace(load(seed_data()), registry=registry)
    host = Host(root)
    settings = NodeSettings("worker", False, "k8s-wn01", "192.168.10.100", cluster=config, secrets=secrets)
    return Node(host, State(host), bundle(kubernetes), settings)


def run(node: Node) -> List[str]:
    report = converge(node, [ContainerdConfig(), RegistryMirrors()], dry_run=False, echo=lambda line: None)
    return [change for step in report.steps for change in step.changes]


def account(username: str = "puller", password: str = 'p"ss\\word') -> ClusterSecrets:
    return dataclasses.replace(generate_secrets("seed"), registry_username=username, registry_password=password)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_registry_of_an_image_name_is_the_one_containerd_resolves() -> None:
    assert [image_registry(name) for name in IMAGES] == [
        "registry.k8s.io",
        "ghcr.io",
        "docker.io",
        "harbor.site.lan:443",
    ]
    assert image_registry("localhost:5000/x:1") == "localhost:5000"
    assert image_registry("index.docker.io/library/busybox:1") == "docker.io"
    assert mirrored_registries(IMAGES, SITE) == ["registry.k8s.io", "docker.io", "quay.io", "ghcr.io"]


def test_without_registry_nothing_changes_from_before(tmp_path: Path) -> None:
    plain = node(tmp_path, None, generate_secrets("seed"))
    changes = run(plain)
    assert changes[-1] == "create /etc/containerd/certs.d/"  # as before: the folder, empty
    assert not any("certs.d/" in change for change in changes[:-1])
    config = tmp_path / "etc/containerd/config.toml"
    assert config.read_text() == containerd_config(plain) and mode(config) == 0o644
    assert "registry.configs" not in config.read_text()
    assert run(plain) == []


def test_every_registry_gets_a_mirror_to_the_site_registry_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    site_node = node(tmp_path, SITE, account())
    changes = run(site_node)
    certs = tmp_path / "etc/containerd/certs.d"
    assert sorted(path.name for path in certs.iterdir()) == sorted(
        ["registry.k8s.io", "docker.io", "quay.io", "ghcr.io", "harbor.site.lan:443"]
    )
    assert "create /etc/containerd/certs.d/harbor.site.lan:443/ca.crt" in changes
    assert (certs / "harbor.site.lan:443/ca.crt").read_text() == CA
    for namespace, server in [("registry.k8s.io", "https://registry.k8s.io"), ("docker.io", "https://registry-1.docker.io"),
                              ("quay.io", "https://quay.io"), ("ghcr.io", "https://ghcr.io")]:  # fmt: skip
        hosts = certs / namespace / "hosts.toml"
        assert mode(hosts) == 0o644
        parsed = tomllib.loads(hosts.read_text())
        assert parsed == {
            "server": server,
            "host": {
                "https://harbor.site.lan:443/v2/mirror/k8s": {
                    "capabilities": ["pull", "resolve"],
                    "ca": "/etc/containerd/certs.d/harbor.site.lan:443/ca.crt",
                    "override_path": True,
                }
            },
        }, namespace
    own = tomllib.loads((certs / "harbor.site.lan:443/hosts.toml").read_text())
    assert own["server"] == "https://harbor.site.lan:443"
    assert own["host"] == {
        "https://harbor.site.lan:443": {
            "capabilities": ["pull", "resolve"], "ca": "/etc/containerd/certs.d/harbor.site.lan:443/ca.crt"
        }
    }  # fmt: skip
    assert run(site_node) == []


def test_the_account_goes_into_the_cri_config_which_becomes_0600(tmp_path: Path) -> None:
    site_node = node(tmp_path, SITE, account())
    run(site_node)
    config = tmp_path / "etc/containerd/config.toml"
    assert mode(config) == 0o600
    cri = tomllib.loads(config.read_text())["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert cri["registry"]["configs"] == {
        "harbor.site.lan:443": {"auth": {"username": "puller", "password": 'p"ss\\word'}}
    }
    if shutil.which("containerd") is not None:  # containerd reads it as written (1.x, config version 2)
        dump = subprocess.run(["containerd", "--config", str(config), "config", "dump"], capture_output=True, text=True)
        assert dump.returncode == 0, dump.stderr
        assert 'password = "p\\"ss\\\\word"' in dump.stdout


def test_an_anonymous_registry_keeps_the_config_0644(tmp_path: Path) -> None:
    run(node(tmp_path, SITE, generate_secrets("seed")))
    config = tmp_path / "etc/containerd/config.toml"
    assert mode(config) == 0o644 and "registry.configs" not in config.read_text()


def test_containerd_2x_reads_the_account_from_the_cri_images_plugin(tmp_path: Path) -> None:
    run(node(tmp_path, SITE, account(), kubernetes="1.31.14"))
    parsed = tomllib.loads((tmp_path / "etc/containerd/config.toml").read_text())
    assert parsed["version"] == 3 and containerd_v3_keys.unknown_keys(parsed) == []
    registry = parsed["plugins"][containerd_v3_keys.IMAGES]["registry"]
    assert registry["configs"]["harbor.site.lan:443"]["auth"]["username"] == "puller"


def test_without_a_prefix_the_mirror_is_the_registry_root(tmp_path: Path) -> None:
    run(node(tmp_path, SiteRegistry("10.0.0.5:5000"), None))
    parsed = tomllib.loads((tmp_path / "etc/containerd/certs.d/registry.k8s.io/hosts.toml").read_text())
    assert parsed["host"] == {"https://10.0.0.5:5000": {"capabilities": ["pull", "resolve"]}}  # no CA: system trust
    assert not (tmp_path / "etc/containerd/certs.d/10.0.0.5:5000/ca.crt").exists()


def test_taking_registry_out_removes_what_the_step_wrote(tmp_path: Path) -> None:
    (tmp_path / "etc/containerd/certs.d/example.org").mkdir(parents=True)
    (tmp_path / "etc/containerd/certs.d/example.org/hosts.toml").write_text("# the operator's own\n")
    run(node(tmp_path, SITE, account()))
    changes = run(node(tmp_path, None, account()))
    assert "remove /etc/containerd/certs.d/registry.k8s.io/hosts.toml (no longer in cluster.yaml registry:)" in changes
    left = sorted(str(path.relative_to(tmp_path)) for path in (tmp_path / "etc/containerd/certs.d").rglob("*"))
    assert left == [
        "etc/containerd/certs.d/example.org",
        "etc/containerd/certs.d/example.org/hosts.toml",
    ]  # the operator's file is not ours: kept
    config = tmp_path / "etc/containerd/config.toml"
    assert mode(config) == 0o644 and "registry.configs" not in config.read_text()
    assert run(node(tmp_path, None, account())) == []


@pytest.mark.parametrize("password", ["new-password"])
def test_a_changed_password_updates_the_config_and_restarts_containerd(tmp_path: Path, password: str) -> None:
    run(node(tmp_path, SITE, account()))
    changed = node(tmp_path, SITE, account(password=password))
    report = converge(changed, [ContainerdConfig(), RegistryMirrors()], dry_run=False, echo=lambda line: None)
    assert [change for step in report.steps for change in step.changes] == ["update /etc/containerd/config.toml"]
    assert report.restarted == ["containerd"]


def test_reset_removes_the_hosts_files_and_the_ca(tmp_path: Path) -> None:
    import argparse

    from k8s_install.commands.reset import run_reset

    run(node(tmp_path, SITE, account()))
    assert run_reset(argparse.Namespace(root=str(tmp_path), yes=True)) == 0
    left = [path for path in (tmp_path / "etc/containerd").rglob("*") if path.is_file()]
    assert left == []
