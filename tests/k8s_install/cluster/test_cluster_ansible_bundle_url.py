"""`cluster ansible --bundle-url`: the tarball goes to the bundle host once; each node receives only the
installer and SHA256SUMS and fetches what its role needs from the host. Real ansible-core drives real sshd in
network-namespace nodes (as test_cluster_ansible.py), a real nginx in the admin machine's namespace serves
the unpacked bundle over TLS with a certificate of the cluster CA.

With --serve the playbook sets the bundle host up itself: a fifth sshd node receives the tarball, unpacks it and
runs `k8s-install.pyz serve` (under --root: the namespaces have no systemd of their own, so the test starts
the nginx and registry of the units serve rendered, in the host's namespace, the moment serve is done)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional

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
from tests.k8s_install.serve.test_serve import NGINX, Daemon
from tests.support.ansible_output import recap, task_hosts
from tests.support.bundle_host import Nginx, sign_server_certificate
from tests.support.node_bundle import TOP
from tests.support.registry import REGISTRY_BINARY
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


# --- --serve: the playbook sets up the bundle host --------------------------------------------------------

SERVE_HOST_IP = f"{SUBNET}.6"  # a machine of its own on the lab's network, not a node of the cluster


def test_serve_adds_the_bundle_host_group_and_its_play_before_the_nodes(site: Site, tmp_path: Path) -> None:
    url = f"https://{SERVE_HOST_IP}:8443"
    result = generate(site, tmp_path / "own", "--bundle-url", url, "--serve")
    assert result.returncode == 0, result.stderr
    inventory = yaml.safe_load((tmp_path / "own" / "inventory.yml").read_text())
    group = inventory["all"]["children"]["k8s_bundle_host"]
    assert group["hosts"] == {"k8s-bundle-host": {"ansible_host": SERVE_HOST_IP}}
    assert group["vars"] == {"k8s_serve_address": SERVE_HOST_IP, "k8s_serve_https_port": 8443, "k8s_serve_args": []}
    for name in ("k8s-cluster.yml", "k8s-upgrade.yml"):
        plays = yaml.safe_load((tmp_path / "own" / name).read_text())
        assert [play["hosts"] for play in plays][:2] == ["k8s_bundle_host", "k8s_nodes"]
        assert plays[0]["tags"] == ["bundle"]  # `--tags bundle` sets the host up too: the nodes' verify needs it
        assert all(module.startswith("ansible.builtin.") for module in _modules(plays[0]["tasks"]))
        check = subprocess.run(
            [ansible_playbook() or "", "-i", "inventory.yml", name, "--syntax-check"],
            cwd=tmp_path / "own", capture_output=True, text=True,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
    # a node of the cluster as the host (a worker, or a control plane with serve on 8444): one inventory host
    worker = next(node for node in NODES if node["role"] == "worker")
    on_node = generate(site, tmp_path / "node", "--bundle-url", f"https://{worker['ip']}:8444", "--serve")
    assert on_node.returncode == 0, on_node.stderr
    group = yaml.safe_load((tmp_path / "node" / "inventory.yml").read_text())["all"]["children"]["k8s_bundle_host"]
    assert group["hosts"] == {worker["name"]: None} and group["vars"]["k8s_serve_https_port"] == 8444
    # without --serve nothing of it (the host is set up by hand, as before)
    assert generate(site, tmp_path / "plain", "--bundle-url", url).returncode == 0
    assert "k8s_bundle_host" not in (tmp_path / "plain" / "k8s-cluster.yml").read_text()
    for args, message in (
        (["--serve"], "--serve: give --bundle-url https://HOST:PORT as well"),
        (["--serve", "--bundle-url", f"{url}/bundles/"], "--serve: `k8s-install.pyz serve` serves the bundle at"),
    ):
        refused = generate(site, tmp_path / "refused", *args)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "refused").exists()


class NamespacedDaemon(Daemon):
    """A unit serve rendered, started in the bundle host's network namespace (test_serve.Daemon's mapping)."""

    def __init__(self, root: Path, service: str, work: Path, prefix: List[str]) -> None:
        super().__init__(root, service, work)
        self.prefix = prefix

    def argv(self, line: str) -> List[str]:
        return [*self.prefix, *super().argv(line)]


class ServiceStarter:
    """What systemd does on a real host, for a host under --root: once serve has recorded its run (its state
    file names the URLs), start the units it rendered; stopped by PID at the end."""

    def __init__(self, root: Path, work: Path, prefix: List[str]) -> None:
        self.root, self.work, self.prefix = root, work, prefix
        self.daemons: List[Daemon] = []
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from k8s_install.serve import layout

        state = self.root / layout.STATE_FILE.lstrip("/")
        try:
            while not self.done.is_set():
                if state.is_file() and "web" in json.loads(state.read_text() or "{}"):
                    (self.root / layout.NGINX_RUN.lstrip("/")).mkdir(parents=True, exist_ok=True)  # RuntimeDirectory
                    for service in layout.SERVICES:
                        self.daemons.append(NamespacedDaemon(self.root, service, self.work, self.prefix).start())
                    return
                time.sleep(0.2)
        except BaseException as error:  # reported by the test
            self.error = error

    def __enter__(self) -> ServiceStarter:
        self.work.mkdir(parents=True, exist_ok=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=10)
        for daemon in self.daemons:
            daemon.stop()


@pytest.mark.daemons
@pytest.mark.root
def test_the_playbook_sets_up_the_bundle_host_once_then_every_node_installs_from_it(cluster: Cluster) -> None:
    cluster.nodes.add_node("bh01", f"{SERVE_HOST_IP}/24")
    url = f"https://{SERVE_HOST_IP}:8443"
    ansible = cluster.site.work / "ansible-serve"
    generated = generate(cluster.site, ansible, "--bundle-url", url, "--serve")
    assert generated.returncode == 0, generated.stderr
    folders = fresh_nodes(cluster, "served", ansible=ansible)
    host = Path(tempfile.mkdtemp(prefix="k8s-bh-", dir="/tmp"))  # nginx's workers (nobody) read the bundle here
    host.chmod(0o755)
    root = host / "root"
    (root / "etc").mkdir(parents=True)
    shutil.copy("/etc/group", root / "etc/group")  # nginx's workers run as nobody
    (ansible / "host_vars" / "k8s-bundle-host.yml").write_text(yaml.safe_dump({
        "k8s_remote_dir": str(host / "bundle"),
        "k8s_serve_args": ["--root", str(root), "--registry-binary", REGISTRY_BINARY, "--nginx-binary", NGINX],
        "k8s_install_env": {"SHIV_ROOT": str(host / "shiv")},
    }))  # fmt: skip
    prefix = ["ip", "netns", "exec", cluster.nodes.lab.hosts["bh01"]]
    try:
        with ServiceStarter(root, host / "services", prefix) as services:
            first = play(cluster, ansible=ansible)
            output = first.stdout + first.stderr
            assert services.error is None, services.error
            assert first.returncode == 0, output
            assert task_hosts(first.stdout, "Copy the bundle tarball to the host") == ["k8s-bundle-host"]
            assert task_hosts(first.stdout, "Serve the bundle (k8s-install.pyz serve --yes)") == ["k8s-bundle-host"]
            assert task_hosts(first.stdout, "Install (k8s-install.pyz --yes)") == ["k8s-mn01", "k8s-mn02", "k8s-wn01"]
            assert output.index("Serve the bundle") < output.index("Verify every file of the bundle")
            assert (host / "bundle" / TOP / "SHA256SUMS").is_file() and not (host / "bundle" / f"{TOP}.tar").exists()
            assert os.stat(host / "bundle" / "cluster-secrets.yaml").st_mode & 0o777 == 0o600
            for name, folder in folders.items():  # no node ever held the tarball; each fetched its role's files
                assert not (folder / "bundle" / f"{TOP}.tar").exists()
                assert (folder / "bundle" / TOP / "files/calico-typha.yaml").exists() == (name != "k8s-wn01")
                assert "done:" in (folder / "root/var/log/k8s-install.log").read_text()

            again = play(cluster, ansible=ansible)
            assert again.returncode == 0, again.stdout + again.stderr
            assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout
            assert set(recap(again.stdout)) == {"k8s-bundle-host", "k8s-mn01", "k8s-mn02", "k8s-wn01"}
            assert task_hosts(again.stdout, "Copy the bundle tarball to the host") == []  # SHA256SUMS matches

            nginx_conf = root / "etc/k8s-bundle-host/nginx.conf"
            nginx_conf.unlink()  # someone removed it on the host: check mode shows serve's plan, changes nothing
            check = play(cluster, "--check", ansible=ansible)
            assert check.returncode == 0, check.stdout + check.stderr
            assert "create /etc/k8s-bundle-host/nginx.conf" in check.stdout, check.stdout
            assert "plan: 1 change(s) to make this machine the bundle host" in check.stdout, check.stdout
            counts = recap(check.stdout)
            assert counts["k8s-bundle-host"]["changed"] > 0 and not nginx_conf.exists()
            assert all(counts[name]["changed"] == 0 for name in folders), check.stdout
    finally:
        shutil.rmtree(host, ignore_errors=True)
