"""Keys of containerd 2.x's config version 3 that the installer's containerd config may use, for a structural check.

containerd 1.6 (Debian's, the one the tests can run) reads a `version = 3` file without complaint but ignores the
`io.containerd.cri.v1.*` plugin tables, so it cannot check this format; the check below is against the documented
keys instead. Source: containerd docs/cri/config.md ("Full configuration", "In containerd 2.x", and the
"Cgroup Driver" section for runc's SystemdCgroup option); top-level `version`, `root`, `state` and `grpc.address`
from containerd's own config (docs/man/containerd-config.toml.5).
"""

from __future__ import annotations

from typing import Any, Dict, List

ANY = "any"
IMAGES = "io.containerd.cri.v1.images"
RUNTIME = "io.containerd.cri.v1.runtime"
CRI_GRPC = "io.containerd.grpc.v1.cri"

RUNC_OPTIONS = {
    k: ANY
    for k in (
        "BinaryName", "CriuImagePath", "CriuWorkPath", "IoGid", "IoUid", "NoNewKeyring", "Root", "ShimCgroup",
        "SystemdCgroup",
    )
}  # fmt: skip
RUNTIME_CLASS = {
    **{
        k: ANY
        for k in (
            "runtime_type", "runtime_path", "pod_annotations", "container_annotations",
            "privileged_without_host_devices", "privileged_without_host_devices_all_devices_allowed",
            "base_runtime_spec", "cni_conf_dir", "cni_max_conf_num", "snapshotter", "sandboxer", "io_type",
        )
    },
    "options": RUNC_OPTIONS,
}  # fmt: skip
SCHEMA: Dict[str, Any] = {
    "version": ANY,
    "root": ANY,
    "state": ANY,
    "grpc": {"address": ANY},
    "plugins": {
        IMAGES: {
            **{
                k: ANY
                for k in (
                    "snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers",
                    "max_concurrent_downloads", "image_pull_progress_timeout", "image_pull_with_sync_fs",
                    "stats_collect_period",
                )
            },
            "pinned_images": {"sandbox": ANY},
            # the pull account of a registry: docs/cri/registry.md, "In containerd 2.x"
            "registry": {
                "config_path": ANY,
                "configs": {"*": {"auth": {k: ANY for k in ("username", "password", "auth", "identitytoken")}}},
            },
            "image_decryption": {"key_model": ANY},
        },
        RUNTIME: {
            **{
                k: ANY
                for k in (
                    "enable_selinux", "selinux_category_range", "max_container_log_line_size", "disable_cgroup",
                    "disable_apparmor", "restrict_oom_score_adj", "disable_proc_mount", "unset_seccomp_profile",
                    "tolerate_missing_hugetlb_controller", "disable_hugetlb_controller",
                    "device_ownership_from_security_context", "ignore_image_defined_volumes",
                    "netns_mounts_under_state_dir", "enable_unprivileged_ports", "enable_unprivileged_icmp",
                    "enable_cdi", "cdi_spec_dirs", "drain_exec_sync_io_timeout", "ignore_deprecation_warnings",
                )
            },
            "containerd": {
                "default_runtime_name": ANY,
                "ignore_blockio_not_enabled_errors": ANY,
                "ignore_rdt_not_enabled_errors": ANY,
                "runtimes": {"*": RUNTIME_CLASS},
            },
            "cni": {
                k: ANY
                for k in (
                    "bin_dir", "conf_dir", "max_conf_num", "setup_serially", "conf_template", "ip_pref",
                    "use_internal_loopback",
                )
            },
        },
        CRI_GRPC: {
            **{
                k: ANY
                for k in (
                    "disable_tcp_service", "stream_server_address", "stream_server_port", "stream_idle_timeout",
                    "enable_tls_streaming",
                )
            },
            "x509_key_pair_streaming": {"tls_cert_file": ANY, "tls_key_file": ANY},
        },
    },
}  # fmt: skip


def unknown_keys(value: Any, schema: Any = SCHEMA, path: str = "") -> List[str]:
    """Every dotted key of a parsed TOML document that the documented v3 keys do not have ("*": any name)."""
    if schema == ANY:
        return []
    if not isinstance(value, dict):
        return [f"{path} (expected a table)"]
    found: List[str] = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        sub = schema.get(key, schema.get("*"))
        if sub is None:
            found.append(where)
        else:
            found += unknown_keys(item, sub, where)
    return found
