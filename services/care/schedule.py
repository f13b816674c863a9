"""What a squad has due, under the mode in force: pure functions of the plans.

Peacetime: a visit every `visit_every_days` after the last one (or after the
plan was made), each regular need every `every_days` after its last delivery.
Wartime: recipients living alone are contacted daily and everyone else at
least every WARTIME_VISIT_EVERY_DAYS, counted from the last visit or the
switch, whichever is later, so a switch never makes the whole roster overdue
at once; recipients living alone come first.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.care import config
from services.care.repository import PlanRow

VISIT, DELIVERY = 1, 2
URGENT, NORMAL = 1, 2


@dataclass(frozen=True)
class Due:
    recipient_id: uuid.UUID
    member_id: uuid.UUID
    micro_grid_id: uuid.UUID
    grid_id: uuid.UUID
    kind: int
    need: int
    due_time: datetime
    priority: int
    lives_alone: bool


def visit_due(
    plan: PlanRow, *, wartime: bool, switch_time: datetime | None
) -> datetime:
    since = plan.last_visit_time or plan.create_time
    due = since + timedelta(days=plan.visit_every_days)
    if not wartime:
        return due
    every = 1 if plan.lives_alone else config.WARTIME_VISIT_EVERY_DAYS
    start = max(since, switch_time) if switch_time else since
    return min(due, start + timedelta(days=every))


def due_items(
    plans: list[PlanRow],
    *,
    wartime: bool,
    switch_time: datetime | None,
    until: datetime,
) -> list[Due]:
    """Visits and deliveries due at or before until, most urgent first."""
    items: list[Due] = []
    for plan in plans:
        priority = URGENT if wartime and plan.lives_alone else NORMAL
        visit = visit_due(plan, wartime=wartime, switch_time=switch_time)
        items.append(_due(plan, VISIT, 0, visit, priority))
        for need in plan.needs:
            since = need.last_delivery_time or need.create_time
            due = since + timedelta(days=need.every_days)
            items.append(_due(plan, DELIVERY, need.kind, due, priority))
    found = [i for i in items if i.due_time <= until]
    return sorted(
        found, key=lambda i: (i.priority, i.due_time, i.recipient_id, i.kind, i.need)
    )


def _due(plan: PlanRow, kind: int, need: int, due: datetime, priority: int) -> Due:
    return Due(
        recipient_id=plan.recipient_id,
        member_id=plan.member_id,
        micro_grid_id=plan.micro_grid_id,
        grid_id=plan.area_ids[3],
        kind=kind,
        need=need,
        due_time=due,
        priority=priority,
        lives_alone=plan.lives_alone,
    )
