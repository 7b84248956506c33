"""A full disk, live on a lab node (issue 24; docs/reliability.md): the worker's `/var/lib/containerd`, then its
`/etc`, on a small tmpfs mounted inside the node's own mount namespace (never on the host), filled, then
`./k8s-install.pyz` run as a user would. Each case prints one `FAULT ...` line (tests/support/faults.py).

The node's containerd root is a bind of a host folder (tests/lab/node.py); the tmpfs is mounted over it in the
node's namespace only, while containerd is stopped, and unmounted at the end, so the node is left as it was:
its own images back in containerd and the next run changes nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.lab.cluster import BUNDLE_DIR, LiveCluster
from tests.lab.node import LabNode
from tests.support.faults import half_applied_files, report_fault
from tests.support.sandbox import ORIGINAL_HOSTS

WORKER = "k8s-wn01"
CONTAINERD_ROOT = "/var/lib/containerd"
TMPFS_SIZE = "64M"


@pytest.fixture(scope="module")
def installed(live: LiveCluster) -> LiveCluster:
    return live.install_every_role()


def seen_from_host(node: LabNode, absolute: str) -> Path:
    """A path as the node's own processes see it (through its mount namespace, so also inside the tmpfs the
    test mounts there), from the host."""
    return Path(f"/proc/{node.leader}/root") / absolute.lstrip("/")


def mounted_on(node: LabNode, absolute: str) -> str:
    """The filesystem type mounted at `absolute` in the node's namespace ("" when nothing is)."""
    shown = node.run(["findmnt", "-n", "-o", "FSTYPE", "--mountpoint", absolute], check=False).stdout
    return shown.strip().splitlines()[-1] if shown.strip() else ""


@pytest.fixture
def small_containerd_root(installed: LiveCluster) -> Iterator[Path]:
    """The worker's containerd root on a fresh tmpfs of its mount namespace, containerd running on it; at the
    end containerd is stopped, the tmpfs unmounted (its bind of the host folder, with the images, shows again)
    and containerd started again."""
    node = installed[WORKER]
    node.run(["systemctl", "stop", "containerd"])
    before = mounted_on(node, CONTAINERD_ROOT)
    node.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0711", "tmpfs", CONTAINERD_ROOT])
    try:
        assert mounted_on(node, CONTAINERD_ROOT) == "tmpfs"
        node.run(["systemctl", "start", "containerd"])
        yield seen_from_host(node, CONTAINERD_ROOT)
    finally:
        node.run(["systemctl", "stop", "containerd"], check=False)
        if node.run(["umount", CONTAINERD_ROOT], check=False).returncode != 0:
            node.run(["umount", "-l", CONTAINERD_ROOT], check=False)
        node.run(["systemctl", "start", "containerd"], check=False)
    assert mounted_on(node, CONTAINERD_ROOT) == before, "the tmpfs is still mounted on the worker"


def fill(folder: Path, leave: int) -> Path:
    """Take all the space of folder's filesystem but `leave` bytes, in one file (the operator's to delete)."""
    filler = folder / "filler.bin"
    free = shutil.disk_usage(str(folder)).free
    with open(filler, "wb") as stream:
        stream.write(b"\0" * max(free - leave, 0))
    return filler


def images_check(node: LabNode) -> List[str]:
    """`ctr images check` of k8s.io on the node: one line per image with its status (complete, unpacked)."""
    listed = node.run(["ctr", "-n", "k8s.io", "images", "check"], check=False)
    return listed.stdout.splitlines()[1:]


def test_a_live_full_containerd_filesystem_is_refused_in_preflight_stops_the_import_and_converges_once_freed(
    installed: LiveCluster, small_containerd_root: Path, record_property
) -> None:  # type: ignore[no-untyped-def]
    """The worker's containerd root on a 64 MiB tmpfs filled to a third of what the images take: preflight names
    /var/lib/containerd with the space needed and available, before any change; with `--ignore-preflight disk`
    the import stops with one line and containerd holds no half-imported image; once the filler is deleted a
    re-run imports the images, and the next changes nothing."""
    node = installed[WORKER]
    blobs = sum(path.stat().st_size for path in node.path(f"{BUNDLE_DIR}/images/blobs/sha256").iterdir())
    filler = fill(small_containerd_root, leave=blobs // 3)
    hosts_before = node.path("/etc/hosts").read_text()

    refused = installed.install(WORKER)
    assert refused.result.returncode == 1, refused.output
    disk_line = next(line.strip() for line in refused.result.stdout.splitlines() if "preflight disk:" in line)
    assert f"preflight disk: {CONTAINERD_ROOT}: needs " in disk_line and "(the images " in disk_line, disk_line
    assert "available: free space there or grow the filesystem, then run again" in disk_line, disk_line
    assert images_check(node) == [], "preflight changed containerd"
    assert node.path("/etc/hosts").read_text() == hosts_before

    stopped = installed.install(WORKER, "install", "--ignore-preflight", "disk")
    assert stopped.result.returncode == 1, stopped.output
    lines = stopped.result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"{CONTAINERD_ROOT}: no space left on its filesystem while importing" in lines[0], lines
    assert "free space there, then run again" in lines[0], lines
    print(disk_line, lines[0], sep="\n")  # the two lines the operator sees
    half_imported = [line for line in images_check(node) if "complete" not in line or "true" not in line]

    filler.unlink()  # the operator frees space
    rerun = installed.install(WORKER)
    assert rerun.result.returncode == 0, rerun.output
    assert "image(s) into containerd k8s.io" in rerun.result.stdout, rerun.output
    final = installed.install(WORKER)
    assert final.result.returncode == 0 and "done: 0 change(s) applied" in final.output, final.output
    present = images_check(node)
    assert present and all("complete" in line and "true" in line for line in present), present

    lost = 0 if node.path("/etc/hosts").read_text().startswith(ORIGINAL_HOSTS) else 1
    report_fault(record_property, "live: full disk, containerd's root during image import", True, lost,
                 len(half_imported))  # fmt: skip
    assert half_imported == [] and lost == 0


@pytest.fixture
def small_etc(installed: LiveCluster) -> Iterator[Path]:
    """The worker's /etc on a 32 MiB tmpfs of its mount namespace holding a copy of its /etc (copied from the
    host through the overlay, so no program of the node runs while /etc is empty); unmounted at the end, so
    the node's own /etc, which the copy never touched, shows again."""
    node = installed[WORKER]
    before = mounted_on(node, "/etc")
    node.run(["mount", "-t", "tmpfs", "-o", "size=32M,mode=0755", "tmpfs", "/etc"])
    try:
        etc = seen_from_host(node, "/etc")
        subprocess.run(["cp", "-a", f"{node.path('/etc')}/.", str(etc)], check=True)
        assert mounted_on(node, "/etc") == "tmpfs"
        yield etc
    finally:
        if node.run(["umount", "/etc"], check=False).returncode != 0:
            node.run(["umount", "-l", "/etc"], check=False)
    assert mounted_on(node, "/etc") == before, "the tmpfs is still mounted on the worker's /etc"


def test_a_live_full_etc_stops_a_file_write_with_one_line_and_nothing_half_written(
    installed: LiveCluster, small_etc: Path, record_property
) -> None:  # type: ignore[no-untyped-def]
    """The worker's /etc full (a managed file, /etc/crictl.yaml, deleted so that the run has one to write back):
    preflight names /etc; with the check ignored the write stops the run with one line naming the file and the
    space; no temporary left, nothing torn, the state readable; once space is freed a re-run writes it back and
    the next changes nothing."""
    node = installed[WORKER]
    wanted = (small_etc / "crictl.yaml").read_bytes()
    (small_etc / "crictl.yaml").unlink()
    filler = fill(small_etc, leave=0)

    refused = installed.install(WORKER)
    assert refused.result.returncode == 1, refused.output
    disk_line = next(line.strip() for line in refused.result.stdout.splitlines() if "preflight disk:" in line)
    assert "preflight disk: /etc: needs " in disk_line and "(the configuration " in disk_line, disk_line
    assert not (small_etc / "crictl.yaml").exists(), "preflight wrote a file"

    stopped = installed.install(WORKER, "install", "--ignore-preflight", "disk")
    assert stopped.result.returncode == 1, stopped.output
    lines = stopped.result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "/etc/crictl.yaml: no space left on its filesystem" in lines[0], lines
    assert "nothing was half-written: free space there, then run again" in lines[0], lines
    print(disk_line, lines[0], sep="\n")
    torn = half_applied_files(seen_from_host(node, "/"), ("etc", "var/lib/k8s-install"))
    assert not (small_etc / "crictl.yaml").exists(), "a torn /etc/crictl.yaml"

    filler.unlink()  # the operator frees space
    rerun = installed.install(WORKER)
    assert rerun.result.returncode == 0, rerun.output
    assert (small_etc / "crictl.yaml").read_bytes() == wanted
    final = installed.install(WORKER)
    assert final.result.returncode == 0 and "done: 0 change(s) applied" in final.output, final.output

    lost = 0 if (small_etc / "hosts").read_text().startswith(ORIGINAL_HOSTS) else 1
    report_fault(record_property, "live: full disk, /etc during a file write", True, lost, len(torn))
    assert torn == [] and lost == 0


def test_the_worker_is_back_on_its_own_containerd_root_and_changes_nothing(installed: LiveCluster) -> None:
    """After the tmpfs filesystems are gone, containerd runs on the node's own root again with the images it had,
    /etc is the node's own, and a run changes nothing: the node is as the other lab modules expect."""
    node = installed[WORKER]
    assert mounted_on(node, CONTAINERD_ROOT) != "tmpfs" and mounted_on(node, "/etc") != "tmpfs"
    assert node.active("containerd")
    present = images_check(node)
    assert present and all("complete" in line and "true" in line for line in present), present
    after = installed.install(WORKER)
    assert after.result.returncode == 0 and "done: 0 change(s) applied" in after.output, after.output
