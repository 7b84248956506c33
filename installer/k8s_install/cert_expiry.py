"""Certificate expiry on a node, read in pure Python from the PEM files (no openssl needed, works under --root).

Which certificates: kubeadm's (the ones `kubeadm certs check-expiration` lists: the PKI files and the client
certificates embedded in the control-plane kubeconfigs), the kubelet's client certificate, and the installer's
own copy of the cluster CA. kubeadm's leaf certificates last one year; `certs renew` renews them.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import yaml

from k8s_install.cluster import paths
from k8s_install.node.host import Host

WARN_DAYS = 30  # preflight and status warn this many days before a certificate expires

PKI = paths.KUBERNETES_PKI
# (name as kubeadm calls it, path): the files `kubeadm certs check-expiration` covers on a control plane
KUBEADM_CERTIFICATES: Tuple[Tuple[str, str], ...] = (
    ("ca", f"{PKI}/ca.crt"),
    ("apiserver", f"{PKI}/apiserver.crt"),
    ("apiserver-kubelet-client", f"{PKI}/apiserver-kubelet-client.crt"),
    ("apiserver-etcd-client", f"{PKI}/apiserver-etcd-client.crt"),
    ("front-proxy-ca", f"{PKI}/front-proxy-ca.crt"),
    ("front-proxy-client", f"{PKI}/front-proxy-client.crt"),
    ("etcd-ca", f"{PKI}/etcd/ca.crt"),
    ("etcd-server", f"{PKI}/etcd/server.crt"),
    ("etcd-peer", f"{PKI}/etcd/peer.crt"),
    ("etcd-healthcheck-client", f"{PKI}/etcd/healthcheck-client.crt"),
)
KUBECONFIGS: Tuple[Tuple[str, str], ...] = (
    ("admin.conf", "/etc/kubernetes/admin.conf"),
    ("super-admin.conf", "/etc/kubernetes/super-admin.conf"),
    ("controller-manager.conf", "/etc/kubernetes/controller-manager.conf"),
    ("scheduler.conf", "/etc/kubernetes/scheduler.conf"),
)
OTHER_CERTIFICATES: Tuple[Tuple[str, str], ...] = (
    ("kubelet-client (rotated by the kubelet)", "/var/lib/kubelet/pki/kubelet-client-current.pem"),
    ("installer's cluster CA copy (haproxy, check script)", paths.CLUSTER_CA_CERT),
)
PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)-----END CERTIFICATE-----", re.S)
OID_COMMON_NAME = bytes([0x55, 0x04, 0x03])


class CertificateError(ValueError):
    """The bytes are not the X.509 certificate they should be."""


@dataclass(frozen=True)
class CertificateInfo:
    name: str
    path: str
    not_after: Optional[datetime.datetime]  # None: the file is missing or unreadable
    subject_cn: str = ""
    problem: str = ""

    def days_left(self, now: datetime.datetime) -> Optional[int]:
        return None if self.not_after is None else (self.not_after - now).days

    def state(self, now: datetime.datetime, warn_days: int = WARN_DAYS) -> str:
        if self.not_after is None:
            return self.problem or "missing"
        left = self.not_after - now
        if left.total_seconds() <= 0:
            return "EXPIRED"
        return "renew soon" if left.days < warn_days else "ok"


# -- a minimal DER reader: only what it takes to reach validity and subject ------------------------------------


def _read_tlv(data: bytes, offset: int) -> Tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at offset."""
    if offset + 2 > len(data):
        raise CertificateError("truncated DER")
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise CertificateError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise CertificateError("truncated DER")
    return tag, start, end


def _children(data: bytes, start: int, end: int) -> List[Tuple[int, int, int]]:
    found = []
    while start < end:
        tag, content, stop = _read_tlv(data, start)
        found.append((tag, content, stop))
        start = stop
    return found


def _time(tag: int, raw: bytes) -> datetime.datetime:
    text = raw.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ: years 50-99 are 19xx (RFC 5280)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise CertificateError("validity is not a time")
    return datetime.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def _common_name(der: bytes, start: int, end: int) -> str:
    for _, set_start, set_end in _children(der, start, end):  # RelativeDistinguishedName (SET)
        for _, seq_start, seq_end in _children(der, set_start, set_end):  # AttributeTypeAndValue
            parts = _children(der, seq_start, seq_end)
            if len(parts) == 2 and der[parts[0][1] : parts[0][2]] == OID_COMMON_NAME:
                return der[parts[1][1] : parts[1][2]].decode("utf-8", "replace")
    return ""


def parse_certificate(der: bytes) -> Tuple[datetime.datetime, str]:
    """(notAfter, subject CN) of one DER certificate."""
    _not_before, not_after, cn = parse_validity(der)
    return not_after, cn


def parse_validity(der: bytes) -> Tuple[datetime.datetime, datetime.datetime, str]:
    """(notBefore, notAfter, subject CN) of one DER certificate."""
    tag, start, end = _read_tlv(der, 0)
    if tag != 0x30:
        raise CertificateError("not a certificate")
    tag, tbs_start, tbs_end = _read_tlv(der, start)
    fields = _children(der, tbs_start, tbs_end)
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    if len(fields) < 5:
        raise CertificateError("not a certificate")
    # serialNumber, signature, issuer, validity, subject
    validity, subject = fields[3], fields[4]
    times = _children(der, validity[1], validity[2])
    if len(times) != 2:
        raise CertificateError("no validity")
    (before_tag, before, before_stop), (after_tag, after, after_stop) = times
    not_before, not_after = _time(before_tag, der[before:before_stop]), _time(after_tag, der[after:after_stop])
    return not_before, not_after, _common_name(der, subject[1], subject[2])


def pem_certificates(data: bytes) -> List[bytes]:
    """Every certificate of a PEM file, as DER."""
    found = []
    for match in PEM_CERTIFICATE.finditer(data):
        try:
            found.append(base64.b64decode(b"".join(match.group(1).split()), validate=True))
        except binascii.Error:
            raise CertificateError("bad base64 in PEM") from None
    return found


def read_pem(name: str, host_path: Path, path: str) -> Optional[CertificateInfo]:
    """None when the file is not there (a worker has no control-plane PKI)."""
    if not host_path.is_file():
        return None
    try:
        certificates = pem_certificates(host_path.read_bytes())
        if not certificates:
            return CertificateInfo(name, path, None, problem="no certificate in the file")
        not_after, cn = parse_certificate(certificates[0])
    except (OSError, CertificateError, ValueError) as error:
        return CertificateInfo(name, path, None, problem=f"unreadable ({error})")
    return CertificateInfo(name, path, not_after, cn)


def read_kubeconfig(name: str, host_path: Path, path: str) -> Optional[CertificateInfo]:
    """The client certificate embedded in a kubeconfig (client-certificate-data)."""
    if not host_path.is_file():
        return None
    try:
        config = yaml.safe_load(host_path.read_text(encoding="utf-8")) or {}
        users = config.get("users") or []
        data = (users[0].get("user") or {}).get("client-certificate-data") if users else None
        if not data:
            return CertificateInfo(name, path, None, problem="no embedded client certificate")
        not_after, cn = parse_certificate(pem_certificates(base64.b64decode(data))[0])
    except (OSError, yaml.YAMLError, CertificateError, ValueError, IndexError, AttributeError) as error:
        return CertificateInfo(name, path, None, problem=f"unreadable ({error})")
    return CertificateInfo(name, path, not_after, cn)


def node_certificates(host: Host) -> List[CertificateInfo]:
    """Every certificate of this node that is there (missing ones are left out)."""
    found: List[Optional[CertificateInfo]] = []
    for name, path in KUBEADM_CERTIFICATES + OTHER_CERTIFICATES:
        found.append(read_pem(name, host.path(path), path))
    for name, path in KUBECONFIGS:
        found.append(read_kubeconfig(name, host.path(path), path))
    return [info for info in found if info is not None]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def expiry_warnings(host: Host, now: Optional[datetime.datetime] = None, warn_days: int = WARN_DAYS) -> List[str]:
    """One line per certificate that expires within warn_days (or has expired), with what to do."""
    now = now or utc_now()
    lines = []
    for info in node_certificates(host):
        state = info.state(now, warn_days)
        if state in ("EXPIRED", "renew soon"):
            lines.append(
                f"certificate {info.name} ({info.path}) {'expired' if state == 'EXPIRED' else 'expires'} "
                f"{info.not_after:%Y-%m-%d %H:%M} UTC: {renewal_hint(info)}"
            )
    return lines


def renewal_hint(info: CertificateInfo) -> str:
    if info.path.startswith("/var/lib/kubelet/"):
        return "the kubelet renews it itself when it can reach the API; see journalctl -u kubelet"
    if info.name in ("ca", "front-proxy-ca", "etcd-ca") or info.path == paths.CLUSTER_CA_CERT:
        return "a CA (10 years): `kubeadm certs renew` does not renew CAs; plan a CA rotation"
    return "run `k8s-install.pyz certs renew` on this control plane"


def table(infos: List[CertificateInfo], now: datetime.datetime, warn_days: int = WARN_DAYS) -> List[str]:
    lines = [f"  {'CERTIFICATE':<52} {'EXPIRES (UTC)':<17} {'DAYS':>5}  STATE"]
    for info in infos:
        expires = f"{info.not_after:%Y-%m-%d %H:%M}" if info.not_after else "-"
        left = info.days_left(now)
        lines.append(
            f"  {info.name:<52} {expires:<17} {'-' if left is None else left:>5}  {info.state(now, warn_days)}"
        )
    return lines
