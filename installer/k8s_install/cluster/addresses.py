"""Parsing IPv4 addresses and networks with messages that say what is wrong and what to write instead."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable, Iterator, Optional, Sequence

from k8s_install.cluster.fields import shown

# Ranges no cluster network may touch: the kernel routes them itself (loopback, link-local) or they are not
# unicast at all. 169.254.0.0/16 also holds the cloud metadata and node-local DNS addresses.
SPECIAL_NETWORKS = (
    (IPv4Network("0.0.0.0/8"), "'this network'"),
    (IPv4Network("127.0.0.0/8"), "loopback"),
    (IPv4Network("169.254.0.0/16"), "link-local"),
    (IPv4Network("224.0.0.0/4"), "multicast"),
    (IPv4Network("240.0.0.0/4"), "reserved"),
)
PRIVATE_NETWORKS = (IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16"))
CONVENTIONAL_POD_ADDRESS = IPv4Address("10.244.0.0")  # kubeadm's and Calico's examples


def parse_ipv4(value: Any, field: str, fail: Callable[[str, str], Exception]) -> IPv4Address:
    text = str(value).strip() if value is not None else ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise fail(field, f"{shown(text)} is not an IP address (write it like 192.168.10.11)") from None
    if not isinstance(address, IPv4Address):
        raise fail(field, f"{text} is IPv6; only IPv4 is supported so far")
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        raise fail(field, f"{text} cannot be a node or service address (loopback, multicast or 0.0.0.0)")
    return address


def parse_ipv4_network(value: Any, field: str, fail: Callable[[str, str], Exception]) -> IPv4Network:
    text = str(value).strip() if value is not None else ""
    if "/" not in text:
        raise fail(field, f"{shown(text)} is not a network in CIDR form (write it like 10.244.0.0/16)")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise fail(field, f"{shown(text)} is not a network in CIDR form (write it like 10.244.0.0/16)") from None
    if not isinstance(network, IPv4Network):
        raise fail(field, f"{text} is IPv6; only IPv4 is supported so far")
    if str(network) != text:
        raise fail(field, f"{text} is not a network address (host bits are set): use {network}")
    for special, what in SPECIAL_NETWORKS:
        if network.overlaps(special):
            raise fail(
                field,
                f"{text} overlaps {special} ({what}): use a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
            )
    return network


def network_that_fits(base: IPv4Address, prefix: int, avoid: Sequence[IPv4Network]) -> Optional[IPv4Network]:
    """A /prefix network for a suggestion: the one holding `base` (the user's own choice, kept when it is a
    network address at that size), else 10.244.0.0/prefix, else the first free one in a private range; none
    overlapping `avoid` or a special range. None when nothing fits."""
    for candidate in _candidates(base, prefix):
        if not any(candidate.overlaps(other) for other in avoid) and not _special(candidate):
            return candidate
    return None


def _candidates(base: IPv4Address, prefix: int) -> Iterator[IPv4Network]:
    yield IPv4Network(f"{base}/{prefix}", strict=False)
    yield IPv4Network(f"{CONVENTIONAL_POD_ADDRESS}/{prefix}", strict=False)
    for private in PRIVATE_NETWORKS:
        if private.prefixlen <= prefix:
            yield from private.subnets(new_prefix=prefix)


def _special(network: IPv4Network) -> bool:
    return any(network.overlaps(special) for special, _ in SPECIAL_NETWORKS)
