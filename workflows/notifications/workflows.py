"""NotificationWorkflow sends a notification's deliveries page by page;
FallbackWorkflow follows up unread in-app messages with text messages and,
when those fail, alerts the grid workers to phone.

A city-wide notification is some 270 pages: the workflow continues as new
every PAGES_PER_RUN pages, so no history grows past a few hundred events.
"""

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
# Between passes over deliveries a provider refused for now.
RETRY_FIRST = 1.0
RETRY_MAX = 300.0
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


@dataclass
class NotificationResult:
    notification_id: str
    purpose: int
    sent: int
    failed: int


@workflow.defn
class NotificationWorkflow:
    """Sends every pending delivery of one purpose, each at most once."""

    @workflow.run
    async def run(self, data: NotificationInput) -> NotificationResult:
        pages = 0
        while True:
            page = await self._dispatch(data)
            if page.wait_until:
                await self._wait_for_quiet_hours_to_end(page.wait_until)
                continue
            data.sent += page.sent
            data.failed += page.failed
            data.after_seq = page.last_seq
            if page.done and page.remaining == 0:
                break
            if page.done:
                await workflow.sleep(
                    _backoff(data.retry_pass, page.retry_after_seconds)
                )
                data = replace(data, after_seq=0, retry_pass=data.retry_pass + 1)
            pages += 1
            if pages >= PAGES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(data)
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

    async def _dispatch(self, data: NotificationInput) -> DispatchResult:
        return await workflow.execute_activity_method(
            NotificationActivities.dispatch_deliveries,
            DispatchInput(data.notification_id, data.purpose, data.after_seq, PAGE),
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


def _backoff(retry_pass: int, retry_after: int) -> float:
    """Seconds to wait before the next pass: doubling, at least Retry-After."""
    return max(float(retry_after), min(RETRY_FIRST * 2.0**retry_pass, RETRY_MAX))
