"""The redemptions bench scenario runs and reports its figures (tiny numbers)."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from bench.harness import BenchContext
from bench.scenarios import redemptions as scenario
from services.common.config import Settings
from services.common.server import RunningService, ServiceDefinition, start_service


async def test_redemptions_scenario_reports_the_saga_beside_a_bare_workflow(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scenario, "IN_FLIGHT", 2)
    monkeypatch.setattr(scenario, "TALKS", 2)
    own = dataclasses.replace(settings, temporal_task_queue=task_queue)
    started: list[RunningService] = []
    channels: list[grpc.aio.Channel] = []

    async def start(definition: ServiceDefinition) -> RunningService:
        service = await start_service(
            definition, own, port=0, temporal=temporal_env.client
        )
        started.append(service)
        return service

    def channel(service: RunningService) -> grpc.aio.Channel:
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{service.port}"))
        return channels[-1]

    context = BenchContext(
        settings=own,
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

    rate, p99 = figures
    assert len(rate.samples) == len(rate.baseline_samples) == 1
    assert rate.samples[0] > 0
    assert rate.ratio is not None
    assert p99.unit == "ms"
