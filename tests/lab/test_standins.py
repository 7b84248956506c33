"""The lab's stand-ins are named in one place, and the program behind kubeadm/kubelet/kubectl is valid
(checked here without root, before a lab run would find out)."""

from __future__ import annotations

from tests.lab.standins import PROGRAM, STANDIN_PATH, STANDINS, launcher


def test_every_stand_in_is_named_with_its_reason() -> None:
    names = {standin.name for standin in STANDINS}
    assert {"kubeadm", "kubelet", "kubectl", "modprobe"} <= names
    assert all(standin.why and standin.where for standin in STANDINS)


def test_the_stand_in_program_compiles_and_the_launchers_exec_it() -> None:
    compile(PROGRAM, STANDIN_PATH, "exec")
    for program in ("kubeadm", "kubelet", "kubectl"):
        assert launcher(program) == f'#!/bin/sh\nexec {STANDIN_PATH} {program} "$@"\n'
