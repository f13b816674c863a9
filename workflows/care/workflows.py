"""Care workflows: one SquadWorkflow per squad, an AreaModeWorkflow per mode
switch, a CampaignWorkflow per campaign.

Why one workflow per squad and not per recipient: 1,225 squads serve 43,687
recipients (about 36 each). A squad's plans are re-read as one list, a mode
switch is one signal per squad rather than per recipient, and the member
gets one reminder per round instead of one per recipient. The plans
themselves live in the care schema; the workflow is the clock and the
memory of which reminders and alerts were sent, and it continues as new
when its history grows (see README, "Care-delivery squads").
"""

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows import search_attributes as sa

with workflow.unsafe.imports_passed_through():
    from workflows.care.activities import (
        AUDIENCE_GRID_WORKERS,
        AUDIENCE_SQUAD_MEMBERS,
        DELIVERY,
        VISIT,
        CareActivities,
        DueEntry,
        EnrollVillageInput,
        LoadScheduleInput,
        NotificationInput,
        ProgressInput,
        ReassignInput,
        SignalSquadsInput,
        VillagesInput,
    )

PEACETIME, WARTIME = "peacetime", "wartime"
# Reminders go this long before a visit or delivery is due; a visit this
# long overdue is reported to the grid worker as missed.
LEAD = {PEACETIME: timedelta(days=1), WARTIME: timedelta(hours=2)}
GRACE = {PEACETIME: timedelta(days=1), WARTIME: timedelta(hours=4)}
# How far ahead a squad reads its plans, and the longest it sleeps without
# re-reading them (a plan may come due that was not in the last read).
LOOKAHEAD = timedelta(days=8)
LONGEST_SLEEP = timedelta(hours=12)
# Continue as new past this many events (Temporal's hard limit is 51,200),
# or after this many rounds: a round is at most a few events per recipient,
# and not every server reports the history's length to the workflow.
HISTORY_EVENTS_MAX = 2_000
ROUNDS_MAX = 100
# Villages told per activity of a mode switch, and batches in flight.
VILLAGES_PER_BATCH = 20
BATCHES_IN_FLIGHT = 4
CAMPAIGN_POLL = timedelta(hours=1)

CALL = RetryPolicy(maximum_interval=timedelta(minutes=1))
# One or a few calls of a few seconds each; short, so a lost worker's task
# is retried elsewhere soon.
TIMEOUT = timedelta(seconds=30)
# Activities that walk many villages or roster pages heartbeat as they go.
LONG_TIMEOUT = timedelta(minutes=10)
HEARTBEAT = timedelta(seconds=20)


def mode_name(mode: int) -> str:
    """grids Mode enum value → the word used in search attributes and logs."""
    return WARTIME if mode == 2 else PEACETIME


def squad_workflow_id(squad_id: str) -> str:
    return f"squad-{squad_id}"


def area_mode_workflow_id(area_id: str, switch_id: str) -> str:
    return f"area-mode-{area_id}-{switch_id}"


def campaign_workflow_id(campaign_id: str) -> str:
    return f"campaign-{campaign_id}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# ---- squads ----


@dataclass
class SquadInput:
    squad_id: str
    village_id: str
    # Keys (see DueEntry.key) of reminders sent and missed visits reported,
    # carried across continue-as-new so nothing is sent twice.
    reminded: list[str] = field(default_factory=list)
    alerted: list[str] = field(default_factory=list)
    # Continue as new past this many events or rounds.
    history_events_max: int = HISTORY_EVENTS_MAX
    rounds_max: int = ROUNDS_MAX


@dataclass
class SquadRefresh:
    """Plans, visits or the mode changed: re-read the plans now."""

    reason: str
    mode: str = ""


@dataclass
class SquadSchedule:
    """What the squad has in view: the mode and its due items."""

    mode: str
    items: list[DueEntry]
    reminded: int
    alerted: int


@dataclass
class SquadScheduleQuery:
    pass


@workflow.defn
class SquadWorkflow:
    """Keeps one squad's visits and deliveries on time: reminds members ahead,
    reassigns from members who are not on duty, reports missed visits to the
    grid worker once, and follows the mode of the squad's village."""

    def __init__(self) -> None:
        self._dirty = False
        self._schedule = SquadSchedule(mode=PEACETIME, items=[], reminded=0, alerted=0)
        # AreaMode is set on the first round of every run, then on changes.
        self._mode_shown = False

    @workflow.signal(name="refresh")
    def refresh(self, data: SquadRefresh) -> None:
        self._dirty = True

    @workflow.query(name="schedule")
    def schedule(self, data: SquadScheduleQuery) -> SquadSchedule:
        return self._schedule

    @workflow.run
    async def run(self, data: SquadInput) -> None:
        reminded, alerted = set(data.reminded), set(data.alerted)
        rounds = 0
        while True:
            rounds += 1
            self._dirty = False
            try:
                mode, items = await self._load(data.squad_id)
                items = await self._remind(data, mode, items, reminded)
                await self._report_missed(data, mode, items, alerted)
            except ActivityError as error:
                # A refusal (not a retryable outage) of one round: try again
                # at the next wake-up rather than end the squad's care.
                workflow.logger.warning("squad round failed: %s", error.cause)
                mode, items = self._schedule.mode, self._schedule.items
            keys = {i.key for i in items}
            reminded &= keys
            alerted &= keys
            self._schedule = SquadSchedule(mode, items, len(reminded), len(alerted))
            events = workflow.info().get_current_history_length()
            if events > data.history_events_max or rounds >= data.rounds_max:
                workflow.continue_as_new(
                    SquadInput(
                        data.squad_id,
                        data.village_id,
                        sorted(reminded),
                        sorted(alerted),
                        data.history_events_max,
                        data.rounds_max,
                    )
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self._dirty,
                    timeout=_next_wake(items, mode, reminded, alerted, workflow.now()),
                )

    async def _load(self, squad_id: str) -> tuple[str, list[DueEntry]]:
        result = await workflow.execute_activity_method(
            CareActivities.load_squad_schedule,
            LoadScheduleInput(squad_id=squad_id, until=workflow.now() + LOOKAHEAD),
            start_to_close_timeout=TIMEOUT,
            retry_policy=CALL,
        )
        if result.mode != self._schedule.mode or not self._mode_shown:
            workflow.upsert_search_attributes([sa.AREA_MODE.value_set(result.mode)])
            workflow.logger.info("squad %s in %s", squad_id, result.mode)
            self._mode_shown = True
        return result.mode, result.items

    async def _remind(
        self, data: SquadInput, mode: str, items: list[DueEntry], reminded: set[str]
    ) -> list[DueEntry]:
        now = workflow.now()
        due = [
            i for i in items if i.key not in reminded and i.due_time - LEAD[mode] <= now
        ]
        if not due:
            return items
        moved = await workflow.execute_activity_method(
            CareActivities.reassign_unavailable,
            ReassignInput(
                squad_id=data.squad_id,
                village_id=data.village_id,
                key_prefix=workflow.info().workflow_id,
                items=due,
            ),
            start_to_close_timeout=TIMEOUT,
            retry_policy=CALL,
        )
        items = [i.with_member(moved.members.get(i.recipient_id)) for i in items]
        due = [i.with_member(moved.members.get(i.recipient_id)) for i in due]
        by_member: dict[str, list[DueEntry]] = {}
        for item in due:
            by_member.setdefault(item.member_id, []).append(item)
        for member_id, own in sorted(by_member.items()):
            keys = sorted(i.key for i in own)
            await self._notify(
                NotificationInput(
                    request_id=f"{workflow.info().workflow_id}/remind/"
                    + _digest("|".join(keys)),
                    title="Care visits due",
                    body=_reminder_text(own, mode),
                    staff_ids=[member_id],
                    urgent=mode == WARTIME,
                    reference=f"{workflow.info().workflow_id}/remind",
                )
            )
            reminded.update(keys)
        return items

    async def _report_missed(
        self, data: SquadInput, mode: str, items: list[DueEntry], alerted: set[str]
    ) -> None:
        now = workflow.now()
        for item in items:
            if item.kind != VISIT or item.key in alerted:
                continue
            if item.due_time + GRACE[mode] > now:
                continue
            await self._notify(
                NotificationInput(
                    request_id=f"{workflow.info().workflow_id}/missed/"
                    + _digest(item.key),
                    title="Care visit missed",
                    body=(
                        f"A care visit due {item.due_time:%Y-%m-%d %H:%M} UTC was not"
                        " recorded; please check on the recipient."
                    ),
                    area_ids=[item.grid_id],
                    tags=[AUDIENCE_GRID_WORKERS],
                    about_resident_id=item.recipient_id,
                    urgent=True,
                    reference=f"{workflow.info().workflow_id}/missed",
                )
            )
            alerted.add(item.key)
            workflow.logger.info("missed visit reported for squad %s", data.squad_id)

    async def _notify(self, data: NotificationInput) -> None:
        await workflow.execute_activity_method(
            CareActivities.send_care_notification,
            data,
            start_to_close_timeout=TIMEOUT,
            retry_policy=CALL,
        )


def _reminder_text(items: list[DueEntry], mode: str) -> str:
    visits = sum(1 for i in items if i.kind == VISIT)
    deliveries = sum(1 for i in items if i.kind == DELIVERY)
    first = min(i.due_time for i in items)
    urgent = " (wartime: recipients living alone first)" if mode == WARTIME else ""
    return (
        f"{visits} visit(s) and {deliveries} delivery(ies) due from"
        f" {first:%Y-%m-%d %H:%M} UTC{urgent}. See your due list in the app."
    )


def _next_wake(
    items: list[DueEntry],
    mode: str,
    reminded: set[str],
    alerted: set[str],
    now: datetime,
) -> timedelta:
    """Until the next reminder or missed-visit report, at most LONGEST_SLEEP."""
    moments = [i.due_time - LEAD[mode] for i in items if i.key not in reminded]
    moments += [
        i.due_time + GRACE[mode]
        for i in items
        if i.kind == VISIT and i.key not in alerted
    ]
    upcoming = [m - now for m in moments if m > now]
    return min([LONGEST_SLEEP, *upcoming])


# ---- peacetime and wartime ----


@dataclass
class AreaModeInput:
    area_id: str
    mode: str
    # The switch's time in milliseconds, from the grids service's record.
    switch_id: str


@dataclass
class AreaModeResult:
    villages: int
    squads: int


@workflow.defn
class AreaModeWorkflow:
    """Tells every squad of a switched area, a batch of villages per activity,
    so that a city of 407 villages and 1,225 squads is a few dozen events."""

    @workflow.run
    async def run(self, data: AreaModeInput) -> AreaModeResult:
        villages = await workflow.execute_activity_method(
            CareActivities.list_villages,
            VillagesInput(area_id=data.area_id),
            start_to_close_timeout=TIMEOUT,
            retry_policy=CALL,
        )
        ids = villages.village_ids
        batches = [
            ids[i : i + VILLAGES_PER_BATCH]
            for i in range(0, len(ids), VILLAGES_PER_BATCH)
        ]
        squads = 0
        for start in range(0, len(batches), BATCHES_IN_FLIGHT):
            results = await asyncio.gather(
                *(
                    workflow.execute_activity_method(
                        CareActivities.signal_squads,
                        SignalSquadsInput(
                            village_ids=batch, mode=data.mode, switch_id=data.switch_id
                        ),
                        start_to_close_timeout=LONG_TIMEOUT,
                        heartbeat_timeout=HEARTBEAT,
                        retry_policy=CALL,
                    )
                    for batch in batches[start : start + BATCHES_IN_FLIGHT]
                )
            )
            squads += sum(r.squads for r in results)
        workflow.logger.info(
            "area %s in %s: %s villages, %s squads told",
            data.area_id,
            data.mode,
            len(ids),
            squads,
        )
        return AreaModeResult(villages=len(ids), squads=squads)


# ---- campaigns ----


@dataclass
class CampaignInput:
    campaign_id: str
    village_ids: list[str]
    # ISO 8601: the sandbox's datetime class is not the payload converter's.
    due_time: str
    # Carried across continue-as-new.
    enrolled: list[str] = field(default_factory=list)
    announced: bool = False
    overdue: bool = False


@dataclass
class CampaignCheck:
    """A delivery was recorded that may have finished the campaign."""

    reason: str


@dataclass
class CampaignResult:
    recipients: int
    delivered: int
    refused: int


@workflow.defn
class CampaignWorkflow:
    """Enrolls every key service recipient of the villages (a roster page per
    call, so 1,000+ recipients are a handful of events), tells the squads,
    and waits until each recipient is delivered or has refused."""

    def __init__(self) -> None:
        self._check = False

    @workflow.signal(name="check")
    def check(self, data: CampaignCheck) -> None:
        self._check = True

    @workflow.run
    async def run(self, data: CampaignInput) -> CampaignResult:
        for village_id in data.village_ids:
            if village_id not in data.enrolled:
                await self._enroll(data, village_id)
        if not data.announced:
            await self._tell_squads(data, "start", "Campaign started")
            data.announced = True
        polls = 0
        while True:
            self._check = False
            progress = await workflow.execute_activity_method(
                CareActivities.get_campaign_progress,
                ProgressInput(campaign_id=data.campaign_id),
                start_to_close_timeout=TIMEOUT,
                retry_policy=CALL,
            )
            if progress.pending == 0 and not progress.enrolling:
                workflow.logger.info("campaign %s finished", data.campaign_id)
                return CampaignResult(
                    recipients=progress.delivered + progress.refused,
                    delivered=progress.delivered,
                    refused=progress.refused,
                )
            due = datetime.fromisoformat(data.due_time)
            if workflow.now() >= due and not data.overdue:
                workflow.upsert_search_attributes([sa.OVERDUE.value_set(True)])
                await self._tell_squads(
                    data, "overdue", f"{progress.pending} recipient(s) still waiting"
                )
                data.overdue = True
            polls += 1
            events = workflow.info().get_current_history_length()
            if events > HISTORY_EVENTS_MAX or polls >= ROUNDS_MAX:
                workflow.continue_as_new(data)
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self._check, timeout=CAMPAIGN_POLL
                )

    async def _enroll(self, data: CampaignInput, village_id: str) -> None:
        await workflow.execute_activity_method(
            CareActivities.enroll_village,
            EnrollVillageInput(
                campaign_id=data.campaign_id,
                village_id=village_id,
                key_prefix=workflow.info().workflow_id,
            ),
            start_to_close_timeout=LONG_TIMEOUT,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=CALL,
        )
        data.enrolled.append(village_id)

    async def _tell_squads(self, data: CampaignInput, step: str, title: str) -> None:
        try:
            await workflow.execute_activity_method(
                CareActivities.send_care_notification,
                NotificationInput(
                    request_id=f"{workflow.info().workflow_id}/{step}",
                    title=title,
                    body=f"Campaign due {data.due_time[:16]} UTC.",
                    area_ids=list(data.village_ids),
                    tags=[AUDIENCE_SQUAD_MEMBERS],
                    reference=workflow.info().workflow_id,
                ),
                start_to_close_timeout=TIMEOUT,
                retry_policy=CALL,
            )
        except ActivityError as error:
            workflow.logger.warning("campaign notice not sent: %s", error.cause)
