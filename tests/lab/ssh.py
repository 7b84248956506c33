"""SSH into lab nodes, as an admin machine inside the air gap would: each node runs the root's real sshd as
its own `ssh.service` (Debian's name; EL9's is sshd.service) with a host key of its own, made here, and
trusts one client key made here (/root/.ssh/authorized_keys). The admin is one more network namespace on
the lab's bridge (the bridge lives in a namespace of the lab's own), so ansible-playbook reaches the nodes
only on lab addresses. The host keys are pinned in a known_hosts file: host key checking stays on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.lab.node import LabCluster, LabNode
from tests.support.module_bytecode import sshd_set_env, write_hook
from tests.support.ssh_nodes import SshNodes, _keygen

NODE_SSH_UNIT = "ssh.service"
# the bytecode cache of the modules Ansible sends (tests/support/module_bytecode.py), set by an sshd drop-in
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/k8s-test-module-bytecode.conf"
MODULE_BYTECODE_LIB = "/usr/local/lib/k8s-test-module-bytecode"
MODULE_BYTECODE_CACHE = "/var/cache/k8s-test-module-bytecode"


def lab_ssh(nodes: LabCluster, work: Path, admin_address_cidr: str) -> SshNodes:
    """The admin namespace on `nodes`' bridge, and sshd on every node, reachable from it with pinned keys."""
    ssh = SshNodes(nodes.lab, work)
    ssh.remote_tmp = None  # Ansible's default on the node, ~/.ansible/tmp, as an operator's run would use
    ssh.add_admin("admin", admin_address_cidr)
    for name, node in nodes.nodes.items():
        give_sshd(node, ssh)
        ssh.addresses[name] = node.address
    return ssh


def give_sshd(node: LabNode, ssh: SshNodes) -> None:
    """A host key of the node's own (the cached root's keys are shared by every node made from it), the
    client key authorized for root, the sessions' bytecode cache of Ansible's modules (a drop-in), sshd
    restarted by the node's systemd and answering on port 22."""
    folder = node.path("/etc/ssh")
    for old in folder.glob("ssh_host_*"):
        old.unlink()
    host_key = folder / "ssh_host_ed25519_key"
    _keygen(host_key)
    dot_ssh = node.path("/root/.ssh")
    dot_ssh.mkdir(mode=0o700, exist_ok=True)
    authorized = dot_ssh / "authorized_keys"
    authorized.write_text(ssh.client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    write_hook(node.path(MODULE_BYTECODE_LIB), node.path(MODULE_BYTECODE_CACHE))
    node.path(SSHD_DROP_IN).write_text(f"SetEnv {sshd_set_env(MODULE_BYTECODE_LIB, MODULE_BYTECODE_CACHE)}\n")
    node.run(["systemctl", "restart", NODE_SSH_UNIT])
    listening = node.run(["ss", "-Hltn", "sport = :22"]).stdout
    if not listening.strip():
        status = node.run(["systemctl", "status", "--no-pager", NODE_SSH_UNIT], check=False)
        raise AssertionError(f"{node.name}: sshd does not listen on port 22: {status.stdout}")
    ssh.pin_host_key(node.address, host_key.with_suffix(".pub"))


def ssh_command(ssh: SshNodes, address: str, *argv: str) -> subprocess.CompletedProcess:
    """One command over SSH from the admin namespace (host key checked)."""
    options = ["-o", f"UserKnownHostsFile={ssh.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", f"IdentityFile={ssh.client_key}", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]  # fmt: skip
    return subprocess.run(
        ["ip", "netns", "exec", ssh.lab.hosts[ssh.admin], "ssh", *options, f"root@{address}", *argv],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
