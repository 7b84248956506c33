"""The clock check's decision: the node's time against what the cluster carries (facts in, line out)."""

from __future__ import annotations

import datetime
from typing import List, Optional

import pytest

from k8s_install.node.clock import NOT_AFTER, NOT_BEFORE, NOW, ClockReference, clock_problem

UTC = datetime.timezone.utc
NOW_TIME = datetime.datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
CA_START = ClockReference("the start of the cluster CA certificate (cluster secrets)", NOW_TIME, NOT_BEFORE)
CA_END = ClockReference(
    "the end of the cluster CA certificate (cluster secrets)", NOW_TIME.replace(year=2036), NOT_AFTER
)


def api(offset: datetime.timedelta) -> ClockReference:
    return ClockReference("the cluster API at 10.0.0.240:8443", NOW_TIME + offset, NOW)


CASES = [
    ("no reference: nothing to say", NOW_TIME, [], None),
    ("inside the CA's validity", NOW_TIME + datetime.timedelta(days=3), [CA_START, CA_END], None),
    ("within the tolerated skew of the API", NOW_TIME, [CA_START, api(datetime.timedelta(minutes=4))], None),
    (
        "a clock never set (2000)",
        datetime.datetime(2000, 1, 1, tzinfo=UTC),
        [CA_START, CA_END],
        "this node's clock (2000-01-01 00:00:00 UTC) is before the start of the cluster CA certificate (cluster "
        "secrets) (2026-12-06 10:00:00 UTC), so certificates would not be valid yet: the clock is at least 9836 "
        "days behind; set it (date -u -s 'YYYY-MM-DD HH:MM:SS', then hwclock -w; or chronyc makestep once a "
        "time server answers), then run again",
    ),
    (
        "years ahead, past the CA's end",
        datetime.datetime(2040, 1, 1, tzinfo=UTC),
        [CA_START, CA_END],
        "this node's clock (2040-01-01 00:00:00 UTC) is after the end of the cluster CA certificate (cluster "
        "secrets) (2036-12-06 10:00:00 UTC), so certificates would look expired: the clock is at least 1120 days "
        "ahead; set it (date -u -s 'YYYY-MM-DD HH:MM:SS', then hwclock -w; or chronyc makestep once a time "
        "server answers), then run again",
    ),
    (
        "three hours behind the API: its time is the one to set",
        NOW_TIME + datetime.timedelta(days=1),
        [CA_START, CA_END, api(datetime.timedelta(days=1, hours=3))],
        "this node's clock (2026-12-07 10:00:00 UTC) is 3 h 0 min behind the cluster API at 10.0.0.240:8443 "
        "(2026-12-07 13:00:00 UTC), more than the 5 min the cluster tolerates: set it (date -u -s "
        "'2026-12-07 13:00:00', then hwclock -w; or chronyc makestep once a time server answers), then run again",
    ),
    (
        "ahead of the API",
        NOW_TIME + datetime.timedelta(minutes=20),
        [api(datetime.timedelta(0))],
        "this node's clock (2026-12-06 10:20:00 UTC) is 20 min ahead of the cluster API at 10.0.0.240:8443 "
        "(2026-12-06 10:00:00 UTC), more than the 5 min the cluster tolerates: set it (date -u -s "
        "'2026-12-06 10:00:00', then hwclock -w; or chronyc makestep once a time server answers), then run again",
    ),
]


@pytest.mark.parametrize("now,references,expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_the_clock_against_what_the_cluster_carries(
    now: datetime.datetime, references: List[ClockReference], expected: Optional[str]
) -> None:
    assert clock_problem(now, references) == expected
