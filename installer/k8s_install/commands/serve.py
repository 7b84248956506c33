"""`serve`: make this machine the bundle host (nginx and the registry as systemd services), show it, undo it."""

from __future__ import annotations

import argparse
import ipaddress
import re
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.layout import SECRETS_NAME, SUMS_NAME
from k8s_install.engine import Node, NodeOptions, Step, converge
from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.serve import layout
from k8s_install.serve.layout import ServeSettings
from k8s_install.settings import NodeSettings

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def serve_steps(settings: ServeSettings) -> List[Step]:
    from k8s_install.serve import steps

    return [
        steps.ServeBinaries(settings),
        steps.ServeCertificate(settings),
        steps.ServeConfig(settings),
        steps.ServeFirewall(settings),
        steps.ServeImages(settings),
        steps.ServeServices(settings),
    ]


def run_serve(args: argparse.Namespace) -> int:
    action = "plan" if args.dry_run else args.action
    if action == "status":
        return run_status(args)
    if action == "reset":
        return run_reset(args)
    from k8s_install.commands.install import confirm
    from k8s_install.commands.node import node_bundle

    host = Host(Path(args.root or "/"), verbose=getattr(args, "verbose", False))
    bundle = node_bundle(args, host)  # verified, the signature too, before anything is served
    settings = serve_settings(args, bundle, host)
    refuse_taken_ports(host, settings)
    warn_selinux_enforcing(host)
    node = serve_node(host, bundle, dry_run=True, no_gpgcheck=args.no_gpgcheck)
    steps = serve_steps(settings)
    if action == "plan":
        report = converge(node, steps, dry_run=True)
        print(f"plan: {report.change_count} change(s) to make this machine the bundle host")
        return 0
    if not args.yes:
        confirm(args, converge(node, steps, dry_run=True).change_count)
    node.options.dry_run = False
    report = converge(node, steps, dry_run=False)
    web, registry = settings.urls()
    served = {"bundle": settings.bundle, "web": web, "registry": registry}
    if any(node.state.data.get(key) != value for key, value in served.items()):  # a re-run writes nothing
        node.state.data.update(served)
        node.state.save()
    restarted = ", ".join(report.restarted)
    print(f"done: {report.change_count} change(s) applied" + (f", restarted {restarted}" if restarted else ""))
    print(f"bundle host: files at {web}, images at {registry} (TLS from the cluster CA)")
    return 0


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


def serve_node(host: Host, bundle: Bundle, dry_run: bool, no_gpgcheck: bool = False) -> Node:
    """The engine's node for serve's steps: serve's own state file, no cluster settings (serve is no node role)."""
    settings = NodeSettings(role="bundle-host", first=False, name="", ip="")
    options = NodeOptions(dry_run=dry_run, no_gpgcheck=no_gpgcheck)
    return Node(host=host, state=State(host, layout.STATE_FILE), bundle=bundle, settings=settings, options=options)


# -- settings ------------------------------------------------------------------------------------------------------


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
    from k8s_install.commands.cluster_settings import find_secrets

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


# -- status --------------------------------------------------------------------------------------------------------


def status_document(host: Host) -> Dict[str, Any]:
    from k8s_install.serve.certificate import not_after

    state = State(host, layout.STATE_FILE)
    services = []
    for service in layout.SERVICES:
        unit = f"{service}.service"
        enabled = host.run(host.systemctl("is-enabled", unit), check=False).stdout.decode().strip() or "absent"
        active = (
            host.run(["systemctl", "is-active", unit], check=False).stdout.decode().strip()
            if host.live
            else "n/a (offline root)"
        )
        services.append({"name": service, "enabled": enabled, "active": active})
    cert = host.path(layout.TLS_CERT)
    return {
        "configured": state.path.exists(),
        "bundle": state.data.get("bundle"),
        "web": state.data.get("web"),
        "registry": state.data.get("registry"),
        "services": services,
        "files_managed": len(state.files()),
        "certificate": {
            "sans": (state.data.get("certificate") or {}).get("sans", []),
            "not_after": not_after(cert) if cert.is_file() else "",
        },
        "images": stored_images(host, state.data.get("bundle")),
    }


def stored_images(host: Host, bundle: Optional[str]) -> Dict[str, Any]:
    from k8s_install.bundle_format.opened import open_bundle
    from k8s_install.serve.loader import bundle_images, is_stored

    if not bundle:
        return {"checked": False, "reason": "no bundle served"}
    folder = Path(bundle) if host.live or Path(bundle).exists() else host.path(bundle)
    try:
        with open_bundle(folder, check_files=False) as opened:
            images = bundle_images(opened)
    except InstallError as error:
        return {"checked": False, "reason": str(error)}
    storage = host.path(layout.REGISTRY_STORAGE)
    missing = [image.name for image in images if not is_stored(storage, image)]
    return {"checked": True, "bundled": len(images), "stored": len(images) - len(missing), "missing": missing}


def run_status(args: argparse.Namespace) -> int:
    host = Host(Path(args.root or "/"))
    doc = status_document(host)
    if not doc["configured"]:
        print("bundle host: not set up on this machine (`k8s-install.pyz serve` sets it up)")
        return 0
    print(f"bundle host: {doc['bundle']}")
    print(f"  files:  {doc['web']}")
    print(f"  images: {doc['registry']}")
    for service in doc["services"]:
        print(f"  {service['name']:<20} enabled: {service['enabled']:<9} active: {service['active']}")
    certificate = doc["certificate"]
    print(f"  certificate: {', '.join(certificate['sans'])}; expires {certificate['not_after'] or 'unknown'}")
    images = doc["images"]
    if images["checked"]:
        print(f"  registry: {images['stored']} of {images['bundled']} bundled images stored")
        for name in images["missing"]:
            print(f"    missing: {name}")
    else:
        print(f"  registry: images unknown ({images['reason']})")
    print(f"  files managed: {doc['files_managed']}")
    return 0


# -- reset ---------------------------------------------------------------------------------------------------------


def run_reset(args: argparse.Namespace) -> int:
    from k8s_install.commands.reset import OFFLINE_DNF
    from k8s_install.node.undo import undo_file

    host = Host(Path(args.root or "/"), verbose=getattr(args, "verbose", False))
    state = State(host, layout.STATE_FILE)
    if not state.path.exists():
        print("serve reset: nothing to undo (this machine is not a bundle host)")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise InstallError("serve reset stops the bundle host and removes what serve made: re-run with --yes")
        if input("Stop the bundle host and remove what serve made? [y/N] ").strip().lower() not in ("y", "yes"):
            raise InstallError("nothing changed: reset was not confirmed")
    host.log("=== serve reset")
    for unit in reversed(state.units()):
        host.run(["systemctl", "disable", "--now", unit] if host.live else host.systemctl("disable", unit), check=False)
        print(f"  disabled {unit}")
    service = state.data.get("firewalld_service")
    if service and host.live and host.run(["firewall-cmd", "--state"], check=False).returncode == 0:
        host.run(["firewall-cmd", "--permanent", f"--remove-service={service}"], check=False)
        host.run(["firewall-cmd", "--reload"], check=False)
        print(f"  closed firewalld service {service}")
    for path, record in sorted(state.files().items(), reverse=True):
        done = undo_file(host, path, record)
        print(f"  {done}")
        host.log(f"serve reset: {done}")
    packages = state.packages()
    if packages:
        command = ["dnf", "remove", "-y", *OFFLINE_DNF]
        command += [] if host.live else [f"--installroot={host.root}"]
        host.run([*command, *packages], check=False)
        print(f"  removed packages {' '.join(packages)}")
    for directory in sorted(set(state.data.get("directories", [])) | set(layout.OWN_DIRS), reverse=True):
        target = host.path(directory)
        if target.is_dir() and (directory in layout.OWN_DIRS or directory in state.data.get("directories", [])):
            shutil.rmtree(target)  # serve's own folders: registry storage, nginx's scratch, the state file
            print(f"  removed {directory}")
    if host.live:
        host.run(["systemctl", "daemon-reload"], check=False)
    print("serve reset: done")
    return 0
