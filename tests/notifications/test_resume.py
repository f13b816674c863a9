"""A notification recorded by a process that died before starting its
workflow is started when a notifications service next starts."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from cloudark.notifications.v1 import notifications_pb2 as pb
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService
from services.notifications import repository as repo
from tests.notifications.conftest import start_notifications
from tests.notifications.support import finished
from workflows.worker import build_worker


async def test_a_notification_left_without_a_workflow_is_sent_after_a_restart(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    grids_service: RunningService,
    residents_service: RunningService,
    notifications_service: RunningService,
    grids_channel: grpc.aio.Channel,
    task_queue: str,
) -> None:
    notification_id = uuid.uuid4()
    row = repo.NotificationRow(
        id=notification_id,
        sender_id="errand-workflow",
        template_id=None,
        variables={},
        titles={"zh": "已送达", "en": "Delivered"},
        bodies={"zh": "药已放在门口。", "en": "Medicine is at your door."},
        audience=pb.Audience(resident_ids=[str(uuid.uuid4())]).SerializeToString(),
        channels=[],
        urgency=pb.URGENCY_URGENT,
        fallback_after_seconds=0,
        alert_grid_worker=False,
        reference="errand-15/done",
        quiet_start_minute=None,
        quiet_end_minute=None,
        expire_time=None,
        recipients=1,
        create_time=datetime.now(UTC) - timedelta(minutes=5),
    )
    recipient = str(uuid.uuid4())
    async with notifications_service.pool.acquire() as conn:
        await repo.insert_notification(conn, row)
        await repo.insert_deliveries(
            conn,
            notification_id,
            [repo.NewDelivery(1, 1, recipient, recipient, "", pb.CHANNEL_APP, "zh")],
            first_seq=1,
        )

    restarted = await start_notifications(
        settings, task_queue, temporal_env, grids_service, residents_service
    )
    try:
        address = f"127.0.0.1:{restarted.port}"
        async with grpc.aio.insecure_channel(address) as channel:
            channels = {"grids": grids_channel, "notifications": channel}
            async with build_worker(temporal_env.client, task_queue, channels):
                await started(notifications_service, notification_id)
                result = await finished(temporal_env, str(notification_id))
    finally:
        await restarted.stop(grace=1)

    assert (result.sent, result.failed) == (1, 0)


async def started(service: RunningService, notification_id: uuid.UUID) -> None:
    """Waits until the service has started the notification's workflow."""
    for _ in range(500):
        async with service.pool.acquire() as conn:
            if await conn.fetchval(
                "SELECT workflow_started FROM notifications WHERE id = $1",
                notification_id,
            ):
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the restarted service did not start the workflow")
