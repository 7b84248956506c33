"""Reading what ansible-playbook printed: the recap per host and the hosts each task ran on."""

from __future__ import annotations

import re
from typing import Dict, List


def recap(output: str) -> Dict[str, Dict[str, int]]:
    found = {}
    for host, counts in re.findall(r"^(k8s-\S+)\s+:\s+(.*)$", output, re.MULTILINE):
        found[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counts)}
    return found


def task_hosts(output: str, task: str) -> List[str]:
    """Hosts in the order Ansible reported them for every run of the named task."""
    hosts: List[str] = []
    for section in re.split(r"^TASK \[", output, flags=re.MULTILINE)[1:]:
        if section.startswith(task + "]"):
            hosts += re.findall(r"^(?:changed|ok|failed|fatal): \[([^\]]+)\]", section, re.MULTILINE)
    return hosts
