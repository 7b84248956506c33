"""`make demo` runs once end to end: stand-in servers, a complete bundle built, verified and inspected, five
nodes installed in --root sandboxes, their status; with --keep the folder stays, the daemons and namespaces
are gone, and the commands the demo prints at the end work on what it kept."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.demo import NODES, missing_prerequisites, release_images

pytestmark = [pytest.mark.daemons, pytest.mark.root]


def test_demo_runs_end_to_end_and_its_next_steps_work_after_it() -> None:
    missing = missing_prerequisites()
    if missing and os.environ.get("CI") != "true":
        pytest.skip(f"the demo needs {', '.join(missing)}")
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    result = subprocess.run([sys.executable, "-m", "tests.demo", "--keep"], cwd=REPO, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    kept = re.search(r"^kept (\S+):", result.stdout, re.M)
    try:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        out = result.stdout
        assert "nothing here comes from the internet" in out and "stand-in" in out
        assert "--allow-incomplete" not in out.split("3/6 bundler build", 1)[1].split("\n", 2)[1]  # the command
        assert "incomplete bundle" not in out and "The bundle is complete" in out
        assert "real Kubernetes artifacts cannot be downloaded" in out
        assert "bundle OK:" in out and "signer: none (unsigned)" in out
        assert "plan: " in out and "change(s) pending; nothing was changed" in out
        assert out.count("done: ") == len(NODES) + 1
        assert "done: 0 change(s) applied" in out  # the second run on the first control plane
        assert "plan: 0 change(s) pending; nothing was changed" in out  # and its plan agrees: nothing pending
        assert "would enable" not in out.rsplit("done: 0 change(s) applied", 1)[1]
        images = len(release_images()) + 2  # kubeadm's and Calico's two
        for node in NODES[1:]:
            assert f"{node['name']}: last run completed: yes; {images} of {images} images in containerd" in out
        assert "kubeadm init --config /etc/k8s-install/kubeadm-init.yaml --upload-certs" in out
        after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
        assert not {name for name in after - before if name.startswith("k8sdemo")}
        assert kept, out[-2000:]
        steps = out[kept.start() :].split("these work:\n", 1)[1].split("remove it with:", 1)[0]
        commands = [line.strip() for line in steps.splitlines() if line.strip()]
        assert [c.split()[1] for c in commands[:2]] == ["inspect", "verify"], commands
        for command in commands:
            if command.startswith("less "):
                assert Path(command.split()[1]).is_file()
                continue
            ran = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=300)
            assert ran.returncode == 0, f"{command}: {ran.stdout[-2000:]}{ran.stderr[-2000:]}"
    finally:
        if kept:
            shutil.rmtree(kept.group(1), ignore_errors=True)
