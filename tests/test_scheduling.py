"""The order pytest-xdist starts the long groups in (tests/support/scheduling.py): longest first, but only one lab
group at once at the start, beside the three longest groups that need no lab root."""

from __future__ import annotations

from tests.support.scheduling import LONG_GROUPS, start_order


def test_one_lab_group_starts_beside_the_three_longest_others() -> None:
    seconds = {"lab": 580, "lab-ansible": 400, "cluster": 300, "playbooks": 200, "lab-debian": 90, "demo": 60}
    assert start_order(seconds) == ["lab", "cluster", "playbooks", "demo", "lab-ansible", "lab-debian"]


def test_without_lab_groups_the_order_is_longest_first() -> None:
    assert start_order({"a": 10, "b": 30, "c": 20}) == ["b", "c", "a"]


def test_the_projects_groups_all_start_in_order() -> None:
    order = start_order(LONG_GROUPS)
    assert sorted(order) == sorted(LONG_GROUPS) and order[0] == "lab"
    assert not any(name.startswith("lab") for name in order[1:4])
