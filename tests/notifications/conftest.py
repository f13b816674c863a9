"""A notifications service and a worker of the test's own: the service
starts its workflows on the test's task queue, and the worker runs them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from cloudark.notifications.v1 import notifications_pb2_grpc as pb_grpc
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService, start_service
from services.notifications.server import DEFINITION as NOTIFICATIONS
from workflows.worker import build_worker


@dataclass
class Sending:
    service: RunningService
    channel: grpc.aio.Channel
    stub: pb_grpc.NotificationsServiceAsyncStub
    env: WorkflowEnvironment


async def start_notifications(
    settings: Settings,
    task_queue: str,
    env: WorkflowEnvironment,
    grids: RunningService,
    residents: RunningService,
    extra_env: dict[str, str] | None = None,
) -> RunningService:
    """A notifications service on port 0 starting workflows on task_queue."""
    variables = {
        "CLOUDARK_GRIDS_ADDRESS": f"127.0.0.1:{grids.port}",
        "CLOUDARK_RESIDENTS_ADDRESS": f"127.0.0.1:{residents.port}",
        **(extra_env or {}),
    }
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        return await start_service(
            NOTIFICATIONS,
            dataclasses.replace(settings, temporal_task_queue=task_queue),
            port=0,
            temporal=env.client,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value


@pytest.fixture
def provider_env() -> dict[str, str]:
    """Provider settings of the test's service; tests override this fixture."""
    return {}


@pytest.fixture
async def sending(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    grids_service: RunningService,
    residents_service: RunningService,
    grids_channel: grpc.aio.Channel,
    task_queue: str,
    provider_env: dict[str, str],
) -> AsyncIterator[Sending]:
    service = await start_notifications(
        settings,
        task_queue,
        temporal_env,
        grids_service,
        residents_service,
        provider_env,
    )
    try:
        address = f"127.0.0.1:{service.port}"
        async with grpc.aio.insecure_channel(address) as channel:
            channels = {"grids": grids_channel, "notifications": channel}
            async with build_worker(temporal_env.client, task_queue, channels):
                stub = pb_grpc.NotificationsServiceStub(channel)
                yield Sending(service, channel, stub, temporal_env)
    finally:
        await service.stop(grace=1)
