"""dnf's own words for a full filesystem become one line naming it and the space dnf asked for."""

from __future__ import annotations

from pathlib import Path

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.packages.dnf import PackageChange, no_space_for_packages

DNF_DISK_CHECK = """Running transaction test
Error: Transaction test error:
  installing package kubelet-1.29.6-150500.1.1.x86_64 needs 5MB more space on the /usr filesystem

Error Summary
-------------
Disk Requirements:
   At least 5MB more space needed on the /usr filesystem.
"""


def test_dnf_s_disk_check_names_the_filesystem_under_the_root(tmp_path: Path) -> None:
    (tmp_path / "usr").mkdir()
    bundle = Bundle(tmp_path, BundleManifest("1.29.6", "rocky9", "amd64"))
    changes = [PackageChange("kubelet", "kubelet-0:1.29.6-150500.1.1.x86_64", None)]
    line = no_space_for_packages(bundle, changes, tmp_path, DNF_DISK_CHECK)
    assert line.startswith(f"{tmp_path}/usr: no space left on its filesystem for 1 package(s) (dnf needs 5MB more ")
    assert line.endswith(" available): free space there, then run again") and "\n" not in line
