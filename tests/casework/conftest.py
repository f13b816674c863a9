"""Casework stacks: one on the time-skipping server for deadlines, one on
the session's dev server for the stories as they run in production."""

from collections.abc import AsyncIterator

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService
from tests.casework.support import Stack, casework_stack


@pytest.fixture(scope="session")
async def skipping_stack(
    settings: Settings,
    grids_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    time_skipping_env: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    async with casework_stack(
        settings,
        grids_service.port,
        time_skipping_env.client,
        grids_channel,
        residents_channel,
        server="time-skipping",
    ) as stack:
        yield stack


@pytest.fixture(scope="session")
async def dev_stack(
    settings: Settings,
    grids_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    async with casework_stack(
        settings,
        grids_service.port,
        temporal_env.client,
        grids_channel,
        residents_channel,
    ) as stack:
        yield stack


@pytest.fixture(params=["time-skipping", "dev-server"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """Each story runs on both servers: time-skipping and the dev server."""
    name = "skipping_stack" if request.param == "time-skipping" else "dev_stack"
    found: Stack = request.getfixturevalue(name)
    return found
