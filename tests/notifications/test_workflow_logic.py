"""NotificationWorkflow's paging, quiet-hour waits and continue-as-new, with
the dispatch activity mocked under its real name, on the dev server."""

import dataclasses
import time
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from services.common.server import RunningService
from services.notifications import repository as repo
from services.notifications.dispatch import Dispatcher
from services.notifications.providers import OutboxProvider, RateLimiter
from workflows.notifications.activities import DispatchInput, DispatchResult
from workflows.notifications.shared import NotificationInput
from workflows.notifications.workflows import (
    LANES,
    PAGES_PER_RUN,
    FallbackWorkflow,
    NotificationWorkflow,
)

ZONE = ZoneInfo("Asia/Shanghai")


class FakeDeliveries:
    """Plays the service: `total` pending deliveries, `page` at a time, after
    an optional quiet spell that lasts until `quiet_until` (epoch seconds)."""

    def __init__(self, total: int, page: int, quiet_until: float = 0.0) -> None:
        self.pending = list(range(1, total + 1))
        self.page = page
        self.quiet_until = quiet_until
        self.calls: list[DispatchInput] = []

    @activity.defn(name="dispatch_deliveries")
    async def dispatch(self, data: DispatchInput) -> DispatchResult:
        self.calls.append(data)
        if (
            self.quiet_until
            and activity.info().current_attempt_scheduled_time.timestamp()
            < self.quiet_until
        ):
            return DispatchResult(
                data.after_seq, False, 0, 0, 0, 0, 0, self.quiet_until
            )
        taken = [s for s in self.pending if s > data.after_seq][: self.page]
        self.pending = [s for s in self.pending if s not in taken]
        done = len(taken) < self.page
        remaining = len(self.pending) if done else 0
        last = taken[-1] if taken else data.after_seq
        return DispatchResult(last, done, len(taken), 0, 0, remaining, 0, 0.0)


async def test_a_big_notification_continues_as_new_and_sends_every_page_once(
    temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    pages = PAGES_PER_RUN * 2 + 7
    fake = FakeDeliveries(total=pages * 10, page=10)
    async with Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=[NotificationWorkflow, FallbackWorkflow],
        activities=[fake.dispatch],
    ):
        handle = await temporal_env.client.start_workflow(
            NotificationWorkflow.run,
            NotificationInput(notification_id=str(uuid.uuid4())),
            id=f"notification-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        result = await handle.result()
        first_run = await temporal_env.client.get_workflow_handle(
            handle.id, run_id=handle.result_run_id
        ).fetch_history()

    assert (result.sent, result.failed) == (pages * 10, 0)
    assert fake.pending == []
    last_event = first_run.events[-1].event_type
    assert last_event == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert len(first_run.events) < 1000


async def test_quiet_hours_hold_the_workflow_until_they_end(
    temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    # A quiet spell of two seconds, so the test waits it out for real.
    fake = FakeDeliveries(total=5, page=10, quiet_until=time.time() + 2)
    async with Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=[NotificationWorkflow],
        activities=[fake.dispatch],
    ):
        result = await temporal_env.client.execute_workflow(
            NotificationWorkflow.run,
            NotificationInput(notification_id=str(uuid.uuid4())),
            id=f"notification-{uuid.uuid4()}",
            task_queue=task_queue,
        )

    assert result.sent == 5
    # Each lane asked once in quiet hours, and once after them.
    assert len(fake.calls) == 2 * LANES


async def test_non_urgent_deliveries_wait_in_quiet_hours_and_expire_after_them(
    notifications_service: RunningService,
) -> None:
    notification_id = uuid.uuid4()
    created = datetime(2022, 12, 5, 12, 0, tzinfo=ZONE)
    row = repo.NotificationRow(
        id=notification_id,
        sender_id="cadre-1",
        template_id=None,
        variables={},
        titles={"zh": "停电", "en": "Power cut"},
        bodies={"zh": "明早停电", "en": "Power cut tomorrow morning"},
        audience=b"",
        channels=[2],
        urgency=1,
        fallback_after_seconds=0,
        alert_grid_worker=False,
        reference="",
        quiet_start_minute=22 * 60,
        quiet_end_minute=7 * 60,
        expire_time=datetime(2022, 12, 6, 8, 0, tzinfo=ZONE),
        recipients=1,
        create_time=created,
    )
    pool = notifications_service.pool
    async with pool.acquire() as conn:
        await repo.insert_notification(conn, row)
        await repo.insert_deliveries(
            conn,
            notification_id,
            [repo.NewDelivery(1, 1, str(uuid.uuid4()), "", "", 2, "zh")],
            first_seq=1,
        )
        # Driven by hand here: no service is to start its workflow.
        await repo.mark_started(conn, notification_id)
    dispatcher = Dispatcher(
        pool, {2: OutboxProvider()}, RateLimiter({}), max_attempts=3
    )

    late = datetime(2022, 12, 5, 23, 0, tzinfo=ZONE).astimezone(UTC)
    waiting = await dispatcher.dispatch(row, 1, 0, 100, late)
    # Had it to be out by six, the quiet night would outlast it.
    earlier = dataclasses.replace(
        row, expire_time=datetime(2022, 12, 6, 6, 0, tzinfo=ZONE)
    )
    expired = await dispatcher.dispatch(earlier, 1, 0, 100, late)

    assert waiting.wait_until == datetime(2022, 12, 6, 7, 0, tzinfo=ZONE)
    assert waiting.sent == 0
    assert (expired.done, expired.failed) == (True, 1)
    async with pool.acquire() as conn:
        status, reason = await conn.fetchrow(
            "SELECT status, failure_reason FROM deliveries WHERE notification_id = $1",
            notification_id,
        ) or (0, "")
    assert (status, reason) == (repo.FAILED, "expired before it could be sent")
