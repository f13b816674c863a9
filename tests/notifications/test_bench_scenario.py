"""The notifications bench scenario runs and reports its figures (tiny numbers)."""

from __future__ import annotations

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from bench.harness import BenchContext
from bench.scenarios import notifications as scenario
from services.common.config import Settings
from services.common.server import RunningService, ServiceDefinition, start_service


async def test_notifications_scenario_reports_deliveries_per_second(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLOUDARK_BENCH_NOTIFICATION_RECIPIENTS", "300")
    monkeypatch.setattr(scenario, "SHAPE", (1, 1, 1, 2))
    # Apart from the session's other loads: same seed, same numbers.
    monkeypatch.setattr(scenario, "SEED", 11)
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
        task_queue=task_queue,
        repeats=1,
        start_service=start,
        channel=channel,
        quick=True,
    )
    try:
        figures = await scenario.run(context)
    finally:
        for open_channel in channels:
            await open_channel.close()
        for service in started:
            await service.stop(grace=0)

    assert [f.unit for f in figures] == ["deliveries/s", "deliveries/s", "s"]
    assert all(len(f.samples) == 1 and f.samples[0] > 0 for f in figures)
    assert figures[0].target == "≥ 5000"
