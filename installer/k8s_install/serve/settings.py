"""The bundle host's settings from the command line, the bundle and the cluster secrets, and the checks made
before any change (who may read the bundle, which ports are free, SELinux)."""

from __future__ import annotations

import argparse
import ipaddress
import re
import socket
from pathlib import Path
from typing import List, Optional, Tuple

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.layout import SECRETS_NAME, SUMS_NAME
from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.serve import layout
from k8s_install.serve.layout import ServeSettings

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def serve_settings(args: argparse.Namespace, bundle: Bundle, host: Host) -> ServeSettings:
    secrets = ca_secrets(args, bundle, host)
    names, addresses = subject_names(args.address, host)
    folder = bundle.root.resolve()
    problem = unreadable_by_others(folder)
    if problem:
        raise InstallError(
            f"nginx serves the bundle as user nobody, who cannot read {problem}: unpack the bundle under a folder "
            "others may read (e.g. /srv/k8s-bundle), or chmod o+rx the folders on its path"
        )
    seen = folder
    if not host.live and (folder == host.root or host.root in folder.parents):
        seen = Path("/") / folder.relative_to(host.root)
    return ServeSettings(
        bundle=str(seen), names=names, addresses=addresses, ca_cert_pem=secrets[0], ca_key_pem=secrets[1],
        https_port=args.https_port, registry_port=args.registry_port,
        registry_binary=args.registry_binary or layout.REGISTRY_BINARY,
        registry_from_bundle=not args.registry_binary, nginx_binary=args.nginx_binary or layout.NGINX_BINARY,
        nginx_given=bool(args.nginx_binary), nginx_group=nobody_group(host),
    )  # fmt: skip


def ca_secrets(args: argparse.Namespace, bundle: Bundle, host: Host) -> Tuple[str, str]:
    """(CA certificate, CA key) from the cluster secrets: the serving certificate is signed by the cluster CA."""
    from k8s_install.bundle_format.yaml_loader import load_yaml
    from k8s_install.cluster.secrets import load_secrets
    from k8s_install.commands.secrets_file import find_secrets

    found = find_secrets(args, bundle.root, host, "control-plane")
    if found is None:
        raise InstallError(
            f"serve signs its certificate with the cluster CA: pass --secrets FILE ({SECRETS_NAME}, with ca_key)"
        )
    recorded = bundle.manifest.cluster_config
    if recorded is not None:
        cluster = recorded.cluster
    else:  # a bundle without cluster.yaml: the secrets name their cluster themselves
        try:
            data = load_yaml(Path(found).read_text(encoding="utf-8"), allow_aliases=True)
        except (OSError, UnicodeDecodeError, ValueError):
            data = None
        cluster = str(data.get("cluster", "")) if isinstance(data, dict) else ""
    loaded = load_secrets(Path(found), cluster)
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    if loaded.secrets.is_worker_only:
        raise InstallError(f"{found}: a worker-only secrets file has no CA key; serve needs {SECRETS_NAME}")
    return loaded.secrets.ca_cert_pem, loaded.secrets.ca_key_pem


def subject_names(given: List[str], host: Host) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(DNS names, IP addresses) for the certificate: --address first, then, on the running machine, its own
    addresses and names; loopback always (serve's own checks)."""
    names: List[str] = []
    addresses: List[str] = []
    for value in given:
        try:
            addresses.append(str(ipaddress.ip_address(value)))
        except ValueError:
            if not DNS_NAME.match(value):
                raise InstallError(f"--address {value!r}: neither an IP address nor a DNS name") from None
            names.append(value.lower())
    if host.live:
        from k8s_install.cluster.identity import read_local_addresses

        addresses += [str(entry.address) for entry in read_local_addresses() if not entry.address.is_loopback]
        names += [name.lower() for name in (socket.gethostname(), socket.getfqdn()) if DNS_NAME.match(name)]
    addresses.append("127.0.0.1")
    names.append("localhost")
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(addresses))


def unreadable_by_others(folder: Path) -> Optional[str]:
    """The first folder on the way to the bundle that others cannot enter, or the bundle's SHA256SUMS they
    cannot read; None when nginx's workers (nobody) can serve it."""
    for step in reversed([folder, *folder.parents]):
        mode = step.stat().st_mode
        if not mode & 0o001:
            return f"{step} (mode {mode & 0o777:o})"
    sums = folder / SUMS_NAME
    if sums.exists() and not sums.stat().st_mode & 0o004:
        return f"{sums} (mode {sums.stat().st_mode & 0o777:o})"
    return None


def nobody_group(host: Host) -> str:
    """nobody's group: `nobody` on EL9, `nogroup` on Debian."""
    try:
        groups = {line.split(":", 1)[0] for line in host.path("/etc/group").read_text(encoding="utf-8").splitlines()}
    except OSError:
        return "nobody"
    return "nobody" if "nobody" in groups or "nogroup" not in groups else "nogroup"


def refuse_taken_ports(host: Host, settings: ServeSettings) -> None:
    """A port another program holds (haproxy's 8443 for the API VIP on a control plane) is named before any
    change, instead of a service that never becomes ready."""
    if not host.live:
        return
    ports = ((layout.WEB_SERVICE, settings.https_port, "--https-port"),
             (layout.REGISTRY_SERVICE, settings.registry_port, "--registry-port"))  # fmt: skip
    for service, port, option in ports:
        ours = host.run(["systemctl", "is-active", "--quiet", f"{service}.service"], check=False).returncode == 0
        if not ours and _listening(port):
            raise InstallError(
                f"port {port} is in use by another program on this machine (on a control plane haproxy holds 8443 "
                f"for the API VIP): pass {option} PORT"
            )


def warn_selinux_enforcing(host: Host) -> None:
    """nginx runs confined (httpd_t) under SELinux enforcing, and the bundle folder, its scratch folders and its
    pid file carry no httpd labels: say so (nodes the installer converged are permissive already)."""
    if not host.live or not host.which("getenforce"):
        return
    if host.run(["getenforce"], check=False).stdout.decode().strip() == "Enforcing":
        print(
            "warning: SELinux is enforcing: nginx may be denied the bundle folder (see docs/bundle-host.md#selinux); "
            "`setenforce 0` (and SELINUX=permissive in /etc/selinux/config) as on the cluster's nodes"
        )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
