"""Does this node's own rpm database meet what the bundle's RPMs require of the packages the builder assumed?

A bundle built with the minimal closure leaves out what a minimal EL9 install has (glibc, systemd, ...) and
records, in bundle.yaml's `rpm_repository.assumed_installed`, each assumed package's version in the
repositories and the requirements of the bundled RPMs that only it meets (`glibc >= 2.34`,
`libc.so.6(GLIBC_2.34)(64bit)`, `/bin/sh`). This module asks rpm for the node's provides of those packages
(`rpm -q --qf` with every PROVIDENAME, PROVIDEFLAGS and PROVIDEVERSION) and compares versions as rpm does
(rpmvercmp, epochs, a requirement without release matching any release). Pure Python, for the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

from k8s_install.bundle_format.model import AssumedPackage
from k8s_install.packages.rpmvercmp import compare_evr

LESS, GREATER, EQUAL = 2, 4, 8  # rpm's RPMSENSE_* bits
OPERATORS = {"<": LESS, "<=": LESS | EQUAL, "=": EQUAL, "==": EQUAL, ">=": GREATER | EQUAL, ">": GREATER}
QUERY_FORMAT = "[%{=NAME}|%{PROVIDENAME}|%{PROVIDEFLAGS}|%{PROVIDEVERSION}\\n]"


@dataclass(frozen=True)
class Capability:
    """A Provides or Requires entry: name, rpm sense bits (0: any version) and [epoch:]version[-release]."""

    name: str
    sense: int = 0
    version: str = ""

    @classmethod
    def parse(cls, text: str) -> Capability:
        parts = text.split()
        if len(parts) == 3 and parts[1] in OPERATORS:
            return cls(parts[0], OPERATORS[parts[1]], parts[2])
        return cls(text.strip())

    def __str__(self) -> str:
        if not self.sense:
            return self.name
        operator = next(op for op, bits in OPERATORS.items() if bits == self.sense)
        return f"{self.name} {operator} {self.version}"


def satisfies(provide: Capability, require: Capability) -> bool:
    """Whether a Provides entry meets a Requires entry of the same name (rpm's range overlap)."""
    if provide.name != require.name:
        return False
    if not provide.sense or not require.sense:
        return True
    order = compare_evr(provide.version, require.version)
    if order < 0:
        return bool(provide.sense & GREATER or require.sense & LESS)
    if order > 0:
        return bool(provide.sense & LESS or require.sense & GREATER)
    return bool(provide.sense & require.sense)


Runner = Callable[[List[str]], Tuple[int, str]]  # argv -> (exit code, stdout)


def installed_provides(names: Sequence[str], run: Runner, root_args: Sequence[str]) -> Dict[str, List[Capability]]:
    """Package name -> its Provides on this node (names that are not installed are absent)."""
    _, output = run(["rpm", *root_args, "-q", "--qf", QUERY_FORMAT, *names])
    provides: Dict[str, List[Capability]] = {}
    for line in output.splitlines():
        parts = line.split("|")
        if len(parts) != 4:
            continue  # "package X is not installed"
        name, provide, flags, version = parts
        sense = int(flags) & (LESS | GREATER | EQUAL) if flags.isdigit() else 0
        provides.setdefault(name, []).append(Capability(provide, sense if version else 0, version))
    return provides


def unowned_files(paths: Sequence[str], run: Runner, root_args: Sequence[str]) -> List[str]:
    if not paths:
        return []
    _, output = run(["rpm", *root_args, "-q", "--whatprovides", *paths])
    lines = set(output.splitlines())
    return [p for p in paths if f"file {p} is not owned by any package" in lines or f"no package provides {p}" in lines]


@dataclass(frozen=True)
class Unmet:
    requirement: str
    package: str  # the assumed package that should meet it
    built_against: str  # its nevra in the repositories when the bundle was built
    installed: bool

    def __str__(self) -> str:
        state = f"built against {self.built_against}" if self.installed else "not installed"
        return f"{self.requirement} ({self.package}: {state})"


def unmet_requirements(assumed: Sequence[AssumedPackage], run: Runner, root_args: Sequence[str]) -> List[Unmet]:
    """Each requirement of the bundle's RPMs on an assumed package that this node's packages do not meet."""
    names = [entry.name for entry in assumed if entry.required]
    if not names:
        return []
    provides = installed_provides(names, run, root_args)
    files = [required for entry in assumed for required in entry.required if required.startswith("/")]
    missing_files = set(unowned_files(files, run, root_args))
    unmet = []
    for entry in assumed:
        name = entry.name
        for text in entry.required:
            if text.startswith("/"):
                met = text not in missing_files
            else:
                require = Capability.parse(text)
                met = any(satisfies(provide, require) for provide in provides.get(name, []))
            if not met:
                unmet.append(Unmet(text, name, entry.nevra, name in provides))
    return unmet
