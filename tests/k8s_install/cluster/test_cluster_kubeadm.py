"""kubeadm configuration files: every key checked against the v1beta3 API, values and exact commands."""

from __future__ import annotations

import shutil

import pytest
import yaml

from k8s_install.cluster.kubeadm import (
    init_command,
    join_command,
    join_command_line,
    preplaced_ca_files,
    render_init_config,
    render_join_config,
    render_upload_certs_config,
    root_kubeconfig,
    token_create_command,
    upload_certs_command,
)
from k8s_install.cluster.secrets import ClusterSecrets, generate_secrets
from tests.conftest import REPO
from tests.support import kubeadm_v1beta3, kubeadm_v1beta4
from tests.support.cluster import load, seed_data
from tests.support.kubeadm_v1beta3 import unknown_keys

SCHEMAS = {**kubeadm_v1beta3.SCHEMAS, **kubeadm_v1beta4.SCHEMAS}

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make the CA")

EXTERNAL = {
    "topology": "external",
    "endpoints": ["https://192.168.10.51:2379", "https://192.168.10.52:2379"],
    "ca_file": "/etc/etcd/ca.crt",
    "cert_file": "/etc/etcd/client.crt",
    "key_file": "/etc/etcd/client.key",
}


@pytest.fixture(scope="module")
def secrets() -> ClusterSecrets:
    return generate_secrets("seed")


def documents(text: str) -> dict:
    parsed = [doc for doc in yaml.safe_load_all(text) if doc]
    by_kind = {doc["kind"]: doc for doc in parsed}
    assert len(by_kind) == len(parsed)
    for doc in parsed:
        schema = SCHEMAS[(doc["apiVersion"], doc["kind"])]
        assert unknown_keys(doc, schema) == [], doc["kind"]
    return by_kind


@pytest.mark.parametrize("etcd", [None, EXTERNAL], ids=["stacked", "external"])
def test_every_generated_key_exists_in_the_api(secrets: ClusterSecrets, etcd) -> None:
    config = load(seed_data(etcd=etcd) if etcd else seed_data())
    documents(render_init_config(config, config.first_control_plane, secrets))
    for node in config.nodes[1:]:
        documents(render_join_config(config, node, secrets))


def test_the_unknown_key_check_catches_a_misspelling() -> None:
    bad = {
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "ClusterConfiguration",
        "networking": {"podCIDR": "x"},
    }
    assert unknown_keys(bad, SCHEMAS[("kubeadm.k8s.io/v1beta3", "ClusterConfiguration")]) == ["networking.podCIDR"]


def test_init_configuration_values(secrets: ClusterSecrets) -> None:
    config = load(seed_data())
    docs = documents(render_init_config(config, config.first_control_plane, secrets))
    init, cluster, kubelet = (
        docs["InitConfiguration"],
        docs["ClusterConfiguration"],
        docs["KubeletConfiguration"],
    )
    assert init["bootstrapTokens"][0]["token"] == secrets.bootstrap_token
    assert init["bootstrapTokens"][0]["groups"] == ["system:bootstrappers:kubeadm:default-node-token"]
    assert init["bootstrapTokens"][0]["usages"] == ["signing", "authentication"]
    assert init["certificateKey"] == secrets.certificate_key
    assert init["localAPIEndpoint"] == {"advertiseAddress": "192.168.10.11", "bindPort": 6443}
    assert init["nodeRegistration"]["name"] == "k8s-mn01"
    assert init["nodeRegistration"]["criSocket"] == "unix:///var/run/containerd/containerd.sock"
    assert cluster["controlPlaneEndpoint"] == "192.168.10.240:8443"
    assert cluster["kubernetesVersion"] == "v1.29.6"
    assert cluster["imageRepository"] == "registry.k8s.io"
    assert cluster["clusterName"] == "seed"
    assert cluster["networking"] == {
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }
    assert cluster["etcd"] == {"local": {"dataDir": "/var/lib/etcd"}}
    assert kubelet == {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
    }


def test_kube_proxy_leaves_the_installers_conntrack_max_alone(secrets: ClusterSecrets) -> None:
    """lab-real: with kube-proxy's default conntrack settings the real kube-proxy rewrote nf_conntrack_max
    (131072 on 2 cores, against the 2310720 of the installer's sysctl file) and, on container nodes, exited
    with "open /proc/sys/net/netfilter/nf_conntrack_max: permission denied". maxPerCore 0 means: leave it."""
    from k8s_install.steps.kernel import SYSCTL_SETTINGS

    assert any(key == "net.netfilter.nf_conntrack_max" for key, _value, _why in SYSCTL_SETTINGS)
    config = load(seed_data())
    proxy = documents(render_init_config(config, config.first_control_plane, secrets))["KubeProxyConfiguration"]
    assert proxy == {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "conntrack": {"maxPerCore": 0},
    }


def test_the_image_repository_matches_the_bundled_images() -> None:

    manifest = yaml.safe_load((REPO / "manifests" / "k8s-1.29.6.yaml").read_text())
    kubeadm_images = [image for image in manifest["images"] if "/kube-" in image or "/etcd:" in image]
    assert kubeadm_images and all(image.startswith("registry.k8s.io/") for image in kubeadm_images)


def test_external_etcd_is_passed_through(secrets: ClusterSecrets) -> None:
    config = load(seed_data(etcd=EXTERNAL))
    cluster = documents(render_init_config(config, config.first_control_plane, secrets))["ClusterConfiguration"]
    assert cluster["etcd"] == {
        "external": {
            "endpoints": EXTERNAL["endpoints"],
            "caFile": "/etc/etcd/ca.crt",
            "certFile": "/etc/etcd/client.crt",
            "keyFile": "/etc/etcd/client.key",
        }
    }


def test_join_pins_the_ca_and_never_skips_verification(secrets: ClusterSecrets) -> None:
    config = load(seed_data())
    for node in config.nodes[1:]:
        join = documents(render_join_config(config, node, secrets))["JoinConfiguration"]
        discovery = join["discovery"]["bootstrapToken"]
        assert discovery == {
            "token": secrets.bootstrap_token,
            "apiServerEndpoint": "192.168.10.240:8443",
            "caCertHashes": [secrets.ca_cert_hash],
        }
        assert join["nodeRegistration"]["name"] == node.name
        assert join["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": str(node.ip)}
        if node.is_control_plane:
            assert join["controlPlane"] == {
                "certificateKey": secrets.certificate_key,
                "localAPIEndpoint": {"advertiseAddress": str(node.ip), "bindPort": 6443},
            }
        else:
            assert "controlPlane" not in join


def test_only_the_first_control_plane_gets_an_init_config(secrets: ClusterSecrets) -> None:
    config = load(seed_data())
    with pytest.raises(ValueError):
        render_init_config(config, config.control_planes[1], secrets)


@pytest.mark.parametrize("etcd", [None, EXTERNAL], ids=["stacked", "external"])
def test_every_control_plane_can_render_the_upload_certs_config(secrets: ClusterSecrets, etcd) -> None:
    """`join-info` works on any control plane: the config it gives `kubeadm init phase upload-certs` is the
    first control plane's init config seen from this node (same key, release and etcd files to upload)."""
    config = load(seed_data(etcd=etcd) if etcd else seed_data())
    first = documents(render_init_config(config, config.first_control_plane, secrets))
    for node in config.control_planes:
        upload = documents(render_upload_certs_config(config, node, secrets))
        assert upload["InitConfiguration"]["certificateKey"] == secrets.certificate_key
        assert upload["InitConfiguration"]["nodeRegistration"]["name"] == node.name
        assert upload["ClusterConfiguration"] == first["ClusterConfiguration"]
    with pytest.raises(ValueError):
        render_upload_certs_config(config, config.workers[0], secrets)


def test_v1beta4_join_keeps_the_discovery_timeout_where_kubeadm_config_migrate_puts_it(
    secrets: ClusterSecrets,
) -> None:
    """v1beta3 `discovery.timeout` is v1beta4 `timeouts.discovery` (not tlsBootstrap, a different wait)."""
    assert set(kubeadm_v1beta4.TIMEOUTS) == {
        "controlPlaneComponentHealthCheck", "kubeletHealthCheck", "kubernetesAPICall", "etcdAPICall",
        "tlsBootstrap", "discovery", "upgradeManifests",
    }  # fmt: skip
    before = load(seed_data())
    old = documents(render_join_config(before, before.workers[0], secrets))
    config = load(seed_data(kubernetes_version="1.31.14"), bundle="1.31.14")
    new = documents(render_join_config(config, config.workers[0], secrets))["JoinConfiguration"]
    assert new["timeouts"] == {"discovery": old["JoinConfiguration"]["discovery"]["timeout"]}
    assert "timeout" not in new["discovery"]


def test_exact_commands() -> None:
    assert init_command() == [
        "kubeadm",
        "init",
        "--config",
        "/etc/k8s-install/kubeadm-init.yaml",
        "--upload-certs",
    ]
    assert join_command() == ["kubeadm", "join", "--config", "/etc/k8s-install/kubeadm-join.yaml"]
    assert upload_certs_command() == [
        "kubeadm",
        "init",
        "phase",
        "upload-certs",
        "--upload-certs",
        "--config",
        "/etc/k8s-install/kubeadm-upload-certs.yaml",
    ]


def test_join_info_prints_the_same_join_as_a_command_line(secrets: ClusterSecrets) -> None:
    config = load(seed_data())
    worker = join_command_line(config, secrets, control_plane=False)
    assert worker == [
        "kubeadm",
        "join",
        "192.168.10.240:8443",
        "--token",
        secrets.bootstrap_token,
        "--discovery-token-ca-cert-hash",
        secrets.ca_cert_hash,
    ]
    plane = join_command_line(config, secrets, control_plane=True)
    assert plane == worker + ["--control-plane", "--certificate-key", secrets.certificate_key]
    assert "--discovery-token-unsafe-skip-ca-verification" not in plane
    assert root_kubeconfig() == ("/etc/kubernetes/admin.conf", "/root/.kube/config", 0o600)


def test_refreshing_join_material_reuses_the_same_token(secrets: ClusterSecrets) -> None:
    assert token_create_command(secrets) == [
        "kubeadm",
        "token",
        "create",
        secrets.bootstrap_token,
        "--ttl",
        "24h0m0s",
        "--kubeconfig",
        "/etc/kubernetes/admin.conf",
    ]


def test_the_ca_goes_to_kubeadm_s_pki_before_init(secrets: ClusterSecrets) -> None:
    placed = {item.path: item for item in preplaced_ca_files(secrets)}
    assert placed["/etc/kubernetes/pki/ca.crt"].content == secrets.ca_cert_pem
    assert placed["/etc/kubernetes/pki/ca.key"].mode == 0o600
