"""Fallback driven by the case: unread in the app after N minutes → a text
message; a text that fails → the grid worker is asked to phone. Run on the
time-skipping test server, so thirty minutes pass at once."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.notifications.v1 import notifications_pb2_grpc as pb_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService
from tests.histories import record
from tests.notifications.conftest import start_notifications
from tests.notifications.gateway import FakeGateway
from tests.notifications.support import SENDER, all_deliveries, grid_worker, person
from tests.residents.support import as_resident, place
from workflows.notifications.workflows import NotificationResult
from workflows.worker import build_worker


async def completed(
    handle: WorkflowHandle[Any, NotificationResult],
) -> NotificationResult:
    """The result once the workflow has closed: the test server answers a
    history long poll of a child workflow before it closes, so poll."""
    for _ in range(600):
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            return await handle.result()
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow did not finish")


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    fake = FakeGateway()
    await fake.start()
    yield fake
    await fake.stop()


async def test_unread_app_messages_fall_back_to_text_then_to_the_grid_worker(
    settings: Settings,
    own_time_skipping_env: WorkflowEnvironment,
    grids_service: RunningService,
    residents_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    gateway: FakeGateway,
    task_queue: str,
) -> None:
    here = await place(grids_channel)
    app = [rpb.CHANNEL_APP]
    reader = await person(residents_channel, here.micro_grid, app)
    texted = await person(residents_channel, here.micro_grid, app)
    unreachable = await person(residents_channel, here.micro_grid, app)
    worker = await grid_worker(grids_channel, here.grid)
    gateway.script = {unreachable.id: ["400"]}
    service = await start_notifications(
        settings,
        task_queue,
        own_time_skipping_env,
        grids_service,
        residents_service,
        {"CLOUDARK_NOTIFICATIONS_WEBHOOK_URL": f"http://127.0.0.1:{gateway.port}/"},
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = pb_grpc.NotificationsServiceStub(channel)
            channels = {"grids": grids_channel, "notifications": channel}
            async with build_worker(own_time_skipping_env.client, task_queue, channels):
                sent = await stub.SendNotification(
                    pb.SendNotificationRequest(
                        title="核酸检测",
                        body="明天上午在村委会做核酸。",
                        audience=pb.Audience(
                            resident_ids=[reader.id, texted.id, unreachable.id]
                        ),
                        channels=[pb.CHANNEL_APP],
                        urgency=pb.URGENCY_URGENT,
                        fallback=pb.Fallback(
                            text_message_after_seconds=30 * 60,
                            alert_grid_worker_on_failure=True,
                        ),
                    ),
                    metadata=SENDER.metadata(),
                )
                notification_id = sent.notification.id
                message = own_time_skipping_env.client.get_workflow_handle(
                    f"notification-{notification_id}", result_type=NotificationResult
                )
                await message.result()
                inbox = await stub.ListInbox(
                    pb.ListInboxRequest(recipient_id=reader.id),
                    metadata=as_resident(reader.id),
                )
                await stub.MarkRead(
                    pb.MarkReadRequest(delivery_id=inbox.messages[0].delivery_id),
                    metadata=as_resident(reader.id),
                )
                fallback = own_time_skipping_env.client.get_workflow_handle(
                    f"notification-{notification_id}-fallback",
                    result_type=NotificationResult,
                )
                await own_time_skipping_env.sleep(30 * 60 + 1)
                texts = await completed(fallback)
                deliveries = await all_deliveries(stub, notification_id)
                alerts = await stub.ListInbox(
                    pb.ListInboxRequest(recipient_id=worker.person_id),
                    metadata=(
                        ("x-cloudark-subject", worker.person_id),
                        ("x-cloudark-role", "grid_worker"),
                    ),
                )
    finally:
        await service.stop(grace=1)
    await record(fallback, "FallbackWorkflow", "text-then-grid-worker")

    by_purpose = sorted(
        (d.purpose, d.recipient_id, d.channel, d.status, d.about_resident_id)
        for d in deliveries
        if d.purpose != pb.DELIVERY_PURPOSE_MESSAGE
    )
    assert (texts.sent, texts.failed) == (1, 1)
    assert by_purpose == sorted(
        [
            (
                pb.DELIVERY_PURPOSE_FALLBACK_TEXT,
                texted.id,
                pb.CHANNEL_TEXT_MESSAGE,
                pb.DELIVERY_STATUS_SENT,
                "",
            ),
            (
                pb.DELIVERY_PURPOSE_FALLBACK_TEXT,
                unreachable.id,
                pb.CHANNEL_TEXT_MESSAGE,
                pb.DELIVERY_STATUS_FAILED,
                "",
            ),
            (
                pb.DELIVERY_PURPOSE_GRID_WORKER_ALERT,
                worker.id,
                pb.CHANNEL_APP,
                pb.DELIVERY_STATUS_DELIVERED,
                unreachable.id,
            ),
        ]
    )
    # One text each to the two who did not read; none to the reader.
    assert sorted(c.address for c in gateway.calls) == sorted(
        [texted.id, unreachable.id]
    )
    assert len(alerts.messages) == 1
    assert unreachable.id in alerts.messages[0].body
