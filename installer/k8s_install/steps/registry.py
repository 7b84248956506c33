"""The site's registry for containerd: a hosts.toml per registry the cluster's images come from, pointing at it.

With cluster.yaml `registry:`, every node gets /etc/containerd/certs.d/<registry>/hosts.toml for
registry.k8s.io, docker.io, quay.io and every registry the bundle's images are named after, each with the
site registry as its mirror (capabilities pull and resolve, its CA, `override_path` under a prefix), and one
for the site registry itself (images named after it). containerd reads this folder at each pull: no restart.
The pull account (secrets `registry_username` / `registry_password`) goes into containerd's CRI config,
which kubelet's pulls use (`registry_auth`, rendered by steps/containerd.py; that file is then 0600).
Without `registry:` this step changes nothing, and removes what it wrote when `registry:` is taken out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from k8s_install.cluster.model import SiteRegistry
from k8s_install.engine import Change, Node, Step
from k8s_install.images.names import image_registry
from k8s_install.node.undo import undo_file
from k8s_install.render import render
from k8s_install.settings import NodeSettings
from k8s_install.steps.files import HEADER, plan_file

registry_hosts_dir = "/etc/containerd/certs.d"  # containerd's config_path (templates/containerd-config*.toml.j2)
registry_upstreams = ("registry.k8s.io", "docker.io", "quay.io")  # mirrored even when no bundled image names them
registry_servers = {"docker.io": "https://registry-1.docker.io"}  # where a name's registry really answers


@dataclass(frozen=True)
class RegistryAuth:
    """The site registry's pull account, as containerd's CRI plugin reads it (registry.configs.HOST.auth)."""

    host: str  # the endpoint as the mirror URLs name it: the key containerd looks the account up by
    username: str
    password: str

    def toml(self, value: str) -> str:
        """A TOML basic string (JSON's escapes are TOML's)."""
        return json.dumps(value, ensure_ascii=False)


def registry_auth(settings: Optional[NodeSettings]) -> Optional[RegistryAuth]:
    """The account containerd's CRI config gets, or None (no `registry:`, or no account in the secrets)."""
    if settings is None or settings.cluster is None or settings.cluster.registry is None:
        return None
    secrets = settings.secrets
    if secrets is None or not secrets.registry_username:
        return None
    return RegistryAuth(settings.cluster.registry.endpoint, secrets.registry_username, secrets.registry_password)


def mirrored_registries(image_names: Sequence[str], site: SiteRegistry) -> List[str]:
    """The usual upstreams, then every other registry of the bundle's images; never the site registry itself."""
    found = list(registry_upstreams) + sorted({image_registry(name) for name in image_names})
    return [name for name in dict.fromkeys(found) if name != site.endpoint]


def ca_path(site: SiteRegistry, hosts_dir: str = registry_hosts_dir) -> str:
    return f"{hosts_dir}/{site.endpoint}/ca.crt" if site.ca_pem else ""


def hosts_toml(namespace: str, site: SiteRegistry, hosts_dir: str = registry_hosts_dir) -> str:
    """hosts.toml of one registry namespace: the site registry first, then the registry's own server."""
    is_site = namespace == site.endpoint
    base = f"https://{site.endpoint}"
    use_prefix = bool(site.prefix) and not is_site  # images named after the site registry carry their own path
    return render(
        "registry-hosts.toml.j2",
        header=HEADER,
        namespace=namespace,
        endpoint=site.endpoint,
        server=base if is_site else registry_servers.get(namespace, f"https://{namespace}"),
        mirror_url=f"{base}/v2/{site.prefix}" if use_prefix else base,
        override_path=use_prefix,
        prefix=site.prefix,
        ca_path=ca_path(site, hosts_dir),
    )


def wanted_files(
    image_names: Sequence[str], site: SiteRegistry, hosts_dir: str = registry_hosts_dir
) -> Dict[str, bytes]:
    """Every file this step keeps under the hosts folder (`hosts_dir`: containerd's config_path), by path."""
    files: Dict[str, bytes] = {}
    for namespace in [site.endpoint, *mirrored_registries(image_names, site)]:
        files[f"{hosts_dir}/{namespace}/hosts.toml"] = hosts_toml(namespace, site, hosts_dir).encode()
    if site.ca_pem:
        files[ca_path(site, hosts_dir)] = site.ca_pem.encode()
    return files


class RegistryMirrors(Step):
    name = "registry-mirrors"
    title = "containerd pulls through the site registry (cluster.yaml registry:)"

    def plan(self, node: Node) -> List[Change]:
        cluster = node.settings.cluster
        if cluster is None:  # settings made without a cluster config: nothing known, nothing touched
            return []
        site = cluster.registry
        wanted = wanted_files(node.bundle.image_names(), site) if site is not None else {}
        changes: List[Change] = []
        for path, data in sorted(wanted.items()):
            changes += plan_file(node, path, data, 0o644)
        for path, record in sorted(node.state.files().items()):
            if path.startswith(f"{registry_hosts_dir}/") and path not in wanted:
                changes.append(
                    Change(f"remove {path} (no longer in cluster.yaml registry:)", _undo(node, path, record))
                )
        return changes


def _undo(node: Node, path: str, record: Dict[str, Any]) -> Callable[[], None]:
    def apply() -> None:
        node.host.log(undo_file(node.host, path, dict(record)))
        node.state.drop_file(path)
        folder = node.host.path(path).parent
        if folder != node.host.path(registry_hosts_dir) and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # the registry's folder, now empty

    return apply
