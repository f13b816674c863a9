"""Errands end to end, beside bare workflows with as many activities.

Each simulated errand goes through the gRPC front door: RequestErrand, wait
for the offer to reach the helper, accept after a short delay (a helper
reading the message), ReportDelivered, then the workflow's end. IN_FLIGHT
errands run at once against the real grids, residents and errands services
and a worker tuned as the bare one is. The notifications service is a
stand-in that answers SendNotification at once and tells the bench when an
offer is sent. Figures: errands/s next to bare workflows/s of ACTIVITIES
no-op activities (the activities one errand runs on this path), and p50/p99
from the request to the first offer (beside the bare start → first activity)
and to the accept.

Per-errand costs, for deploy/CAPACITY.md: after each repeat, the history of
one finished errand (events = Temporal state transitions recorded, activities
scheduled, history bytes as stored, payloads sealed by the codec); over the
repeat's closed loop, the rows PostgreSQL wrote (inserted + updated + deleted,
from pg_stat_database, all of them the services' since Temporal keeps its own
SQLite file) and its commits, and the CPU seconds of the Temporal dev server
and of the bench process (services, worker and callers share it), each
divided by the errands completed.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from cloudark.errands.v1 import errands_pb2 as pb
from cloudark.errands.v1 import errands_pb2_grpc as pb_grpc
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import grids_pb2_grpc as gpb_grpc
from cloudark.grids.v1 import staff_pb2 as spb
from cloudark.grids.v1 import staff_pb2_grpc as spb_grpc
from cloudark.notifications.v1 import notifications_pb2 as npb
from cloudark.notifications.v1 import notifications_pb2_grpc as npb_grpc
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.baselines import bare_workflows, closed_loop, percentile, tuned_worker
from bench.collect import Collected
from bench.harness import BenchContext, Figure
from services.common.identity import Caller, Role
from services.common.server import RunningService
from services.errands.config import Promise
from services.errands.server import definition
from services.grids.server import DEFINITION as GRIDS
from services.residents.pii import national_id_check_char
from services.residents.server import DEFINITION as RESIDENTS
from workflows.errands.activities import ErrandActivities
from workflows.errands.workflows import ErrandWorkflow
from workflows.messaging import MessagingActivities

IN_FLIGHT = 10
# A helper reads the offer and taps "accept".
ACCEPT_DELAY = 0.05
# rank, record and send the offer; record, load and tell the accept; record and
# tell the delivery; the load back down.
ACTIVITIES = 9
# Seconds for PostgreSQL's statistics to catch up: an idle backend flushes
# its counters into pg_stat_database within 10 s (PGSTAT_IDLE_INTERVAL).
STATS_LAG = 11.0
OPERATOR = Caller(subject="bench-operator", role=Role.OPERATOR).metadata()
PROMISE = Promise(
    due_seconds={k: 15 * 60 for k in (1, 2, 3)},
    offer_window_seconds=90,
    offer_batch=1,
    report_timeout_seconds=600,
    redispatch_seconds=300,
)


class Offers(npb_grpc.NotificationsServiceServicer):
    """A notifications stand-in: answers at once, signals each errand's offer."""

    def __init__(self) -> None:
        self.sent: collections.defaultdict[str, asyncio.Event] = (
            collections.defaultdict(asyncio.Event)
        )
        # The workflow id of the last errand that finished.
        self.last = ""

    async def SendNotification(
        self, request: npb.SendNotificationRequest, context: Any
    ) -> npb.SendNotificationResponse:
        if request.reference.endswith("/offer-1"):
            self.sent[request.reference.split("/")[0]].set()
        return npb.SendNotificationResponse(
            notification=npb.Notification(id=request.request_id)
        )


async def run(ctx: BenchContext) -> list[Figure]:
    collected = Collected("errands")
    async with _stack(ctx) as (stub, offers, resident_id, helper):
        await asyncio.sleep(STATS_LAG)
        for _ in range(ctx.repeats):
            offer_ms: list[float] = []
            accept_ms: list[float] = []
            errand = functools.partial(
                _one_errand,
                ctx.temporal,
                stub,
                offers,
                resident_id,
                helper,
                offer_ms,
                accept_ms,
            )
            before = await _meter(ctx)
            load = await closed_loop(errand, IN_FLIGHT, ctx.seconds)
            await asyncio.sleep(STATS_LAG)
            spent = (await _meter(ctx)).minus(before)
            async with bare_workflows(ctx.temporal) as bare:
                baseline = await bare.measure(ACTIVITIES, IN_FLIGHT, ctx.seconds)
            _collect(collected, load.rate, offer_ms, accept_ms, baseline)
            await _costs(collected, ctx.temporal, spent, load.calls, offers.last)
    return collected.figures()


@dataclass(frozen=True)
class Meter:
    """Counters read before and after a closed loop of errands."""

    rows: float
    commits: float
    temporal_cpu: float
    bench_cpu: float

    def minus(self, before: Meter) -> Meter:
        return Meter(
            self.rows - before.rows,
            self.commits - before.commits,
            self.temporal_cpu - before.temporal_cpu,
            self.bench_cpu - before.bench_cpu,
        )


async def _meter(ctx: BenchContext) -> Meter:
    conn = await asyncpg.connect(ctx.settings.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT tup_inserted + tup_updated + tup_deleted, xact_commit"
            " FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    assert row is not None
    return Meter(float(row[0]), float(row[1]), _temporal_cpu(), time.process_time())


def _temporal_cpu() -> float:
    """CPU seconds of the Temporal dev server the bench started (a child)."""
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        if "temporal" in name and int(fields[1]) == os.getpid():
            return (int(fields[11]) + int(fields[12])) / ticks
    raise RuntimeError("the bench's Temporal dev server was not found")


async def _costs(
    collected: Collected,
    temporal: Client,
    spent: Meter,
    errands: int,
    workflow_id: str,
) -> None:
    history = await temporal.get_workflow_handle(workflow_id).fetch_history()
    events = history.events
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    per = "per errand"
    collected.add(f"{per}: history events", "events", len(events))
    collected.add(
        f"{per}: activities",
        "activities",
        sum(1 for e in events if e.event_type == scheduled),
    )
    collected.add(f"{per}: history bytes", "bytes", sum(e.ByteSize() for e in events))
    collected.add(f"{per}: PostgreSQL rows written", "rows", spent.rows / errands)
    collected.add(f"{per}: PostgreSQL commits", "commits", spent.commits / errands)
    collected.add(
        f"{per}: Temporal dev server CPU",
        "ms",
        spent.temporal_cpu * 1000 / errands,
        higher_is_better=False,
    )
    collected.add(
        f"{per}: bench process CPU (services + worker + callers)",
        "ms",
        spent.bench_cpu * 1000 / errands,
        higher_is_better=False,
    )


def _collect(
    collected: Collected,
    rate: float,
    offer_ms: list[float],
    accept_ms: list[float],
    baseline: Any,
) -> None:
    bare = f"bare workflow, {ACTIVITIES} activities, {IN_FLIGHT} in flight"
    collected.add(
        f"errands/s, {IN_FLIGHT} in flight",
        "errands/s",
        rate,
        target="≥ 0.8× baseline",
        baseline_name=bare,
        baseline=baseline.rate,
    )
    for percent in (50, 99):
        collected.add(
            f"request → first offer p{percent}",
            "ms",
            percentile(offer_ms, percent),
            target="≤ 250" if percent == 99 else "",
            higher_is_better=False,
            baseline_name=f"{bare}: start → first activity",
            baseline=baseline.ms(percent),
        )
    for percent in (50, 99):
        collected.add(
            f"request → accept p{percent} ({ACCEPT_DELAY * 1000:.0f} ms to accept)",
            "ms",
            percentile(accept_ms, percent),
            higher_is_better=False,
        )


async def _one_errand(
    temporal: Client,
    stub: pb_grpc.ErrandsServiceAsyncStub,
    offers: Offers,
    resident_id: str,
    helper: spb.Helper,
    offer_ms: list[float],
    accept_ms: list[float],
) -> float:
    began = time.monotonic()
    asked = await stub.RequestErrand(
        pb.RequestErrandRequest(
            resident_id=resident_id,
            kind=pb.ERRAND_KIND_MEDICINE,
            details="fever medicine",
        ),
        metadata=OPERATOR,
    )
    errand_id = asked.errand.id
    await offers.sent[f"errand-{errand_id}"].wait()
    offer_ms.append((time.monotonic() - began) * 1000)
    await asyncio.sleep(ACCEPT_DELAY)
    as_helper = Caller(subject=helper.id, role=Role.GRID_WORKER).metadata()
    await stub.AcceptErrand(
        pb.AcceptErrandRequest(id=errand_id, helper_id=helper.id), metadata=as_helper
    )
    accept_ms.append((time.monotonic() - began) * 1000)
    await stub.ReportDelivered(
        pb.ReportDeliveredRequest(id=errand_id, helper_id=helper.id, note="done"),
        metadata=as_helper,
    )
    # Done when the workflow is, as a bare workflow is done when it returns.
    await temporal.get_workflow_handle(asked.errand.workflow_id).result()
    offers.sent.pop(f"errand-{errand_id}", None)
    offers.last = asked.errand.workflow_id
    return time.monotonic() - began


@asynccontextmanager
async def _stack(
    ctx: BenchContext,
) -> AsyncIterator[tuple[pb_grpc.ErrandsServiceAsyncStub, Offers, str, spb.Helper]]:
    """The services, the stand-in, a worker, one resident and one helper."""
    grids = await ctx.start_service(GRIDS)
    with _env("CLOUDARK_GRIDS_ADDRESS", grids):
        residents = await ctx.start_service(RESIDENTS)
    with _env("CLOUDARK_RESIDENTS_ADDRESS", residents):
        errands = await ctx.start_service(definition(PROMISE, ctx.task_queue))
    offers = Offers()  # type: ignore[abstract]
    server = grpc.aio.server()
    npb_grpc.add_NotificationsServiceServicer_to_server(offers, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as notifications:
            channels = {
                "grids": ctx.channel(grids),
                "residents": ctx.channel(residents),
                "errands": ctx.channel(errands),
                "notifications": notifications,
            }
            resident_id, helper = await _people(channels)
            worker = tuned_worker(
                ctx.temporal,
                ctx.task_queue,
                [ErrandWorkflow],
                [
                    *ErrandActivities(channels).all(),
                    *_messaging(channels),
                ],
            )
            async with worker:
                yield (
                    pb_grpc.ErrandsServiceStub(channels["errands"]),
                    offers,
                    resident_id,
                    helper,
                )
    finally:
        await server.stop(None)


def _messaging(channels: dict[str, grpc.aio.Channel]) -> list[Any]:
    messaging = MessagingActivities(channels["notifications"], channels["residents"])
    return [messaging.send_notification, messaging.earn_points]


@contextmanager
def _env(name: str, service: RunningService) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = f"127.0.0.1:{service.port}"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


async def _people(channels: dict[str, grpc.aio.Channel]) -> tuple[str, spb.Helper]:
    """A fresh micro-grid with one resident and one on-duty grid worker."""
    areas = gpb_grpc.GridsServiceStub(channels["grids"])
    chain: list[str] = []
    for kind in range(gpb.AREA_KIND_CITY, gpb.AREA_KIND_MICRO_GRID + 1):
        reply = await areas.CreateArea(
            gpb.CreateAreaRequest(
                kind=kind,  # type: ignore[arg-type]
                name=f"bench {uuid.uuid4().hex[:8]}",
                parent_id=chain[-1] if chain else "",
            ),
            metadata=OPERATOR,
        )
        chain.append(reply.area.id)
    people = rpb_grpc.ResidentsServiceStub(channels["residents"])
    home = await people.RegisterHousehold(
        rpb.RegisterHouseholdRequest(micro_grid_id=chain[-1], address="No. 1 Quay"),
        metadata=OPERATOR,
    )
    body = f"330904{uuid.uuid4().int % 60 + 1940}0101{uuid.uuid4().int % 1000:03d}"
    member = await people.RegisterResident(
        rpb.RegisterResidentRequest(
            household_id=home.household.id,
            name="王海",
            national_id=body + national_id_check_char(body),
            phone="13812345678",
        ),
        metadata=OPERATOR,
    )
    staff = spb_grpc.StaffServiceStub(channels["grids"])
    helper = await staff.RegisterHelper(
        spb.RegisterHelperRequest(
            kind=spb.HELPER_KIND_GRID_WORKER,
            person_id=f"bench-{uuid.uuid4().hex[:8]}",
            area_ids=[chain[-2]],
            availability=spb.AVAILABILITY_ON_DUTY,
        ),
        metadata=OPERATOR,
    )
    return member.resident.id, helper.helper
