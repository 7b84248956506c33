"""OS packages on the node: install the bundle's RPMs with dnf from the bundle's own repository only.

Plain functions a converge step can wrap, each given the bundle read once (`load_bundle`): `plan_packages`
reads what is installed (`rpm -q`, under
`root` when it is not "/") and returns the changes needed; `install_packages` acts on them with one dnf
transaction that consults no other repository (`--disablerepo='*'`, `reposdir=/dev/null`), so it works
with no network at all; an empty plan means nothing runs. Packages the manifest pins to a version
(kubeadm/kubelet/kubectl = 1.29.6) must be installed at exactly the bundle's epoch:version-release;
the others (socat, conntrack-tools, ...) only need to be installed.

Package signatures are checked by default (gpgcheck) with the repository keys the bundle carries under
rpms/keys/; `gpgcheck=False` is an explicit choice for unsigned packages.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.layout import RPMS_DIR
from k8s_install.bundle_format.model import BundleManifest, InstallRequest
from k8s_install.errors import InstallError, one_line
from k8s_install.units import human_size

REPO_ID = "k8s-bundle"
QUERY_FORMAT = "%{NAME}|%{EPOCHNUM}|%{VERSION}|%{RELEASE}|%{ARCH}\\n"
Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class PackageChange:
    name: str
    nevra: str
    installed: Optional[str]  # what is there now (None: not installed)

    def describe(self) -> str:
        if self.installed is None:
            return f"install {self.nevra}"
        return f"replace {self.installed} with {self.nevra}"


def wanted_packages(manifest: BundleManifest) -> Tuple[InstallRequest, ...]:
    """What the node installs: each request with its NEVRA and whether that very version is needed."""
    repository = manifest.rpm_repository
    return repository.install if repository is not None else ()  # a bundle without RPMs


def installed_packages(
    names: Sequence[str], root: Path = Path("/"), run: Runner = subprocess.run
) -> Dict[str, List[str]]:
    """name -> installed NEVRAs (name-epoch:version-release.arch) of those names."""
    if not names:
        return {}
    command = ["rpm", "-q", "--qf", QUERY_FORMAT, *names]
    if Path(root) != Path("/"):
        command[1:1] = ["--root", str(root)]
    try:
        result = run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise InstallError("rpm is not installed on this machine: the RPM bundle needs an EL9 node") from None
    found: Dict[str, List[str]] = {name: [] for name in names}
    for line in result.stdout.splitlines():
        fields = line.split("|")
        if len(fields) == 5:
            name, epoch, version, release, arch = fields
            found.setdefault(name, []).append(f"{name}-{epoch}:{version}-{release}.{arch}")
    if result.returncode != 0 and "is not installed" not in result.stdout + result.stderr:
        raise InstallError(f"rpm -q failed under {root}: {result.stderr.strip()[:300]}")
    return found


def plan_packages(bundle: Bundle, root: Path = Path("/"), run: Runner = subprocess.run) -> List[PackageChange]:
    """What is missing or at the wrong version; an empty list means the packages are in place."""
    wanted = wanted_packages(bundle.manifest)
    installed = installed_packages([w.name for w in wanted], root, run)
    changes = []
    for package in wanted:
        present = installed.get(package.name) or []
        if package.nevra in present or (present and not package.exact):
            continue
        changes.append(PackageChange(package.name, package.nevra, ", ".join(present) or None))
    return changes


def repository_keys(bundle: Bundle) -> List[Path]:
    repository = bundle.manifest.rpm_repository
    return [bundle.root.resolve() / key for key in (repository.keys if repository is not None else ())]


def dnf_install_command(
    bundle: Bundle,
    changes: Sequence[PackageChange],
    root: Path = Path("/"),
    gpgcheck: bool = True,
    releasever: Optional[str] = None,
) -> List[str]:
    """The one dnf command that installs exactly these NEVRAs from the bundle's repository and no other."""
    folder = bundle.root.resolve()
    command = [
        "dnf", "install", "-y", "--disablerepo=*", "--setopt=reposdir=/dev/null",
        f"--repofrompath={REPO_ID},{folder / RPMS_DIR}", f"--enablerepo={REPO_ID}",
        "--setopt=install_weak_deps=False", f"--setopt={REPO_ID}.gpgcheck={1 if gpgcheck else 0}",
    ]  # fmt: skip
    if gpgcheck:
        keys = repository_keys(bundle)
        if not keys:
            raise InstallError(
                f"{folder}: the bundle carries no repository keys, so package signatures cannot be checked; "
                "rebuild with repository keys in the manifest, or explicitly turn gpgcheck off"
            )
        command.append(f"--setopt={REPO_ID}.gpgkey=" + ",".join(key.as_uri() for key in keys))
    if Path(root) != Path("/"):
        command.append(f"--installroot={Path(root).resolve()}")
    if releasever:
        command.append(f"--releasever={releasever}")
    return command + ["--", *(change.nevra for change in changes)]


def _check_files_present(bundle: Bundle, changes: Sequence[PackageChange]) -> None:
    paths = {entry.nevra: entry.path for entry in bundle.manifest.rpms}
    repomd = bundle.root / RPMS_DIR / "repodata" / "repomd.xml"
    if not repomd.is_file():
        raise InstallError(f"{repomd} is missing: the bundle's RPM repository is incomplete; re-copy the bundle")
    for change in changes:
        path = paths.get(change.nevra)
        if path is None or not (bundle.root / path).is_file():
            raise InstallError(f"{change.nevra} is not in the bundle ({path or 'not listed in bundle.yaml'})")


PROBLEM_MARKERS = ("no match for argument", "nothing provides", "problem", "conflicts", "is not signed",
                   "public key", "nokey", "signature", "failed to download", "error")  # fmt: skip


NO_SPACE_MARKERS = ("no space left on device", "more space needed", "more space on the", "disk requirements")
DNF_SPACE = re.compile(r"(\d+(?:\.\d+)?\s*[KMG]?i?B) more space(?: needed)? on the (\S+) filesystem")


def no_space_for_packages(bundle: Bundle, changes: Sequence[PackageChange], root: Path, output: str) -> str:
    """dnf stopped on a full filesystem (its disk check, or a write that failed): where, and how much."""
    sizes = {entry.nevra: entry.size for entry in bundle.manifest.rpms}
    estimate = 3 * sum(sizes.get(change.nevra, 0) for change in changes)  # installed, about 3x the RPM files
    found = DNF_SPACE.search(output)
    if found:
        amount, filesystem = found.group(1), found.group(2)
        where = str(Path(root) / filesystem.lstrip("/")) if Path(root) != Path("/") else filesystem
        needed = f"dnf needs {amount} more there"
    else:
        where, needed = str(root), f"the packages need about {human_size(estimate)}"
    try:
        available = human_size(shutil.disk_usage(where).free)
    except OSError:
        available = "unknown"
    return (
        f"{where}: no space left on its filesystem for {len(changes)} package(s) ({needed}, {available} "
        "available): free space there, then run again"
    )


def _dnf_problem(output: str) -> str:
    """dnf's own words for what went wrong: its specific lines first (a few), then its summary line."""
    lines = [line.strip() for line in output.splitlines() if any(m in line.lower() for m in PROBLEM_MARKERS)]
    specific = [line for line in lines if not line.startswith("Error")][:3]
    summary = [line for line in lines if line.startswith("Error")][:1]
    return "; ".join(specific + summary) or one_line(output.strip()[-300:])


def install_packages(
    bundle: Bundle,
    root: Path = Path("/"),
    gpgcheck: bool = True,
    releasever: Optional[str] = None,
    run: Runner = subprocess.run,
) -> List[PackageChange]:
    """Install what `plan_packages` finds missing; returns what was changed (empty: nothing to do)."""
    changes = plan_packages(bundle, root, run)
    if not changes:
        return []
    _check_files_present(bundle, changes)
    command = dnf_install_command(bundle, changes, root, gpgcheck, releasever)
    try:
        result = run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise InstallError("dnf is not installed on this machine: the RPM bundle needs an EL9 node") from None
    if result.returncode != 0:
        wanted = ", ".join(change.nevra for change in changes)
        output = result.stdout + "\n" + result.stderr
        if any(marker in output.lower() for marker in NO_SPACE_MARKERS):
            raise InstallError(no_space_for_packages(bundle, changes, root, output))
        problem = _dnf_problem(output)
        raise InstallError(f"dnf could not install {wanted} from the bundle's repository: {problem}")
    left = plan_packages(bundle, root, run)
    if left:
        raise InstallError(
            "after dnf, still not as the bundle wants: " + "; ".join(c.describe() for c in left)
            + " (a newer version is installed? remove it first or use a bundle of that version)"
        )  # fmt: skip
    return changes
