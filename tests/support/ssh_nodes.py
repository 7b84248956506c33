"""Nodes reachable over SSH: network namespaces on one bridge (tests/support/netns.py), each running Debian's
real sshd (`sshd -D -f CONFIG`) on its own address with its own host key, and one admin namespace from which
ansible-playbook connects with a key generated here. Host keys are pinned in a known_hosts file: host key
checking stays on.

ansible-playbook keeps one SSH connection per node open between its tasks and its runs (ControlMaster, as
Ansible's own default does): a new connection per task cost a key exchange and an sshd start, about a fifth
of the CPU of a playbook run here. `close()` ends those connections (`ssh -O exit` on each control socket). Its
ansible.cfg (ANSIBLE_CONFIG) sets one thing: the controller checks for finished tasks every 20 ms instead of
every millisecond, which otherwise takes a few percent of a core for as long as a node's installer runs.

All namespaces share this machine's filesystem, so every node is given its own folders by the caller. The
nodes' root is this machine's root, whose ~/.bashrc is a developer's (pyenv init: 0.15 CPU-seconds per command,
about 150 over the Ansible tests); bash, started by sshd for each command, reads it unless it is a nested
shell, so sshd sets SHLVL=1 in its sessions: a node runs each command as a fresh EL9 root account does.
The sessions also keep the bytecode of the modules Ansible sends (tests/support/module_bytecode.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from tests.support.module_bytecode import sshd_set_env, write_hook
from tests.support.netns import Lab, wait_for

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without its privilege separation folder

ANSIBLE_CFG = """\
[defaults]
internal_poll_interval = 0.02
"""

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
Subsystem sftp internal-sftp
ClientAliveInterval 2
ClientAliveCountMax 3
SetEnv SHLVL=1 {module_bytecode}
"""


def ansible_playbook() -> Optional[str]:
    """$ANSIBLE_PLAYBOOK (another ansible-core, e.g. in a venv), else the one beside the Python running the
    tests (pip's ansible-core), else one on PATH."""
    if os.environ.get("ANSIBLE_PLAYBOOK"):
        return os.environ["ANSIBLE_PLAYBOOK"]
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.exists() else shutil.which("ansible-playbook")


class SshNodes:
    def __init__(self, lab: Lab, work: Path) -> None:
        self.lab = lab
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self.client_key = work / "id_ed25519"
        _keygen(self.client_key)
        self.authorized_keys = work / "authorized_keys"
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.authorized_keys.chmod(0o600)
        self.known_hosts = work / "known_hosts"
        self.known_hosts.write_text("")
        self.addresses: Dict[str, str] = {}
        self.remote_tmp: Optional[str] = str(work / "remote-tmp")  # None: Ansible's default (~/.ansible/tmp)
        self.daemons: List[subprocess.Popen] = []
        # the control sockets of the kept connections: a short path (a socket's path has at most 107 bytes)
        self.control_dir = Path(tempfile.mkdtemp(prefix="k8s-ssh-cp-"))
        lib, cache = work / "module-bytecode" / "lib", work / "module-bytecode" / "cache"
        write_hook(lib, cache)
        self.module_bytecode = sshd_set_env(str(lib), str(cache))  # the nodes share this machine's filesystem
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)

    def add_admin(self, short: str, address_cidr: str) -> None:
        self.lab.add_host(short, address_cidr)
        self.admin = short

    def add_node(self, short: str, address_cidr: str) -> None:
        """A namespace with sshd listening on its address."""
        self.lab.add_host(short, address_cidr)
        address = address_cidr.split("/", 1)[0]
        folder = self.work / short
        folder.mkdir()
        host_key = folder / "ssh_host_ed25519_key"
        _keygen(host_key)
        config = folder / "sshd_config"
        config.write_text(SSHD_CONFIG.format(address=address, host_key=host_key, authorized_keys=self.authorized_keys,
                                             module_bytecode=self.module_bytecode))  # fmt: skip
        check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.pin_host_key(address, host_key.with_suffix(".pub"))
        self.daemons.append(self.lab.start(short, [SSHD, "-D", "-e", "-f", str(config)], f"sshd-{short}"))
        wait_for(lambda: self._listening(short, address), timeout=20, what=f"sshd on {address}")
        self.addresses[short] = address

    def pin_host_key(self, address: str, public_key: Path) -> None:
        """Trust exactly this key for `address` (known_hosts; host key checking stays on)."""
        with self.known_hosts.open("a") as known:
            known.write(f"{address} {public_key.read_text()}")

    def _listening(self, short: str, address: str) -> bool:
        result = self.lab.run(short, ["ss", "-Hltn", f"src {address}:22"])
        return bool(result.stdout.strip())

    def close(self) -> None:
        """End the connections ansible-playbook kept, stop the sessions each sshd forked (by PID, before the
        network goes), then the lab stops sshd."""
        for socket in self.control_dir.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "node"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=30)  # fmt: skip
        shutil.rmtree(self.control_dir, ignore_errors=True)
        for daemon in self.daemons:
            for pid in _descendants(daemon.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def ansible_env(self) -> Dict[str, str]:
        """Environment for ansible-playbook: every file it keeps goes under work/, host keys stay checked."""
        ssh_args = (
            f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
            f"-o IdentityFile={self.client_key} -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o ControlMaster=auto -o ControlPersist=600"  # one connection per node, ended by close()
        )
        home = self.work / "ansible-home"
        config = self.work / "ansible.cfg"
        config.write_text(ANSIBLE_CFG)
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(config),
            ANSIBLE_HOME=str(home),
            ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
            ANSIBLE_SSH_ARGS=ssh_args,
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.control_dir),
            ANSIBLE_PIPELINING="True",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_RETRY_FILES_ENABLED="False",
        )
        if self.remote_tmp:
            env["ANSIBLE_REMOTE_TMP"] = self.remote_tmp
        return env

    def run_playbook(self, inventory: Path, playbook: Path, *extra: str, timeout: float = 900):
        """ansible-playbook from the admin namespace (the nodes are not reachable from the host's network)."""
        command: List[str] = [ansible_playbook() or "ansible-playbook", "-i", str(inventory), str(playbook), *extra]
        return subprocess.run(
            ["ip", "netns", "exec", self.lab.hosts[self.admin], *command],
            capture_output=True, text=True, env=self.ansible_env(), timeout=timeout, cwd=self.work,
        )  # fmt: skip


def _descendants(pid: int) -> List[int]:
    children: Dict[int, List[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop()
        found.append(child)
        queue += children.get(child, [])
    return found


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
