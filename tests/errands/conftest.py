"""Fixtures of the errands tests: the notifications stand-in, and the
time-skipping server with the custom search attributes registered."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import grpc
import pytest
from cloudark.notifications.v1 import notifications_pb2_grpc as npb_grpc
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService
from services.errands.config import Promise
from tests.errands.support import FakeNotifications, Stack, stack


@pytest.fixture(scope="session")
async def notifications() -> AsyncIterator[tuple[FakeNotifications, int]]:
    """A NotificationsService stand-in on a real gRPC server (the real one is
    built in parallel, issue #5); yields it and its port."""
    fake = FakeNotifications()  # type: ignore[abstract]
    server = grpc.aio.server()
    npb_grpc.add_NotificationsServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield fake, port
    await server.stop(grace=1)


@pytest.fixture
async def skipping_env(
    own_time_skipping_env: WorkflowEnvironment,
) -> WorkflowEnvironment:
    """A time-skipping server of the test's own (see own_time_skipping_env)."""
    return own_time_skipping_env


@dataclass
class Parts:
    """What every errands test plugs together."""

    settings: Settings
    grids: grpc.aio.Channel
    residents: grpc.aio.Channel
    residents_port: int
    fake: FakeNotifications
    notifications_port: int
    task_queue: str

    def stack(
        self, client: Client, timings: Promise | None = None, worker: bool = True
    ) -> AbstractAsyncContextManager[Stack]:
        return stack(
            self.settings,
            client,
            self.task_queue,
            grids=self.grids,
            residents=self.residents,
            residents_port=self.residents_port,
            notifications_port=self.notifications_port,
            timings=timings,
            worker=worker,
        )


@pytest.fixture
def parts(
    settings: Settings,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    residents_service: RunningService,
    notifications: tuple[FakeNotifications, int],
    task_queue: str,
) -> Parts:
    fake, port = notifications
    return Parts(
        settings,
        grids_channel,
        residents_channel,
        residents_service.port,
        fake,
        port,
        task_queue,
    )
