"""`cluster ansible --bundle-url`: the tarball goes to the bundle host once; each node receives only the
installer and SHA256SUMS and fetches what its role needs from the host. Real ansible-core drives real sshd in
network-namespace nodes (as test_cluster_ansible.py), a real nginx in the admin machine's namespace serves
the unpacked bundle over TLS with a certificate of the cluster CA."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from k8s_install.cluster.secrets import ClusterSecrets
from tests.k8s_install.cluster import test_cluster_ansible as lab
from tests.k8s_install.cluster.test_cluster_ansible import (
    NODES,
    SHORT,
    SUBNET,
    Cluster,
    Site,
    _modules,
    fresh_nodes,
    generate,
    play,
)
from tests.support.ansible_output import recap, task_hosts
from tests.support.bundle_host import Nginx, sign_server_certificate
from tests.support.node_bundle import TOP
from tests.support.ssh_nodes import ansible_playbook

prerequisites, site, cluster = lab.prerequisites, lab.site, lab.cluster  # its module fixtures, made here once

HOST_IP = f"{SUBNET}.5"  # the admin machine of the lab serves the bundle


def test_the_inventory_names_the_host_and_nodes_get_only_the_kit(site: Site, tmp_path: Path) -> None:
    url = f"https://{HOST_IP}:8443"
    result = generate(site, tmp_path, "--bundle-url", url)
    assert result.returncode == 0, result.stderr
    variables = yaml.safe_load((tmp_path / "inventory.yml").read_text())["all"]["vars"]
    assert variables["k8s_bundle_url"] == url and variables["k8s_node_kit"] == str(tmp_path / "bundle-kit")
    unpacked = site.work / "build" / TOP
    kit = sorted(path.name for path in (tmp_path / "bundle-kit").iterdir())
    assert kit == ["SHA256SUMS", "k8s-install.pyz"]  # the test bundle is unsigned: no SHA256SUMS.sig
    assert all((tmp_path / "bundle-kit" / name).read_bytes() == (unpacked / name).read_bytes() for name in kit)
    plays = yaml.safe_load((tmp_path / "k8s-cluster.yml").read_text())
    names = [task.get("name", "") for task in plays[0]["tasks"]]
    assert not any("tarball" in name for name in names) and any("fetches the rest" in name for name in names)
    tasks = [task for play in plays for task in play["tasks"]] + yaml.safe_load(
        (tmp_path / "k8s-node-tasks.yml").read_text()
    )
    assert all(module.startswith("ansible.builtin.") for module in _modules(tasks))
    check = subprocess.run(
        [ansible_playbook() or "", "-i", "inventory.yml", "k8s-cluster.yml", "--syntax-check"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_zipapp_writes_the_same_files_with_a_bundle_host(site: Site, tmp_path: Path) -> None:
    url = f"https://{HOST_IP}:8443"
    assert generate(site, tmp_path / "bundler", "--bundle-url", url).returncode == 0
    command = [
        site.python39, str(site.work / "build" / TOP / "k8s-install.pyz"), "config", "ansible",
        "--config", str(site.cluster), "--tarball", str(site.tarball), "--dir", str(tmp_path / "pyz"),
        "--node-python", site.python39, "--bundle-url", url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, SHIV_ROOT=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    for name in ("k8s-cluster.yml", "k8s-node-tasks.yml", "bundle-kit/SHA256SUMS", "bundle-kit/k8s-install.pyz"):
        assert (tmp_path / "pyz" / name).read_bytes() == (tmp_path / "bundler" / name).read_bytes(), name
    inventory = (tmp_path / "pyz" / "inventory.yml").read_text().replace(str(tmp_path / "pyz"), "DIR")
    assert inventory == (tmp_path / "bundler" / "inventory.yml").read_text().replace(str(tmp_path / "bundler"), "DIR")


def test_a_plain_http_bundle_url_is_refused_before_anything_is_written(site: Site, tmp_path: Path) -> None:
    result = generate(site, tmp_path / "out", "--bundle-url", f"http://{HOST_IP}:8443")
    assert result.returncode == 1 and "not an https://HOST:PORT address" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def bundle_host(cluster: Cluster, cluster_secrets: ClusterSecrets) -> Iterator[Nginx]:
    work = cluster.site.work / "bundle-host"
    certificate = sign_server_certificate(
        work / "tls", cluster_secrets.ca_cert_pem, cluster_secrets.ca_key_pem, ip=HOST_IP
    )
    prefix = ["ip", "netns", "exec", cluster.nodes.lab.hosts["admin"]]
    served = cluster.site.work / "build" / TOP
    with Nginx(served, work / "nginx", certificate, port=8443, prefix=prefix, address=HOST_IP) as server:
        yield server


@pytest.mark.daemons
@pytest.mark.root
def test_the_playbook_installs_every_node_from_the_bundle_host(cluster: Cluster, bundle_host: Nginx) -> None:
    ansible = cluster.site.work / "ansible-bundle-url"
    assert generate(cluster.site, ansible, "--bundle-url", bundle_host.url).returncode == 0
    folders = fresh_nodes(cluster, "from-host", ansible=ansible)
    first = play(cluster, ansible=ansible)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert task_hosts(first.stdout, "Install (k8s-install.pyz --yes)") == ["k8s-mn01", "k8s-mn02", "k8s-wn01"]
    for name, folder in folders.items():
        bundle = folder / "bundle" / TOP
        assert (bundle / "SHA256SUMS").is_file() and not (folder / "bundle" / f"{TOP}.tar").exists()
        assert (bundle / "files/calico-typha.yaml").exists() == (name != "k8s-wn01")  # a worker skips it
        assert "done:" in (folder / "root/var/log/k8s-install.log").read_text()
    requested = [path for path, _status, _sent in bundle_host.requests()]
    assert requested.count("/files/calico-typha.yaml") == 2  # the two control planes only

    again = play(cluster, ansible=ansible)
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout
    assert SHORT and NODES  # the lab's nodes, as test_cluster_ansible.py names them
