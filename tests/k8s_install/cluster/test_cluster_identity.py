"""Which node this machine is: `ip -j addr` parsed and matched, `--node` override, default interface."""

from __future__ import annotations

import json
import shutil

import pytest

from k8s_install.cluster.identity import identify_node, parse_ip_addr_json, read_local_addresses
from k8s_install.errors import InstallError
from tests.support.cluster import load, seed_data


def ip_json(*links: tuple) -> str:
    """`ip -j addr show` output for (ifname, [addresses with prefix]) pairs."""
    out = []
    for index, (name, addresses) in enumerate(links, start=1):
        infos = []
        for cidr in addresses:
            local, prefix = cidr.split("/")
            family = "inet6" if ":" in local else "inet"
            infos.append({"family": family, "local": local, "prefixlen": int(prefix), "scope": "global"})
        out.append({"ifindex": index, "ifname": name, "flags": ["UP"], "addr_info": infos})
    return json.dumps(out)


SEED_MN02 = ip_json(("lo", ["127.0.0.1/8", "::1/128"]), ("ens33", ["192.168.10.22/24", "fe80::1/64"]), ("cali1", []))


def test_the_node_is_found_by_its_address_and_its_interface_is_the_one_holding_it() -> None:
    identity = identify_node(load(seed_data()), parse_ip_addr_json(SEED_MN02))
    assert (identity.node.name, identity.interface) == ("k8s-mn02", "ens33")


def test_the_vip_on_the_same_interface_does_not_confuse_the_match() -> None:
    text = ip_json(("ens33", ["192.168.10.11/24", "192.168.10.240/24"]))
    assert identify_node(load(seed_data()), parse_ip_addr_json(text)).node.name == "k8s-mn01"


def test_a_configured_interface_wins_and_must_exist() -> None:
    data = seed_data()
    data["nodes"][1]["interface"] = "bond0"
    addresses = parse_ip_addr_json(ip_json(("ens33", ["192.168.10.22/24"]), ("bond0", ["10.1.1.1/24"])))
    assert identify_node(load(data), addresses).interface == "bond0"
    data["nodes"][1]["interface"] = "eth9"
    with pytest.raises(InstallError, match="interface eth9 has no IPv4 address on this machine"):
        identify_node(load(data), addresses)


def test_no_match_names_this_machine_s_addresses() -> None:
    addresses = parse_ip_addr_json(ip_json(("lo", ["127.0.0.1/8"]), ("eth0", ["10.9.9.9/24"])))
    with pytest.raises(InstallError, match=r"addresses \(10\.9\.9\.9\) match no node IP .* or pass --node NAME"):
        identify_node(load(seed_data()), addresses)


def test_two_matches_ask_for_node() -> None:
    addresses = parse_ip_addr_json(ip_json(("eth0", ["192.168.10.11/24", "192.168.10.22/24"])))
    with pytest.raises(InstallError, match=r"several nodes \(k8s-mn01, k8s-mn02\): pass --node NAME"):
        identify_node(load(seed_data()), addresses)
    assert identify_node(load(seed_data()), addresses, "k8s-mn02").node.name == "k8s-mn02"


def test_node_override_must_name_a_node_and_needs_an_interface() -> None:
    addresses = parse_ip_addr_json(SEED_MN02)
    with pytest.raises(InstallError, match="--node k8s-mn09: no such node in cluster.yaml"):
        identify_node(load(seed_data()), addresses, "k8s-mn09")
    with pytest.raises(InstallError, match="IP 192.168.10.11 is not on this machine, so its interface is unknown"):
        identify_node(load(seed_data()), addresses, "k8s-mn01")


def test_garbage_from_ip_is_one_line() -> None:
    with pytest.raises(InstallError, match="is not JSON"):
        parse_ip_addr_json("Usage: ip address")


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed")
def test_the_real_ip_command_parses() -> None:
    addresses = read_local_addresses()
    assert any(entry.address.is_loopback and entry.interface == "lo" for entry in addresses)
