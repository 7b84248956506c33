"""OS packages on Debian and Ubuntu nodes: the bundle's flat apt repository (debs/), and no other source.

`plan_debs` reads dpkg's status (`dpkg-query`, under the root when it is not "/") and returns what differs:
a package the bundle pins (`kubeadm=1.29.6-*`) must be installed at exactly the bundle's version and held
(`apt-mark hold`, as pkgs.k8s.io's guide does: an `apt upgrade` of the node's own sources does not move it);
the others (chrony, socat, ...) only need to be installed. `install_debs` acts with one apt-get transaction
whose only source is the bundle's repository, signature checking on: the sources list is a private one
(`Dir::Etc::sourcelist`, `Dir::Etc::sourceparts=-`), its lists are kept apart from the node's
(`Dir::State::Lists`), both under /var/lib/k8s-install/apt, so the node's /etc/apt is never read or changed and
no network source is ever used. The repository's Release is signed by the bundle key (bundle-key.gpg, listed in
SHA256SUMS like every other file); apt checks it (`signed-by`) exactly as against any other repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.errors import InstallError, one_line
from k8s_install.node.host import STATE_DIR, Host

APT_DIR = f"{STATE_DIR}/apt"  # the private sources list and lists of the bundle's repository
SOURCES = f"{APT_DIR}/sources.list"
INSTALLED = ("install ok installed", "hold ok installed")


@dataclass(frozen=True)
class DebChange:
    name: str
    version: str  # the bundle's version of it
    installed: Optional[str]  # what is there now (None: not installed)
    hold: bool  # the bundle pins its version: held once installed
    install: bool = True  # False: installed as wanted, only the hold is missing

    @property
    def argument(self) -> str:
        return f"{self.name}={self.version}"

    def describe(self) -> str:
        if not self.install:
            return f"hold {self.name} {self.version}"
        if self.installed is None:
            return f"install {self.name} {self.version}"
        return f"replace {self.name} {self.installed} with {self.version}"


@dataclass(frozen=True)
class WantedDeb:
    name: str
    version: str
    exact: bool  # the release manifest pins it (`name = version`)


def wanted_debs(bundle: Bundle) -> List[WantedDeb]:
    """What the node installs: every package the release manifest asks for, at the bundle's version of it."""
    repository = bundle.manifest.deb_repository
    if repository is None:
        return []
    versions = {deb.name: deb.version for deb in bundle.manifest.debs}
    wanted = []
    for argument in repository.install:
        name, pinned, _ = argument.partition("=")
        wanted.append(WantedDeb(name, versions.get(name, ""), bool(pinned)))
    return wanted


def installed_debs(host: Host, names: Sequence[str]) -> Dict[str, Tuple[str, str]]:
    """name -> (version, dpkg status) of those names dpkg knows (removed ones included, with their status)."""
    if not names:
        return {}
    command = ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Status}\n", *names]
    if not host.live:
        command.insert(1, f"--admindir={host.path('/var/lib/dpkg')}")
    result = host.run(command, check=False)
    if result.returncode not in (0, 1):  # 1: some name is unknown to dpkg
        raise InstallError(f"dpkg-query failed: {one_line(result.stderr.decode(errors='replace'))[:300]}")
    found = {}
    for line in result.stdout.decode(errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) == 3:
            found[fields[0]] = (fields[1], fields[2])
    return found


def plan_debs(bundle: Bundle, host: Host) -> List[DebChange]:
    """What is missing, at another version than the bundle pins, or not held; empty: the packages are in place."""
    wanted = wanted_debs(bundle)
    present = installed_debs(host, [deb.name for deb in wanted])
    changes = []
    for deb in wanted:
        version, status = present.get(deb.name, ("", ""))
        installed = version if status in INSTALLED else None
        if installed is None or (deb.exact and installed != deb.version):
            if not deb.version:
                raise InstallError(
                    f"{deb.name} is not installed and the bundle carries no .deb of it: install it on the node "
                    "(the build counted it as part of a minimal system), then run again"
                )
            changes.append(DebChange(deb.name, deb.version, installed, deb.exact))
        elif deb.exact and not status.startswith("hold "):
            changes.append(DebChange(deb.name, deb.version, installed, True, install=False))
    return changes


def apt_options(host: Host) -> List[str]:
    """apt-get's options: the bundle's repository is its only source, its lists kept apart from the node's."""
    options = {
        "Dir::Etc::sourcelist": str(host.path(SOURCES)),
        "Dir::Etc::sourceparts": "-",
        "Dir::State::Lists": str(host.path(f"{APT_DIR}/lists")),
        "Dir::Cache::pkgcache": "",  # no cache of our sources in /var/cache/apt for the node's own apt to find
        "Dir::Cache::srcpkgcache": "",
        "Acquire::Languages": "none",
        "Acquire::AllowInsecureRepositories": "false",
        "APT::Install-Recommends": "false",
        "APT::Sandbox::User": "root",  # the bundle folder is root's (verified, not group- or other-writable)
        "Dpkg::Use-Pty": "false",
    }
    if not host.live:  # a --root image: dpkg installs into it, its maintainer scripts run outside a chroot
        options.update({
            "Dir::State::status": str(host.path("/var/lib/dpkg/status")),
            "Dir::Cache::archives": str(host.path("/var/cache/apt/archives")) + "/",
            "Dir::Log": str(host.path("/var/log/apt")),
        })  # fmt: skip
    argv = [part for key, value in options.items() for part in ("-o", f"{key}={value}")]
    if not host.live:
        argv += ["-o", f"DPkg::Options::=--root={host.root}", "-o", "DPkg::Options::=--force-script-chrootless"]
    return argv


APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8", "APT_LISTCHANGES_FRONTEND": "none"}


def sources_line(bundle: Bundle) -> str:
    repository = bundle.manifest.deb_repository
    if repository is None:
        raise AssertionError("a deb step ran for a bundle without an apt repository")
    folder, key = bundle.root.resolve() / repository.path, bundle.root.resolve() / repository.key
    return f"deb [signed-by={key}] file:{folder}/ ./\n"


def _check_repository(bundle: Bundle) -> None:
    repository = bundle.manifest.deb_repository
    assert repository is not None
    for path in (bundle.root / repository.path / "InRelease", bundle.root / repository.path / "Packages",
                 bundle.root / repository.key):  # fmt: skip
        if not path.is_file():
            raise InstallError(f"{path} is missing: the bundle's apt repository is incomplete; re-copy the bundle")


def problem(output: str) -> str:
    """apt's own explanation on one line: its E: lines and the dependencies it could not meet."""
    kept = []
    for line in output.splitlines():
        text = " ".join(line.split())
        if text.startswith("E:") or "Depends:" in text or "Conflicts:" in text or "Breaks:" in text:
            kept.append(text)
    return "; ".join(kept[:4]) or one_line(output.strip()[-300:])


def apt_get(host: Host, *args: str, what: str, timeout: float = 1800) -> None:
    result = host.run(["apt-get", "-q", *apt_options(host), *args], check=False, timeout=timeout, env=APT_ENV)
    output = (result.stdout + result.stderr).decode(errors="replace")
    if result.returncode != 0 or any(line.startswith("E:") for line in output.splitlines()):
        raise InstallError(f"{what}: {problem(output)}")


def install_debs(bundle: Bundle, host: Host, changes: Sequence[DebChange]) -> List[str]:
    """apt-get update of the bundle's repository alone, one apt-get install of exactly these versions, the
    pinned ones held; returns the names that were not installed before (`reset` removes those)."""
    _check_repository(bundle)
    sources = host.path(SOURCES)
    (sources.parent / "lists/partial").mkdir(parents=True, exist_ok=True, mode=0o700)
    sources.write_text(sources_line(bundle), encoding="utf-8")
    if not host.live:
        for folder in ("/var/cache/apt/archives/partial", "/var/log/apt"):
            host.path(folder).mkdir(parents=True, exist_ok=True)
    before = set(all_installed(host))
    installs = [change.argument for change in changes if change.install]
    if installs:
        apt_get(host, "update", what="apt-get could not read the bundle's apt repository")
        wanted = ", ".join(argument.replace("=", " ") for argument in installs)
        what = f"apt-get could not install {wanted} from the bundle's repository"
        apt_get(host, "install", "-y", "--allow-change-held-packages", *installs, what=what)
    held = [change.name for change in changes if change.hold]
    if held:
        host.run(["apt-mark", *apt_options(host), "hold", *held], env=APT_ENV)
    asked = {change.name for change in changes}
    left = [change for change in plan_debs(bundle, host) if change.name in asked]
    if left:
        raise InstallError("after apt-get, still not as the bundle wants: " + "; ".join(c.describe() for c in left))
    return sorted(set(all_installed(host)) - before)


def all_installed(host: Host) -> List[str]:
    command = ["dpkg-query", "-W", "-f", "${Package}\t${Status}\n"]
    if not host.live:
        command.insert(1, f"--admindir={host.path('/var/lib/dpkg')}")
    output = host.run(command, check=False).stdout.decode(errors="replace")
    return [line.split("\t")[0] for line in output.splitlines() if line.split("\t")[-1] in INSTALLED]


def remove_debs(host: Host, names: Sequence[str]) -> None:
    """`reset`: unhold and remove what the installer installed; apt reads no source for it."""
    if not host.path(SOURCES).exists():
        host.path(SOURCES).parent.mkdir(parents=True, exist_ok=True)
        host.path(SOURCES).write_text("", encoding="utf-8")
    host.run(["apt-mark", *apt_options(host), "unhold", *names], check=False, env=APT_ENV)
    apt_get(host, "remove", "-y", "--allow-change-held-packages", *names, what="apt-get could not remove packages")
