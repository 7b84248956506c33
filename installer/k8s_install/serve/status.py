"""`serve status`: the bundle host's services, certificate and stored images, from serve's own record."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Optional

from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.serve import layout


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
