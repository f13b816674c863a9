"""The Temporal worker: every Cloud Ark workflow and activity, one task queue.

Usage: python -m workflows.worker
"""

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

import grpc
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from services.common.config import Settings, env, env_int
from services.common.logs import configure_logging
from services.common.metrics import serve_metrics
from services.common.temporal import connect_temporal
from services.common.tracing import setup_tracing
from workflows.care.activities import CareActivities
from workflows.care.workflows import (
    AreaModeWorkflow,
    CampaignWorkflow,
    SquadWorkflow,
)
from workflows.casework.activities import CaseworkActivities
from workflows.casework.workflows import CaseWorkflow
from workflows.city.activities import CityActivities
from workflows.city.workflows import LoadCityWorkflow
from workflows.errands.activities import ERRAND_SERVICES, ErrandActivities
from workflows.errands.workflows import ErrandWorkflow
from workflows.messaging import MessagingActivities
from workflows.notifications.activities import NotificationActivities
from workflows.notifications.workflows import FallbackWorkflow, NotificationWorkflow
from workflows.redemption.activities import RedemptionActivities
from workflows.redemption.workflows import RedemptionWorkflow
from workflows.rpc import channel_to

log = logging.getLogger(__name__)

WORKFLOWS: Sequence[type] = [
    LoadCityWorkflow,
    NotificationWorkflow,
    FallbackWorkflow,
    CaseWorkflow,
    RedemptionWorkflow,
    ErrandWorkflow,
    SquadWorkflow,
    AreaModeWorkflow,
    CampaignWorkflow,
]
# The services the activities call; the worker opens one channel to each.
CHANNELS = ("grids", "residents", "notifications", "merchants", "errands", "care")
CARE_CHANNELS = ("care", "grids", "notifications")


def activities(channels: dict[str, grpc.aio.Channel]) -> list[Any]:
    """Every activity whose services have a channel: tests of one workflow
    pass only the channels that workflow's activities need."""

    def have(*names: str) -> bool:
        return set(names) <= channels.keys()

    found: list[Any] = [CityActivities(channels["grids"]).create_subtree]
    if have("notifications"):
        notifications = NotificationActivities(channels["notifications"])
        found += [
            notifications.dispatch_deliveries,
            notifications.queue_fallback_deliveries,
        ]
    if have("residents", "merchants"):
        redemption = RedemptionActivities(channels["residents"], channels["merchants"])
        found += [
            redemption.hold_points,
            redemption.reserve_stock,
            redemption.commit_hold,
            redemption.release_hold,
            redemption.settle_redemption,
        ]
    if have("grids"):
        cases = CaseworkActivities(channels["grids"])
        found += [
            cases.append_case_step,
            cases.find_grid_worker,
        ]
    if have("notifications", "residents"):
        messaging = MessagingActivities(
            channels["notifications"], channels["residents"]
        )
        found += [messaging.send_notification, messaging.earn_points]
    if have(*ERRAND_SERVICES):
        found += ErrandActivities(channels).all()
    if have(*CARE_CHANNELS):
        care = CareActivities(*(channels[name] for name in CARE_CHANNELS))
        found += [
            care.load_squad_schedule,
            care.reassign_unavailable,
            care.send_care_notification,
            care.list_villages,
            care.signal_squads,
            care.enroll_village,
            care.get_campaign_progress,
        ]
    return found


def build_worker(
    client: Client, task_queue: str, channels: dict[str, grpc.aio.Channel]
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities(channels),
    )


def sdk_metrics_runtime() -> Runtime | None:
    """A runtime exporting the SDK's worker metrics (task slots, latencies)."""
    port = env_int("CLOUDARK_WORKER_SDK_METRICS_PORT", 9200)
    if not port:
        return None
    address = f"{env('CLOUDARK_METRICS_HOST', '127.0.0.1')}:{port}"
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address))
    )


async def _run() -> None:
    settings = Settings.from_env()
    client = await connect_temporal(settings, runtime=sdk_metrics_runtime())
    channels = {name: channel_to(name, settings) for name in CHANNELS}
    worker = build_worker(client, settings.temporal_task_queue, channels)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with worker:
        log.info("worker polling task queue %s", settings.temporal_task_queue)
        await stop.wait()
        log.info("worker stopping")
    for channel in channels.values():
        await channel.close()


def main() -> None:
    configure_logging("worker")
    setup_tracing("worker")
    serve_metrics("worker")
    asyncio.run(_run())


if __name__ == "__main__":
    main()
