"""The order pytest-xdist hands out its groups in: the longest first (tests/conftest.py's groups: "lab", or a
module's name).

pytest-xdist's `loadgroup` hands out the groups biggest first by their number of tests, and each worker takes the
next group when it runs dry. The run ends when the last group does, so a long group with few tests (the playbook
runs of test_cluster_ansible.py: eleven tests, minutes each) must not start last, when the other worker has
nothing left to do. Groups named here start first, longest first, in the seconds they took on a CI machine
(two cores); the rest follow as pytest-xdist orders them. The figures order the work and assert nothing.

One exception: the lab's groups (`lab...`) all need the lab's root, which the first of them builds on a fresh
machine (a minute of downloads and dpkg, tests/lab/root.py) while the others wait on its lock. So only the longest
lab group starts at once, beside the three longest other groups, and the other lab groups follow those: the
workers keep both cores busy while the root is built.
"""

from __future__ import annotations

from typing import Dict, List

import pytest
from xdist.scheduler import LoadGroupScheduling

# seconds a group took on this project's two-core machines under `make test` (three workers; `make profile`'s wall
# seconds in a clean run of 9423e58, 2026-12-06), roughly; update as they move
LONG_GROUPS: Dict[str, int] = {
    "lab": 580,  # its root (mmdebstrap) on a fresh machine, the bundle, booted nodes, live installs, upgrades
    "lab-ansible": 400,  # tests/lab/test_ansible_lab.py: three nodes of its own, the playbooks run live
    "test_cluster_ansible": 305,  # with its upgrade test, which starts from the install test's nodes
    "test_cluster_ansible_bundle_url": 200,  # the --serve playbook: the bundle host set up, then every node
    "lab-debian": 90,  # tests/lab/test_live_debian.py: a debian12 bundle, three Debian nodes of its own, live installs
    "test_new_user": 70,
    "lab-site-registry": 65,  # tests/lab/test_site_registry.py: three nodes of its own, installed live
    "lab-bundle-host": 70,  # tests/lab/test_live_bundle_host.py: a bundle host and three nodes, installed live
    "test_cluster_ha": 70,
    "test_demo": 65,
    "test_node_install": 55,
    "test_rpm_build": 52,
    "test_rpm_scenarios": 56,
    "test_upgrade": 35,
    "lab-serve": 25,  # tests/lab/test_live_serve.py: a bundle host node and a bundle of its own
    "lab-debian-metadata": 15,  # tests/lab/test_debian_metadata.py: apt resolves on the lab root's Debian metadata
}


LAB_PREFIX = "lab"  # tests/lab's groups: each needs the lab's root
BESIDE_THE_FIRST_LAB = 3  # one per other worker of `make test` (JOBS=4)


def start_order(seconds: Dict[str, int]) -> List[str]:
    """The groups of `seconds`, longest first, except that the lab groups after the longest one start behind the
    BESIDE_THE_FIRST_LAB longest groups that need no lab root."""
    longest = sorted(seconds, key=lambda name: -seconds[name])
    labs = [name for name in longest if name.startswith(LAB_PREFIX)]
    others = [name for name in longest if not name.startswith(LAB_PREFIX)]
    first = labs[:1] + others[:BESIDE_THE_FIRST_LAB]
    return first + [name for name in longest if name not in first]


class LongestFirst(LoadGroupScheduling):
    """pytest-xdist's loadgroup scheduling with the groups of LONG_GROUPS handed out first, longest first."""

    def schedule(self) -> None:
        """Refuse a run whose tests carry no group: pytest-xdist then hands a module's tests to several workers,
        each building the module's fixtures (the lab's nodes, their references) on its own."""
        if self.collection is None and self.collection_is_completed:
            collection = next(iter(self.registered_collections.values()), [])
            if collection and not any("@" in nodeid for nodeid in collection):
                raise pytest.UsageError(
                    "pytest-xdist's loadgroup did not group the tests (no '@group' in their ids): this pytest "
                    f"({pytest.__version__}) and pytest-xdist do not work together; install the versions "
                    "pyproject.toml's test extra pins (make dev)"
                )
        super().schedule()

    def _assign_work_unit(self, node) -> None:  # type: ignore[no-untyped-def]
        queue = self.workqueue
        if any(name in queue for name in LONG_GROUPS):
            known = [name for name in start_order(LONG_GROUPS) if name in queue]
            for name in reversed(known):
                queue.move_to_end(name, last=False)
        super()._assign_work_unit(node)
