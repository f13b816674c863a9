"""A city-wide notification with the outbox provider: recorded deliveries/s.

Loads a city's residents with the residents loader (COPY), then sends one
notification to the whole city by text message, through the gRPC API, and
times it from SendNotification (the audience resolved through the residents
service and recorded) to the last delivery recorded by the outbox, with the
NotificationWorkflow paging through it on the bench worker. Each repeat
checks that every recipient has exactly one outbox message. 269,000
recipients in a full run (the seed city), 20,000 in a quick one;
CLOUDARK_BENCH_NOTIFICATION_RECIPIENTS overrides both. At full size a repeat
takes about a minute (269,000 deliveries resolved, recorded and sent), so this
scenario runs at most REPEATS of them, fewer than the other scenarios' five,
to keep the whole `make bench` under fifteen minutes and inside the runner's
ten-minute limit per scenario.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable

from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import grids_pb2_grpc as gpb_grpc
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.notifications.v1 import notifications_pb2_grpc as pb_grpc
from temporalio.client import WorkflowHandle

from bench.collect import Collected
from bench.harness import BenchContext, Figure
from services.common.identity import Caller, Role
from services.common.server import RunningService, ServiceDefinition, start_service
from services.grids.server import DEFINITION as GRIDS
from services.notifications.server import DEFINITION as NOTIFICATIONS
from services.residents.loader import Population, load, micro_grids_of_city
from services.residents.pii import Keyring
from services.residents.server import DEFINITION as RESIDENTS
from workflows.notifications.workflows import NotificationResult
from workflows.worker import build_worker

SENDER = Caller(subject="bench-sender", role=Role.OPERATOR).metadata()
FULL, QUICK = 269_000, 20_000
# Towns × villages × grids × micro-grids of the bench city: 240 micro-grids.
SHAPE = (4, 3, 4, 5)
# The loader's seed; None picks one per run (the bench database is kept).
SEED: int | None = None
# Repeats at most: each is a whole city's worth of deliveries (see above).
REPEATS = 3


async def run(ctx: BenchContext) -> list[Figure]:
    recipients = int(
        os.environ.get(
            "CLOUDARK_BENCH_NOTIFICATION_RECIPIENTS", QUICK if ctx.quick else FULL
        )
    )
    grids = await ctx.start_service(GRIDS)
    residents = await _with_env(ctx, RESIDENTS, {"CLOUDARK_GRIDS_ADDRESS": _at(grids)})
    city_id = await _city(gpb_grpc.GridsServiceStub(ctx.channel(grids)))
    async with residents.pool.acquire() as conn:
        micro_grids = await micro_grids_of_city(conn, city_id)
    population = Population(
        residents=recipients, key_service_recipients=10, street_participations=10
    )
    await load(
        residents.pool,
        Keyring.from_env({}),
        micro_grids,
        population,
        seed=random.randrange(2**31) if SEED is None else SEED,
    )

    notifications = await _notifications(ctx, grids, residents)
    collected = Collected("notifications")
    try:
        channel = ctx.channel(notifications)
        stub = pb_grpc.NotificationsServiceStub(channel)
        channels = {"grids": ctx.channel(grids), "notifications": channel}
        async with build_worker(ctx.temporal, ctx.task_queue, channels):
            for _ in range(min(ctx.repeats, REPEATS)):
                await _once(
                    ctx, stub, notifications, str(city_id), recipients, collected
                )
    finally:
        await notifications.stop(grace=1)
    return collected.figures()


async def _once(
    ctx: BenchContext,
    stub: pb_grpc.NotificationsServiceAsyncStub,
    service: RunningService,
    city_id: str,
    recipients: int,
    collected: Collected,
) -> None:
    started = time.perf_counter()
    sent = await stub.SendNotification(
        pb.SendNotificationRequest(
            title="寒潮预警",
            body="明天起寒潮来袭，请注意保暖。",
            audience=pb.Audience(area_ids=[city_id]),
            channels=[pb.CHANNEL_TEXT_MESSAGE],
            urgency=pb.URGENCY_URGENT,
        ),
        metadata=SENDER,
        timeout=600,
    )
    recorded = time.perf_counter()
    handle: WorkflowHandle[object, NotificationResult] = (
        ctx.temporal.get_workflow_handle(
            f"notification-{sent.notification.id}", result_type=NotificationResult
        )
    )
    result = await handle.result()
    finished = time.perf_counter()
    await _exactly_once(service, sent.notification.id, recipients)
    if result.sent != recipients:
        raise AssertionError(f"{result.sent} of {recipients} sent")

    name = f"city-wide notification, {recipients:,} recipients, outbox"
    collected.add(
        f"{name}: deliveries/s, send to last recorded",
        "deliveries/s",
        recipients / (finished - started),
        target="≥ 5000",
    )
    collected.add(
        f"{name}: deliveries/s, sending only",
        "deliveries/s",
        recipients / (finished - recorded),
    )
    collected.add(
        f"{name}: audience resolved and recorded",
        "s",
        recorded - started,
        higher_is_better=False,
    )


async def _exactly_once(service: RunningService, notification_id: str, n: int) -> None:
    async with service.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(DISTINCT d.recipient_id) FROM outbox_messages o"
            " JOIN deliveries d ON d.id = o.delivery_id WHERE o.notification_id = $1),"
            " (SELECT count(*) FROM outbox_messages WHERE notification_id = $1)",
            uuid.UUID(notification_id),
        )
    assert row is not None
    messages, deliveries = row[0], row[1]
    if (messages, deliveries) != (n, n):
        raise AssertionError(f"{deliveries} messages to {messages} of {n} recipients")


async def _notifications(
    ctx: BenchContext, grids: RunningService, residents: RunningService
) -> RunningService:
    """Started here, not by the runner: its workflows go to the bench's queue."""
    env = {
        "CLOUDARK_GRIDS_ADDRESS": _at(grids),
        "CLOUDARK_RESIDENTS_ADDRESS": _at(residents),
        # The outbox has no gateway to protect: no rate limit.
        "CLOUDARK_NOTIFICATIONS_RATES": "text_message=0",
        "CLOUDARK_NOTIFICATIONS_PAGE": "5000",
    }
    settings = dataclasses.replace(ctx.settings, temporal_task_queue=ctx.task_queue)

    async def start() -> RunningService:
        return await start_service(
            NOTIFICATIONS, settings, port=0, temporal=ctx.temporal
        )

    return await _env_around(env, start)


async def _with_env(
    ctx: BenchContext, definition: ServiceDefinition, env: dict[str, str]
) -> RunningService:
    async def start() -> RunningService:
        return await ctx.start_service(definition)

    return await _env_around(env, start)


async def _env_around(
    env: dict[str, str], start: Callable[[], Awaitable[RunningService]]
) -> RunningService:
    """Starts a service with env set, as its settings are read at start."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return await start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _at(service: RunningService) -> str:
    return f"127.0.0.1:{service.port}"


async def _city(stub: gpb_grpc.GridsServiceAsyncStub) -> uuid.UUID:
    towns, villages, grids, micro_grids = SHAPE

    async def create(kind: int, parent: str) -> str:
        reply = await stub.CreateArea(
            gpb.CreateAreaRequest(
                kind=kind,  # type: ignore[arg-type]
                name=f"bench {uuid.uuid4().hex[:8]}",
                parent_id=parent,
            ),
            metadata=SENDER,
        )
        return reply.area.id

    city = await create(gpb.AREA_KIND_CITY, "")
    for _ in range(towns):
        town = await create(gpb.AREA_KIND_TOWN, city)
        for _ in range(villages):
            village = await create(gpb.AREA_KIND_VILLAGE, town)
            for _ in range(grids):
                grid = await create(gpb.AREA_KIND_GRID, village)
                for _ in range(micro_grids):
                    await create(gpb.AREA_KIND_MICRO_GRID, grid)
    return uuid.UUID(city)
