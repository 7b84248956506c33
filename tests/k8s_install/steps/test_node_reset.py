"""reset keeps the operator's edits: the three-way revert of the installer's lines, table-driven, and the
exact files of the report (an fstab line and a hosts entry added after install)."""

from __future__ import annotations

import pytest

from k8s_install.node.revert import revert_installer_changes
from k8s_install.steps.system import fstab_without_swap, hosts_with_block, selinux_config_permissive

HOSTS = "127.0.0.1 localhost localhost.localdomain\n::1 localhost6\n"
SELINUX = "SELINUX=enforcing\nSELINUXTYPE=targeted\n"
CHRONY = "pool 2.rocky.pool.ntp.org iburst\n"
FSTAB = "/dev/mapper/rl-root /     xfs  defaults 0 0\n/dev/mapper/rl-swap none  swap defaults 0 0\n"
NODES = [("10.213.7.11", "k8s-mn01"), ("10.213.7.100", "k8s-wn01")]


@pytest.mark.parametrize(
    "original,ours,edit,expected,conflicts",
    [
        # a hosts entry after the managed block: the block goes, the entry stays
        (HOSTS, hosts_with_block(HOSTS, NODES), lambda t: t + "10.1.1.1 nas\n", HOSTS + "10.1.1.1 nas\n", 0),
        # ... and one before it
        (HOSTS, hosts_with_block(HOSTS, NODES), lambda t: t.replace("::1", "10.1.1.1 nas\n::1"),
         HOSTS.replace("::1", "10.1.1.1 nas\n::1"), 0),
        # an fstab line after the swap line the installer commented out: swap comes back, the line stays
        (FSTAB, fstab_without_swap(FSTAB), lambda t: t + "nas:/data /data nfs defaults 0 0\n",
         FSTAB + "nas:/data /data nfs defaults 0 0\n", 0),
        # SELinux: the operator added a comment; enforcing comes back
        (SELINUX, selinux_config_permissive(SELINUX), lambda t: "# audited\n" + t, "# audited\n" + SELINUX, 0),
        # a generated file (chrony.conf) with a server the operator added: the original plus that server
        (CHRONY, "# Managed\nserver 10.213.7.11 iburst\ndriftfile /var/lib/chrony/drift\n",
         lambda t: t + "server 10.9.9.9 iburst\n", CHRONY + "server 10.9.9.9 iburst\n", 0),
        # the operator rewrote the installer's own line: theirs is kept, and reported
        ("SELINUX=enforcing\n", "SELINUX=permissive\n", lambda t: "SELINUX=disabled\n", "SELINUX=disabled\n", 1),
    ],
    ids=["hosts-after", "hosts-before", "fstab", "selinux", "chrony", "both-changed"],
)  # fmt: skip
def test_reverting_the_installer_keeps_the_operators_lines(original, ours, edit, expected, conflicts) -> None:  # type: ignore[no-untyped-def]
    reverted = revert_installer_changes(ours, edit(ours), original)
    assert reverted.text == expected
    assert reverted.conflicts == conflicts


def test_unedited_file_reverts_to_the_original() -> None:
    ours = hosts_with_block(HOSTS, NODES)
    assert revert_installer_changes(ours, ours, HOSTS).text == HOSTS


def test_a_hosts_line_after_the_block_does_not_move_the_block() -> None:
    """Regression: the block was cut out and appended again below the new line, so every run rewrote hosts."""
    edited = hosts_with_block(HOSTS, NODES) + "10.1.1.1 nas\n"
    assert hosts_with_block(edited, NODES) == edited
    changed = hosts_with_block(edited, NODES + [("10.213.7.22", "k8s-mn02")])
    assert changed.endswith("# END k8s-install\n10.1.1.1 nas\n") and "10.213.7.22  k8s-mn02" in changed


def test_reset_of_a_node_in_a_cluster_says_how_to_remove_its_node_object(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """kubeadm reset leaves the Node listed (NotReady) and a worker cannot delete it (make lab-real): the
    operator is told the command, with the node's name."""
    from k8s_install.commands.reset import undo_kubeadm
    from k8s_install.node.host import Host

    (tmp_path / "etc/kubernetes").mkdir(parents=True)
    (tmp_path / "etc/kubernetes/kubelet.conf").write_text("apiVersion: v1\nkind: Config\n")
    (tmp_path / "etc/hostname").write_text("k8s-wn01\n")
    host = Host(tmp_path)
    undo_kubeadm(host)
    out = capsys.readouterr().out
    assert "the cluster still lists k8s-wn01 (NotReady): on a control plane run `kubectl delete node k8s-wn01`" in out
    assert host.recorded == ["would run: kubeadm reset --force"]
    (tmp_path / "etc/kubernetes/kubelet.conf").unlink()
    undo_kubeadm(host)  # never joined: nothing to say
    assert capsys.readouterr().out == ""
