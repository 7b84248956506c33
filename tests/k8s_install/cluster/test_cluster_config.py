"""cluster.yaml validation: every rule has a case here with the one-line message it gives."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable, Dict

import pytest
import yaml

from k8s_install.cluster.config import load_cluster_config, parse_cluster_config
from k8s_install.cluster.model import derived_virtual_router_id
from k8s_install.cluster.starter import starting_config_text
from k8s_install.errors import ErrorList, InstallError
from tests.support.cluster import load, seed_data, warnings_for

Change = Callable[[Dict[str, Any]], None]


def node(index: int, **fields: Any) -> Change:
    return lambda data: data["nodes"][index].update(fields)


def section(name: str, **fields: Any) -> Change:
    return lambda data: data.setdefault(name, {}).update(fields)


def top(**fields: Any) -> Change:
    return lambda data: data.update(fields)


def remove_node(index: int) -> Change:
    return lambda data: data["nodes"].pop(index)


def all_workers(data: Dict[str, Any]) -> None:
    for entry in data["nodes"]:
        entry["role"] = "worker"


def alias_bomb() -> list:
    """Nine levels of nine: safe_dump writes each shared level once and refers to it by alias (9**9 strings)."""
    level: list = ["x"] * 9
    for _ in range(8):
        level = [level] * 9
    return level


CASES = [
    # (id, change, expected message)
    (
        "pods-host-bits",
        section("networks", pods="10.96.0.0/8"),
        "networks.pods: 10.96.0.0/8 is not a network address (host bits are set): use 10.0.0.0/8",
    ),
    (
        "pods-not-cidr",
        section("networks", pods="10.244.0.0"),
        "networks.pods: '10.244.0.0' is not a network in CIDR",
    ),
    (
        "pods-garbage",
        section("networks", pods="10.244.0.0/33"),
        "networks.pods: '10.244.0.0/33' is not a network",
    ),
    ("services-ipv6", section("networks", services="fd00::/108"), "networks.services: fd00::/108 is IPv6"),
    (
        "pods-overlap-services",
        section("networks", pods="10.96.0.0/11"),
        "networks.pods: 10.96.0.0/11 overlaps networks.services 10.96.0.0/12: choose ranges that do not",
    ),
    (
        "pods-overlap-nodes",
        section("networks", pods="192.168.0.0/16"),
        "networks.pods: 192.168.0.0/16 overlaps networks.nodes 192.168.10.0/24",
    ),
    (
        "services-overlap-nodes",
        section("networks", services="192.168.0.0/16"),
        "networks.services: 192.168.0.0/16 overlaps networks.nodes 192.168.10.0/24",
    ),
    (
        "services-too-big",
        section("networks", services="10.64.0.0/10"),
        "networks.services: 10.64.0.0/10 is larger than the API server allows (at most /12",
    ),
    (
        "pods-too-small",
        section("networks", pods="10.244.0.0/24"),
        "networks.pods: 10.244.0.0/24 is too small for 5 nodes: each node takes a /24 of it; use /21 or larger, "
        "e.g. 10.244.0.0/21",
    ),
    ("networks-missing", top(networks=None), "networks.nodes: is required"),
    ("node-ip-invalid", node(1, ip="192.168.10.300"), "nodes[1].ip: '192.168.10.300' is not an IP address"),
    ("node-ip-ipv6", node(1, ip="fd00::1"), "nodes[1].ip: fd00::1 is IPv6; only IPv4 is supported so far"),
    (
        "node-ip-loopback",
        node(0, ip="127.0.0.1"),
        "nodes[0].ip: 127.0.0.1 cannot be a node or service address",
    ),
    (
        "node-in-pods",
        node(3, ip="10.244.1.5"),
        "nodes[3].ip: 10.244.1.5 is inside networks.pods 10.244.0.0/16",
    ),
    ("node-in-services", node(4, ip="10.96.0.10"), "nodes[4].ip: 10.96.0.10 is inside networks.services"),
    (
        "node-broadcast",
        node(3, ip="192.168.10.255"),
        "nodes[3].ip: 192.168.10.255 is the network or broadcast address of 192.168.10.0/24",
    ),
    (
        "cp-outside-node-net",
        node(2, ip="192.168.20.33"),
        "nodes[2].ip: control plane k8s-mn03 (192.168.20.33) is outside networks.nodes 192.168.10.0/24",
    ),
    (
        "vip-is-node",
        section("api", vip="192.168.10.22"),
        "api.vip: 192.168.10.22 is also the IP of node k8s-mn02: the VIP needs an unused address",
    ),
    (
        "vip-outside",
        section("api", vip="192.168.11.240"),
        "api.vip: 192.168.11.240 is outside the control planes' subnet networks.nodes 192.168.10.0/24",
    ),
    (
        "vip-broadcast",
        section("api", vip="192.168.10.255"),
        "api.vip: 192.168.10.255 is the network or broadcast address of 192.168.10.0/24",
    ),
    ("vip-invalid", section("api", vip="vip.example"), "api.vip: 'vip.example' is not an IP address"),
    ("vip-missing", top(api={"port": 8443}), "api.vip: is required"),
    (
        "port-apiserver",
        section("api", port=6443),
        "api.port: 6443 is used by the API server on every control plane",
    ),
    ("port-range", section("api", port=70000), "api.port: must be a whole number from 1 to 65535, got 70000"),
    (
        "vrid-range",
        section("api", virtual_router_id=0),
        "api.virtual_router_id: must be a whole number from 1 to 255",
    ),
    ("unicast-type", section("api", vrrp_unicast="yes please"), "api.vrrp_unicast: must be true or false"),
    (
        "duplicate-name",
        node(4, name="k8s-wn01"),
        "nodes[4].name: k8s-wn01 is also the name of nodes[3]: names must be unique",
    ),
    (
        "duplicate-ip",
        node(4, ip="192.168.10.100"),
        "nodes[4].ip: 192.168.10.100 is also the IP of nodes[3] (k8s-wn01): IPs must be unique",
    ),
    (
        "unknown-role",
        node(3, role="master"),
        "nodes[3].role: unknown role 'master': did you mean control-plane? use control-plane or worker",
    ),
    ("role-missing", node(3, role=None), "nodes[3].role: is required"),
    ("bad-node-name", node(0, name="K8S_MN01"), "nodes[0].name: 'K8S_MN01' is not a valid node name"),
    ("bad-interface", node(0, interface="eth 0"), "nodes[0].interface: 'eth 0' is not an interface name"),
    (
        "unknown-node-field",
        node(0, hostname="x"),
        "nodes[0].hostname: unknown field; did you mean name? allowed here: name, ip, role",
    ),
    ("no-control-plane", all_workers, "nodes: no node has role control-plane: at least one is needed"),
    ("no-nodes", top(nodes=[]), "nodes: must be a list of nodes with name, ip and role"),
    (
        "version-differs",
        top(kubernetes_version="1.29.5"),
        "kubernetes_version: 1.29.5 differs from this bundle's Kubernetes 1.29.6: set 1.29.6 or use a",
    ),
    (
        "version-shape",
        top(kubernetes_version="1.29"),
        "kubernetes_version: '1.29' is not a version like 1.29.6",
    ),
    ("name-shape", top(name="My Cluster"), "name: 'My Cluster' must be lowercase letters, digits and '-'"),
    ("unknown-top", top(vip="192.168.10.240"), "cluster.yaml: vip: unknown field; allowed here: name,"),
    ("typo-top", top(netwroks={}), "cluster.yaml: netwroks: unknown field; did you mean networks? allowed here: name,"),
    ("typo-node", node(0, nmae="x"), "nodes[0].nmae: unknown field; did you mean name? allowed here: name, ip,"),
    ("typo-api", section("api", vipp="x"), "api.vipp: unknown field; did you mean vip? allowed here: vip, port,"),
    (
        "node-name-64-characters",
        node(1, name="k8s-" + "a" * 60),
        "has 64 characters; a node name becomes its hostname and its kubernetes.io/hostname label, both at most 63",
    ),
    (
        "pods-loopback",
        section("networks", pods="127.0.0.0/16"),
        "networks.pods: 127.0.0.0/16 overlaps 127.0.0.0/8 (loopback): use a private range",
    ),
    (
        "services-link-local",
        section("networks", services="169.254.0.0/16"),
        "networks.services: 169.254.0.0/16 overlaps 169.254.0.0/16 (link-local): use a private range",
    ),
    ("port-alias-bomb", section("api", port=alias_bomb()), "api.port: must be a whole number from 1 to 65535, got [[["),
    ("endpoint-alias-bomb", section("etcd", topology="external", endpoints=[alias_bomb()]), "etcd.endpoints[0]: [[["),
    ("name-100k", top(name="x" * 100_000), "name: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxx"),
    ("pods-everything", section("networks", pods="0.0.0.0/0"), "networks.pods: 0.0.0.0/0 overlaps 0.0.0.0/8"),
    (
        "etcd-topology",
        section("etcd", topology="sidecar"),
        "etcd.topology: unknown topology 'sidecar': use stacked or external",
    ),
    (
        "etcd-external-no-endpoints",
        section("etcd", topology="external"),
        "etcd.endpoints: external etcd needs a list",
    ),
    (
        "etcd-external-endpoint",
        section("etcd", topology="external", endpoints=["10.0.0.5:2379"]),
        "etcd.endpoints[0]: '10.0.0.5:2379' is not like https://10.0.0.5:2379",
    ),
    (
        "etcd-external-relative",
        section(
            "etcd",
            topology="external",
            endpoints=["https://10.0.0.5:2379"],
            ca_file="ca.crt",
            cert_file="/c",
            key_file="/k",
        ),
        "etcd.ca_file: 'ca.crt' must be an absolute path on the control planes",
    ),
    (
        "etcd-stacked-extra",
        section("etcd", endpoints=["https://10.0.0.5:2379"]),
        "etcd.endpoints: only applies with topology: external",
    ),
    (
        "calico-encapsulation",
        section("calico", encapsulation="GRE"),
        "calico.encapsulation: unknown encapsulation 'GRE': use IPIP, VXLAN, None",
    ),
    (
        "calico-mode",
        section("calico", mode="Never"),
        "calico.mode: unknown mode 'Never': use Always or CrossSubnet (no encapsulation is encapsulation: None)",
    ),
    (
        "ntp-server",
        section("ntp", server="ntp server!"),
        "ntp.server: 'ntp server!' is not an IP address or host name",
    ),
]


# Cases whose one change breaks several fields: each is its own line.
CONSEQUENCES = {
    "networks-missing": 3,  # nodes, pods and services are each required
    "endpoint-alias-bomb": 4,  # external etcd without ca_file, cert_file, key_file
    "etcd-external-no-endpoints": 4,
    "etcd-external-endpoint": 4,
}


@pytest.mark.parametrize("change,message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_invalid_config_gets_one_line_naming_the_field(
    change: Change, message: str, request: pytest.FixtureRequest
) -> None:
    data = seed_data()
    change(data)
    with pytest.raises(ErrorList) as caught:
        load(data)
    errors = caught.value.errors
    assert len(errors) == CONSEQUENCES.get(request.node.callspec.id, 1), errors  # one mistake, one line
    assert message in errors[0]
    for text in errors:
        assert text.startswith("cluster.yaml: ")
        assert "\n" not in text and len(text) < 500  # a value is quoted cut short, however large it is


def test_the_seed_layout_is_valid_and_reads_as_values() -> None:
    config = load(seed_data())
    assert [n.name for n in config.control_planes] == ["k8s-mn01", "k8s-mn02", "k8s-mn03"]
    assert [n.name for n in config.workers] == ["k8s-wn01", "k8s-wn02"]
    assert config.api_endpoint == "192.168.10.240:8443"
    assert config.first_control_plane.ip == IPv4Address("192.168.10.11")
    assert config.etcd_topology == "stacked" and config.calico.ipip_mode == "Always"
    assert config.time_server == "192.168.10.11" and config.serves_time is not None
    assert config.time_clients() == [IPv4Network("192.168.10.0/24")]
    assert config.virtual_router_id == derived_virtual_router_id("seed")


def test_the_virtual_router_id_is_derived_from_the_name_in_1_to_255() -> None:
    ids = {derived_virtual_router_id(f"cluster-{n}") for n in range(2000)}
    assert min(ids) >= 1 and max(ids) <= 255 and len(ids) > 200
    assert derived_virtual_router_id("prod") == derived_virtual_router_id("prod")
    assert load(seed_data(api={"vip": "192.168.10.240", "virtual_router_id": 51})).virtual_router_id == 51


@pytest.mark.parametrize("planes,warned", [(1, False), (2, True), (3, False), (4, True)])
def test_an_even_number_of_stacked_control_planes_is_a_warning(planes: int, warned: bool) -> None:
    data = seed_data()
    for index, entry in enumerate(data["nodes"]):
        entry["role"] = "control-plane" if index < planes else "worker"
    warnings = warnings_for(data)
    assert bool(warnings) == warned
    if warned:
        assert f"nodes: {planes} control planes run stacked etcd" in warnings[0] and "odd number" in warnings[0]


def test_a_single_node_cluster_may_use_a_24_for_pods() -> None:
    data = seed_data(networks={"nodes": "192.168.10.0/24", "pods": "10.244.0.0/24", "services": "10.96.0.0/12"})
    data["nodes"] = data["nodes"][:1]
    assert load(data).pod_network.prefixlen == 24


def test_external_etcd_with_two_control_planes_is_not_warned_about() -> None:
    data = seed_data(
        etcd={
            "topology": "external",
            "endpoints": ["https://192.168.10.51:2379"],
            "ca_file": "/e/ca.crt",
            "cert_file": "/e/c.crt",
            "key_file": "/e/c.key",
        }
    )
    data["nodes"][2]["role"] = "worker"
    assert warnings_for(data) == []
    assert load(data).external_etcd.endpoints == ("https://192.168.10.51:2379",)  # type: ignore[union-attr]


def test_workers_may_sit_outside_the_node_network_and_get_time_too() -> None:
    data = seed_data()
    data["nodes"][4]["ip"] = "192.168.20.7"
    config = load(data)
    assert config.time_clients() == [IPv4Network("192.168.10.0/24"), IPv4Network("192.168.20.7/32")]


def test_version_may_carry_a_v_and_is_checked_only_against_a_bundle() -> None:
    assert load(seed_data(kubernetes_version="v1.29.6")).kubernetes_version == "1.29.6"
    assert load(seed_data(kubernetes_version="1.30.0"), bundle=None).kubernetes_version == "1.30.0"


def test_calico_settings_map_to_pool_modes() -> None:
    vxlan = load(seed_data(calico={"encapsulation": "VXLAN", "mode": "CrossSubnet"})).calico
    assert (vxlan.ipip_mode, vxlan.vxlan_mode, vxlan.backend) == ("Never", "CrossSubnet", "vxlan")
    plain = load(seed_data(calico={"encapsulation": "None"})).calico
    assert (plain.ipip_mode, plain.vxlan_mode, plain.backend) == ("Never", "Never", "bird")


def test_the_starting_file_loads_and_keeps_its_comments() -> None:
    text = starting_config_text("k8s-cluster", "1.29.6")
    config = parse_cluster_config(text, "starting", "1.29.6").config
    assert len(config.control_planes) == 3 and len(config.workers) == 2
    assert text.count("\n#") + text.count("  #") > 20


def test_bad_files_give_one_line(tmp_path) -> None:
    with pytest.raises(InstallError, match="no such file; write one with"):
        load_cluster_config(tmp_path / "missing.yaml")
    broken = tmp_path / "cluster.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(InstallError, match=r"cluster.yaml: not valid YAML at line 2: "):
        load_cluster_config(broken)
    broken.write_text("# only a comment\n")
    with pytest.raises(InstallError, match=r"cluster.yaml: empty; write one with `bundler cluster init`"):
        load_cluster_config(broken)
    broken.write_bytes(b"name: k8s\nkubernetes_version: 1.29.6\napi: {vip: \xff}\n")
    with pytest.raises(InstallError, match=r"cluster.yaml: line 3: not UTF-8 text \(invalid start byte\); save"):
        load_cluster_config(broken)
    broken.write_text("- a list\n")
    with pytest.raises(InstallError, match=r"\(top level\): must be a mapping"):
        load_cluster_config(broken)


def test_four_mistakes_are_reported_in_one_run_then_counted() -> None:
    """Regression: checking stopped at the first error, so four mistakes took four runs."""
    data = seed_data(calico={"encapsulation": "vxlan"})
    data["api"]["port"] = 6443
    data["nodes"][1]["ip"] = "192.168.10.300"
    data["nodes"][3]["role"] = "wrker"
    with pytest.raises(ErrorList) as caught:
        load(data)
    assert caught.value.lines == (
        "cluster.yaml: api.port: 6443 is used by the API server on every control plane; use 8443",
        "cluster.yaml: nodes[1].ip: '192.168.10.300' is not an IP address (write it like 192.168.10.11)",
        "cluster.yaml: nodes[3].role: unknown role 'wrker': did you mean worker? use control-plane or worker",
        "cluster.yaml: calico.encapsulation: unknown encapsulation 'vxlan': did you mean VXLAN? use IPIP, VXLAN, None",
        "cluster.yaml: 4 errors; fix them all and run again",
    )


def test_thousands_of_errors_show_the_first_hundred_and_count_all() -> None:
    data = seed_data()
    data["nodes"] += [{"name": f"w{i}", "ip": f"192.168.20.{i}", "role": "wrker"} for i in range(1, 201)]
    with pytest.raises(ErrorList) as caught:
        load(data)
    assert len(caught.value.errors) == 200 and len(caught.value.lines) == 101
    assert caught.value.lines[-1] == "cluster.yaml: 200 errors (100 more not shown); fix them all and run again"


ENUM_TYPOS = [
    # (change, field, suggestion): every field with a fixed set of values suggests the nearest one
    (node(3, role="wrker"), "nodes[3].role", "did you mean worker?"),
    (node(0, role="controlplane"), "nodes[0].role", "did you mean control-plane?"),
    (section("etcd", topology="extrenal"), "etcd.topology", "did you mean external?"),
    (section("calico", encapsulation="vxlan"), "calico.encapsulation", "did you mean VXLAN?"),
    (section("calico", mode="crosssubnet"), "calico.mode", "did you mean CrossSubnet?"),
    (section("api", vrrp_unicast="ture"), "api.vrrp_unicast", "did you mean true?"),
]


@pytest.mark.parametrize("change,field,suggestion", ENUM_TYPOS, ids=[case[1] for case in ENUM_TYPOS])
def test_a_misspelt_value_gets_the_nearest_valid_one(change: Change, field: str, suggestion: str) -> None:
    data = seed_data()
    change(data)
    with pytest.raises(ErrorList) as caught:
        load(data)
    assert len(caught.value.errors) == 1
    assert caught.value.errors[0].startswith(f"cluster.yaml: {field}: ") and suggestion in caught.value.errors[0]


KNOWN = ["1.29.6", "1.29.15", "1.30.14"]


def test_without_a_bundle_the_version_must_be_a_known_release() -> None:
    """Regression: `cluster check` without --k8s accepted kubernetes_version: 1.29.60."""
    with pytest.raises(InstallError) as caught:
        parse_cluster_config(yaml.safe_dump(seed_data(kubernetes_version="1.29.60")), "cluster.yaml", None, KNOWN)
    assert str(caught.value) == (
        "cluster.yaml: kubernetes_version: 1.29.60 is not a release this bundler knows: did you mean 1.29.6? "
        "known: 1.29.6, 1.29.15, 1.30.14"
    )
    with pytest.raises(InstallError, match=r"2\.0\.0 is not a release this bundler knows: known: 1\.29\.6,"):
        parse_cluster_config(yaml.safe_dump(seed_data(kubernetes_version="2.0.0")), "cluster.yaml", None, KNOWN)
    loaded = parse_cluster_config(yaml.safe_dump(seed_data(kubernetes_version="v1.29.15")), "c", None, KNOWN)
    assert loaded.config.kubernetes_version == "1.29.15"


def test_a_tab_gets_the_shared_one_line_yaml_message(tmp_path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("name: k8s\napi:\n\tvip: 192.168.10.240\n")
    with pytest.raises(InstallError) as caught:
        load_cluster_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid YAML at line 3, column 1: a tab character") and "\n" not in message
