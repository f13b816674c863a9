"""RedemptionWorkflow: points for goods at a merchant, as a saga.

Hold the points, reserve the item, wait for the merchant to confirm the
hand-over (an update, within a time limit), then pay the merchant; on
refusal, cancellation or timeout give the points and the item back. Each
step carries a request_id derived from the workflow id, its run and the
step, so it acts once however often it runs.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.redemption.activities import (
        HoldPointsInput,
        RedemptionActivities,
        ReserveStockInput,
        SettleHoldInput,
        SettleRedemptionInput,
    )

STEP_TIMEOUT = timedelta(seconds=30)
# Retry a step until it succeeds or fails for good: an outage of the
# residents service must not leave points held for ever.
RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))

# Phases, in order.
RESERVING, FAILED, PENDING, SETTLING, SETTLED = (
    "reserving",
    "failed",
    "pending",
    "settling",
    "settled",
)
CONFIRM, REFUSE, CANCEL = "confirm", "refuse", "cancel"


@dataclass
class RedemptionInput:
    redemption_id: str
    offer_id: str
    merchant_id: str
    resident_id: str
    points: int
    confirm_seconds: int


@dataclass
class RedemptionResult:
    redemption_id: str
    # "committed" or "released". A redemption refused before anything was
    # reserved fails instead, with an ApplicationError whose type is the
    # gRPC code name of the step that refused.
    state: str
    # When released: "expired", "refused" or "cancelled".
    release_reason: str = ""


@dataclass
class AwaitReservationInput:
    pass


@dataclass
class AwaitReservationResult:
    # "pending" or "failed".
    state: str
    error_type: str = ""
    error_message: str = ""


@dataclass
class DecisionInput:
    # "confirm" or "refuse" (the merchant), "cancel" (the resident or an
    # operator).
    decision: str
    # The merchant or resident deciding; empty for an operator.
    actor_id: str
    by_operator: bool = False


@dataclass
class DecisionResult:
    state: str
    release_reason: str = ""


@workflow.defn
class RedemptionWorkflow:
    """One redemption, workflow id `redemption-<redemption id>`."""

    def __init__(self) -> None:
        self._phase = RESERVING
        self._merchant_id = ""
        self._resident_id = ""
        self._decision = ""
        self._result: RedemptionResult | None = None
        self._error = ("", "")

    @workflow.run
    async def run(self, data: RedemptionInput) -> RedemptionResult:
        self._merchant_id, self._resident_id = data.merchant_id, data.resident_id
        deadline = workflow.now() + timedelta(seconds=data.confirm_seconds)
        hold_id = await self._reserve(data, deadline)
        if hold_id is None:
            # Failed, not completed: the same redemption id (the caller's
            # request_id) may run again once the caller has put things right.
            await workflow.wait_condition(workflow.all_handlers_finished)
            code, message = self._error
            raise ApplicationError(message, type=code, non_retryable=True)

        self._phase = PENDING
        workflow.logger.info("redemption %s pending", data.redemption_id)
        reason = await self._await_decision(deadline)

        self._phase = SETTLING
        if reason == "" and not await self._commit(hold_id):
            reason = "cancelled"
        if reason:
            await self._step(
                RedemptionActivities.release_hold,
                SettleHoldInput(hold_id, self._key("release")),
            )
        state = "released" if reason else "committed"
        await self._step(
            RedemptionActivities.settle_redemption,
            SettleRedemptionInput(
                data.redemption_id, state, reason, self._key("settle")
            ),
        )
        self._result = RedemptionResult(data.redemption_id, state, reason)
        self._phase = SETTLED
        workflow.logger.info("redemption %s %s %s", data.redemption_id, state, reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    @workflow.update
    async def await_reservation(
        self, data: AwaitReservationInput
    ) -> AwaitReservationResult:
        """Answers once the points are held and the item reserved, or not."""
        await workflow.wait_condition(lambda: self._phase != RESERVING)
        if self._phase == FAILED:
            code, message = self._error
            return AwaitReservationResult(FAILED, code, message)
        return AwaitReservationResult(PENDING)

    @workflow.update
    async def decide(self, data: DecisionInput) -> DecisionResult:
        """The merchant's confirmation or refusal, or the resident's
        cancellation; answers with the outcome once it is settled."""
        self._decision = data.decision
        await workflow.wait_condition(lambda: self._phase == SETTLED)
        assert self._result is not None
        return DecisionResult(self._result.state, self._result.release_reason)

    @decide.validator
    def validate_decision(self, data: DecisionInput) -> None:
        if data.decision in (CONFIRM, REFUSE):
            if data.actor_id != self._merchant_id:
                raise ApplicationError(
                    "only the redemption's merchant decides", type="PERMISSION_DENIED"
                )
        elif data.decision == CANCEL:
            if not data.by_operator and data.actor_id != self._resident_id:
                raise ApplicationError(
                    "only the redemption's resident cancels", type="PERMISSION_DENIED"
                )
        else:
            raise ApplicationError("unknown decision", type="INVALID_ARGUMENT")
        if self._phase != PENDING or self._decision:
            raise ApplicationError(
                f"the redemption is {self._phase}, not pending", type="NOT_PENDING"
            )

    async def _reserve(self, data: RedemptionInput, deadline: datetime) -> str | None:
        """Holds the points, then takes the item; None when either refused
        (a hold already made is released first)."""
        try:
            held = await self._step(
                RedemptionActivities.hold_points,
                HoldPointsInput(
                    data.resident_id, data.merchant_id, data.points, self._key("hold")
                ),
            )
        except ActivityError as error:
            self._fail(error)
            return None
        try:
            await self._step(
                RedemptionActivities.reserve_stock,
                ReserveStockInput(
                    data.redemption_id,
                    data.offer_id,
                    data.resident_id,
                    held.hold_id,
                    data.points,
                    deadline,
                    self._key("reserve"),
                ),
            )
        except ActivityError as error:
            await self._step(
                RedemptionActivities.release_hold,
                SettleHoldInput(held.hold_id, self._key("release")),
            )
            self._fail(error)
            return None
        return str(held.hold_id)

    async def _await_decision(self, deadline: datetime) -> str:
        """ "" when confirmed; otherwise why the points go back."""
        left = max(deadline - workflow.now(), timedelta(0))
        try:
            await workflow.wait_condition(lambda: bool(self._decision), timeout=left)
        except TimeoutError:
            return "expired"
        return {CONFIRM: "", REFUSE: "refused", CANCEL: "cancelled"}[self._decision]

    async def _commit(self, hold_id: str) -> bool:
        """Pays the merchant; False when the hold was released meanwhile
        (the resident released it through the residents service)."""
        try:
            await self._step(
                RedemptionActivities.commit_hold,
                SettleHoldInput(hold_id, self._key("commit")),
            )
        except ActivityError as error:
            cause = error.cause
            if (
                isinstance(cause, ApplicationError)
                and cause.type == "FAILED_PRECONDITION"
            ):
                return False
            raise
        return True

    def _fail(self, error: ActivityError) -> None:
        cause = error.cause
        if isinstance(cause, ApplicationError):
            code, _, message = str(cause.message).partition(": ")
            self._error = (cause.type or code, message or code)
        else:
            self._error = ("UNAVAILABLE", "a saga step failed")
        self._phase = FAILED
        workflow.logger.info("redemption refused at reservation: %s", self._error[0])

    def _key(self, step: str) -> str:
        # The run is part of the key: a failed run's refused hold must not
        # answer for the next run of the same redemption.
        info = workflow.info()
        return f"{info.workflow_id}/{info.run_id}/{step}"

    async def _step(self, activity: Any, data: Any) -> Any:
        return await workflow.execute_activity_method(
            activity,
            data,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=RETRY,
        )
