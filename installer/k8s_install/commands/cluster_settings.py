"""This node's settings: the validated cluster config, which node this machine is, and the flags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import FrozenSet, List, Optional

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.layout import CLUSTER_CONFIG_NAME, SECRETS_NAME
from k8s_install.cluster.config import load_cluster_config
from k8s_install.cluster.identity import identify_image_node, identify_node, read_local_addresses
from k8s_install.cluster.model import ClusterConfig, Node
from k8s_install.cluster.secrets import ClusterSecrets, load_secrets
from k8s_install.commands.secrets_file import find_secrets
from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.settings import NodeSettings
from k8s_install.steps.preflight import CHECK_NAMES


def config_path(args: argparse.Namespace, bundle: Bundle) -> Path:
    path = Path(args.config) if args.config else bundle.root / CLUSTER_CONFIG_NAME
    if not path.is_file():
        raise InstallError(f"{path}: no cluster config; pass --config FILE, or build the bundle with --cluster FILE")
    return path


def secrets_path(args: argparse.Namespace, bundle: Bundle, host: Host, role: str) -> Optional[Path]:
    return find_secrets(args, bundle.root, host, role)


def ignored_checks(names: List[str]) -> FrozenSet[str]:
    unknown = sorted(set(names) - set(CHECK_NAMES))
    if unknown:
        raise InstallError(f"--ignore-preflight {unknown[0]}: no such check; the checks are {', '.join(CHECK_NAMES)}")
    return frozenset(names)


def check_role(args: argparse.Namespace, config: ClusterConfig, node: Node) -> None:
    role = args.role or node.role
    if role != node.role:
        raise InstallError(f"cluster.yaml: node {node.name} has role {node.role}, but --role {role} was given")
    is_first = node.name == config.first_control_plane.name
    if args.first and not is_first:
        raise InstallError(
            f"--first: the first control plane in cluster.yaml is {config.first_control_plane.name}, not {node.name}"
        )
    if is_first and not args.first:
        raise InstallError(f"{node.name} is the first control plane in cluster.yaml: run it with --first")


def edit_a_copy(error: InstallError, path: Path, bundle: Bundle) -> InstallError:
    """A fix in cluster.yaml, when the file is the bundle's own: SHA256SUMS covers it, so an edit there makes
    the bundle fail verification; the copy to edit goes beside the bundle, passed with --config."""
    if path != bundle.root / CLUSTER_CONFIG_NAME:
        return error
    copy = bundle.root.parent / CLUSTER_CONFIG_NAME
    return InstallError(
        f"{error}; edit a copy, not the bundle's {CLUSTER_CONFIG_NAME} (checked like every file of the bundle): "
        f"cp {path} {copy}, then pass --config {copy}"
    )


def settings_for(args: argparse.Namespace, bundle: Bundle, host: Host) -> NodeSettings:
    path = config_path(args, bundle)
    loaded = load_cluster_config(path, bundle.kubernetes or None)
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    config = loaded.config
    try:
        if not host.live and args.node:  # an image for another machine: its addresses need not be this machine's
            identity = identify_image_node(config, args.node)
        else:
            identity = identify_node(config, read_local_addresses(), args.node)
    except InstallError as error:  # the hints name fields of cluster.yaml to set
        raise edit_a_copy(error, path, bundle) from None
    node = identity.node
    check_role(args, config, node)
    secrets: Optional[ClusterSecrets] = None
    found = secrets_path(args, bundle, host, node.role)
    if found is not None:
        loaded_secrets = load_secrets(found, config.name)
        for warning in loaded_secrets.warnings:
            print(f"warning: {warning}")
        secrets = loaded_secrets.secrets
        if secrets.is_worker_only and node.is_control_plane:
            raise InstallError(f"{found}: a worker-only secrets file; control plane {node.name} needs {SECRETS_NAME}")
    first = node.name == config.first_control_plane.name
    serving = config.serves_time
    return NodeSettings(
        role=node.role,
        first=first,
        name=node.name,
        ip=str(node.ip),
        hosts=tuple((str(n.ip), n.name) for n in config.nodes),
        time_servers=() if serving is not None and serving.name == node.name else (config.time_server,),
        serve_time_to=(
            " ".join(str(net) for net in config.time_clients())
            if serving is not None and serving.name == node.name
            else None
        ),  # fmt: skip
        firewall=args.firewall,
        api_vip_port=config.api_port,
        ignore_preflight=ignored_checks(args.ignore_preflight or []),
        containerd_address=args.containerd_address,
        cluster=config,
        node=node,
        interface=identity.interface,
        secrets=secrets,
    )
