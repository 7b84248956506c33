"""The resolver on small in-memory graphs: facts in (packages, pins, assumed set), package set out."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import pytest

from bundler.rpm.deps import parse_simple
from bundler.rpm.pool import Pool
from bundler.rpm.repodata import Dependency, Package
from bundler.rpm.resolver import Resolver, UnresolvableError
from bundler.rpm.vercmp import EVR


def pkg(nevr: str, requires: Sequence[str] = (), provides: Sequence[str] = (), arch: str = "noarch",
        repo: str = "main", files: Sequence[str] = ()) -> Package:  # fmt: skip
    name, evr = nevr.split(" ", 1)
    full = EVR.parse(evr)
    return Package(
        repo=repo, name=name, arch=arch, evr=EVR(full.epoch, full.version, full.release or "1"),
        checksum_type="sha256", checksum=f"{nevr}-{arch}-{repo}", href=f"{name}.rpm", base=None, size=1,
        provides=tuple(parse_simple(p) for p in provides), requires=tuple(Dependency(r) if r.startswith("(")
        else parse_simple(r) for r in requires), conflicts=(), obsoletes=(), files=tuple(files),
    )  # fmt: skip


def resolve(packages: List[Package], requests: Sequence[str], pins: Optional[Dict[str, str]] = None,
            assumed: Sequence[str] = (), full: bool = False, arch: str = "amd64") -> Dict[str, str]:  # fmt: skip  # noqa: E501
    pool = Pool(packages, arch, ["main", "extra"])
    pin_deps = {name: parse_simple(f"{name} = {evr}") for name, evr in (pins or {}).items()}
    resolver = Resolver(pool, pin_deps, frozenset(assumed), full)
    result = resolver.resolve([parse_simple(r) for r in requests])
    return {p.name: f"{p.evr}.{p.arch}" for p in result.packages}


def test_newest_wins_and_pins_are_honoured() -> None:
    packages = [pkg("a 1.0-1", ["b"]), pkg("a 2.0-1", ["b"]), pkg("b 1.0-1"), pkg("b 1.5-1")]
    assert resolve(packages, ["a"]) == {"a": "2.0-1.noarch", "b": "1.5-1.noarch"}
    assert resolve(packages, ["a = 1.0"], pins={"b": "1.0-1"}) == {"a": "1.0-1.noarch", "b": "1.0-1.noarch"}


def test_target_arch_only_and_preferred_over_noarch() -> None:
    packages = [pkg("a 1.0-1", arch="x86_64"), pkg("a 1.0-1", arch="aarch64"), pkg("a 1.0-1", arch="i686")]
    assert resolve(packages, ["a"]) == {"a": "1.0-1.x86_64"}
    assert resolve(packages, ["a"], arch="arm64") == {"a": "1.0-1.aarch64"}


def test_boolean_dependencies() -> None:
    packages = [
        pkg("a 1-1", ["(missing or b)", "(c if b)", "(d if nothing)", "(e unless nothing)", "(f and g)",
                      "(h unless b else i)"]),
        pkg("b 1-1"), pkg("c 1-1"), pkg("d 1-1"), pkg("e 1-1"), pkg("f 1-1"), pkg("g 1-1"), pkg("h 1-1"),
        pkg("i 1-1"),
    ]  # fmt: skip
    assert set(resolve(packages, ["a"])) == {"a", "b", "c", "e", "f", "g", "i"}


def test_with_picks_one_package_meeting_both() -> None:
    packages = [
        pkg("a 1-1", ["(tool >= 2 with tool-ng)"]),
        pkg("tool 3-1"),
        pkg("tool-ng 2-1", provides=["tool = 2"]),
    ]
    assert set(resolve(packages, ["a"])) == {"a", "tool-ng"}


def test_assumed_packages_are_left_out_of_the_minimal_closure_only() -> None:
    packages = [
        pkg("a 1-1", ["glibc", "/bin/sh"]),
        pkg("glibc 2.34-1"),
        pkg("bash 5-1", provides=["/bin/sh"]),
    ]
    assert set(resolve(packages, ["a"], assumed=["glibc", "bash"])) == {"a"}
    assert set(resolve(packages, ["a"], assumed=["glibc", "bash"], full=True)) == {"a", "glibc", "bash"}


def test_file_dependencies_from_primary_files() -> None:
    packages = [pkg("a 1-1", ["/usr/sbin/tool"]), pkg("tool 1-1", files=["/usr/sbin/tool"])]
    assert set(resolve(packages, ["a"])) == {"a", "tool"}


def test_provider_named_like_the_requirement_wins() -> None:
    packages = [pkg("a 1-1", ["socat"]), pkg("socat 1-1"), pkg("socat-ng 9-1", provides=["socat = 9"])]
    assert set(resolve(packages, ["a"])) == {"a", "socat"}


def test_request_for_a_provided_name_takes_its_provider() -> None:
    packages = [pkg("iptables-nft 1.8.10-1", provides=["iptables = 1.8.10", "ebtables"])]
    pool = Pool(packages, "amd64", ["main"])
    result = Resolver(pool).resolve([parse_simple("iptables"), parse_simple("ebtables")])
    assert [p.name for p in result.packages] == ["iptables-nft"]
    assert result.requested == ("iptables-nft", "iptables-nft")


def test_earlier_repository_breaks_ties() -> None:
    packages = [pkg("a 1-1", repo="extra"), pkg("a 1-1", repo="main")]
    pool = Pool(packages, "amd64", ["main", "extra"])
    result = Resolver(pool).resolve([parse_simple("a")])
    assert result.packages[0].repo == "main"


@pytest.mark.parametrize(
    ("packages", "requests", "pins", "message"),
    [
        ([pkg("a 1-1", ["b >= 2"]), pkg("b 1-1")], ["a"], None,
         "cannot resolve RPM requirement requested a -> a-1-1.noarch requires b >= 2: nothing in the "
         "repositories (main, extra) provides b >= 2"),
        ([pkg("a 1-1", ["b"]), pkg("b 1-1"), pkg("b 2-1")], ["a"], {"b": "3"},
         "b is pinned to b = 3 and no such version is available"),
        ([pkg("a 1-1", ["(x or y)"])], ["a"], None, "provides (x or y)"),
        ([pkg("a 1-1", ["b = 1"]), pkg("c 1-1", ["b = 2"]), pkg("b 1-1"), pkg("b 2-1")], ["a", "c"], None,
         "b-1-1.noarch was already chosen and does not satisfy b = 2"),
        ([pkg("a 1-1")], ["kubeadm = 1.29.6"], None, "requested kubeadm = 1.29.6: nothing"),
    ],
)  # fmt: skip
def test_unresolvable(
    packages: List[Package], requests: List[str], pins: Optional[Dict[str, str]], message: str
) -> None:
    with pytest.raises(UnresolvableError) as error:
        resolve(packages, requests, pins)
    assert message in str(error.value)
