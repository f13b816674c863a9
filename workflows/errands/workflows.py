"""ErrandWorkflow: one errand from request to proof of delivery.

Dispatch offers the errand to the micro-grid's helpers in the grids service's
order, a batch at a time, each for a short window; when that list runs out
it alerts the grid worker's supervisor and widens to the village's other
grids. Accept, the reports, drop and cancel are Updates, so the front door
answers with the outcome. The due time runs beside all this: when it passes
before delivery the errand is marked breached and the supervisor alerted.

Every side effect has a key derived from the workflow id and the step
(offer-3, accept-1, points…), so nothing is repeated through replays.
"""

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import search_attributes as sa

with workflow.unsafe.imports_passed_through():
    from cloudark.errands.v1 import errands_pb2 as pb
    from cloudark.grids.v1 import staff_pb2 as staff_pb

    from workflows.errands.activities import (
        RESIDENT_HELPERS,
        AdjustHelperLoadInput,
        Candidate,
        ErrandActivities,
        FindSupervisorsInput,
        FindSupervisorsResult,
        RankHelpersInput,
        RecordStepInput,
    )
    from workflows.messaging import (
        EarnPointsInput,
        MessagingActivities,
        SendNotificationInput,
    )

WAITING = pb.ERRAND_STATUS_WAITING_FOR_HELPER
ACCEPTED = pb.ERRAND_STATUS_ACCEPTED
PICKED_UP = pb.ERRAND_STATUS_PICKED_UP
DELIVERED = pb.ERRAND_STATUS_DELIVERED
CANCELLED = pb.ERRAND_STATUS_CANCELLED
IN_HAND = (ACCEPTED, PICKED_UP)
CLOSED = (DELIVERED, CANCELLED)
WIDER = staff_pb.RANK_TIER_NEIGHBOURING_GRID_WORKER

# Helpers read times in China Standard Time.
CHINA = timezone(timedelta(hours=8))
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A message not sent by then is given up (and logged): the errand goes on.
NOTICE_WITHIN = timedelta(minutes=10)
RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10))
KIND_WORDS: dict[int, str] = {
    pb.ERRAND_KIND_MEDICINE: "medicine",
    pb.ERRAND_KIND_SHOPPING: "shopping",
    pb.ERRAND_KIND_OTHER: "help",
}


def status_name(status: int) -> str:
    """ERRAND_STATUS_ACCEPTED -> ACCEPTED: the ErrandStatus search attribute."""
    return pb.ErrandStatus.Name(status).removeprefix("ERRAND_STATUS_")  # type: ignore[arg-type]


@dataclass
class ErrandState:
    """Where an errand stands; the query answer, and what continue-as-new carries."""

    status: int
    # When the promise runs out, in workflow time (ISO 8601).
    due_at: str
    breached: bool = False
    # Offered right now (the current batch).
    offered_helper_ids: list[str] = field(default_factory=list)
    # Every helper offered since it last went to dispatch: any of them may accept.
    eligible: list[Candidate] = field(default_factory=list)
    helper: Candidate | None = None
    # Helpers who dropped it or fell silent: not offered it again.
    excluded_helper_ids: list[str] = field(default_factory=list)
    escalated: bool = False
    # Counters that make step keys unique.
    offers: int = 0
    assignments: int = 0
    rounds: int = 0
    reports: int = 0


@dataclass
class ErrandInput:
    errand_id: str
    resident_id: str
    kind: int
    micro_grid_id: str
    # The micro-grid's ancestors, the city first: city, town, village, grid.
    ancestor_ids: list[str]
    # The due time the resident was promised, ISO 8601 (shown in offers).
    due_time: str
    due_seconds: int
    offer_window_seconds: int
    offer_batch: int
    report_timeout_seconds: int
    redispatch_seconds: int
    # Set when continued as new.
    state: ErrandState | None = None


@dataclass
class ErrandResult:
    status: int
    helper_id: str
    breached: bool


@dataclass
class HelperInput:
    """Accept, report picked up and drop: which helper says so."""

    helper_id: str
    reason: str = ""


@dataclass
class DeliverInput:
    helper_id: str
    note: str
    photo_ref: str


@dataclass
class CancelInput:
    reason: str = ""


@dataclass
class StepResult:
    status: int
    helper_id: str


def _refuse(message: str, kind: str = "FAILED_PRECONDITION") -> ApplicationError:
    # The type names the gRPC status the front door answers with.
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn
class ErrandWorkflow:
    """Carries one errand; the id is `errand-<errand id>`."""

    def __init__(self) -> None:
        self._data: ErrandInput | None = None
        self._state = ErrandState(status=WAITING, due_at="")
        # Messages sent in the background; all are awaited before the end.
        self._pending: list[asyncio.Task[bool]] = []

    @workflow.run
    async def run(self, data: ErrandInput) -> ErrandResult:
        self._data = data
        due_at = workflow.now() + timedelta(seconds=data.due_seconds)
        self._state = data.state or ErrandState(
            status=WAITING, due_at=due_at.isoformat()
        )
        watch = asyncio.create_task(self._watch_due_time())
        while self._state.status not in CLOSED:
            if self._state.status == WAITING:
                if self._should_continue_as_new(watch):
                    watch.cancel()
                    workflow.continue_as_new(replace(data, state=self._state))
                await self._dispatch()
            else:
                await self._follow_helper()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._state.status == DELIVERED:
            await self._reward()
        # Once closed the watch ends by itself, after a breach in flight.
        await watch
        await asyncio.gather(*self._pending)
        helper = self._state.helper
        return ErrandResult(
            self._state.status, helper.helper_id if helper else "", self._state.breached
        )

    @workflow.query
    def state(self) -> ErrandState:
        return self._state

    # ---- dispatch ----

    async def _dispatch(self) -> None:
        state = self._state
        state.rounds += 1
        candidates = await self._rank()
        local = [c for c in candidates if c.tier != WIDER]
        wider = [c for c in candidates if c.tier == WIDER]
        if await self._offer_in_turn(local):
            return
        if not state.escalated:
            await self._escalate(f"escalate-{state.rounds}")
        if wider:
            await self._record(pb.STEP_KIND_WIDENED, f"widen-{state.rounds}")
            if await self._offer_in_turn(wider):
                return
        # Everyone was asked: wait a while (a late accept still counts), then
        # ask whoever is on duty again.
        state.offered_helper_ids = []
        await self._wait(
            lambda: state.status != WAITING, self._input.redispatch_seconds
        )

    async def _rank(self) -> list[Candidate]:
        result = await workflow.execute_activity_method(
            ErrandActivities.rank_helpers,
            RankHelpersInput(self._input.micro_grid_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        state = self._state
        return [
            c for c in result.candidates if c.helper_id not in state.excluded_helper_ids
        ]

    async def _offer_in_turn(self, candidates: list[Candidate]) -> bool:
        """Offers to a batch at a time; True once someone accepted (or it closed)."""
        state, data = self._state, self._input
        for start in range(0, len(candidates), data.offer_batch):
            if state.status != WAITING:
                return True
            batch = candidates[start : start + data.offer_batch]
            state.offered_helper_ids = [c.helper_id for c in batch]
            known = {c.helper_id for c in state.eligible}
            state.eligible += [c for c in batch if c.helper_id not in known]
            sent = [await self._offer(helper) for helper in batch]
            # Nobody can accept an offer they never got: then ask the next.
            if any(sent) and await self._wait(
                lambda: state.status != WAITING, data.offer_window_seconds
            ):
                return True
        return state.status != WAITING

    async def _offer(self, helper: Candidate) -> bool:
        """Records and sends one offer; False when the message could not go."""
        state = self._state
        state.offers += 1
        key = f"offer-{state.offers}"
        await self._record(pb.STEP_KIND_OFFERED, key, step_helper_id=helper.helper_id)
        kind = KIND_WORDS.get(self._input.kind, "help")
        due_time = datetime.fromisoformat(self._input.due_time)
        due = due_time.astimezone(CHINA).strftime("%H:%M")
        return await self._notify(
            key,
            [helper],
            "Errand offered to you",
            f"A {kind} errand in your area is due by {due}. Accept it in the app.",
            urgent=True,
            within=timedelta(seconds=self._input.offer_window_seconds),
        )

    async def _escalate(self, key: str) -> None:
        """Tells the grid workers' supervisors nobody in the micro-grid accepted."""
        self._state.escalated = True
        await self._record(pb.STEP_KIND_ESCALATED, key)
        await self._alert_supervisors(
            key, "Errand waiting for a helper", "Nobody in the micro-grid accepted."
        )

    # ---- the helper's side ----

    async def _follow_helper(self) -> None:
        """Waits for the next report; silence for too long sends it back."""
        state = self._state
        seen, assignment = state.reports, state.assignments
        if await self._wait(
            lambda: state.reports != seen or state.status not in IN_HAND,
            self._input.report_timeout_seconds,
        ):
            return
        if state.assignments == assignment and state.status in IN_HAND:
            await self._return_to_dispatch(
                pb.STEP_KIND_TIMED_OUT, f"timeout-{assignment}", "no report in time"
            )

    async def _return_to_dispatch(self, kind: int, key: str, note: str) -> None:
        state = self._state
        helper = state.helper
        assert helper is not None
        state.status = WAITING
        state.helper = None
        state.eligible = []
        state.offered_helper_ids = []
        state.escalated = False
        state.excluded_helper_ids.append(helper.helper_id)
        self._publish_status()
        await self._record(kind, key, step_helper_id=helper.helper_id, note=note)
        await self._adjust_load(helper, -1, f"release-{state.assignments}")

    @workflow.update
    async def accept(self, data: HelperInput) -> StepResult:
        self._check_accept(data)
        state = self._state
        helper = next(c for c in state.eligible if c.helper_id == data.helper_id)
        state.status = ACCEPTED
        state.helper = helper
        state.assignments += 1
        state.reports += 1
        state.offered_helper_ids = []
        self._publish_status()
        key = f"accept-{state.assignments}"
        await self._record(pb.STEP_KIND_ACCEPTED, key)
        await self._adjust_load(helper, 1, key)
        self._tell_resident(key, "A helper accepted your errand")
        return self._step_result()

    @accept.validator
    def _check_accept(self, data: HelperInput) -> None:
        state = self._state
        if state.status in CLOSED:
            raise _refuse("the errand is closed")
        if state.status != WAITING:
            raise _refuse("another helper already accepted the errand")
        if all(c.helper_id != data.helper_id for c in state.eligible):
            raise _refuse("the errand was not offered to this helper")

    @workflow.update
    async def report_picked_up(self, data: HelperInput) -> StepResult:
        self._check_picked_up(data)
        self._state.status = PICKED_UP
        self._state.reports += 1
        self._publish_status()
        key = f"pickup-{self._state.assignments}"
        await self._record(pb.STEP_KIND_PICKED_UP, key)
        self._tell_resident(key, "Your helper is on the way")
        return self._step_result()

    @report_picked_up.validator
    def _check_picked_up(self, data: HelperInput) -> None:
        self._check_helper(data.helper_id)
        if self._state.status != ACCEPTED:
            raise _refuse("the errand is already picked up")

    @workflow.update
    async def report_delivered(self, data: DeliverInput) -> StepResult:
        self._check_delivered(data)
        state = self._state
        state.status = DELIVERED
        state.reports += 1
        self._publish_status()
        await self._record(
            pb.STEP_KIND_DELIVERED,
            "deliver",
            note=data.note,
            delivery_note=data.note,
            photo_ref=data.photo_ref,
        )
        self._tell_resident("deliver", data.note or "Your errand is delivered")
        return self._step_result()

    @report_delivered.validator
    def _check_delivered(self, data: DeliverInput) -> None:
        self._check_helper(data.helper_id)

    @workflow.update
    async def drop(self, data: HelperInput) -> StepResult:
        self._check_helper(data.helper_id)
        key = f"drop-{self._state.assignments}"
        await self._return_to_dispatch(pb.STEP_KIND_DROPPED, key, data.reason)
        return self._step_result()

    @drop.validator
    def _check_drop(self, data: HelperInput) -> None:
        self._check_helper(data.helper_id)

    @workflow.update
    async def cancel(self, data: CancelInput) -> StepResult:
        self._check_cancel(data)
        state = self._state
        helper = state.helper if state.status in IN_HAND else None
        state.status = CANCELLED
        state.offered_helper_ids = []
        self._publish_status()
        await self._record(pb.STEP_KIND_CANCELLED, "cancel", note=data.reason)
        if helper is not None:
            await self._adjust_load(helper, -1, "cancel")
            self._later(
                self._notify(
                    "cancel",
                    [helper],
                    "Errand cancelled",
                    "You no longer need to run it.",
                )
            )
        return self._step_result()

    @cancel.validator
    def _check_cancel(self, data: CancelInput) -> None:
        if self._state.status == DELIVERED:
            raise _refuse("the errand is already delivered")
        if self._state.status == CANCELLED:
            raise _refuse("the errand is already cancelled")

    def _check_helper(self, helper_id: str) -> None:
        """Reports and drops come from the helper who accepted, while in hand."""
        state = self._state
        if state.status in CLOSED:
            raise _refuse("the errand is closed")
        if state.status == WAITING:
            raise _refuse("nobody has accepted the errand yet")
        if state.helper is None or state.helper.helper_id != helper_id:
            raise _refuse("the errand is another helper's", "PERMISSION_DENIED")

    def _step_result(self) -> StepResult:
        helper = self._state.helper
        return StepResult(self._state.status, helper.helper_id if helper else "")

    # ---- the promise ----

    async def _watch_due_time(self) -> None:
        state = self._state
        due_at = datetime.fromisoformat(state.due_at)
        remaining = (due_at - workflow.now()).total_seconds()
        if state.breached or await self._wait(
            lambda: state.status in CLOSED, max(remaining, 0.001)
        ):
            return
        state.breached = True
        self._publish_status()
        await self._record(pb.STEP_KIND_BREACHED, "breach")
        await self._alert_supervisors(
            "breach", "Errand breached", "An errand passed its due time undelivered."
        )

    async def _reward(self) -> None:
        """The helper earns points once, and its load goes back down."""
        helper = self._state.helper
        assert helper is not None
        await self._adjust_load(helper, -1, "deliver")
        if helper.kind not in RESIDENT_HELPERS:
            return
        earned = await workflow.execute_activity_method(
            MessagingActivities.earn_points,
            EarnPointsInput(helper.person_id, self._request_id("points")),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        if earned.earned:
            await self._record(pb.STEP_KIND_POINTS_EARNED, "points")

    # ---- side effects ----

    async def _record(
        self,
        kind: int,
        key: str,
        *,
        step_helper_id: str = "",
        note: str = "",
        delivery_note: str = "",
        photo_ref: str = "",
    ) -> None:
        state = self._state
        await workflow.execute_activity_method(
            ErrandActivities.record_step,
            RecordStepInput(
                errand_id=self._input.errand_id,
                step_key=key,
                kind=kind,
                status=state.status,
                offered_helper_ids=list(state.offered_helper_ids),
                helper_id=state.helper.helper_id if state.helper else "",
                step_helper_id=step_helper_id,
                note=note,
                breached=state.breached,
                delivery_note=delivery_note,
                photo_ref=photo_ref,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    async def _notify(
        self,
        key: str,
        helpers: list[Candidate],
        title: str,
        body: str,
        *,
        urgent: bool = False,
        within: timedelta = NOTICE_WITHIN,
    ) -> bool:
        residents = [h.person_id for h in helpers if h.kind in RESIDENT_HELPERS]
        # Notifications resolves staff by their helper id (StaffService), and
        # delivers to the helper's person; volunteers are reached as residents.
        staff = [h.helper_id for h in helpers if h.kind not in RESIDENT_HELPERS]
        return await self._send(
            SendNotificationInput(
                title=title,
                body=body,
                reference=f"errand-{self._input.errand_id}/{key}",
                request_id=self._request_id(f"notify-{key}"),
                resident_ids=residents,
                staff_ids=staff,
                urgent=urgent,
            ),
            within,
        )

    def _tell_resident(self, key: str, body: str) -> None:
        """Tells the resident in the background: the step does not wait for it."""
        message = SendNotificationInput(
            title="Your errand",
            body=body,
            reference=f"errand-{self._input.errand_id}/{key}",
            request_id=self._request_id(f"tell-{key}"),
            resident_ids=[self._input.resident_id],
            text_fallback=True,
        )
        self._later(self._send(message, NOTICE_WITHIN))

    async def _alert_supervisors(self, key: str, title: str, body: str) -> None:
        grid_id = self._input.ancestor_ids[-1] if self._input.ancestor_ids else ""
        try:
            found = await workflow.execute_activity_method(
                ErrandActivities.find_supervisors,
                FindSupervisorsInput(grid_id),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
        except ActivityError:
            found = FindSupervisorsResult([])
        if not found.supervisors:
            workflow.logger.warning(
                "errand %s: no supervisor to alert (%s)", self._input.errand_id, key
            )
            return
        await self._notify(f"alert-{key}", found.supervisors, title, body, urgent=True)

    async def _send(self, data: SendNotificationInput, within: timedelta) -> bool:
        # A message refused for good (say, an unknown recipient) or not sent
        # within its time must not stop the errand; until then it is retried.
        try:
            await workflow.execute_activity_method(
                MessagingActivities.send_notification,
                data,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                schedule_to_close_timeout=within,
                retry_policy=RETRY,
            )
        except ActivityError as error:
            workflow.logger.warning(
                "errand %s: message %s not sent: %s",
                self._input.errand_id,
                data.reference,
                error.cause,
            )
            return False
        return True

    def _later(self, message: Coroutine[Any, Any, bool]) -> None:
        self._pending.append(asyncio.create_task(message))

    async def _adjust_load(self, helper: Candidate, delta: int, key: str) -> None:
        await workflow.execute_activity_method(
            ErrandActivities.adjust_helper_load,
            AdjustHelperLoadInput(
                helper.helper_id, delta, self._request_id(f"load-{key}")
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    # ---- plumbing ----

    @property
    def _input(self) -> ErrandInput:
        assert self._data is not None
        return self._data

    def _request_id(self, key: str) -> str:
        return f"{workflow.info().workflow_id}/{key}"

    def _publish_status(self) -> None:
        workflow.upsert_search_attributes(
            [
                sa.ERRAND_STATUS.value_set(status_name(self._state.status)),
                sa.BREACHED.value_set(self._state.breached),
            ]
        )

    def _should_continue_as_new(self, watch: "asyncio.Task[None]") -> bool:
        # Not while a breach is being recorded: it would be lost.
        breaching = self._state.breached and not watch.done()
        return (
            workflow.info().is_continue_as_new_suggested()
            and workflow.all_handlers_finished()
            and not breaching
            and all(task.done() for task in self._pending)
        )

    async def _wait(self, condition: Callable[[], bool], seconds: float) -> bool:
        """True when condition came true, False when the time ran out first."""
        try:
            await workflow.wait_condition(condition, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            return condition()
        return True
