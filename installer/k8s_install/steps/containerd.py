"""containerd, buildkitd, nerdctl and crictl configuration, and the units that run them."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

from k8s_install.engine import Change, Node, Step, register_readiness
from k8s_install.node.distro import node_distro
from k8s_install.render import render
from k8s_install.steps.files import HEADER, plan_file
from k8s_install.steps.services import plan_enabled

if TYPE_CHECKING:
    from k8s_install.steps.registry import RegistryAuth

containerd_config_path = "/etc/containerd/config.toml"
containerd_unit_path = "/usr/local/lib/systemd/system/containerd.service"
containerd_root_dir = "/var/lib/containerd"
containerd_state_dir = "/run/containerd"
containerd_address = "/run/containerd/containerd.sock"
containerd_certs_dir = "/etc/containerd/certs.d"
buildkitd_unit_path = "/usr/local/lib/systemd/system/buildkitd.service"
buildkitd_config_path = "/etc/buildkit/buildkitd.toml"
nerdctl_config_path = "/etc/nerdctl/nerdctl.toml"
crictl_config_path = "/etc/crictl.yaml"
CAP_SYS_RESOURCE = 24  # linux/capability.h


def may_lower_oom_score_adj(node: Node) -> bool:
    """Whether this machine's processes may keep CAP_SYS_RESOURCE (its bounding set, /proc/self/status CapBnd).
    A node that is itself a container (LXC, systemd-nspawn, ...) may lack it; runc then cannot give a
    container an oom_score_adj below containerd's own and every pod fails with "runc create failed: ... can't
    get final child's PID from pipe: EOF", unless containerd's CRI plugin sets restrict_oom_score_adj. On a
    --root run (not this machine) or when the file cannot be read: True (a normal host)."""
    if not node.host.live:
        return True
    try:
        status = node.host.path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return True
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            try:
                return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
            except (IndexError, ValueError):
                return True
    return True


def containerd_config(node: Node, registry_auth: Optional[RegistryAuth] = None) -> str:
    """config.toml; with `registry_auth` (the site registry's pull account) it holds a secret: write it 0600."""
    artifact = node.bundle.manifest.artifact("containerd")
    version = (artifact.version or "") if artifact is not None else ""
    return render(
        containerd_config_template(version),
        header=HEADER,
        containerd_version=version,
        root_dir=containerd_root_dir,
        state_dir=containerd_state_dir,
        address=containerd_address,
        sandbox_image=node.bundle.pause_image(),
        runc_path="/usr/local/sbin/runc",
        certs_dir=containerd_certs_dir,
        restrict_oom_score_adj=not may_lower_oom_score_adj(node),
        registry_auth=registry_auth,
    )


def containerd_config_template(version: str) -> str:
    """containerd 2.x reads config version 3 (plugin ids io.containerd.cri.v1.*, pinned_images); 1.x reads 2."""
    major = version.lstrip("v").split(".", 1)[0]
    return "containerd-config-v3.toml.j2" if major.isdigit() and int(major) >= 2 else "containerd-config.toml.j2"


def containerd_answers(node: Node) -> Optional[str]:
    """Readiness after a restart: the socket answers `ctr version`."""
    result = node.host.run(["ctr", "--address", containerd_address, "version"], check=False, timeout=10)
    return None if result.returncode == 0 else "ctr version gets no answer from containerd"


register_readiness("containerd", containerd_answers)


class ContainerdConfig(Step):
    name = "containerd"
    title = "containerd, buildkitd, nerdctl and crictl configuration"

    def plan(self, node: Node) -> List[Change]:
        from k8s_install.steps.registry import registry_auth

        values = {"header": HEADER, "address": containerd_address}
        auth = registry_auth(node.settings)
        config = containerd_config(node, auth).encode()
        changes = plan_file(node, containerd_config_path, config, 0o600 if auth else 0o644, ("containerd",))
        units = node_distro(node.host).containerd_unit_dir  # the same on every distribution today
        changes += plan_file(
            node, f"{units}/containerd.service", render("containerd.service.j2", **values).encode(), 0o644,
            ("containerd",),
        )  # fmt: skip
        changes += plan_file(
            node, f"{units}/buildkitd.service", render("buildkitd.service.j2", **values).encode(), 0o644,
            ("buildkitd",),
        )  # fmt: skip
        changes += plan_file(
            node, buildkitd_config_path, render("buildkitd.toml.j2", **values).encode(), 0o644, ("buildkitd",)
        )
        changes += plan_file(node, nerdctl_config_path, render("nerdctl.toml.j2", **values).encode())
        changes += plan_file(node, crictl_config_path, render("crictl.yaml.j2", **values).encode())
        certs = node.host.path(containerd_certs_dir)
        if not certs.is_dir():
            changes.append(Change(f"create {containerd_certs_dir}/", lambda: certs.mkdir(parents=True, mode=0o755)))
        return changes


class RuntimeServices(Step):
    name = "runtime-services"
    title = "containerd and buildkitd enabled"

    def plan(self, node: Node) -> List[Change]:
        return plan_enabled(node, "containerd.service") + plan_enabled(node, "buildkitd.service")
