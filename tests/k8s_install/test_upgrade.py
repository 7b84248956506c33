"""`k8s-install.pyz upgrade` on simulated nodes (the real pyz under Python 3.9, a temporary root, the node's
address in its own network namespace). kubeadm, kubelet and kubectl cannot run here: the tests assert the
exact commands the upgrade would run, in kubeadm's order, and that re-runs and stopped runs converge."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator, List

import pytest
import yaml

from k8s_install.bundle_format.bundle import load_bundle
from k8s_install.cluster.calico import render_calico
from k8s_install.cluster.config import load_cluster_config
from k8s_install.steps.cluster import CALICO_APPLIED_KEY, CALICO_MANIFEST
from k8s_install.steps.upgrade import DRAIN_DELETES_EMPTYDIR, DRAIN_REFUSES_EMPTYDIR
from k8s_install.upgrade_record import apiserver_version, skew_problem
from tests.support.cluster_files import SUBNET, write_cluster
from tests.support.http_server import MirrorServer
from tests.support.node_bundle import build_node_bundle
from tests.support.sandbox import NetNamespace, add_kubelet_unit, make_el9_root
from tests.support.session_cache import shiv_root
from tests.support.upgrade_standin import recorded_actions, retarget

pytestmark = [
    pytest.mark.daemons,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2"),
]

TARGET = "1.30.14"
ADMIN = "kubectl --kubeconfig=/etc/kubernetes/admin.conf"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    mirror = MirrorServer().start()
    try:
        built = build_node_bundle(mirror, tmp_path_factory.mktemp("upgrade-bundle"))
    finally:
        mirror.stop()
    retarget(built, TARGET)
    yield built


def old_node(root: Path, control_plane: bool, state: dict) -> Path:
    """A node installed with 1.29.6: the installer's record and, on control planes, kubeadm's static pod."""
    make_el9_root(root)
    add_kubelet_unit(root)
    (root / "var/lib/k8s-install").mkdir(parents=True)
    (root / "var/lib/k8s-install/state.json").write_text(json.dumps({"kubernetes": "1.29.6", **state}))
    if control_plane:
        manifests = root / "etc/kubernetes/manifests"
        manifests.mkdir(parents=True)
        pod = {"kind": "Pod", "spec": {"containers": [{"image": "registry.k8s.io/kube-apiserver:v1.29.6"}]}}
        (manifests / "kube-apiserver.yaml").write_text(yaml.safe_dump(pod))
    return root


def installed_calico(root: Path, bundle: Path, site: Path, older: bool = False) -> bytes:
    """What the install left on the first control plane: the bundle's Calico manifest rendered for the cluster
    in /etc/k8s-install/calico.yaml and recorded in the state as applied; with `older`, one of another Calico
    release. Returns what the bundle renders."""
    config = load_cluster_config(site).config
    data = render_calico(load_bundle(bundle).artifact("calico-manifest").read_text(), config).encode()
    installed = data.replace(b"calico/node:", b"calico/node-older:") if older else data
    target = root / CALICO_MANIFEST.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(installed)
    state_file = root / "var/lib/k8s-install/state.json"
    state = json.loads(state_file.read_text())
    sha256 = hashlib.sha256(installed).hexdigest()
    state.setdefault("files", {})[CALICO_MANIFEST] = {"sha256": sha256, "backup": None}
    state[CALICO_APPLIED_KEY] = sha256
    state_file.write_text(json.dumps(state))
    return data


def upgrade(python39: str, bundle: Path, tmp_path: Path, root: Path, ip: str, *flags: str):
    return run_pyz(python39, bundle, tmp_path, root, ip, "upgrade", *flags)


def run_pyz(python39: str, bundle: Path, tmp_path: Path, root: Path, ip: str, *flags: str):
    site = tmp_path / "site"
    with NetNamespace() as namespace:
        namespace.add_address(f"{ip}/24")
        command = namespace.prefix() + [
            python39, str(bundle / "k8s-install.pyz"), *flags, "--root", str(root),
            "--config", str(site / "cluster.yaml"), "--secrets", str(site / "cluster-secrets.yaml"),
            "--allow-incomplete",  # the stand-in bundle lacks kubeadm's packages
        ]  # fmt: skip
        env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def actions(root: Path) -> List[str]:
    return recorded_actions((root / "var/log/k8s-install.log").read_text())


@pytest.fixture
def site(cluster_secrets, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    path = write_cluster(tmp_path / "site", cluster_secrets)
    document = yaml.safe_load(path.read_text())
    document["kubernetes_version"] = TARGET  # the operator's cluster.yaml, moved to the new release
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_first_control_plane_in_kubeadm_order_then_a_rerun_changes_nothing(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    root = old_node(tmp_path / "mn01", True, {})
    installed_calico(root, bundle, site)
    first = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.11", "--role", "control-plane", "--first", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "upgrade of k8s-mn01: 1.29.6 -> 1.30.14" in first.stdout
    assert "/etc/kubernetes/tmp/kubeadm-backup-etcd-<date>-<time>" in first.stdout
    assert actions(root) == [
        f"{ADMIN} get --raw /readyz",
        "kubeadm upgrade plan v1.30.14",
        "kubeadm upgrade apply v1.30.14 --yes",
        f"{ADMIN} drain k8s-mn01 --ignore-daemonsets --delete-emptydir-data",
        "systemctl restart containerd",
        "systemctl restart kubelet",
        f"{ADMIN} uncordon k8s-mn01",
        "systemctl restart buildkitd",
    ]
    state = json.loads((root / "var/lib/k8s-install/state.json").read_text())
    assert state["kubernetes"] == TARGET and state["upgrade"]["completed"] is True
    assert 'sandbox_image = "registry.k8s.io/pause:3.9"' in (root / "etc/containerd/config.toml").read_text()
    init = list(yaml.safe_load_all((root / "etc/k8s-install/kubeadm-init.yaml").read_text()))
    assert init[1]["kubernetesVersion"] == "v1.30.14" and init[0]["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    (root / "var/log/k8s-install.log").unlink()
    again = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.11", "--role", "control-plane", "--first", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1.30.14 -> 1.30.14" not in again.stdout  # the record keeps where the upgrade started
    assert "0 change(s)" in again.stdout
    assert actions(root) == [f"{ADMIN} get --raw /readyz"]


def test_other_control_plane_runs_upgrade_node(python39: str, bundle: Path, site: Path, tmp_path: Path) -> None:
    root = old_node(tmp_path / "mn02", True, {})
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.22", "--role", "control-plane", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert actions(root)[:4] == [
        f"{ADMIN} get --raw /readyz",
        "kubeadm upgrade node",
        f"{ADMIN} drain k8s-mn02 --ignore-daemonsets --delete-emptydir-data",
        "systemctl restart containerd",
    ]
    assert "kubeadm upgrade apply v1.30.14 --yes" not in actions(root)


def test_worker_is_drained_before_upgrade_node_with_the_commands_shown(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    root = old_node(tmp_path / "wn01", False, {})
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.100", "--role", "worker", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    drain = (
        "drain k8s-wn01 from a control plane before confirming: "
        "kubectl drain k8s-wn01 --ignore-daemonsets --delete-emptydir-data"
    )
    assert actions(root) == [
        "kubectl --kubeconfig=/etc/kubernetes/kubelet.conf get --raw /version",
        f"operator: {drain} (this node has no admin kubeconfig; {DRAIN_DELETES_EMPTYDIR})",
        "kubeadm upgrade node",
        "systemctl restart containerd",
        "systemctl restart kubelet",
        "operator: uncordon k8s-wn01 from a control plane: kubectl uncordon k8s-wn01",
        "systemctl restart buildkitd",
    ]
    assert "kubectl drain k8s-wn01 --ignore-daemonsets --delete-emptydir-data" in result.stdout


def test_a_stopped_upgrade_goes_on_from_the_next_action(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    stopped = {"upgrade": {"from": "1.29.6", "to": TARGET, "done": ["kubeadm-upgrade-plan", "kubeadm-upgrade-apply"]}}
    root = old_node(tmp_path / "mn01", True, stopped)
    installed_calico(root, bundle, site)
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.11", "--role", "control-plane", "--first", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert actions(root)[:2] == [
        f"{ADMIN} get --raw /readyz",
        f"{ADMIN} drain k8s-mn01 --ignore-daemonsets --delete-emptydir-data",
    ]
    assert not any(action.startswith("kubeadm ") for action in actions(root))


def test_upgrade_plan_shows_the_steps_and_changes_nothing(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    root = old_node(tmp_path / "mn01", True, {})
    before = (root / "var/lib/k8s-install/state.json").read_text()
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.11", "plan", "--role", "control-plane", "--first")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would kubeadm upgrade apply v1.30.14 --yes" in result.stdout
    drain = f"would {ADMIN} drain k8s-mn01 --ignore-daemonsets --delete-emptydir-data ({DRAIN_DELETES_EMPTYDIR})"
    assert drain in result.stdout
    assert "[kubelet-restart] kubelet restarted on the new version: 1 to change" in result.stdout
    assert "nothing was changed" in result.stdout
    assert (root / "var/lib/k8s-install/state.json").read_text() == before
    assert not (root / "etc/containerd/config.toml").exists()


def test_no_delete_emptydir_data_drains_as_kubectl_does_by_default(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    """The operator who keeps emptyDir data: the drain then stops at such a pod, and the plan says so."""
    root = old_node(tmp_path / "mn02", True, {})
    flags = ("--role", "control-plane", "--no-delete-emptydir-data")
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.22", "plan", *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"would {ADMIN} drain k8s-mn02 --ignore-daemonsets ({DRAIN_REFUSES_EMPTYDIR})" in result.stdout
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.22", *flags, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{ADMIN} drain k8s-mn02 --ignore-daemonsets" in actions(root)


def test_skipping_a_minor_is_refused_in_one_line(python39: str, bundle: Path, site: Path, tmp_path: Path) -> None:
    root = old_node(tmp_path / "mn01", True, {"kubernetes": "1.28.9"})
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.11", "--role", "control-plane", "--first", "--yes")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "k8s-install.pyz: error: 1.28.9 -> 1.30.14 skips a minor version: kubeadm upgrades one minor at a time; "
        "upgrade every node to a 1.29 bundle first"
    )
    assert not (root / "etc/containerd/config.toml").exists()


@pytest.mark.parametrize(
    "installed, target, problem",
    [
        ("1.29.6", "1.29.15", None),
        ("1.29.15", "1.30.14", None),
        ("1.30.14", "1.31.14", None),
        ("1.30.14", "1.30.14", None),
        ("1.29.6", "1.31.14", "skips a minor version"),
        ("1.30.14", "1.29.15", "downgrades are not supported"),
    ],
)
def test_skew_rules(installed: str, target: str, problem) -> None:  # type: ignore[no-untyped-def]
    found = skew_problem(installed, target)
    assert (found is None) if problem is None else (problem in found)


def test_apiserver_version_from_the_static_pod() -> None:
    pod = {"spec": {"containers": [{"image": "registry.k8s.io/kube-apiserver:v1.30.14"}]}}
    assert apiserver_version(yaml.safe_dump(pod)) == "1.30.14"
    assert apiserver_version("not: [yaml") is None


def test_a_node_installed_with_the_release_has_nothing_to_upgrade(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    root = old_node(tmp_path / "wn01", False, {"kubernetes": TARGET})
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.100", "--role", "worker", "--yes")
    assert result.returncode == 0, result.stderr
    assert "k8s-wn01 already runs 1.30.14: nothing to upgrade" in result.stdout
    assert not (root / "var/log/k8s-install.log").exists()  # nothing was run, not even the preflight probe


def test_install_from_a_newer_bundle_on_an_installed_node_points_to_upgrade(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    """Without the refusal the install would put the new packages in place without kubeadm's upgrade and record
    the new release, after which `upgrade` would find nothing to do."""
    root = old_node(tmp_path / "wn01", False, {})
    before = (root / "var/lib/k8s-install/state.json").read_text()
    for command in (("--yes",), ("plan",)):
        result = run_pyz(python39, bundle, tmp_path, root, f"{SUBNET}.100", *command, "--role", "worker")
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.strip() == (
            "k8s-install.pyz: error: this node runs Kubernetes 1.29.6 (installed by k8s-install) and the bundle "
            "holds 1.30.14: move it with `k8s-install.pyz upgrade` and the same arguments, not with an install"
        )
    assert (root / "var/lib/k8s-install/state.json").read_text() == before
    assert not (root / "etc/containerd/config.toml").exists()


def test_a_changed_calico_manifest_is_applied_right_after_upgrade_apply(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    """A release carrying another Calico: the first control plane applies it after `kubeadm upgrade apply`
    (kubeadm's order: then the CNI plugin), and the other nodes never do."""
    root = old_node(tmp_path / "mn01", True, {})
    new = installed_calico(root, bundle, site, older=True)
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.11", "--role", "control-plane", "--first", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert actions(root)[2:5] == [
        "kubeadm upgrade apply v1.30.14 --yes",
        f"{ADMIN} apply -f {CALICO_MANIFEST}",
        f"{ADMIN} drain k8s-mn01 --ignore-daemonsets --delete-emptydir-data",
    ]
    assert (root / CALICO_MANIFEST.lstrip("/")).read_bytes() == new
    (root / "var/log/k8s-install.log").unlink()  # the apply failed after the file was written: a re-run applies
    again = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.11", "--role", "control-plane", "--first", "--yes")
    assert again.returncode == 0 and f"{ADMIN} apply -f {CALICO_MANIFEST}" in actions(root), again.stdout
    other = old_node(tmp_path / "mn02", True, {})
    result = upgrade(python39, bundle, tmp_path, other, f"{SUBNET}.22", "--role", "control-plane", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(" apply -f " in action for action in actions(other))


def test_binaries_the_new_runtime_no_longer_ships_are_retired(
    python39: str, bundle: Path, site: Path, tmp_path: Path
) -> None:
    """containerd 1.6 installs containerd-shim and containerd-shim-runc-v1, which 1.7 and 2.x no longer ship:
    after the runtime upgrade the installer's copy is gone, and a binary it had replaced (here a CNI plugin
    of the kubernetes-cni RPM) is put back as it was; an operator's own file beside them is left alone."""
    shim, plugin, own = "/usr/local/bin/containerd-shim-runc-v1", "/opt/cni/bin/old-plugin", "/usr/local/bin/mine"
    backup = f"/var/lib/k8s-install/backups{plugin}.orig"
    files = {
        shim: {"sha256": hashlib.sha256(b"shim v1").hexdigest(), "backup": None},
        plugin: {"sha256": hashlib.sha256(b"installer's plugin").hexdigest(), "backup": backup},
    }
    root = old_node(tmp_path / "wn01", False, {"files": files})
    for path, data in ((shim, b"shim v1"), (plugin, b"installer's plugin"), (backup, b"rpm's plugin"), (own, b"x")):
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_bytes(data)
    result = upgrade(python39, bundle, tmp_path, root, f"{SUBNET}.100", "--role", "worker", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"retire {shim} (not in this bundle's runtime)" in result.stdout
    assert not (root / shim.lstrip("/")).exists()
    assert (root / plugin.lstrip("/")).read_bytes() == b"rpm's plugin"
    assert (root / own.lstrip("/")).read_bytes() == b"x"
    state = json.loads((root / "var/lib/k8s-install/state.json").read_text())
    assert shim not in state["files"] and plugin not in state["files"]
    assert (root / "usr/local/bin/containerd").exists()  # the bundle's runtime is in place
