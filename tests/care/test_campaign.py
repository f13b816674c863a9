"""A campaign over 1,000+ key service recipients, run by a worker process
that is killed (SIGKILL) in the middle and started again; real dev server,
real grids, residents and care services."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
from cloudark.care.v1 import care_pb2 as pb
from cloudark.care.v1 import care_pb2_grpc as pb_grpc
from cloudark.grids.v1 import grids_pb2 as gpb
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.testing import WorkflowEnvironment

from services.common.config import ROOT, Settings
from services.common.server import RunningService
from services.residents.loader import Population, load, micro_grids_of_city
from services.residents.pii import Keyring
from tests.care.support import AS_OPERATOR, CareStack, care_stack, new_area
from tests.histories import record
from workflows.care.workflows import CampaignResult

VILLAGES = 4
# Enough households for 1,100 recipients; no points history.
POPULATION = Population(
    residents=2_600,
    key_service_recipients=1_100,
    street_earned=0,
    street_spent=0,
    street_participations=0,
)


def _report_year() -> int:
    return datetime.now(ZoneInfo("Asia/Shanghai")).year


async def city_with_roster(
    grids: grpc.aio.Channel, residents: RunningService
) -> tuple[str, list[str]]:
    """A town of four villages, two micro-grids each, and its roster (COPY)."""
    city = await new_area(grids, gpb.AREA_KIND_CITY, "")
    town = await new_area(grids, gpb.AREA_KIND_TOWN, city.id)
    villages = []
    for _ in range(VILLAGES):
        village = await new_area(grids, gpb.AREA_KIND_VILLAGE, town.id)
        grid = await new_area(grids, gpb.AREA_KIND_GRID, village.id)
        for _ in range(2):
            await new_area(grids, gpb.AREA_KIND_MICRO_GRID, grid.id)
        villages.append(village.id)
    async with residents.pool.acquire() as conn:
        micro_grids = await micro_grids_of_city(conn, uuid.UUID(city.id))
    await load(residents.pool, Keyring.from_env({}), micro_grids, POPULATION, seed=9)
    return town.id, villages


@contextmanager
def worker_process(
    stack: CareStack, env: WorkflowEnvironment, grids_port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m workflows.worker` on the stack's task queue."""
    variables = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": env.client.namespace,
        "TEMPORAL_TASK_QUEUE": stack.task_queue,
        "CLOUDARK_CARE_ADDRESS": f"127.0.0.1:{stack.service.port}",
        "CLOUDARK_GRIDS_ADDRESS": f"127.0.0.1:{grids_port}",
        "CLOUDARK_NOTIFICATIONS_ADDRESS": f"127.0.0.1:{stack.notifications_port}",
        "CLOUDARK_WORKER_METRICS_PORT": "0",
        "CLOUDARK_WORKER_SDK_METRICS_PORT": "0",
        "CLOUDARK_LOG_FORMAT": "text",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "workflows.worker"],
            env=variables,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


async def campaign(care: pb_grpc.CareServiceAsyncStub, campaign_id: str) -> pb.Campaign:
    reply = await care.GetCampaign(
        pb.GetCampaignRequest(id=campaign_id), metadata=AS_OPERATOR
    )
    return reply.campaign


async def pending(care: pb_grpc.CareServiceAsyncStub, campaign_id: str) -> list[str]:
    found, token = [], ""
    while True:
        page = await care.ListCampaignRecipients(
            pb.ListCampaignRecipientsRequest(
                campaign_id=campaign_id,
                status=pb.RECIPIENT_STATUS_PENDING,
                page_size=1000,
                page_token=token,
            ),
            metadata=AS_OPERATOR,
        )
        found += [r.recipient_id for r in page.recipients]
        token = page.next_page_token
        if not token:
            return found


async def deliver(
    care: pb_grpc.CareServiceAsyncStub, campaign_id: str, recipient_ids: list[str]
) -> None:
    """Records each recipient as delivered, every tenth as refused."""
    gate = asyncio.Semaphore(16)

    async def one(i: int, recipient_id: str) -> None:
        status = (
            pb.RECIPIENT_STATUS_REFUSED
            if i % 10 == 0
            else pb.RECIPIENT_STATUS_DELIVERED
        )
        async with gate:
            await care.RecordCampaignDelivery(
                pb.RecordCampaignDeliveryRequest(
                    campaign_id=campaign_id,
                    recipient_id=recipient_id,
                    status=status,
                    request_id=f"deliver-{recipient_id}",
                ),
                metadata=AS_OPERATOR,
            )

    await asyncio.gather(*(one(i, r) for i, r in enumerate(recipient_ids)))


async def test_a_campaign_over_a_thousand_recipients_survives_a_killed_worker(
    settings: Settings,
    grids_service: RunningService,
    residents_service: RunningService,
    grids_channel: grpc.aio.Channel,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
) -> None:
    worker_log = tmp_path / "worker.log"
    town_id, villages = await city_with_roster(grids_channel, residents_service)
    async with residents_service.pool.acquire() as conn:
        roster = await conn.fetchval(
            "SELECT count(*) FROM residents WHERE care_update_time IS NOT NULL"
            " AND area_ids[3] = ANY($1::uuid[])",
            [uuid.UUID(v) for v in villages],
        )
    client = temporal_env.client
    async with care_stack(
        settings, grids_service, residents_service, client, task_queue
    ) as stack:
        due = Timestamp()
        due.FromDatetime(datetime.now(UTC) + timedelta(days=3))
        started = await stack.care.StartCampaign(
            pb.StartCampaignRequest(
                kind=pb.CAMPAIGN_KIND_CARE_PACKAGE,
                village_ids=villages,
                due_time=due,
                request_id="friday-packages",
            ),
            metadata=AS_OPERATOR,
        )
        campaign_id = started.campaign.id
        with worker_process(
            stack, temporal_env, grids_service.port, worker_log
        ) as first:
            for _ in range(600):
                if (await campaign(stack.care, campaign_id)).recipients > 0:
                    break
                await asyncio.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        midway = await campaign(stack.care, campaign_id)

        with worker_process(stack, temporal_env, grids_service.port, worker_log):
            for _ in range(1200):
                view = await campaign(stack.care, campaign_id)
                if view.status != pb.CAMPAIGN_STATUS_ENROLLING:
                    break
                await asyncio.sleep(0.1)
            await deliver(
                stack.care, campaign_id, await pending(stack.care, campaign_id)
            )
            handle = client.get_workflow_handle(
                started.campaign.workflow_id, result_type=CampaignResult
            )
            result = await asyncio.wait_for(handle.result(), timeout=180)
        final = await campaign(stack.care, campaign_id)
        figures = await stack.care.GetCareFigures(
            pb.GetCareFiguresRequest(area_id=town_id, year=_report_year()),
            metadata=AS_OPERATOR,
        )
        await record(handle, "CampaignWorkflow", "thousand-recipients-restart")

    assert roster >= 1_000
    # Killed as soon as the first village was in (usually mid-enrollment; on a
    # very fast machine enrollment may already be complete).
    assert 0 < midway.recipients <= roster
    assert (result.recipients, result.delivered + result.refused) == (roster, roster)
    assert result.refused == (roster + 9) // 10
    assert (final.status, final.pending, final.recipients) == (
        pb.CAMPAIGN_STATUS_FINISHED,
        0,
        roster,
    )
    assert len(stack.notifications.titled("Campaign started")) == 1
    assert figures.figures.care_packages == result.delivered
