"""The grids hierarchy: reading one area, and loading the demo city.

GetArea is loaded with 50 calls in flight beside a bare grpc.aio echo whose
payload is the size of a GetArea response, so the ratio is what auth,
validation, a pool checkout and one indexed select cost. LoadCityWorkflow
builds the demo city through the grids API, as `make run` does, on the
worker `make run` uses.
"""

from __future__ import annotations

import time
import uuid

from cloudark.grids.v1 import grids_pb2 as pb
from cloudark.grids.v1 import grids_pb2_grpc as pb_grpc

from bench.baselines import closed_loop, echo_server, grpc_echo_baseline
from bench.collect import Collected
from bench.harness import BenchContext, Figure
from services.common.identity import Caller, Role
from services.grids.server import DEFINITION as GRIDS
from workflows.city.plan import DEMO
from workflows.city.workflows import LoadCityInput, LoadCityWorkflow
from workflows.worker import build_worker

IN_FLIGHT = 50
AS_OPERATOR = Caller(subject="bench", role=Role.OPERATOR).metadata()
# The seed city (workflows.city.plan.FULL, 9,844 areas) loads in ten minutes.
CITY_TARGET = "≥ 16.4"


async def run(ctx: BenchContext) -> list[Figure]:
    collected = Collected("hierarchy")
    service = await ctx.start_service(GRIDS)
    channel = ctx.channel(service)
    grids = pb_grpc.GridsServiceStub(channel)
    await _get_area(ctx, grids, collected)

    worker = build_worker(ctx.temporal, ctx.task_queue, {"grids": channel})
    async with worker:
        for _ in range(ctx.repeats):
            collected.add(
                "LoadCityWorkflow, demo city",
                "areas/s",
                await _load_city(ctx),
                target=CITY_TARGET,
            )
    return collected.figures()


async def _get_area(
    ctx: BenchContext, grids: pb_grpc.GridsServiceAsyncStub, collected: Collected
) -> None:
    town = await _town(grids)
    request = pb.GetAreaRequest(id=town.id)
    payload = len(pb.GetAreaResponse(area=town).SerializeToString())
    echo_name = f"grpc.aio echo {payload} B, {IN_FLIGHT} in flight"
    name = f"GetArea, {IN_FLIGHT} in flight"

    async def get() -> object:
        return await grids.GetArea(request, metadata=AS_OPERATOR)

    async with echo_server() as address:
        for _ in range(ctx.repeats):
            load = await closed_loop(get, IN_FLIGHT, ctx.seconds)
            echo = await grpc_echo_baseline(
                payload, IN_FLIGHT, ctx.seconds, address=address
            )
            collected.add(
                f"{name}: throughput",
                "req/s",
                load.rate,
                target="≥ 0.25× baseline",
                baseline_name=echo_name,
                baseline=echo.rate,
            )
            collected.add(
                f"{name}: p99",
                "ms",
                load.ms(99),
                target="≤ 4× baseline",
                higher_is_better=False,
                baseline_name=echo_name,
                baseline=echo.ms(99),
            )


async def _town(grids: pb_grpc.GridsServiceAsyncStub) -> pb.Area:
    """A town under a city of its own, as big as a real one on the wire."""
    suffix = uuid.uuid4().hex[:8]
    city = await grids.CreateArea(
        pb.CreateAreaRequest(
            kind=pb.AREA_KIND_CITY, name=f"Bench city {suffix}", code=f"B{suffix}"
        ),
        metadata=AS_OPERATOR,
    )
    town = await grids.CreateArea(
        pb.CreateAreaRequest(
            kind=pb.AREA_KIND_TOWN,
            name="Bench town 01",
            parent_id=city.area.id,
            code=f"B{suffix}001",
        ),
        metadata=AS_OPERATOR,
    )
    return town.area


async def _load_city(ctx: BenchContext) -> float:
    """Loads a new demo city; returns areas created per second."""
    suffix = uuid.uuid4().hex[:8]
    began = time.monotonic()
    result = await ctx.temporal.execute_workflow(
        LoadCityWorkflow.run,
        LoadCityInput(name=f"Bench {suffix}", code=f"C{suffix}", size=DEMO, seed=2022),
        id=f"bench-city-{suffix}",
        task_queue=ctx.task_queue,
    )
    return result.created / (time.monotonic() - began)
