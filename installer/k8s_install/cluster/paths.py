"""Where the rendered cluster files live on a node (defaults; the renderers take them as arguments)."""

from __future__ import annotations

STATE_DIR = "/etc/k8s-install"
CLUSTER_CA_CERT = f"{STATE_DIR}/kubernetes-ca.crt"  # public: the check script and haproxy verify with it
INSTALLED_SECRETS = f"{STATE_DIR}/cluster-secrets.yaml"  # 0600: a control plane keeps its copy here
KUBEADM_INIT_CONFIG = f"{STATE_DIR}/kubeadm-init.yaml"  # 0600: holds the token and certificate key
KUBEADM_UPLOAD_CERTS_CONFIG = f"{STATE_DIR}/kubeadm-upload-certs.yaml"  # 0600, only while join-info runs
KUBEADM_JOIN_CONFIG = f"{STATE_DIR}/kubeadm-join.yaml"  # 0600: holds the token (and certificate key)
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"  # 0600: holds the VRRP password
CHECK_SCRIPT = "/etc/keepalived/check_apiserver.sh"  # 0755 root, in a root-only folder
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
HAPROXY_MONITOR_PORT = 8404  # on 127.0.0.1 only: haproxy answers "alive" here for the check script
KUBERNETES_PKI = "/etc/kubernetes/pki"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
ROOT_KUBECONFIG = "/root/.kube/config"
API_SERVER_NAME = "kubernetes"  # a DNS name every kube-apiserver certificate carries (kubeadm adds it)
