"""kubeadm configuration (kubeadm.k8s.io/v1beta3, v1beta4 from kubeadm 1.31) and the exact commands the steps run.

The first control plane runs `kubeadm init --config FILE --upload-certs` with the pre-generated token,
certificate key and CA (placed in /etc/kubernetes/pki first); every other node runs
`kubeadm join --config FILE`, pinning the CA by its hash. `join-info` commands renew the join material
on a running control plane without changing it, so the secrets file stays valid.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Tuple

from k8s_install.cluster import paths
from k8s_install.cluster.model import API_SERVER_PORT, IMAGE_REPOSITORY, ClusterConfig, Node
from k8s_install.cluster.render import render
from k8s_install.cluster.secrets import ClusterSecrets

CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
TOKEN_TTL = "24h0m0s"  # kubeadm's default; `join-info` re-creates the same token when it expired
DISCOVERY_TIMEOUT = "5m0s"


V1BETA3 = "kubeadm.k8s.io/v1beta3"
V1BETA4 = "kubeadm.k8s.io/v1beta4"
V1BETA4_SINCE = (1, 31)  # kubeadm 1.31 adds v1beta4 and deprecates v1beta3


def minor_of(kubernetes_version: str) -> Tuple[int, int]:
    """(1, 31) from "1.31.14" or "v1.31.14"."""
    major, minor = kubernetes_version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def api_version(kubernetes_version: str) -> str:
    """The kubeadm configuration API this release's kubeadm is given: v1beta4 from 1.31 (its
    kubeletExtraArgs is a list of {name, value}; discovery.timeout became timeouts.discovery,
    as `kubeadm config migrate` writes it)."""
    return V1BETA4 if minor_of(kubernetes_version) >= V1BETA4_SINCE else V1BETA3


def api_values(kubernetes_version: str) -> Dict[str, object]:
    version = api_version(kubernetes_version)
    return {"api_version": version, "v1beta4": version == V1BETA4}


class PlacedFile(NamedTuple):
    path: str
    content: str
    mode: int


def render_init_config(config: ClusterConfig, node: Node, secrets: ClusterSecrets) -> str:
    if node.name != config.first_control_plane.name:
        raise ValueError(f"{node.name} is not the first control plane")
    return _render_init(config, node, secrets, upload_certs=False)


def render_upload_certs_config(config: ClusterConfig, node: Node, secrets: ClusterSecrets) -> str:
    """The init configuration as seen from any control plane, for `kubeadm init phase upload-certs --config`
    (`join-info`): it names the release (no version lookup on the internet) and the external etcd files the
    phase uploads as well, which the bare `--certificate-key` flag would not."""
    if not node.is_control_plane:
        raise ValueError(f"{node.name} is not a control plane")
    return _render_init(config, node, secrets, upload_certs=True)


def _render_init(config: ClusterConfig, node: Node, secrets: ClusterSecrets, upload_certs: bool) -> str:
    return render(
        "kubeadm-init.yaml.j2",
        upload_certs=upload_certs,
        cluster=config.name,
        node_name=node.name,
        node_ip=str(node.ip),
        token=secrets.bootstrap_token,
        token_ttl=TOKEN_TTL,
        certificate_key=secrets.certificate_key,
        api_server_port=API_SERVER_PORT,
        cri_socket=CRI_SOCKET,
        kubernetes_version=f"v{config.kubernetes_version}",
        control_plane_endpoint=config.api_endpoint,
        image_repository=IMAGE_REPOSITORY,
        vip=str(config.vip),
        pod_subnet=str(config.pod_network),
        service_subnet=str(config.service_network),
        external_etcd=config.external_etcd,
        **api_values(config.kubernetes_version),
    )


def render_join_config(config: ClusterConfig, node: Node, secrets: ClusterSecrets) -> str:
    return render(
        "kubeadm-join.yaml.j2",
        cluster=config.name,
        node_name=node.name,
        node_ip=str(node.ip),
        role=node.role,
        control_plane=node.is_control_plane,
        token=secrets.bootstrap_token,
        control_plane_endpoint=config.api_endpoint,
        ca_cert_hash=secrets.ca_cert_hash,
        discovery_timeout=DISCOVERY_TIMEOUT,
        cri_socket=CRI_SOCKET,
        certificate_key=secrets.certificate_key,
        api_server_port=API_SERVER_PORT,
        **api_values(config.kubernetes_version),
    )


def preplaced_ca_files(secrets: ClusterSecrets) -> List[PlacedFile]:
    """Files the first control plane needs before `kubeadm init`: kubeadm then uses this CA, not a new one."""
    return [
        PlacedFile(f"{paths.KUBERNETES_PKI}/ca.crt", secrets.ca_cert_pem, 0o644),
        PlacedFile(f"{paths.KUBERNETES_PKI}/ca.key", secrets.ca_key_pem, 0o600),
    ]


def public_ca_file(secrets: ClusterSecrets) -> PlacedFile:
    """The CA certificate the check script and haproxy verify API servers with (every control plane)."""
    return PlacedFile(paths.CLUSTER_CA_CERT, secrets.ca_cert_pem, 0o644)


def init_command(config_path: str = paths.KUBEADM_INIT_CONFIG) -> List[str]:
    return ["kubeadm", "init", "--config", config_path, "--upload-certs"]


def join_command(config_path: str = paths.KUBEADM_JOIN_CONFIG) -> List[str]:
    return ["kubeadm", "join", "--config", config_path]


class CopiedFile(NamedTuple):
    source: str
    target: str
    mode: int


def root_kubeconfig() -> CopiedFile:
    """After init (and a control-plane join): root's kubectl uses a private copy of the admin kubeconfig."""
    return CopiedFile(paths.ADMIN_KUBECONFIG, paths.ROOT_KUBECONFIG, 0o600)


def join_command_line(config: ClusterConfig, secrets: ClusterSecrets, control_plane: bool) -> List[str]:
    """The same join as the config file, as a command line (what `join-info` prints for a manual join)."""
    command = [
        "kubeadm",
        "join",
        config.api_endpoint,
        "--token",
        secrets.bootstrap_token,
        "--discovery-token-ca-cert-hash",
        secrets.ca_cert_hash,
    ]
    if control_plane:
        command += ["--control-plane", "--certificate-key", secrets.certificate_key]
    return command


def token_list_command() -> List[str]:
    """Lists live tokens (first column: the token, secret part masked); look for `secrets.token_id`."""
    return ["kubeadm", "token", "list", "--kubeconfig", paths.ADMIN_KUBECONFIG]


def token_create_command(secrets: ClusterSecrets, ttl: str = TOKEN_TTL) -> List[str]:
    """Re-creates the pre-generated token (after it expired), so the secrets file keeps working."""
    return [
        "kubeadm",
        "token",
        "create",
        secrets.bootstrap_token,
        "--ttl",
        ttl,
        "--kubeconfig",
        paths.ADMIN_KUBECONFIG,
    ]


def upload_certs_command(config_path: str = paths.KUBEADM_UPLOAD_CERTS_CONFIG) -> List[str]:
    """Re-uploads the control-plane certificates under the same key (kubeadm deletes them after 2 h); the
    config is render_upload_certs_config's, which every control plane can write (kubeadm-init.yaml exists
    only on the first)."""
    return ["kubeadm", "init", "phase", "upload-certs", "--upload-certs", "--config", config_path]
