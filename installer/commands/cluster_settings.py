"""This node's settings from the cluster config and the command line."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

import yaml

from installer.bundle import Bundle
from installer.errors import InstallError
from installer.host import Host
from installer.layout import CLUSTER_CONFIG_NAME
from installer.settings import NodeSettings


def settings_for(args: argparse.Namespace, bundle: Bundle, host: Host) -> NodeSettings:
    path = Path(args.config) if args.config else bundle.root / CLUSTER_CONFIG_NAME
    if not path.is_file():
        raise InstallError(f"{path}: no cluster config; pass --config FILE or build the bundle with --cluster")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    nodes = data.get("nodes") or []
    by_name = {str(n["name"]): n for n in nodes}
    if not args.node or args.node not in by_name:
        raise InstallError(f"{path}: pass --node NAME, one of {', '.join(by_name)}")
    me = by_name[args.node]
    control_planes = [n for n in nodes if n.get("role") == "control-plane"]
    first_ip = str(control_planes[0]["ip"]) if control_planes else ""
    network = ipaddress.ip_interface(f"{me['ip']}/{data.get('node_prefix', 24)}").network
    first = bool(args.first)
    ntp = data.get("ntp_server")
    servers = (ntp,) if ntp else (() if first else (first_ip,))
    return NodeSettings(
        role=args.role,
        first=first,
        name=str(me["name"]),
        ip=str(me["ip"]),
        hosts=tuple((str(n["ip"]), str(n["name"])) for n in nodes),
        time_servers=tuple(servers),
        serve_time_to=str(network) if first else None,
        firewall=args.firewall,
        ignore_preflight=frozenset(args.ignore_preflight or []),
        containerd_address=args.containerd_address,
    )
