"""`bundler cluster ansible` end to end: real ansible-core (from PyPI) drives real sshd in network-namespace
nodes, on which the real pyz runs under Python 3.9 in --root mode (each node its own root and bundle folder: the
namespaces share one filesystem). kubeadm cannot run here: the nodes stop at the exact
kubeadm commands, as in test_node_control_plane.py."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest
import yaml

from k8s_install.steps.upgrade import DRAIN_DELETES_EMPTYDIR
from tests.conftest import REPO, find_python39
from tests.support.ansible_output import recap, task_hosts
from tests.support.cluster_files import SEED_NODES, SUBNET, write_cluster
from tests.support.http_server import MirrorServer
from tests.support.netns import Lab
from tests.support.node_bundle import TOP, build_node_bundle, node_release_manifest
from tests.support.sandbox import add_kubelet_unit, make_el9_root
from tests.support.ssh_nodes import SSHD, SshNodes, ansible_playbook
from tests.support.upgrade_standin import recorded_actions, retargeted_tarball

# first control plane, second control plane, worker
NODES = [SEED_NODES[0], SEED_NODES[1], SEED_NODES[3]]
SECOND_WORKER = {"name": "k8s-wn02", "ip": f"{SUBNET}.101", "role": "worker"}
BATCH_NODES = [SEED_NODES[0], SEED_NODES[3], SECOND_WORKER]  # for the worker batches: one control plane
SHORT = {"k8s-mn01": "mn01", "k8s-mn02": "mn02", "k8s-wn01": "wn01", "k8s-wn02": "wn02"}
DEBIAN_OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'


def _missing() -> Optional[str]:
    if os.geteuid() != 0:
        return "needs root (network namespaces, sshd)"
    for tool, what in (
        (SSHD, "openssh-server"),
        (ansible_playbook(), "ansible-core (pip)"),
        (shutil.which("ip"), "iproute2"),
    ):
        if not tool or not os.path.exists(tool):
            return f"{what} is not installed"
    if not find_python39():
        return "no Python 3.9 interpreter (set PYTHON39)"
    return None


@pytest.fixture(scope="module")
def prerequisites() -> str:
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    return find_python39() or ""


class Site(NamedTuple):
    work: Path
    cluster: Path  # cluster.yaml, with both secrets files beside it
    tarball: Path
    python39: str


@pytest.fixture(scope="module")
def site(prerequisites: str, tmp_path_factory: pytest.TempPathFactory, cluster_secrets) -> Site:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("ansible")
    mirror = MirrorServer().start()
    try:
        build_node_bundle(mirror, work / "build")
    finally:
        mirror.stop()
    cluster = write_cluster(work / "site", cluster_secrets, NODES)
    return Site(work, cluster, work / "build" / "out" / f"{TOP}.tar", prerequisites)


DELTA_TO = "1.29.15"
DELTA_TOP = TOP.replace("1.29.6", DELTA_TO)


@pytest.fixture(scope="module")
def delta(site: Site) -> Path:
    """The delta tarball of a 1.29.15 bundle over the site's 1.29.6 one, built by the real builder `--from` it."""
    work = site.work / "delta"
    work.mkdir()
    mirror = MirrorServer().start()
    try:
        manifest = work / "release.yaml"
        manifest.write_text(yaml.safe_dump(node_release_manifest(mirror, {"kubernetes": DELTA_TO})))
        built = bundler(
            "build", "--allow-incomplete", "--manifest", str(manifest), "--mirror", mirror.url,
            "--cache", str(work / "cache"), "--output", str(work / "out"), "--from", str(site.tarball),
        )  # fmt: skip
    finally:
        mirror.stop()
    assert built.returncode == 0, built.stderr
    return work / "out" / f"{DELTA_TOP}-delta.tar"


def delta_site(site: Site, delta: Path, folder: Path) -> Site:
    """cluster.yaml moved to the delta's release, beside the same secrets."""
    shutil.copytree(site.cluster.parent, folder)
    config = folder / "cluster.yaml"
    document = yaml.safe_load(config.read_text())
    document["kubernetes_version"] = DELTA_TO
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return site._replace(cluster=config, tarball=delta)


def bundler(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bundler", *args], cwd=REPO, capture_output=True, text=True)


def generate(site: Site, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return bundler(
        "cluster", "ansible", str(site.cluster), "--bundle", str(site.tarball), "--dir", str(out),
        "--node-python", site.python39, *extra,
    )  # fmt: skip


# --- what is generated ------------------------------------------------------------------------------------


def test_inventory_groups_the_roles_and_pins_the_bundle(site: Site, tmp_path: Path) -> None:
    result = generate(site, tmp_path, "--worker-batch", "7")
    assert result.returncode == 0, result.stderr
    inventory = yaml.safe_load((tmp_path / "inventory.yml").read_text())
    groups = inventory["all"]["children"]["k8s_nodes"]["children"]
    planes = groups["k8s_control_planes"]["children"]
    assert list(planes["k8s_first_control_plane"]["hosts"]) == ["k8s-mn01"]
    assert list(planes["k8s_other_control_planes"]["hosts"]) == ["k8s-mn02"]
    assert groups["k8s_workers"]["hosts"]["k8s-wn01"] == {
        "ansible_host": f"{SUBNET}.100", "k8s_role": "worker", "k8s_first": False,
    }  # fmt: skip
    variables = inventory["all"]["vars"]
    sums = subprocess.run(["tar", "-xOf", str(site.tarball), f"{TOP}/SHA256SUMS"], capture_output=True, check=True)
    assert variables["k8s_bundle_sums_sha256"] == hashlib.sha256(sums.stdout).hexdigest()
    assert variables["k8s_secrets_file"] == str(site.cluster.parent / "cluster-secrets.yaml")
    assert variables["k8s_worker_secrets_file"] == str(site.cluster.parent / "cluster-secrets-worker.yaml")
    plays = yaml.safe_load((tmp_path / "k8s-cluster.yml").read_text())
    assert [play["hosts"] for play in plays] == [
        "k8s_nodes", "k8s_first_control_plane", "k8s_other_control_planes", "k8s_workers",
    ]  # fmt: skip
    assert [play.get("serial") for play in plays] == [None, None, 1, 7]
    assert all(play["any_errors_fatal"] and play["max_fail_percentage"] == 0 for play in plays)


def _modules(tasks: List[dict]) -> List[str]:
    keywords = {"name", "when", "register", "vars", "environment", "check_mode", "changed_when", "failed_when",
                "diff", "block", "no_log"}  # fmt: skip
    found = []
    for task in tasks:
        found += _modules(task.get("block", []))
        found += [key for key in task if key not in keywords]
    return found


def test_playbook_uses_only_builtin_modules_and_passes_syntax_check(site: Site, tmp_path: Path) -> None:
    assert generate(site, tmp_path).returncode == 0
    tasks = [task for play in yaml.safe_load((tmp_path / "k8s-cluster.yml").read_text()) for task in play["tasks"]]
    tasks += yaml.safe_load((tmp_path / "k8s-node-tasks.yml").read_text())
    modules = set(_modules(tasks))
    assert modules and all(module.startswith("ansible.builtin.") for module in modules), modules
    check = subprocess.run(
        [ansible_playbook() or "", "-i", "inventory.yml", "k8s-cluster.yml", "--syntax-check"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_zipapp_writes_the_same_files_on_an_admin_node(site: Site, tmp_path: Path) -> None:
    assert generate(site, tmp_path / "bundler").returncode == 0
    bundle = site.work / "build" / TOP
    command = [
        site.python39, str(bundle / "k8s-install.pyz"), "config", "ansible", "--config", str(site.cluster),
        "--tarball", str(site.tarball), "--dir", str(tmp_path / "pyz"), "--node-python", site.python39,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, SHIV_ROOT=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    for name in ("inventory.yml", "k8s-cluster.yml", "k8s-node-tasks.yml", "k8s-upgrade.yml", "k8s-node-upgrade.yml"):
        assert (tmp_path / "pyz" / name).read_text() == (tmp_path / "bundler" / name).read_text()


def test_bad_inputs_are_one_line_and_write_nothing(site: Site, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.tar"
    data = bytearray(site.tarball.read_bytes())
    offset = data.find(b"kind: DaemonSet")  # inside calico-typha.yaml, stored as is
    assert offset > 0
    data[offset] ^= 1
    tampered.write_bytes(bytes(data))
    secrets = site.cluster.parent
    cases = [
        (["--bundle", str(tmp_path / "nope.tar")], "no such bundle tarball"),
        (["--bundle", str(tampered)], "tampered.tar"),
        (["--bundle", str(site.tarball), "--worker-secrets", str(secrets / "cluster-secrets.yaml")],
         "holds the full secrets; workers get only cluster-secrets-worker.yaml"),
        (["--bundle", str(site.tarball), "--secrets", str(secrets / "cluster-secrets-worker.yaml")],
         "a worker-only secrets file; control planes need cluster-secrets.yaml"),
        (["--bundle", str(site.tarball), "--remote-dir", "bundles"], "--remote-dir: bundles is not an absolute path"),
    ]  # fmt: skip
    for args, message in cases:
        out = tmp_path / "out"
        result = bundler("cluster", "ansible", str(site.cluster), "--dir", str(out), *args)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("bundler: error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not out.exists()


def _first_play_tasks(path: Path) -> List[str]:
    return [task["name"] for task in yaml.safe_load(path.read_text())[0]["tasks"]]


def test_a_delta_bundle_is_completed_from_the_base_the_install_left_before_anything_runs(
    site: Site, delta: Path, tmp_path: Path
) -> None:
    new = delta_site(site, delta, tmp_path / "site")
    result = generate(new, tmp_path / "ansible")
    assert result.returncode == 0, result.stderr
    variables = yaml.safe_load((tmp_path / "ansible" / "inventory.yml").read_text())["all"]["vars"]
    base_sums = subprocess.run(["tar", "-xOf", str(site.tarball), f"{TOP}/SHA256SUMS"], capture_output=True, check=True)
    assert (variables["k8s_bundle_name"], variables["k8s_bundle_base"]) == (DELTA_TOP, TOP)  # derived, not typed
    assert variables["k8s_bundle_base_sums_sha256"] == hashlib.sha256(base_sums.stdout).hexdigest()
    delta_sums = subprocess.run(["tar", "-xOf", str(delta), f"{DELTA_TOP}/SHA256SUMS"], capture_output=True, check=True)
    assert variables["k8s_bundle_sums_sha256"] == hashlib.sha256(delta_sums.stdout).hexdigest()  # the full new sums
    for name in ("k8s-upgrade.yml", "k8s-cluster.yml"):
        playbook = tmp_path / "ansible" / name
        tasks = _first_play_tasks(playbook)
        completes = "Delta: complete it from its base (k8s-install.pyz verify --base)"
        assert tasks.index("Copy and unpack the bundle (skipped when its SHA256SUMS matches)") < tasks.index(completes)
        assert tasks.index(completes) < tasks.index("Verify every file of the bundle")
        first_play = yaml.safe_load(playbook.read_text())[0]["tasks"]
        task = next(task for task in first_play if task["name"] == completes)
        assert task["ansible.builtin.command"]["argv"][2:] == ["verify", "--base", "{{ k8s_base_dir }}"]
        where = next(task for task in first_play if task.get("ansible.builtin.set_fact", {}).get("k8s_base_dir"))
        assert where["ansible.builtin.set_fact"]["k8s_base_dir"] == "{{ k8s_remote_dir }}/{{ k8s_bundle_base }}"
        modules = set(_modules(first_play))
        assert all(module.startswith("ansible.builtin.") for module in modules), modules
        check = subprocess.run(
            [ansible_playbook() or "", "-i", "inventory.yml", name, "--syntax-check"],
            cwd=tmp_path / "ansible", capture_output=True, text=True,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
    full = generate(site, tmp_path / "full")
    assert full.returncode == 0, full.stderr
    assert "k8s_bundle_base" not in (tmp_path / "full" / "inventory.yml").read_text()
    for name in ("k8s-upgrade.yml", "k8s-cluster.yml"):
        assert not [task for task in _first_play_tasks(tmp_path / "full" / name) if task.startswith("Delta")]


def test_a_damaged_delta_is_refused_in_one_line(site: Site, delta: Path, tmp_path: Path) -> None:
    new = delta_site(site, delta, tmp_path / "site")
    with tarfile.open(delta) as archive:
        member = archive.getmember(f"{DELTA_TOP}/k8s-install.pyz")
    data = bytearray(delta.read_bytes())
    data[member.offset_data + member.size // 2] ^= 1
    damaged = tmp_path / delta.name
    damaged.write_bytes(bytes(data))
    result = generate(new._replace(tarball=damaged), tmp_path / "out")
    assert result.returncode == 1 and result.stderr.startswith("bundler: error: "), result.stderr
    assert "k8s-install.pyz is corrupted" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


# --- the playbook against SSH nodes -----------------------------------------------------------------------


class Cluster(NamedTuple):
    site: Site
    nodes: SshNodes
    ansible: Path  # the generated inventory and playbook


@pytest.fixture(scope="module")
def cluster(site: Site) -> Iterator[Cluster]:
    (site.work / "logs").mkdir()
    lab = Lab(site.work / "logs", prefix="k8sans")
    nodes = SshNodes(lab, site.work / "ssh")
    try:
        nodes.add_admin("admin", f"{SUBNET}.5/24")
        for node in NODES + [SECOND_WORKER]:
            nodes.add_node(SHORT[node["name"]], f"{node['ip']}/24")
        ansible = site.work / "ansible"
        result = generate(site, ansible, "--worker-batch", "2")
        assert result.returncode == 0, result.stderr
        yield Cluster(site, nodes, ansible)
    finally:
        nodes.close()
        lab.close()


def fresh_nodes(
    cluster: Cluster, tag: str, broken: Optional[str] = None, nodes: List[dict] = NODES, ansible: Optional[Path] = None
) -> Dict[str, Path]:
    """Give every node a new root and bundle folder under `tag` (host_vars beside the inventory: the installer's
    extra arguments go through k8s_install_args). Returns node name -> its folder. The nodes share one shiv
    cache (SHIV_ROOT): the same k8s-install.pyz extracts to the same place on every machine, and extracting it
    once per node and test cost a second of CPU each time."""
    folders = {}
    for node in nodes:
        folder = cluster.site.work / tag / SHORT[node["name"]]
        root = make_el9_root(folder / "root")
        add_kubelet_unit(root)
        if node["name"] == broken:
            (root / "etc/os-release").write_text(DEBIAN_OS_RELEASE)
        folders[node["name"]] = folder
    use_nodes(cluster, folders, ansible)
    return folders


def use_nodes(cluster: Cluster, folders: Dict[str, Path], ansible: Optional[Path] = None) -> None:
    """Point the inventory's hosts at these node folders (their host_vars)."""
    host_vars = (ansible or cluster.ansible) / "host_vars"
    host_vars.mkdir(exist_ok=True)
    for name, folder in folders.items():
        variables = {
            "k8s_remote_dir": str(folder / "bundle"),
            # --allow-incomplete: the stand-in bundle has no kubeadm images or RPMs
            "k8s_install_args": ["--root", str(folder / "root"), "--allow-incomplete"],
            "k8s_install_env": {"SHIV_ROOT": str(cluster.site.work / "shiv")},
        }
        (host_vars / f"{name}.yml").write_text(yaml.safe_dump(variables))


def play(cluster: Cluster, *extra: str, ansible: Optional[Path] = None) -> subprocess.CompletedProcess:
    folder = ansible or cluster.ansible
    return cluster.nodes.run_playbook(folder / "inventory.yml", folder / "k8s-cluster.yml", *extra)


@pytest.mark.daemons
@pytest.mark.root
def test_check_mode_on_new_nodes_reports_the_copy_and_changes_nothing(cluster: Cluster) -> None:
    folders = fresh_nodes(cluster, "check-new")
    result = play(cluster, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("would be copied first") == 3
    assert all(counts["changed"] > 0 and counts["failed"] == 0 for counts in recap(result.stdout).values())
    for folder in folders.values():
        assert not (folder / "bundle").exists() and not (folder / "root/var/log/k8s-install.log").exists()


class Installed(NamedTuple):
    folders: Dict[str, Path]  # node name -> its folder
    first: subprocess.CompletedProcess  # the playbook's run on the new nodes


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> Installed:
    """Three new nodes the playbook installed: the install test asserts that run and the runs after it, and leaves
    them converged, which the upgrade test starts from (a second install from new cost a fresh playbook run)."""
    folders = fresh_nodes(cluster, "install")
    return Installed(folders, play(cluster))


@pytest.mark.daemons
@pytest.mark.root
def test_playbook_installs_in_order_then_changes_nothing_and_check_shows_the_plan(
    cluster: Cluster, installed: Installed
) -> None:
    folders, first = installed
    use_nodes(cluster, folders)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert task_hosts(first.stdout, "Install (k8s-install.pyz --yes)") == ["k8s-mn01", "k8s-mn02", "k8s-wn01"]
    assert all(counts["changed"] > 0 for counts in recap(first.stdout).values()), output

    logs = {name: (folder / "root/var/log/k8s-install.log").read_text() for name, folder in folders.items()}
    assert "would run: kubeadm init --config /etc/k8s-install/kubeadm-init.yaml --upload-certs" in logs["k8s-mn01"]
    for joining in ("k8s-mn02", "k8s-wn01"):
        assert "would run: kubeadm join --config /etc/k8s-install/kubeadm-join.yaml" in logs[joining]
        assert "kubeadm init" not in logs[joining]
    for name, folder in folders.items():
        bundle = folder / "bundle"
        kept = "cluster-secrets-worker.yaml" if name == "k8s-wn01" else "cluster-secrets.yaml"
        other = "cluster-secrets.yaml" if name == "k8s-wn01" else "cluster-secrets-worker.yaml"
        assert os.stat(bundle / kept).st_mode & 0o777 == 0o600
        assert not (bundle / other).exists()
        assert not (bundle / f"{TOP}.tar").exists() and (bundle / TOP / "SHA256SUMS").is_file()
    assert not (folders["k8s-wn01"] / "root/etc/kubernetes/pki/ca.key").exists()

    again = play(cluster)
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout
    assert task_hosts(again.stdout, "Copy the bundle tarball") == []  # skipped: SHA256SUMS matches
    converged = play(cluster, "--check")  # plan and install agree: an installed node plans nothing
    assert converged.returncode == 0, converged.stdout + converged.stderr
    assert all(counts["changed"] == 0 for counts in recap(converged.stdout).values()), converged.stdout

    hosts_file = folders["k8s-mn02"] / "root/etc/hosts"
    installed_hosts = hosts_file.read_text()
    drifted = "127.0.0.1 localhost\n"
    hosts_file.write_text(drifted)  # someone edited the node by hand
    try:
        check = play(cluster, "--check")
        assert check.returncode == 0, check.stdout + check.stderr
        plan = check.stdout.split("PLAY [Other control planes", 1)[1].split("PLAY [", 1)[0]
        assert "[hostname] hostname and /etc/hosts: 1 to change" in plan, plan
        assert re.search(r"plan: [1-9]\d* change\(s\) pending; nothing was changed", plan)
        assert recap(check.stdout)["k8s-mn02"]["changed"] > 0
        assert hosts_file.read_text() == drifted
    finally:
        hosts_file.write_text(installed_hosts)  # converged again, for the upgrade test


@pytest.mark.daemons
@pytest.mark.root
def test_a_failed_node_stops_the_rollout_with_its_error(cluster: Cluster) -> None:
    folders = fresh_nodes(cluster, "fail", broken="k8s-mn02")
    result = play(cluster)
    assert result.returncode != 0
    failure = '"msg": "k8s-mn02: k8s-install.pyz: error: preflight failed (os)'
    assert failure in result.stdout, result.stdout
    assert "preflight os: this node runs Debian GNU/Linux 12 (bookworm) but the bundle is for" in result.stdout
    assert "done:" in (folders["k8s-mn01"] / "root/var/log/k8s-install.log").read_text()
    assert not (folders["k8s-wn01"] / "root/var/log/k8s-install.log").exists()  # the workers never started
    assert "PLAY [Workers" not in result.stdout


@pytest.mark.daemons
@pytest.mark.root
def test_a_failed_worker_stops_the_rollout_before_the_next_batch(cluster: Cluster, cluster_secrets) -> None:  # type: ignore[no-untyped-def]
    site = cluster.site
    config = write_cluster(site.work / "site-batches", cluster_secrets, BATCH_NODES)
    ansible = site.work / "ansible-batches"
    generated = generate(site._replace(cluster=config), ansible, "--worker-batch", "1")
    assert generated.returncode == 0, generated.stderr
    folders = fresh_nodes(cluster, "batches", broken="k8s-wn01", nodes=BATCH_NODES, ansible=ansible)
    result = play(cluster, ansible=ansible)
    assert result.returncode != 0
    assert '"msg": "k8s-wn01: k8s-install.pyz: error: preflight failed (os)' in result.stdout, result.stdout
    assert task_hosts(result.stdout, "Install (k8s-install.pyz --yes)") == ["k8s-mn01", "k8s-wn01"]
    assert not (folders["k8s-wn02"] / "root/var/log/k8s-install.log").exists()  # its batch never started


# --- the upgrade playbook ---------------------------------------------------------------------------------

UPGRADE_TO = "1.29.15"
UPGRADE_TASK = "Upgrade (k8s-install.pyz upgrade --yes)"


def upgrade_site(cluster: Cluster, folder: Path) -> Tuple[Site, Path]:
    """The next release's bundle (a stand-in made from this one, tests/support/upgrade_standin.py), cluster.yaml
    moved to it beside the same secrets, and the playbooks generated from them with the same host_vars."""
    site = cluster.site
    tarball = retargeted_tarball(site.work / "build" / TOP, UPGRADE_TO, folder / "bundle")
    shutil.copytree(site.cluster.parent, folder / "site")
    config = folder / "site" / "cluster.yaml"
    document = yaml.safe_load(config.read_text())
    document["kubernetes_version"] = UPGRADE_TO
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    new = site._replace(cluster=config, tarball=tarball)
    ansible = folder / "ansible"
    generated = generate(new, ansible, "--worker-batch", "2")
    assert generated.returncode == 0, generated.stderr
    shutil.copytree(cluster.ansible / "host_vars", ansible / "host_vars")
    return new, ansible


def new_log_lines(folders: Dict[str, Path], offsets: Dict[str, int]) -> Dict[str, str]:
    logs = {name: (folder / "root/var/log/k8s-install.log").read_text() for name, folder in folders.items()}
    return {name: text[offsets[name] :] for name, text in logs.items()}


def log_sizes(folders: Dict[str, Path]) -> Dict[str, int]:
    return {name: len((folder / "root/var/log/k8s-install.log").read_text()) for name, folder in folders.items()}


@pytest.mark.daemons
@pytest.mark.root
def test_upgrade_playbook_runs_kubeadms_order_node_by_node_then_changes_nothing(
    cluster: Cluster, installed: Installed
) -> None:
    """From the nodes the install test left converged (in the module's xdist group, so after it: file order)."""
    folders = installed.folders
    assert installed.first.returncode == 0, installed.first.stdout + installed.first.stderr
    use_nodes(cluster, folders)
    new, ansible = upgrade_site(cluster, cluster.site.work / "upgrade-site")
    upgrade_playbook = ansible / "k8s-upgrade.yml"
    states = {name: (folder / "root/var/lib/k8s-install/state.json").read_text() for name, folder in folders.items()}

    def run(*extra: str) -> subprocess.CompletedProcess:
        return cluster.nodes.run_playbook(ansible / "inventory.yml", upgrade_playbook, *extra)

    copied = run("--tags", "bundle")  # only the bundle, cluster.yaml and secrets: then --check shows the plans
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "PLAY [First control plane]" in copied.stdout and UPGRADE_TASK not in copied.stdout
    wrong = cluster.nodes.run_playbook(ansible / "inventory.yml", ansible / "k8s-cluster.yml")  # install, not upgrade
    assert wrong.returncode != 0
    assert '"msg": "k8s-mn01: k8s-install.pyz: error: this node runs Kubernetes 1.29.6' in wrong.stdout, wrong.stdout
    assert "move it with `k8s-install.pyz upgrade`" in wrong.stdout and "PLAY [Other control planes" not in wrong.stdout
    offsets = log_sizes(folders)
    check = run("--check")
    assert check.returncode == 0, check.stdout + check.stderr
    order = ["k8s-mn01", "k8s-mn02", "k8s-wn01"]
    assert re.findall(r"upgrade of (k8s-\w+): 1\.29\.6 -> 1\.29\.15", check.stdout) == order
    assert check.stdout.count("upgrade plan: ") == 3 and "would kubeadm upgrade apply v1.29.15 --yes" in check.stdout
    assert all(counts["changed"] > 0 for counts in recap(check.stdout).values()), check.stdout
    for name, folder in folders.items():  # check mode changed nothing on the nodes
        assert (folder / "root/var/lib/k8s-install/state.json").read_text() == states[name]
        assert "kubeadm upgrade" not in " ".join(recorded_actions(new_log_lines(folders, offsets)[name]))

    offsets = log_sizes(folders)
    upgraded = run()
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert task_hosts(upgraded.stdout, UPGRADE_TASK) == order
    assert all(counts["changed"] > 0 for counts in recap(upgraded.stdout).values()), upgraded.stdout
    done = {name: recorded_actions(text) for name, text in new_log_lines(folders, offsets).items()}
    kubeadm = {name: [action for action in actions if action.startswith("kubeadm ")] for name, actions in done.items()}
    assert kubeadm == {
        "k8s-mn01": ["kubeadm upgrade plan v1.29.15", "kubeadm upgrade apply v1.29.15 --yes"],
        "k8s-mn02": ["kubeadm upgrade node"],
        "k8s-wn01": ["kubeadm upgrade node"],
    }
    admin = "kubectl --kubeconfig=/etc/kubernetes/admin.conf"
    drain = f"{admin} drain k8s-mn02 --ignore-daemonsets --delete-emptydir-data"
    assert done["k8s-mn02"][:3] == [f"{admin} get --raw /readyz", "kubeadm upgrade node", drain]
    assert done["k8s-wn01"][:3] == [
        "kubectl --kubeconfig=/etc/kubernetes/kubelet.conf get --raw /version",
        "operator: drain k8s-wn01 from a control plane before confirming: kubectl drain k8s-wn01 --ignore-daemonsets"
        f" --delete-emptydir-data (this node has no admin kubeconfig; {DRAIN_DELETES_EMPTYDIR})",
        "kubeadm upgrade node",
    ]
    for name, folder in folders.items():
        state = json.loads((folder / "root/var/lib/k8s-install/state.json").read_text())
        assert state["kubernetes"] == UPGRADE_TO and state["upgrade"]["completed"] is True, name
        assert (folder / "bundle" / TOP / "SHA256SUMS").is_file()  # the old bundle stays beside the new one

    offsets = log_sizes(folders)
    again = run()
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout
    assert task_hosts(again.stdout, "Copy the bundle tarball") == []
    for name, text in new_log_lines(folders, offsets).items():
        assert not [action for action in recorded_actions(text) if action.startswith(("kubeadm ", "operator: "))], name
