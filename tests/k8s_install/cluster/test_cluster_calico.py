"""Calico rendering on the real upstream calico-typha.yaml v3.28.0 (../shared/fixtures, tests only)."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
import yaml

from k8s_install.cluster.calico import manifest_images, render_calico, typha_replicas
from k8s_install.errors import InstallError
from tests.conftest import SHARED
from tests.support.cluster import load, seed_data

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
UPSTREAM = SHARED / "fixtures" / "calico-typha-v3.28.0.yaml"


@pytest.fixture(scope="module")
def upstream() -> str:
    if not UPSTREAM.is_file():
        pytest.skip(f"{UPSTREAM} is absent (the upstream Calico manifest is shared material, not in the project)")
    return UPSTREAM.read_text(encoding="utf-8")


def load_all(text: str) -> list:
    return list(yaml.load_all(text, Loader=LOADER))


def find(docs: List[Dict[str, Any]], kind: str, name: str) -> Dict[str, Any]:
    return next(d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name)


def node_container(docs: List[Dict[str, Any]]) -> Dict[str, Any]:
    spec = find(docs, "DaemonSet", "calico-node")["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == "calico-node")


def env(container: Dict[str, Any]) -> Dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def rendered(upstream: str, **changes: Any) -> List[Dict[str, Any]]:
    return [d for d in load_all(render_calico(upstream, load(seed_data(**changes)))) if d]


def test_upstream_has_the_pool_cidr_commented_out(upstream: str) -> None:
    docs = [d for d in load_all(upstream) if d]
    assert "CALICO_IPV4POOL_CIDR" not in env(node_container(docs))
    assert "# - name: CALICO_IPV4POOL_CIDR" in upstream


def test_pool_cidr_is_the_pod_network_and_ipip_always_by_default(upstream: str) -> None:
    docs = rendered(upstream)
    values = env(node_container(docs))
    assert values["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert values["CALICO_IPV4POOL_IPIP"] == "Always"
    assert values["CALICO_IPV4POOL_VXLAN"] == "Never"
    assert values["IP_AUTODETECTION_METHOD"] == "kubernetes-internal-ip"
    assert find(docs, "ConfigMap", "calico-config")["data"]["calico_backend"] == "bird"
    assert "-bird-ready" in node_container(docs)["readinessProbe"]["exec"]["command"]


def test_everything_else_is_kept(upstream: str) -> None:
    before = [d for d in load_all(upstream) if d]
    after = rendered(upstream)
    assert [(d["kind"], d["metadata"]["name"]) for d in before] == [(d["kind"], d["metadata"]["name"]) for d in after]
    for original, changed in zip(before, after):
        if (original["kind"], original["metadata"]["name"]) not in (
            ("DaemonSet", "calico-node"),
            ("Deployment", "calico-typha"),
        ):
            assert original == changed or original["kind"] == "ConfigMap"
    names_before = [e["name"] for e in node_container(before)["env"]]
    names_after = [e["name"] for e in node_container(after)["env"]]
    assert names_after[: len(names_before)] == names_before


@pytest.mark.parametrize(
    "calico,ipip,vxlan,backend",
    [
        ({"encapsulation": "IPIP", "mode": "CrossSubnet"}, "CrossSubnet", "Never", "bird"),
        ({"encapsulation": "VXLAN"}, "Never", "Always", "vxlan"),
        ({"encapsulation": "VXLAN", "mode": "CrossSubnet"}, "Never", "CrossSubnet", "vxlan"),
        ({"encapsulation": "None"}, "Never", "Never", "bird"),
    ],
)
def test_encapsulation_choices(upstream: str, calico: dict, ipip: str, vxlan: str, backend: str) -> None:
    docs = rendered(upstream, calico=calico)
    container = node_container(docs)
    values = env(container)
    assert (values["CALICO_IPV4POOL_IPIP"], values["CALICO_IPV4POOL_VXLAN"]) == (ipip, vxlan)
    assert find(docs, "ConfigMap", "calico-config")["data"]["calico_backend"] == backend
    probes = container["livenessProbe"]["exec"]["command"] + container["readinessProbe"]["exec"]["command"]
    assert (("-bird-live" in probes) and ("-bird-ready" in probes)) == (backend == "bird")


@pytest.mark.parametrize("nodes,replicas", [(1, 1), (2, 2), (3, 3), (5, 3), (200, 3), (700, 4), (1000, 5)])
def test_typha_replicas_by_cluster_size(nodes: int, replicas: int) -> None:
    assert typha_replicas(nodes) == replicas


def test_typha_replicas_in_the_manifest(upstream: str) -> None:
    assert find(rendered(upstream), "Deployment", "calico-typha")["spec"]["replicas"] == 3
    small = seed_data()
    small["nodes"] = small["nodes"][:1]
    docs = [d for d in load_all(render_calico(upstream, load(small))) if d]
    assert find(docs, "Deployment", "calico-typha")["spec"]["replicas"] == 1


def test_every_image_is_listed(upstream: str) -> None:
    assert manifest_images(upstream) == [
        "docker.io/calico/cni:v3.28.0",
        "docker.io/calico/kube-controllers:v3.28.0",
        "docker.io/calico/node:v3.28.0",
        "docker.io/calico/typha:v3.28.0",
    ]
    assert manifest_images(render_calico(upstream, load(seed_data()))) == manifest_images(upstream)


def test_a_file_that_is_not_calico_is_refused() -> None:
    with pytest.raises(InstallError, match="calico manifest: no DaemonSet calico-node"):
        render_calico("kind: ConfigMap\nmetadata: {name: x}\n", load(seed_data()))
    with pytest.raises(InstallError, match="calico manifest: not valid YAML"):
        render_calico("a: [\n", load(seed_data()))
