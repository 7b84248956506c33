"""Proof before writing: the bundle's apt repository alone, signature checking on, gives a minimal system of
the release exactly the packages the resolution chose, and apt accepts every .deb by the sums of the bundle's
own Packages index (apt-get install --download-only). Nothing is installed on the builder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, Sequence

from bundler.deb.apt import PrivateApt
from bundler.deb.flat_repo import KEY_NAME, SUITE, DebFile, repository_files
from bundler.deb.resolve import DebResolution
from bundler.deb.spec import PackageRequest
from bundler.errors import BundlerError

WHAT = "the bundle's apt repository"


def prove_installable(
    metadata: Dict[str, bytes], debs: Sequence[DebFile], requests: Sequence[PackageRequest],
    resolution: DebResolution, arch: str,
) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bundler-deb-proof-") as folder:
        work = Path(folder)
        repo = work / "repo"
        repo.mkdir()
        repository_files(metadata, debs, repo)
        apt = PrivateApt(work / "apt", arch)
        apt.add_source("bundle", repo, SUITE, (), repo / KEY_NAME)
        apt.update(WHAT)
        apt.write_status(resolution.status_stanzas())
        wanted = [r.apt_argument for r in requests]
        actions = apt.simulate(wanted, f"{WHAT} would not install on a minimal system")
        chosen = {(a.name, a.version) for a in actions if a.kind == "Inst"}
        expected = {(p.name, p.version) for p in resolution.packages}
        if chosen != expected or any(a.kind == "Remv" for a in actions):
            differ = sorted(chosen ^ expected)
            raise BundlerError(
                f"{WHAT}: apt installs another set from the bundle alone than it chose from the repositories "
                f"(differs in {', '.join(f'{n} {v}' for n, v in differ[:5]) or 'removals'}); this is a bug: report it"
            )
        apt.download(wanted, work / "archives", f"{WHAT}: the .debs against its Packages index")
