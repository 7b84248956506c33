"""`k8s-install.pyz config init|check|ansible`: write a starting cluster.yaml (+ secrets), check one here, or
write an Ansible inventory and playbook for every node from an admin node."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from k8s_install.bundle_format.layout import CLUSTER_CONFIG_NAME, MANIFEST_NAME, SECRETS_NAME, WORKER_SECRETS_NAME
from k8s_install.cluster.ansible_cli import add_ansible_options, ansible_settings
from k8s_install.cluster.model import DEFAULT_NAME
from k8s_install.errors import InstallError


def add_config_parser(commands: Any) -> None:
    config = commands.add_parser("config", help="write or check cluster.yaml, or write its Ansible playbook")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="write a commented cluster.yaml and its secrets files (0600)")
    init.add_argument("--dir", type=Path, default=Path("."), help="where to write them (default: .)")
    init.add_argument("--name", default=DEFAULT_NAME, help=f"cluster name (default {DEFAULT_NAME})")
    init.add_argument(
        "--trusted-signers", type=Path, default=argparse.SUPPRESS, metavar="FILE",
        help="OpenSSH allowed_signers file to record in the secrets: nodes then refuse unsigned bundles",
    )  # fmt: skip
    check = actions.add_parser("check", help="validate cluster.yaml and show which node this machine is")
    # SUPPRESS: the same options given before the command name (`--config X config check`) are kept
    keep = argparse.SUPPRESS
    check.add_argument("--config", type=Path, default=keep, help="cluster.yaml (default: the one in the bundle)")
    check.add_argument("--secrets", type=Path, default=keep, help=f"also check this {SECRETS_NAME}")
    check.add_argument("--node", default=keep, help="this machine's node name (default: matched by its addresses)")
    ansible = actions.add_parser("ansible", help="write an Ansible inventory and playbook for every node")
    ansible.add_argument("--config", type=Path, default=keep, help="cluster.yaml (default: the one in the bundle)")
    ansible.add_argument(
        "--tarball", type=Path, metavar="FILE.tar", help="the bundle tarball to carry (default: beside the bundle)"
    )
    add_ansible_options(ansible)


def bundle_kubernetes(bundle: Path) -> Optional[str]:
    """The Kubernetes version of the bundle folder, None when there is no bundle there. Read by the one
    reader, files not hashed: bundle.yaml must match its SHA256SUMS line and have the bundle's shape."""
    from k8s_install.bundle_format.opened import open_bundle

    if not (Path(bundle) / MANIFEST_NAME).is_file():
        return None
    with open_bundle(bundle, allow_delta=True, check_files=False) as opened:
        return opened.kubernetes


def run_config(args: argparse.Namespace, bundle: Path) -> int:
    from k8s_install.cluster.config import load_cluster_config
    from k8s_install.cluster.identity import identify_image_node, identify_node, read_local_addresses
    from k8s_install.cluster.secrets import load_secrets
    from k8s_install.cluster.starter import write_starting_files

    version = bundle_kubernetes(bundle)
    if args.config_command == "init":
        if version is None:
            raise InstallError(
                f"{bundle}: no {MANIFEST_NAME} to take the Kubernetes version from; "
                "run this from the unpacked bundle or pass --bundle DIR"
            )
        from k8s_install.bundle_format.signature import read_trusted_signers

        given = getattr(args, "trusted_signers", None)
        signers = read_trusted_signers(Path(given)).text if given else ""
        written = write_starting_files(args.dir, version, args.name, signers)
        print(
            f"wrote {written.config}, {written.secrets} and {written.worker_secrets} (0600); "
            "edit cluster.yaml, then `config check`"
        )
        return 0
    if args.config_command == "ansible":
        return run_config_ansible(args, Path(bundle), version)
    loaded = load_cluster_config(args.config or Path(bundle) / CLUSTER_CONFIG_NAME, version)
    config = loaded.config
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    if args.secrets is not None:
        for warning in load_secrets(args.secrets, config.name).warnings:
            print(f"warning: {warning}")
    image = getattr(args, "root", None) and Path(args.root) != Path("/") and args.node
    if image:
        identity = identify_image_node(config, args.node)
    else:
        identity = identify_node(config, read_local_addresses(), args.node)
    print(
        f"cluster {config.name} is valid; {f'the image in {args.root}' if image else 'this machine'} is "
        f"{identity.node.name} ({identity.node.role}, {identity.node.ip} on {identity.interface or 'any interface'})"
    )
    return 0


def run_config_ansible(args: argparse.Namespace, bundle: Path, version: Optional[str]) -> int:
    from k8s_install.cluster.ansible import AnsibleOptions, next_steps, write_ansible
    from k8s_install.cluster.config import load_cluster_config

    config_path = args.config or bundle / CLUSTER_CONFIG_NAME
    beside = Path(args.config).parent if args.config else bundle.resolve().parent  # where secrets are kept
    config = load_cluster_config(config_path, version).config
    options = AnsibleOptions(
        tarball=args.tarball or bundle.resolve().parent / f"{bundle.resolve().name}.tar",
        secrets=args.secrets or beside / SECRETS_NAME,
        worker_secrets=args.worker_secrets or beside / WORKER_SECRETS_NAME,
        output=args.dir,
        **ansible_settings(args),
    )
    written = write_ansible(config, config_path, options)
    for path in written:
        print(f"wrote {path}")
    print(next_steps(written))
    return 0
