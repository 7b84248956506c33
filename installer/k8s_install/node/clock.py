"""Is this node's clock near the cluster's? Checked in preflight, before any change: a clock far off shows
up later only as a certificate error deep inside kubeadm ("x509: certificate has expired or is not yet
valid"), or as etcd members that distrust each other.

A node with no time server has nothing to ask but what the cluster itself carries:
- the cluster CA certificate (in the cluster secrets, on every node): the clock cannot be before its
  notBefore (the CA was made then) nor after its notAfter;
- the bundle's build time (its SBOM's `created`, verified with the bundle): the clock cannot be before it;
- on a node that joins, the cluster API through the VIP: its `Date` header is the first control plane's
  clock, and this one must be within MAX_SKEW of it.
The first control plane has no clock to compare with, only the lower bounds: a clock that runs ahead there
is not caught (it becomes the cluster's time, which chrony then serves to the others).
"""

from __future__ import annotations

import datetime
from typing import List, NamedTuple, Optional

MAX_SKEW = datetime.timedelta(minutes=5)  # TLS and etcd work with less; chrony brings it to milliseconds


class ClockReference(NamedTuple):
    source: str  # what it comes from, as the message names it
    time: datetime.datetime  # UTC
    kind: str  # "not-before": the clock cannot be earlier; "not-after": not later; "now": the other's clock


NOT_BEFORE, NOT_AFTER, NOW = "not-before", "not-after", "now"


def shown(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(delta: datetime.timedelta) -> str:
    """A duration as people say it: 3 min, 5 h 2 min, 2 days."""
    seconds = abs(int(delta.total_seconds()))
    minutes = round(abs(delta.total_seconds()) / 60)  # the Date header counts whole seconds: 2 h 59 min 59 s is 3 h
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60} min"
    if seconds >= 60:
        return f"{minutes} min"
    return f"{seconds} s"


def set_clock_hint(moment: Optional[datetime.datetime]) -> str:
    """What to do; with the other node's time when it is known (else only bounds are)."""
    when = f"{moment.astimezone(datetime.timezone.utc):%Y-%m-%d %H:%M:%S}" if moment else "YYYY-MM-DD HH:MM:SS"
    hint = "then hwclock -w; or chronyc makestep once a time server answers"
    return f"set it (date -u -s '{when}', {hint}), then run again"


def clock_problem(now: datetime.datetime, references: List[ClockReference]) -> Optional[str]:
    """One line saying how far off the clock is, from the best reference it contradicts; None when it agrees
    with all of them."""
    for reference in sorted(references, key=lambda ref: ref.kind != NOW):  # another node's clock first
        gap = now - reference.time
        if reference.kind == NOW and abs(gap) > MAX_SKEW:
            way = "ahead of" if gap > datetime.timedelta(0) else "behind"
            return (
                f"this node's clock ({shown(now)}) is {span(gap)} {way} {reference.source} "
                f"({shown(reference.time)}), more than the {span(MAX_SKEW)} the cluster tolerates: "
                + set_clock_hint(reference.time)
            )
        if reference.kind == NOT_BEFORE and gap < datetime.timedelta(0):
            best = next((ref.time for ref in references if ref.kind == NOW), None)
            return (
                f"this node's clock ({shown(now)}) is before {reference.source} ({shown(reference.time)}), "
                f"so certificates would not be valid yet: the clock is at least {span(gap)} behind; "
                + set_clock_hint(best)
            )
        if reference.kind == NOT_AFTER and gap > datetime.timedelta(0):
            best = next((ref.time for ref in references if ref.kind == NOW), None)
            return (
                f"this node's clock ({shown(now)}) is after {reference.source} ({shown(reference.time)}), "
                f"so certificates would look expired: the clock is at least {span(gap)} ahead; " + set_clock_hint(best)
            )
    return None
