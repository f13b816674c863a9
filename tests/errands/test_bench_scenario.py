"""The errands bench scenario runs and reports its figures (tiny numbers)."""

from __future__ import annotations

import grpc
from temporalio.testing import WorkflowEnvironment

from bench.harness import BenchContext
from bench.scenarios import errands as scenario
from services.common.config import Settings
from services.common.server import RunningService, ServiceDefinition, start_service


async def test_errands_scenario_reports_errands_beside_bare_workflows(
    settings: Settings, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    started: list[RunningService] = []
    channels: list[grpc.aio.Channel] = []

    async def start(definition: ServiceDefinition) -> RunningService:
        started.append(
            await start_service(
                definition, settings, port=0, temporal=temporal_env.client
            )
        )
        return started[-1]

    def channel(service: RunningService) -> grpc.aio.Channel:
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{service.port}"))
        return channels[-1]

    context = BenchContext(
        settings=settings,
        temporal=temporal_env.client,
        task_queue=task_queue,
        repeats=1,
        start_service=start,
        channel=channel,
        seconds=0.5,
        quick=True,
    )
    try:
        figures = await scenario.run(context)
    finally:
        for open_channel in channels:
            await open_channel.close()
        for service in started:
            await service.stop(grace=0)

    rate, offer_p50, offer_p99, accept_p50, accept_p99, *costs = figures
    assert rate.unit == "errands/s"
    assert len(rate.samples) == len(rate.baseline_samples) == 1
    assert rate.samples[0] > 0
    assert len(offer_p99.baseline_samples) == 1
    assert accept_p50.baseline_samples == []
    assert offer_p50.median <= offer_p99.median
    assert accept_p50.median <= accept_p99.median
    per_errand = {f.name.removeprefix("per errand: "): f for f in costs}
    assert per_errand["activities"].samples == [scenario.ACTIVITIES]
    assert per_errand["history events"].median > scenario.ACTIVITIES
    assert per_errand["history bytes"].median > 0
    assert per_errand["PostgreSQL rows written"].median > 0
    assert per_errand["Temporal dev server CPU"].median > 0
