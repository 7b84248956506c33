"""`bundler cluster ansible` / `k8s-install.pyz config ansible`: an inventory and a playbook from cluster.yaml.

The playbook uses only ansible-core's built-in modules (nothing more to carry into the air gap). It copies
the bundle tarball to every node unless the node's SHA256SUMS already has the sum recorded here, verifies
it, runs the first control plane, the other control planes one at a time, then the workers in batches;
each node gets only the secrets file its role needs (mode 0600). A second playbook, k8s-upgrade.yml, has the
same plays and batches but runs `k8s-install.pyz upgrade` (`upgrade plan` in check mode): kubeadm's order
of nodes is the install's.

With --bundle-url and --serve, a first play sets up that bundle host (group k8s_bundle_host): the tarball is
copied there once (skipped when its SHA256SUMS matches), unpacked, and `k8s-install.pyz serve` run with the
full secrets; the play waits until nginx answers, then the nodes fetch from it.

The bundle may be a delta (`bundler build --from OLD`, DELTA.yaml naming its base): the playbooks then copy
the delta, unpack it beside the base folder an earlier playbook run left in the nodes' remote folder, and
complete it there with `k8s-install.pyz verify --base` before anything else runs; a node without that base
stops the rollout with the installer's error line.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import List, NamedTuple, Sequence, Tuple

from k8s_install.bundle_format.layout import (
    CLUSTER_CONFIG_NAME,
    DELTA_NAME,
    INSTALLER_NAME,
    SECRETS_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    WORKER_SECRETS_NAME,
)
from k8s_install.bundle_format.opened import open_bundle
from k8s_install.cluster.ansible_cli import DEFAULT_NODE_PYTHON, DEFAULT_REMOTE_DIR, DEFAULT_WORKER_BATCH
from k8s_install.cluster.model import ClusterConfig
from k8s_install.cluster.render import render
from k8s_install.cluster.secrets import load_secrets
from k8s_install.errors import InstallError
from k8s_install.node.atomic import write_atomically

INVENTORY_NAME = "inventory.yml"
PLAYBOOK_NAME = "k8s-cluster.yml"
NODE_TASKS_NAME = "k8s-node-tasks.yml"
UPGRADE_PLAYBOOK_NAME = "k8s-upgrade.yml"
UPGRADE_TASKS_NAME = "k8s-node-upgrade.yml"
NODE_KIT_NAME = "bundle-kit"  # with --bundle-url: what each node receives (the installer, SHA256SUMS, its signature)


class BundleTarball(NamedTuple):
    path: Path
    top: str  # the folder the tarball unpacks into
    sums_sha256: str  # sha256 of its SHA256SUMS: what a node's copy must match to be skipped
    kubernetes: str
    base: str = ""  # a delta: the top folder of the bundle it completes from (else "")
    base_sums_sha256: str = ""  # a delta: the sha256 of that base's SHA256SUMS


@dataclass(frozen=True)
class AnsibleOptions:
    tarball: Path
    secrets: Path  # cluster-secrets.yaml: control planes
    worker_secrets: Path  # cluster-secrets-worker.yaml: workers
    output: Path  # folder for the inventory and the playbook
    remote_dir: str = DEFAULT_REMOTE_DIR
    worker_batch: int = DEFAULT_WORKER_BATCH
    node_python: str = DEFAULT_NODE_PYTHON
    ssh_user: str = "root"
    bundle_url: str = ""  # nodes fetch from this bundle host (docs/bundle-url.md); "" = the tarball to each node
    serve_host: bool = False  # with bundle_url: the playbook also sets up that host (`k8s-install.pyz serve`)


class BundleHostEntry(NamedTuple):
    """The machine of --bundle-url, as the inventory's k8s_bundle_host group names it (with --serve)."""

    name: str  # its inventory name: the node's when the host is a node of the cluster, else k8s-bundle-host
    address: str  # the URL's host: what Ansible connects to and the serving certificate names
    https_port: int  # the URL's port: nginx's (`serve --https-port`)
    is_node: bool


BUNDLE_HOST_NAME = "k8s-bundle-host"


def bundle_host_entry(config: ClusterConfig, url: str) -> BundleHostEntry:
    """The bundle host of `url`: a node of the cluster when its address or name is the URL's host."""
    parsed = urllib.parse.urlsplit(url)
    address = parsed.hostname or ""
    port = parsed.port or 443
    node = next((node for node in config.nodes if address in (str(node.ip), node.name)), None)
    if node is not None:
        return BundleHostEntry(node.name, address, port, True)
    return BundleHostEntry(BUNDLE_HOST_NAME, address, port, False)


def read_bundle_tarball(path: Path) -> BundleTarball:
    """Verify the tarball completely (it is about to be copied to every node) and read its identity: one
    opening by the one reader (one top folder, regular files only, bundle.yaml consistent; a delta's carried
    files all match)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise InstallError(f"{path}: no such bundle tarball; give the .tar that `bundler build` wrote")
    with open_bundle(path, allow_delta=True) as bundle:
        top, sums_sha256, kubernetes, record = bundle.top, bundle.sums_sha256, bundle.kubernetes, bundle.delta
    if record is None:
        return BundleTarball(path, top, sums_sha256, kubernetes)
    base, base_sums = _delta_base(record)
    if not base:
        raise InstallError(f"{path}: its {DELTA_NAME} names no base bundle folder: rebuild the delta")
    return BundleTarball(path, top, sums_sha256, kubernetes, base, base_sums)


def _delta_base(record: object) -> Tuple[str, str]:
    """(base folder name, its SHA256SUMS sha256) from a DELTA.yaml; ("", "") when it names none usable."""
    base = record.get("base") if isinstance(record, dict) else None
    if not isinstance(base, dict):
        return "", ""
    name, sums = str(base.get("bundle") or ""), str(base.get("sums_sha256") or "")
    if not name or "/" in name or name in (".", ".."):  # a folder beside the delta on the node, nothing else
        return "", ""
    return name, sums


def check_inputs(config: ClusterConfig, bundle: BundleTarball, options: AnsibleOptions) -> None:
    """Everything the playbook will carry must be right before a file is written."""
    if bundle.kubernetes != config.kubernetes_version:
        raise InstallError(
            f"{bundle.path}: a bundle of Kubernetes {bundle.kubernetes}, but cluster.yaml says "
            f"{config.kubernetes_version}: use the matching bundle or fix kubernetes_version"
        )
    full = load_secrets(options.secrets, config.name).secrets
    if full.is_worker_only:
        raise InstallError(f"{options.secrets}: a worker-only secrets file; control planes need {SECRETS_NAME}")
    if config.workers:
        worker = load_secrets(options.worker_secrets, config.name).secrets
        if not worker.is_worker_only:
            raise InstallError(
                f"{options.worker_secrets}: holds the full secrets; workers get only {WORKER_SECRETS_NAME} "
                "(written by `cluster init` beside cluster-secrets.yaml)"
            )
        if worker.bootstrap_token != full.bootstrap_token or worker.ca_cert_hash != full.ca_cert_hash:
            raise InstallError(f"{options.worker_secrets}: not from the same `cluster init` as {options.secrets}")
    if options.worker_batch < 1:
        raise InstallError("--worker-batch: must be 1 or more")
    if not options.remote_dir.startswith("/"):
        raise InstallError(f"--remote-dir: {options.remote_dir} is not an absolute path on the nodes")
    if options.serve_host and not options.bundle_url:
        raise InstallError("--serve: give --bundle-url https://HOST:PORT as well: the host to set up and serve from")
    if options.bundle_url:
        from k8s_install.bundle_url.client import normalise_url

        normalise_url(options.bundle_url)
        if options.serve_host and urllib.parse.urlsplit(options.bundle_url).path.strip("/"):
            raise InstallError(
                f"--serve: `k8s-install.pyz serve` serves the bundle at the root of https://HOST:PORT/; "
                f"give --bundle-url without the path of {options.bundle_url}"
            )
        if bundle.base:
            raise InstallError(
                f"{bundle.path}: a delta bundle; with --bundle-url the host serves a whole bundle: complete the delta "
                "on the host (`k8s-install.pyz verify --base DIR`) and give its completed folder's tarball"
            )


def write_node_kit(bundle: BundleTarball, folder: Path) -> Path:
    """With --bundle-url: the files each node receives, taken from the (just verified) tarball."""
    with open_bundle(bundle.path, check_files=False) as opened:
        kit = {name: opened.read(name) for name in (INSTALLER_NAME, SUMS_NAME, SIGNATURE_NAME) if opened.has(name)}
    if INSTALLER_NAME not in kit:
        raise InstallError(f"{bundle.path}: no {INSTALLER_NAME} in the bundle: rebuild it")
    for name, data in kit.items():
        write_atomically(folder / name, data, mode=0o644, overwrite=True)
    stale = folder / SIGNATURE_NAME
    if SIGNATURE_NAME not in kit and stale.exists():
        stale.unlink()
    return folder


def inventory_text(config: ClusterConfig, config_path: Path, bundle: BundleTarball, options: AnsibleOptions) -> str:
    first = config.first_control_plane
    return render(
        "ansible-inventory.yml.j2",
        config=config,
        first=first,
        other_planes=[node for node in config.control_planes if node != first],
        workers=config.workers,
        bundle=bundle,
        options=options,
        config_path=str(Path(config_path).resolve()),
        secrets_path=str(Path(options.secrets).resolve()),
        worker_secrets_path=str(Path(options.worker_secrets).resolve()),
        node_kit=str((Path(options.output) / NODE_KIT_NAME).resolve()),
        bundle_host=bundle_host_entry(config, options.bundle_url) if options.serve_host else None,
    )


def playbook_text(config: ClusterConfig, options: AnsibleOptions, upgrade: bool = False, delta: bool = False) -> str:
    """The install playbook, or with `upgrade` the upgrade playbook: the same plays, in the same order; with
    `delta`, the first play completes the delta bundle from its base folder on each node."""
    names = {
        "sums": SUMS_NAME,
        "installer": INSTALLER_NAME,
        "config": CLUSTER_CONFIG_NAME,
        "secrets": SECRETS_NAME,
        "worker_secrets": WORKER_SECRETS_NAME,
        "delta": DELTA_NAME,
        "signature": SIGNATURE_NAME,
    }
    node_tasks = UPGRADE_TASKS_NAME if upgrade else NODE_TASKS_NAME
    return render(
        "ansible-playbook.yml.j2",
        config=config,
        options=options,
        node_tasks=node_tasks,
        names=names,
        upgrade=upgrade,
        delta=delta,
    )


def node_tasks_text(upgrade: bool = False) -> str:
    return render("ansible-node-tasks.yml.j2", upgrade=upgrade)


def write_ansible(config: ClusterConfig, config_path: Path, options: AnsibleOptions) -> List[Path]:
    """Check the inputs, then write the inventory, the playbook and its node tasks (regenerated each time)."""
    bundle = read_bundle_tarball(options.tarball)
    check_inputs(config, bundle, options)
    texts = {
        INVENTORY_NAME: inventory_text(config, config_path, bundle, options),
        PLAYBOOK_NAME: playbook_text(config, options, delta=bool(bundle.base)),
        NODE_TASKS_NAME: node_tasks_text(),
        UPGRADE_PLAYBOOK_NAME: playbook_text(config, options, upgrade=True, delta=bool(bundle.base)),
        UPGRADE_TASKS_NAME: node_tasks_text(upgrade=True),
    }
    written = []
    if options.bundle_url:
        write_node_kit(bundle, Path(options.output) / NODE_KIT_NAME)
    for name, text in texts.items():
        path = Path(options.output) / name
        write_atomically(path, text.encode(), mode=0o644, overwrite=True)
        written.append(path)
    return written


def next_steps(written: Sequence[Path]) -> str:
    inventory, playbook, upgrade = written[0], written[1], written[3]
    return (
        f"next: ansible-playbook -i {inventory} {playbook} --check (each node's plan), then without --check to install"
        f"; to move an installed cluster to this bundle's release: the same with {upgrade}"
    )
