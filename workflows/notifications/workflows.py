"""NotificationWorkflow sends a notification's deliveries page by page;
FallbackWorkflow follows up unread in-app messages with text messages and,
when those fail, alerts the grid workers to phone.

A city-wide notification is some 270 pages: the workflow continues as new
every PAGES_PER_RUN pages, so no history grows past a few hundred events.
"""

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.notifications.activities import (
        DispatchInput,
        DispatchResult,
        NotificationActivities,
        QueueFallbackInput,
    )
    from workflows.notifications.shared import (
        FALLBACK_TEXT,
        GRID_WORKER_ALERT,
        MESSAGE,
        NotificationInput,
        notification_workflow_id,
    )

# 0: the service's page size (CLOUDARK_NOTIFICATIONS_PAGE).
PAGE = 0
PAGES_PER_RUN = 50
# Pages sent side by side.
LANES = 2
# The shortest pause between passes over deliveries still retrying.
RETRY_PAUSE = 0.5
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


@dataclass
class NotificationResult:
    notification_id: str
    purpose: int
    sent: int
    failed: int


@dataclass
class _Sweep:
    """One pass over the pending deliveries by every lane."""

    cursors: list[int]
    pages: int = 0
    sent: int = 0
    failed: int = 0
    # From the lane that finished last: what is still pending.
    remaining: int = 0
    retry_after: int = 0
    wait_until: float = 0.0
    out_of_pages: bool = False


@workflow.defn
class NotificationWorkflow:
    """Sends every pending delivery of one purpose, each at most once.

    LANES activities page through the deliveries side by side: the service
    locks each page (SKIP LOCKED) and pages only pending rows, so the lanes
    leapfrog one another and never send a delivery twice.
    """

    @workflow.run
    async def run(self, data: NotificationInput) -> NotificationResult:
        while True:
            sweep = _Sweep(cursors=[data.after_seq] * LANES)
            await asyncio.gather(*(self._lane(data, i, sweep) for i in range(LANES)))
            data.sent += sweep.sent
            data.failed += sweep.failed
            data.after_seq = min(sweep.cursors)
            if sweep.wait_until:
                await self._wait_for_quiet_hours_to_end(sweep.wait_until)
            elif sweep.out_of_pages:
                workflow.continue_as_new(data)
            elif sweep.remaining == 0:
                break
            else:
                # The service says when the next retrying delivery is due.
                await workflow.sleep(max(float(sweep.retry_after), RETRY_PAUSE))
                data = replace(data, after_seq=0, retry_pass=data.retry_pass + 1)
        workflow.logger.info(
            "notification %s purpose %s: %s sent, %s failed",
            data.notification_id,
            data.purpose,
            data.sent,
            data.failed,
        )
        if data.purpose == MESSAGE and data.fallback_after_seconds:
            await self._start_fallback(data)
        return NotificationResult(
            data.notification_id, data.purpose, data.sent, data.failed
        )

    async def _lane(self, data: NotificationInput, lane: int, sweep: _Sweep) -> None:
        """Pages until a short page, a quiet hour or the run's page budget."""
        while not (sweep.wait_until or sweep.out_of_pages):
            page = await self._dispatch(data, sweep.cursors[lane])
            if page.wait_until:
                sweep.wait_until = page.wait_until
                return
            sweep.sent += page.sent
            sweep.failed += page.failed
            sweep.cursors[lane] = page.last_seq
            sweep.pages += 1
            if (
                sweep.pages >= PAGES_PER_RUN
                or workflow.info().is_continue_as_new_suggested()
            ):
                sweep.out_of_pages = True
            if page.done:
                sweep.remaining = page.remaining
                sweep.retry_after = page.retry_after_seconds
                return

    async def _dispatch(
        self, data: NotificationInput, after_seq: int
    ) -> DispatchResult:
        return await workflow.execute_activity_method(
            NotificationActivities.dispatch_deliveries,
            DispatchInput(data.notification_id, data.purpose, after_seq, PAGE),
            start_to_close_timeout=timedelta(minutes=3),
            # A worker that dies mid-page is noticed in seconds, not minutes.
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=ACTIVITY_RETRY,
        )

    async def _wait_for_quiet_hours_to_end(self, wait_until: float) -> None:
        remaining = wait_until - workflow.now().timestamp()
        await workflow.sleep(max(remaining, 1.0))

    async def _start_fallback(self, data: NotificationInput) -> None:
        await workflow.start_child_workflow(
            FallbackWorkflow.run,
            data,
            id=f"{notification_workflow_id(data.notification_id, MESSAGE)}-fallback",
            parent_close_policy=ParentClosePolicy.ABANDON,
        )


@workflow.defn
class FallbackWorkflow:
    """Unread in-app after N seconds → text message; failed → grid worker alert."""

    @workflow.run
    async def run(self, data: NotificationInput) -> NotificationResult:
        await workflow.sleep(data.fallback_after_seconds)
        texts = await self._follow_up(data.notification_id, FALLBACK_TEXT)
        result = NotificationResult(data.notification_id, FALLBACK_TEXT, texts.sent, 0)
        result.failed = texts.failed
        if data.alert_grid_worker and texts.failed:
            await self._follow_up(data.notification_id, GRID_WORKER_ALERT)
        return result

    async def _follow_up(
        self, notification_id: str, purpose: int
    ) -> NotificationResult:
        queued = await workflow.execute_activity_method(
            NotificationActivities.queue_fallback_deliveries,
            QueueFallbackInput(notification_id, purpose),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=ACTIVITY_RETRY,
        )
        workflow.logger.info(
            "notification %s: %s deliveries of purpose %s queued",
            notification_id,
            queued.queued,
            purpose,
        )
        if not queued.queued:
            return NotificationResult(notification_id, purpose, 0, 0)
        return await workflow.execute_child_workflow(
            NotificationWorkflow.run,
            NotificationInput(notification_id=notification_id, purpose=purpose),
            id=notification_workflow_id(notification_id, purpose),
        )
