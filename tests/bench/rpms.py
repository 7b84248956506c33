"""RPM resolution speed on a synthetic repository the size of Rocky 9 AppStream (20,000 packages).

Baseline measured in the same run: `dnf repoquery --requires --resolve --recursive` on the same repository,
cold (an empty cache folder), for the same requests. Both read primary and filelists and compute the
closure; the ratio is ours / dnf's (goal: <= 1.0). The repository is metadata only (no RPM files): neither
side downloads packages.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Tuple

from bundler.rpm.deps import parse_simple
from bundler.rpm.solver import Policy, RepoMetadata, resolve

PACKAGES = 20_000
REQUESTS = 20
COMMON = 'xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"'


def synthetic_metadata(count: int, seed: int = 7) -> Tuple[bytes, bytes]:
    """primary.xml and filelists.xml: each package provides itself and a soname, requires four others
    (versioned), one soname and, for every tenth package, a file only filelists lists."""
    rng = random.Random(seed)
    primary = [f'<?xml version="1.0"?>\n<metadata {COMMON} packages="{count}">']
    filelists = [
        f'<?xml version="1.0"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="{count}">'
    ]
    for index in range(count):
        pkgid = f"{index:064x}"
        version = f'epoch="0" ver="{index % 7}.{index % 13}.{index % 5}" rel="1.el9"'
        requires = "".join(
            f'<rpm:entry name="pkg{rng.randrange(count)}" flags="GE" epoch="0" ver="0"/>' for _ in range(4)
        )
        requires += f'<rpm:entry name="lib{rng.randrange(count)}.so()(64bit)"/>'
        if index % 10 == 0:
            requires += f'<rpm:entry name="/usr/share/pkg{rng.randrange(count)}/data"/>'
        primary.append(
            f'<package type="rpm"><name>pkg{index}</name><arch>x86_64</arch><version {version}/>'
            f'<checksum type="sha256" pkgid="YES">{pkgid}</checksum><summary>s</summary><description>d'
            f'</description><packager/><url/><time file="1" build="1"/><size package="1000" installed="1" '
            f'archive="1"/><location href="Packages/pkg{index}.rpm"/><format><rpm:license>MIT</rpm:license>'
            f'<rpm:provides><rpm:entry name="pkg{index}" flags="EQ" {version}/><rpm:entry '
            f'name="lib{index}.so()(64bit)"/></rpm:provides><rpm:requires>{requires}</rpm:requires>'
            f"<file>/usr/bin/pkg{index}</file></format></package>"
        )
        filelists.append(
            f'<package pkgid="{pkgid}" name="pkg{index}" arch="x86_64"><version {version}/>'
            f"<file>/usr/bin/pkg{index}</file><file>/usr/share/pkg{index}/data</file></package>"
        )
    primary.append("</metadata>\n")
    filelists.append("</filelists>\n")
    return "".join(primary).encode(), "".join(filelists).encode()


def write_repository(directory: Path) -> Tuple[Path, Path]:
    primary, filelists = synthetic_metadata(PACKAGES)
    (directory / "repodata").mkdir(parents=True)
    entries = []
    paths = []
    for kind, document in (("primary", primary), ("filelists", filelists)):
        data = gzip.compress(document, mtime=0)
        digest = hashlib.sha256(data).hexdigest()
        href = f"repodata/{digest}-{kind}.xml.gz"
        (directory / href).write_bytes(data)
        paths.append(directory / href)
        entries.append(
            f'<data type="{kind}"><checksum type="sha256">{digest}</checksum><open-checksum type="sha256">'
            f'{hashlib.sha256(document).hexdigest()}</open-checksum><location href="{href}"/>'
            f"<timestamp>1</timestamp><size>{len(data)}</size><open-size>{len(document)}</open-size></data>"
        )
    (directory / "repodata" / "repomd.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo">'
        f"<revision>1</revision>{''.join(entries)}</repomd>\n"
    )
    return paths[0], paths[1]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def dnf_repoquery(repository: Path, work: Path, names: List[str]) -> subprocess.CompletedProcess:
    (work / "root").mkdir(parents=True)
    command = [
        "dnf", "repoquery", "-q", f"--installroot={work / 'root'}", "--setopt=reposdir=/dev/null",
        f"--setopt=cachedir={work / 'cache'}", "--releasever=9", "--setopt=install_weak_deps=False",
        f"--repofrompath=bench,file://{repository}", "--repo=bench", "--forcearch=x86_64",
        "--requires", "--resolve", "--recursive", *names,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=True)


def run() -> List[str]:
    if shutil.which("dnf") is None:
        return ["rpms: dnf is not installed, no baseline (apt-get install dnf)"]
    with tempfile.TemporaryDirectory(prefix="bench-rpms-") as work:
        repository = Path(work) / "repo"
        primary, filelists = write_repository(repository)
        names = [f"pkg{i}" for i in range(0, PACKAGES, PACKAGES // REQUESTS)]
        metadata = RepoMetadata("bench", (primary, primary.name), lambda: (filelists, filelists.name))
        found: list = []
        ours = timed(
            lambda: found.extend(
                resolve(
                    [metadata], [parse_simple(n) for n in names], {}, (), Policy("x86_64", "full"), "bench"
                ).packages
            )
        )
        listed: list = []
        theirs = timed(lambda: listed.append(dnf_repoquery(repository, Path(work) / "dnf", names)))
        dnf_names = {line.rsplit("-", 2)[0] for line in listed[0].stdout.split()}
    return [
        f"RPM resolution, {PACKAGES} packages, {REQUESTS} requests: libsolv adapter {ours:.2f} s "
        f"({len(found)} packages); dnf repoquery --requires --resolve --recursive (cold) {theirs:.2f} s "
        f"({len(dnf_names)} packages); ratio {ours / theirs:.2f}x",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
