"""Small RPM repositories, one per resolution question (rich dependencies, epochs, pins, Obsoletes, ...),
built once per session with rpmbuild + createrepo_c, and dnf's own answer for each (dnf --installroot).

Every scenario's first repository also holds the assumed minimal-install packages (glibc, bash).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from tests.support.rpm_repo import FakeRpm, build_rpms, make_repo

X86 = ("x86_64",)
BASE = (
    FakeRpm("glibc", "2.34", arches=X86, provides=["libc.so.6()(64bit)"]),
    FakeRpm("bash", "5.1.8", arches=X86, files={"/usr/bin/bash": "bash"}),
)
ASSUMED = ("glibc", "bash")


@dataclass(frozen=True)
class Scenario:
    id: str
    packages: Tuple[FakeRpm, ...]
    requests: Tuple[str, ...]
    expected: Optional[Dict[str, str]] = None  # name -> version[.arch] the bundle must hold (besides dnf's)
    fails: Optional[str] = None  # the build must fail with this in its message
    second_repo: Tuple[FakeRpm, ...] = ()  # a second repository, zstd metadata
    assumed: Tuple[str, ...] = ASSUMED


def rpm(name: str, version: str = "1.0", **fields) -> FakeRpm:  # type: ignore[no-untyped-def]
    return FakeRpm(name, version, **fields)


SCENARIOS = [
    Scenario("rich-or", (rpm("app", requires=["(libfast or libslow)"]), rpm("libfast"), rpm("libslow")), ("app",)),
    Scenario(
        "if-condition-arrives-later",
        (rpm("app", requires=["(app-selinux if selinux-policy)"]), rpm("app-selinux"),
         rpm("tool", requires=["selinux-policy"]), rpm("selinux-policy")),
        ("app", "tool"),
        expected={"app": "1.0", "app-selinux": "1.0", "tool": "1.0", "selinux-policy": "1.0"},
    ),
    Scenario(
        "if-else-with-without-and-unless",
        (rpm("app", requires=["(x if cond else y)", "(lib >= 2 with lib < 3)", "(virt without bad)",
                              "(guarded or fallback)"],
             conflicts=["(guarded unless shield)"]),  # rpm allows `unless` only in Conflicts
         rpm("x"), rpm("y"), rpm("guarded"), rpm("fallback"), rpm("shield"),  # no cond: the else branch
         rpm("lib", "1.0"), rpm("lib", "2.5"), rpm("lib", "3.0"),
         rpm("p-bad", provides=["virt", "bad"]), rpm("p-good", provides=["virt"])),
        ("app",),
        expected={"app": "1.0", "y": "1.0", "lib": "2.5", "p-good": "1.0", "fallback": "1.0"},
    ),
    Scenario(
        "epoch-beats-higher-version",
        (rpm("app", requires=["lib"]), FakeRpm("lib", "1.0", epoch=2), rpm("lib", "3.0")),
        ("app",),
        expected={"app": "1.0", "lib": "2:1.0"},
    ),
    Scenario(
        "pin-and-a-later-upper-bound",
        (rpm("tool", "1.0"), rpm("tool", "2.0"), rpm("tool", "3.0"), rpm("app", requires=["helper"]),
         rpm("other", requires=["helper < 2"]), rpm("helper", "1.0"), rpm("helper", "2.0")),
        ("tool = 2.0", "app", "other"),
        expected={"tool": "2.0", "app": "1.0", "other": "1.0", "helper": "1.0"},
    ),
    Scenario(
        "file-requirement-only-in-filelists",
        (rpm("app", requires=["/usr/share/thing/data"]), rpm("thing", files={"/usr/share/thing/data": "d"})),
        ("app",),
        expected={"app": "1.0", "thing": "1.0"},
    ),
    Scenario(
        "virtual-provide-two-providers",
        (rpm("app", requires=["mta"]), rpm("postfix", provides=["mta"]), rpm("sendmail", provides=["mta"])),
        ("app",),
    ),
    Scenario(
        "obsoletes-and-conflicts-between-candidates",
        (rpm("app", requires=["tool-api", "b", "c"]), rpm("old-tool", provides=["tool-api"]),
         rpm("new-tool", provides=["tool-api"], obsoletes=["old-tool"]),
         rpm("b", "1.0"), rpm("b", "2.0", conflicts=["c >= 2"]), rpm("c", "1.0"), rpm("c", "2.0")),
        ("app",),
    ),
    Scenario(
        "conflicts-with-an-assumed-package",
        (rpm("bad", conflicts=["glibc < 3"]),),
        ("bad",),
        fails="bad-1.0-1.noarch conflicts with glibc < 3 provided by glibc-2.34-1.x86_64",
    ),
    Scenario(
        "versioned-requirement-the-assumed-package-cannot-meet",
        (rpm("needy", requires=["glibc >= 2.40"]),),
        ("needy",),
        fails="needy-1.0-1.noarch requires glibc >= 2.40",
    ),
    Scenario(
        "x86_64-and-i686-of-one-name",
        (FakeRpm("app", "1.0", arches=X86, requires=["libfoo"]), FakeRpm("libfoo", "1.0", arches=("x86_64", "i686"))),
        ("app", "libfoo"),
        expected={"app": "1.0.x86_64", "libfoo": "1.0.x86_64"},
    ),
    Scenario(
        "weak-dependencies-are-not-installed",
        (rpm("app", recommends=["extra"]), rpm("extra"), rpm("helper", supplements=["app"])),
        ("app",),
        expected={"app": "1.0"},
    ),
    Scenario(
        "two-repositories-newest-wins-gz-and-zst",
        (rpm("app", requires=["tool"]), rpm("tool", "1.0")),
        ("app",),
        second_repo=(rpm("tool", "2.0"),),
        expected={"app": "1.0", "tool": "2.0"},
    ),
    Scenario(
        "two-repositories-pinned-older",
        (rpm("app", requires=["tool"]), rpm("tool", "1.0")),
        ("app", "tool = 1.0"),
        second_repo=(rpm("tool", "2.0"),),
        expected={"app": "1.0", "tool": "1.0"},
    ),
]  # fmt: skip


class BuiltScenario:
    """One scenario's RPM files and repositories (first: gz metadata; second: zstd)."""

    def __init__(self, scenario: Scenario, work: Path) -> None:
        self.scenario = scenario
        self.first = build_rpms(list(BASE + scenario.packages), work / "first")
        self.second = build_rpms(list(scenario.second_repo), work / "second") if scenario.second_repo else {}
        self.repos: Dict[str, Path] = {"one": make_repo(work / "repos" / "one", list(self.first.values()))}
        if self.second:
            self.repos["two"] = make_repo(work / "repos" / "two", list(self.second.values()), "zstd")

    def assumed_rpms(self) -> List[Path]:
        return [path for name, path in self.first.items() if name.rsplit("-", 2)[0] in self.scenario.assumed]


def build_scenarios(work: Path) -> Dict[str, BuiltScenario]:
    return {s.id: BuiltScenario(s, work / s.id) for s in SCENARIOS}


def node_root(root: Path, assumed: Sequence[Path]) -> Path:
    """An --installroot whose rpm database holds the assumed packages."""
    root.mkdir(parents=True)
    if assumed:
        subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", "--nosignature", *map(str, assumed)],
                       check=True, capture_output=True)  # fmt: skip
    return root


def installed(root: Path) -> Set[str]:
    """name-[epoch:]version-release.arch of every package in root's rpm database (gpg-pubkey left out)."""
    query = subprocess.run(
        ["rpm", "--root", str(root), "-qa", "--qf", "%{NAME} %{EPOCHNUM} %{VERSION} %{ARCH}\n"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = set()
    for line in query.stdout.splitlines():
        name, epoch, version, arch = line.split()
        if name != "gpg-pubkey":
            found.add(f"{name} {'' if epoch == '0' else epoch + ':'}{version}.{arch}")
    return found


def dnf_install(root: Path, repos: Dict[str, Path], requests: Sequence[str]) -> subprocess.CompletedProcess:
    """`dnf install REQUESTS` into root from these repositories only, weak dependencies off, no network."""
    specs = [r.replace(" = ", "-") for r in requests]  # dnf takes name-version where the manifest pins name = v
    command = [
        "unshare", "--net", "--", "dnf", "install", "-y", f"--installroot={root}", "--setopt=reposdir=/dev/null",
        f"--setopt=cachedir={root}/var/cache/dnf", "--releasever=9", "--setopt=install_weak_deps=False",
        "--nogpgcheck", "--disablerepo=*",
        *[f"--repofrompath={name},{path}" for name, path in repos.items()],
        *[f"--enablerepo={name}" for name in repos], "--", *specs,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True)


def missing_tools() -> List[str]:
    return [tool for tool in ("rpmbuild", "createrepo_c", "dnf", "rpm", "unshare") if shutil.which(tool) is None]
