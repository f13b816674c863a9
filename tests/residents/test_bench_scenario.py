"""The residents bench scenario runs and reports its figures (tiny numbers)."""

from __future__ import annotations

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from bench.harness import BenchContext
from bench.scenarios import residents as scenario
from services.common.config import Settings
from services.common.server import RunningService, ServiceDefinition, start_service


async def test_residents_scenario_reports_service_and_echo_side_by_side(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scenario, "REQUESTS", 200)
    monkeypatch.setattr(scenario, "WARM_UP", 10)
    started: list[RunningService] = []
    channels: list[grpc.aio.Channel] = []

    async def start(definition: ServiceDefinition) -> RunningService:
        started.append(await start_service(definition, settings, port=0))
        return started[-1]

    def channel(service: RunningService) -> grpc.aio.Channel:
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{service.port}"))
        return channels[-1]

    context = BenchContext(
        settings=settings,
        temporal=temporal_env.client,
        task_queue="bench",
        repeats=2,
        start_service=start,
        channel=channel,
    )
    try:
        figures = await scenario.run(context)
    finally:
        for open_channel in channels:
            await open_channel.close()
        for service in started:
            await service.stop(grace=0)

    rate, p99 = figures
    assert len(rate.samples) == len(rate.baseline_samples) == 2
    assert all(s > 0 for s in rate.samples + p99.samples)
    assert rate.ratio is not None
    assert not p99.higher_is_better
