"""Grids at the seed's full size: history import, annual report, ranked helpers.

Each repeat loads a fresh full-size city with COPY, imports its generated 2022
history (645,988 rows) and times the import alone; then it times the city's
annual report and RankHelpers over gRPC against a primary-key select on the
same asyncpg pool.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from cloudark.grids.v1 import reports_pb2, reports_pb2_grpc, staff_pb2, staff_pb2_grpc

from bench.harness import BenchContext, Figure
from services.common.identity import SYSTEM_CALLER
from services.grids import history
from services.grids.history_export import write_2022
from services.grids.loader import FULL_STAFF, CityLoad, area_id, load_city
from services.grids.server import DEFINITION
from workflows.city.plan import FULL

SCENARIO = "grids"
# Calls per latency sample; the sample is their median.
CALLS = 30
METADATA = SYSTEM_CALLER.metadata()


async def run(ctx: BenchContext) -> list[Figure]:
    service = await ctx.start_service(DEFINITION)
    channel = ctx.channel(service)
    reports = reports_pb2_grpc.ReportsServiceStub(channel)
    staff = staff_pb2_grpc.StaffServiceStub(channel)
    rates: list[float] = []
    report_ms: list[float] = []
    rank_ms: list[float] = []
    select_ms: list[float] = []
    try:
        for repeat in range(ctx.repeats):
            city, rate = await _load_and_import(service.pool, repeat)
            rates.append(rate)
            latencies = await _latencies(reports, staff, service.pool, city)
            report_ms.append(latencies[0])
            rank_ms.append(latencies[1])
            select_ms.append(latencies[2])
    finally:
        await service.stop(grace=1)
    return [
        Figure(
            SCENARIO,
            "history import at full size",
            "rows/s",
            rates,
            target=">= 50,000 rows/s",
        ),
        Figure(
            SCENARIO,
            "city annual report (gRPC)",
            "ms",
            report_ms,
            target="<= 500 ms",
            higher_is_better=False,
            baseline_name="asyncpg primary-key select",
            baseline_samples=select_ms,
        ),
        Figure(
            SCENARIO,
            "RankHelpers at full size (gRPC)",
            "ms",
            rank_ms,
            target="a few ms",
            higher_is_better=False,
            baseline_name="asyncpg primary-key select",
            baseline_samples=select_ms,
        ),
    ]


async def _load_and_import(pool: asyncpg.Pool, repeat: int) -> tuple[CityLoad, float]:
    """A fresh full city and its 2022 history; returns the import's rows/s.

    The cases and patrols files import side by side, as the CLI does.
    """
    code = f"7{time.time_ns() % 10**6:06d}{repeat}"
    async with pool.acquire() as conn:
        city = await load_city(
            conn, name=f"Bench {code}", code=code, size=FULL, staff=FULL_STAFF, seed=7
        )
    assert city.plan is not None
    with tempfile.TemporaryDirectory() as folder:
        export = await asyncio.to_thread(
            write_2022, city.plan, Path(folder), 7, id_prefix=code
        )
        started = time.perf_counter()
        results = await history.import_files(
            pool, [("cases", export.cases_path), ("patrols", export.patrols_path)]
        )
        elapsed = time.perf_counter() - started
    return city, sum(r.imported for r in results) / elapsed


async def _latencies(
    reports: reports_pb2_grpc.ReportsServiceAsyncStub,
    staff: staff_pb2_grpc.StaffServiceAsyncStub,
    pool: asyncpg.Pool,
    city: CityLoad,
) -> tuple[float, float, float]:
    """Median ms of the city report, of RankHelpers and of a primary-key select."""
    micro_grids = _micro_grid_ids(city)
    city_id = str(city.city_id)
    report = await _median_ms(
        lambda: reports.GetAnnualReport(
            reports_pb2.GetAnnualReportRequest(area_id=city_id, year=2022),
            metadata=METADATA,
        )
    )
    rank = await _median_ms(
        lambda: staff.RankHelpers(
            staff_pb2.RankHelpersRequest(
                micro_grid_id=random.choice(micro_grids),
                need=staff_pb2.NEED_KIND_ERRAND,
            ),
            metadata=METADATA,
        )
    )
    select = await _median_ms(lambda: _select(pool, city_id))
    return report, rank, select


def _micro_grid_ids(city: CityLoad) -> list[str]:
    assert city.plan is not None
    return [
        str(area_id(m.code))
        for town in city.plan.children
        for village in town.children
        for grid in village.children
        for m in grid.children
    ]


async def _select(pool: asyncpg.Pool, city_id: str) -> object:
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            "SELECT * FROM areas WHERE id = $1", uuid.UUID(city_id)
        )


async def _median_ms(call: Callable[[], Awaitable[object]]) -> float:
    await call()  # warm the connection and the statement cache
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)
