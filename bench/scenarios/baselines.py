"""The bare parts on their own: a gRPC echo, a primary-key select, a workflow.

Their targets are half the throughput (twice the latency) that
../shared/BASELINES.md measured on a like machine: a check that the bench
stack is healthy and configured as production would be, not a goal.
"""

import asyncpg

from bench.baselines import (
    asyncpg_select_baseline,
    bare_workflows,
    echo_server,
    grpc_echo_baseline,
)
from bench.collect import Collected
from bench.harness import BenchContext, Figure

PAYLOAD = 64
ACTIVITIES = 3
WORKFLOWS_IN_FLIGHT = 50
# Targets per in-flight count: throughput, p50 and p99.
ECHO_TARGETS = {1: ("≥ 515", "≤ 1.8", "≤ 4.4"), 50: ("≥ 1230", "≤ 40", "≤ 58")}


async def run(ctx: BenchContext) -> list[Figure]:
    collected = Collected("baselines")
    await _grpc(ctx, collected)
    await _postgres(ctx, collected)
    await _temporal(ctx, collected)
    return collected.figures()


async def _grpc(ctx: BenchContext, collected: Collected) -> None:
    async with echo_server() as address:
        for _ in range(ctx.repeats):
            for in_flight, targets in ECHO_TARGETS.items():
                load = await grpc_echo_baseline(
                    PAYLOAD, in_flight, ctx.seconds, address=address
                )
                name = f"grpc.aio echo {PAYLOAD} B, {in_flight} in flight"
                collected.add_load(name, load, "req/s", targets)


async def _postgres(ctx: BenchContext, collected: Collected) -> None:
    pool = await asyncpg.create_pool(
        ctx.settings.database_url, min_size=10, max_size=10
    )
    assert pool is not None
    name = "asyncpg primary-key select"
    try:
        for _ in range(ctx.repeats):
            one = await asyncpg_select_baseline(pool, 1, ctx.seconds)
            ten = await asyncpg_select_baseline(pool, 10, ctx.seconds)
            collected.add(
                f"{name}, 1 in flight: throughput", "q/s", one.rate, target="≥ 1320"
            )
            collected.add(
                f"{name}, 1 in flight: p50",
                "ms",
                one.ms(50),
                target="≤ 0.68",
                higher_is_better=False,
            )
            collected.add(
                f"{name}, 10 in flight: throughput", "q/s", ten.rate, target="≥ 4800"
            )
    finally:
        await pool.close()


async def _temporal(ctx: BenchContext, collected: Collected) -> None:
    # Workflows are slow next to RPCs: a longer sample gives p99 more samples.
    seconds = ctx.seconds * 2
    name = (
        f"bare workflow, {ACTIVITIES} no-op activities, {WORKFLOWS_IN_FLIGHT} in flight"
    )
    async with bare_workflows(ctx.temporal) as runner:
        for _ in range(ctx.repeats):
            load = await runner.measure(ACTIVITIES, WORKFLOWS_IN_FLIGHT, seconds)
            collected.add(f"{name}: throughput", "wf/s", load.rate, target="≥ 5.3")
            for percent, target in ((50, "≤ 2600"), (99, "≤ 4000")):
                collected.add(
                    f"{name}: start → first activity p{percent}",
                    "ms",
                    load.ms(percent),
                    target=target,
                    higher_is_better=False,
                )
