"""`join-info` on a control plane: make the pre-generated join material valid again and print it.

The bootstrap token is re-created with the same value when it has expired, and the control-plane
certificates are re-uploaded under the same certificate key (kubeadm deletes them after two hours), so the
cluster-secrets.yaml the other nodes use keeps working; the equivalent kubeadm command lines are printed
for a manual join. It works on any control plane: the upload's config is rendered for this node
(kubeadm-init.yaml exists only on the first).
"""

from __future__ import annotations

import argparse
import shlex

from k8s_install.cluster import kubeadm
from k8s_install.cluster.paths import ADMIN_KUBECONFIG
from k8s_install.cluster.paths import KUBEADM_UPLOAD_CERTS_CONFIG as UPLOAD_CERTS_CONFIG
from k8s_install.commands.node import make_node
from k8s_install.errors import InstallError
from k8s_install.node.atomic import write_atomically
from k8s_install.node.host import Host, masked


def run_join_info(args: argparse.Namespace) -> int:
    node = make_node(args, dry_run=False, need_complete=False)  # changes nothing the bundle would bring
    settings = node.settings
    host = node.host
    if not settings.is_control_plane:
        raise InstallError("join-info runs on a control plane (it needs the cluster's admin kubeconfig)")
    secrets = settings.secrets
    if secrets is None:
        raise InstallError("join-info needs cluster-secrets.yaml: pass --secrets FILE")
    config = settings.cluster_config()
    upload_config = kubeadm.render_upload_certs_config(config, settings.cluster_node(), secrets)
    if host.live:
        if not host.path(ADMIN_KUBECONFIG).exists():
            raise InstallError(f"{ADMIN_KUBECONFIG} is missing: this control plane has not joined the cluster yet")
        listed = host.run(kubeadm.token_list_command()).stdout.decode()
        if secrets.token_id not in listed:
            host.run(kubeadm.token_create_command(secrets), redact=[secrets.bootstrap_token])
        upload_certs(host, upload_config)
    else:
        host.skipped(f"would write: {UPLOAD_CERTS_CONFIG} (0600, removed after the command)")
        for command in [kubeadm.token_list_command(), kubeadm.token_create_command(secrets)]:
            host.skipped(f"would run: {masked(' '.join(command), [secrets.bootstrap_token])}")
        host.skipped(f"would run: {' '.join(kubeadm.upload_certs_command())}")
    print("join material is valid again (same token and certificate key as cluster-secrets.yaml):")
    print("  workers:        " + " ".join(shlex.quote(p) for p in kubeadm.join_command_line(config, secrets, False)))
    print("  control planes: " + " ".join(shlex.quote(p) for p in kubeadm.join_command_line(config, secrets, True)))
    print("or, simpler: ./k8s-install.pyz --role worker|control-plane with the same cluster-secrets.yaml")
    return 0


def upload_certs(host: Host, upload_config: str) -> None:
    """`kubeadm init phase upload-certs` with a config rendered for this control plane, written 0600 (it holds
    the certificate key) for the one command and removed after it, whatever the command did."""
    path = host.path(UPLOAD_CERTS_CONFIG)
    write_atomically(path, upload_config.encode(), mode=0o600, overwrite=True)
    try:
        host.run(kubeadm.upload_certs_command())
    finally:
        path.unlink()
