"""Real firewalld and chronyd inside network namespaces of a `Lab`, touching nothing of the host.

firewalld talks D-Bus: each test starts its own `dbus-daemon` on a socket in a temporary folder (the host
has no system bus, and another one would be shared), and firewalld keeps its configuration in a folder of
the test (`--system-config`) and logs to the console. chronyd runs with `-x` (serve and measure, never
set the clock: all namespaces share the host's clock), its pid file and sockets in the test's folder.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import List, Sequence, cast

from k8s_install.engine import Node
from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.steps.firewall import open_service
from tests.support.netns import Lab, wait_for

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


class Firewalld:
    """firewalld in the namespace of `host` (a Lab host), configured from `config_dir`."""

    def __init__(self, lab: Lab, host: str, folder: Path) -> None:
        self.lab = lab
        self.host = host
        self.config_dir = folder / "etc-firewalld"
        self.config_dir.mkdir(parents=True)
        socket = folder / "system_bus_socket"
        (folder / "bus.conf").write_text(BUS_CONFIG.format(socket=socket))
        self.bus = f"unix:path={socket}"
        lab.processes.append(
            subprocess.Popen(
                ["dbus-daemon", f"--config-file={folder / 'bus.conf'}", "--nofork", "--nopidfile"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for(socket.exists, 10, what="dbus-daemon's socket")
        self.process = lab.start(
            host,
            self._env() + ["firewalld", "--nofork", "--nopid", "--log-target", "console",
                           "--system-config", str(self.config_dir)],
            "firewalld",
        )  # fmt: skip
        wait_for(lambda: self.cmd("--state").returncode == 0 or self.process.poll() is not None, 60, 0.5,
                 "firewalld to run")  # fmt: skip
        if self.process.poll() is not None:
            raise AssertionError(f"firewalld exited: see {lab.logs / 'firewalld.log'}")

    def _env(self) -> List[str]:
        return ["env", f"DBUS_SYSTEM_BUS_ADDRESS={self.bus}"]

    def cmd(self, *args: str) -> subprocess.CompletedProcess:
        return self.lab.run(self.host, self._env() + ["firewall-cmd", *args], timeout=60)

    def install_service(self, name: str, xml: str) -> None:
        """What the installer's firewall step does on a live node: the file, then its `open_service`."""
        (self.config_dir / "services").mkdir(exist_ok=True)
        (self.config_dir / "services" / f"{name}.xml").write_text(xml)
        open_service(cast(Node, SimpleNamespace(host=FirewalldHost(self))), name)


class FirewalldHost(Host):
    """The installer's live Host as the firewall step sees it: `firewall-cmd` runs against `firewalld` (in its
    namespace, on its bus); every other command is refused, and the log is kept here, not in the host's /var/log."""

    def __init__(self, firewalld: Firewalld) -> None:
        super().__init__(Path("/"))
        self.firewalld = firewalld
        self.commands: List[List[str]] = []
        self.lines: List[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def run(self, argv: Sequence[str], check: bool = True, **_options: object) -> subprocess.CompletedProcess:
        command = [str(part) for part in argv]
        assert command[0] == "firewall-cmd", f"only firewall-cmd runs here, not {command}"
        self.commands.append(command)
        result = self.firewalld.cmd(*command[1:])
        if check and result.returncode != 0:
            raise InstallError(f"{' '.join(command)} failed (exit {result.returncode}): {result.stderr}")
        return result


def chrony_for_test(rendered: str, folder: Path) -> str:
    """The installer's chrony.conf with the files chronyd writes moved into `folder` (0700, as it wants)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    moved = ("driftfile", "keyfile", "logdir", "leapsectz", "rtcsync", "pidfile", "bindcmdaddress", "cmdport")
    kept = [line for line in rendered.splitlines() if line.split()[:1] and line.split()[0] not in moved]
    kept += [f"pidfile {folder}/chronyd.pid", f"bindcmdaddress {folder}/chronyd.sock", "cmdport 0"]
    return "\n".join(kept) + "\n"
