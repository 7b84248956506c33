"""The node side: the bundle's own repository installs with the real dnf into an --installroot, with no
other repository and no network (dnf runs in a fresh network namespace), and a second run is a no-op."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

from k8s_install.bundle_format.bundle import load_bundle
from k8s_install.errors import InstallError
from k8s_install.packages.dnf import dnf_install_command, install_packages, plan_packages
from tests.conftest import StandInRelease
from tests.support.rpm_graph import ASSUMED, MINIMAL_X86_64, RpmGraph
from tests.support.rpm_node import OfflineRunner, build_and_unpack, installed, minimal_node
from tests.support.rpm_release import add_rpm_section

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("dnf", "rpm", "unshare")), reason="needs dnf, rpm and unshare"
    ),
]


@pytest.fixture
def bundle(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> Path:
    add_rpm_section(release, rpm_graph, name="install")
    return build_and_unpack(release, tmp_path)


def test_bundle_repository_installs_offline_and_second_run_changes_nothing(
    bundle: Path, rpm_graph: RpmGraph, tmp_path: Path
) -> None:
    root = minimal_node(tmp_path / "root", rpm_graph)
    planned = plan_packages(load_bundle(bundle), root)
    assert [c.describe() for c in planned] == [
        "install kubeadm-0:1.29.6-150500.1.1.x86_64", "install kubelet-0:1.29.6-150500.1.1.x86_64",
        "install kubectl-0:1.29.6-150500.1.1.x86_64", "install chrony-0:4.5-1.noarch",
    ]  # fmt: skip
    runner = OfflineRunner()
    changes = install_packages(load_bundle(bundle), root, gpgcheck=False, releasever="9", run=runner)
    assert changes == planned and runner.ran("dnf") == 1
    now = installed(root)
    assert "kubeadm-0:1.29.6-150500.1.1.x86_64" in now and "ethtool-2:6.2-1.noarch" in now
    assert {n.rsplit("-", 2)[0] for n in now} == set(MINIMAL_X86_64) | set(ASSUMED)

    again = OfflineRunner()
    assert install_packages(load_bundle(bundle), root, gpgcheck=False, releasever="9", run=again) == []
    assert again.ran("dnf") == 0 and installed(root) == now


def test_dnf_failure_names_what_is_missing(bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "bare"
    root.mkdir()  # nothing installed: glibc, util-linux, ... are assumed but absent
    with pytest.raises(InstallError) as error:
        install_packages(load_bundle(bundle), root, gpgcheck=False, releasever="9", run=OfflineRunner())
    message = str(error.value)
    assert message.startswith("dnf could not install kubeadm-0:1.29.6-150500.1.1.x86_64")
    assert "nothing provides" in message and "\n" not in message


def test_missing_rpm_file_is_reported_before_dnf_runs(bundle: Path, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    root = minimal_node(tmp_path / "root", rpm_graph)
    (bundle / "rpms/Packages/kubectl-1.29.6-150500.1.1.x86_64.rpm").unlink()
    runner = OfflineRunner()
    with pytest.raises(InstallError, match=r"kubectl-0:1.29.6-150500.1.1.x86_64 is not in the bundle"):
        install_packages(load_bundle(bundle), root, gpgcheck=False, releasever="9", run=runner)
    assert runner.ran("dnf") == 0


def test_gpgcheck_stays_on_unless_turned_off(bundle: Path) -> None:
    with pytest.raises(InstallError, match="carries no repository keys"):
        install_packages(load_bundle(bundle), Path("/nonexistent-root"), run=_not_installed)
    changes = plan_packages(load_bundle(bundle), Path("/nonexistent-root"), run=_not_installed)
    command = dnf_install_command(load_bundle(bundle), changes, gpgcheck=False)
    assert command[:6] == ["dnf", "install", "-y", "--disablerepo=*", "--setopt=reposdir=/dev/null",
                           f"--repofrompath=k8s-bundle,{bundle.resolve()}/rpms"]  # fmt: skip
    assert "--setopt=k8s-bundle.gpgcheck=0" in command
    assert command[-5:] == ["--", "kubeadm-0:1.29.6-150500.1.1.x86_64", "kubelet-0:1.29.6-150500.1.1.x86_64",
                            "kubectl-0:1.29.6-150500.1.1.x86_64", "chrony-0:4.5-1.noarch"]  # fmt: skip


def _not_installed(command: List[str], **kwargs):  # type: ignore[no-untyped-def]
    names = command[command.index("--qf") + 2 :]
    stdout = "".join(f"package {name} is not installed\n" for name in names)
    return subprocess.CompletedProcess(command, len(names), stdout, "")
