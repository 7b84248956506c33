"""The scenario the Debian tests share: a distribution archive (Debian layout, suite stable, amd64 and arm64)
with its minimal system and an updates suite, and a flat Kubernetes repository (as pkgs.k8s.io publishes)."""

from __future__ import annotations

from tests.support.deb_repo import FakeDeb

ARCHIVE = (
    FakeDeb("base-files", "12.4", essential=True, priority="required"),
    FakeDeb("dpkg", "1.21.22", "amd64", pre_depends="libc6 (>= 2.36)", essential=True, priority="required"),
    FakeDeb("dpkg", "1.21.22", "arm64", pre_depends="libc6 (>= 2.36)", essential=True, priority="required"),
    FakeDeb("libc6", "2.36-9", "amd64", priority="required"),
    FakeDeb("libc6", "2.36-9", "arm64", priority="required"),
    FakeDeb("systemd-sysv", "252.22-1", priority="required"),
    FakeDeb("apt", "2.6.1", depends="libc6"),  # Priority important: counted installed through `installed: [apt]`
    FakeDeb("iptables", "1.8.9-2", "amd64", depends="libxtables12 (= 1.8.9-2)"),
    FakeDeb("iptables", "1.8.9-2", "arm64", depends="libxtables12 (= 1.8.9-2)"),
    FakeDeb("libxtables12", "1.8.9-2", "amd64"),
    FakeDeb("libxtables12", "1.8.9-2", "arm64"),
    FakeDeb("conntrack", "1.4.7-1"),
    FakeDeb("socat", "1.7.4.4-2", depends="libwrap0 | tcpd-lib"),
    FakeDeb("libwrap0", "7.6.q-32"),
    FakeDeb("tcpd-lib", "1.0"),
    FakeDeb("ethtool", "6.1-1", depends="ethtool-data"),  # a virtual package: one provider
    FakeDeb("ethtool-tables", "6.1-1", provides="ethtool-data"),
    FakeDeb("keepalived", "2.2.7-1", depends="mail-transport-agent"),  # a virtual package: two providers
    FakeDeb("exim4-daemon", "4.96-15", provides="mail-transport-agent", conflicts="postfix"),
    FakeDeb("postfix", "3.7.10-0", provides="mail-transport-agent", conflicts="exim4-daemon"),
    FakeDeb("sysvinit-core", "3.06-4", conflicts="systemd-sysv"),
    FakeDeb("old-ipset", "6.0", breaks="iptables (<< 2)"),
)
UPDATES = (FakeDeb("libc6", "2.36-10", "amd64", priority="required"),
           FakeDeb("libc6", "2.36-10", "arm64", priority="required"))  # fmt: skip
KUBERNETES = (
    FakeDeb("kubeadm", "1.29.6-1.1", depends="kubelet (>= 1.19.0), kubectl (>= 1.19.0), cri-tools (>= 1.28.0)"),
    FakeDeb("kubeadm", "1.30.2-1.1", depends="kubelet (>= 1.19.0), kubectl (>= 1.19.0), cri-tools (>= 1.28.0)"),
    FakeDeb(
        "kubelet", "1.29.6-1.1", depends="iptables (>= 1.4.21), kubernetes-cni (>= 1.2.0), conntrack, socat, ethtool"
    ),
    FakeDeb(
        "kubelet", "1.30.2-1.1", depends="iptables (>= 1.4.21), kubernetes-cni (>= 1.2.0), conntrack, socat, ethtool"
    ),
    FakeDeb("kubectl", "1.29.6-1.1", depends="libc6 (>= 2.36-10)"),
    FakeDeb("kubectl", "1.30.2-1.1", depends="libc6 (>= 2.36-10)"),
    FakeDeb("cri-tools", "1.29.0-1.1"),
    FakeDeb("cri-tools", "1.27.0-1.1"),
    FakeDeb("kubernetes-cni", "1.3.0-1.1", breaks="kubelet (<< 1.20)"),
    FakeDeb("kubernetes-cni", "1.1.1-1.1"),
)
REQUESTS = ("kubeadm = 1.29.6-*", "kubelet = 1.29.6-*", "kubectl = 1.29.6-*", "keepalived", "base-files")
# What apt chooses: the pinned 1.29.6, the newest of the rest, libc6's update (kubectl needs it), the first
# alternative of socat's, the one provider of ethtool-data, one of the two providers of mail-transport-agent,
# libxtables12 at the version iptables names; base-files is installed already, so not bundled; libc6 is too,
# but kubectl needs its update.
EXPECTED_WITHOUT_MTA = {
    "kubeadm": "1.29.6-1.1", "kubelet": "1.29.6-1.1", "kubectl": "1.29.6-1.1", "cri-tools": "1.29.0-1.1",
    "kubernetes-cni": "1.3.0-1.1", "libc6": "2.36-10", "iptables": "1.8.9-2", "libxtables12": "1.8.9-2",
    "conntrack": "1.4.7-1", "socat": "1.7.4.4-2", "libwrap0": "7.6.q-32", "ethtool": "6.1-1",
    "ethtool-tables": "6.1-1", "keepalived": "2.2.7-1",
}  # fmt: skip
MTA = ("exim4-daemon", "postfix")
