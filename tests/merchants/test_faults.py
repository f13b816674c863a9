"""The worker dies between hold and commit: a real `python -m workflows.worker`
process, SIGKILLed and started again. Every redemption still ends committed
or released, never both and never neither, and the ledger sums to zero."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import grpc
import pytest
from cloudark.merchants.v1 import merchants_pb2 as pb
from temporalio.testing import WorkflowEnvironment

from services.common.config import ROOT, Settings
from services.common.server import RunningService
from tests.conftest import merchants_stack
from tests.merchants.support import (
    AS_OPERATOR,
    as_merchant,
    as_resident,
    assert_ledger_balanced,
    hold_postings,
    offer,
    place,
    resident_with_points,
    shop,
    stubs,
)

HOLD, COMMIT, RELEASE = 3, 4, 5


class WorkerProcess:
    """`python -m workflows.worker` against the test's servers."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "workflows.worker"],
            env=self._env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=10)
        self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None


@pytest.fixture
def worker_env(
    temporal_env: WorkflowEnvironment,
    grids_service: RunningService,
    residents_service: RunningService,
    task_queue: str,
) -> dict[str, str]:
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "CLOUDARK_GRIDS_ADDRESS": f"127.0.0.1:{grids_service.port}",
        "CLOUDARK_RESIDENTS_ADDRESS": f"127.0.0.1:{residents_service.port}",
        "CLOUDARK_WORKER_METRICS_PORT": "0",
        "CLOUDARK_WORKER_SDK_METRICS_PORT": "0",
        "CLOUDARK_LOG_FORMAT": "text",
    }


async def test_a_worker_killed_between_hold_and_commit_still_settles_each_once(
    settings: Settings,
    grids_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_service: RunningService,
    residents_channel: grpc.aio.Channel,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    worker_env: dict[str, str],
) -> None:
    async with merchants_stack(
        settings, grids_service, residents_service, temporal_env.client, task_queue
    ) as (service, _):
        worker_env["CLOUDARK_MERCHANTS_ADDRESS"] = f"127.0.0.1:{service.port}"
        worker = WorkerProcess(worker_env)
        api = stubs(service, residents_channel)
        town = await place(grids_channel)
        supermarket = await shop(api.merchants, town.village.id)
        soap = await offer(api.merchants, supermarket.id, title="Soap", points=20)
        buyers = [await resident_with_points(api.residents, town) for _ in range(3)]
        try:
            worker.start()
            started = [
                await api.merchants.RedeemOffer(
                    pb.RedeemOfferRequest(offer_id=soap.id, resident_id=b.id),
                    metadata=as_resident(b.id),
                )
                for b in buyers
            ]
            # Held, reserved, and the worker dies before anyone confirms.
            worker.kill()

            async def confirm(redemption_id: str) -> pb.ConfirmRedemptionResponse:
                return await api.merchants.ConfirmRedemption(
                    pb.ConfirmRedemptionRequest(id=redemption_id),
                    metadata=as_merchant(supermarket.id),
                )

            confirms = [
                asyncio.create_task(confirm(s.redemption.id)) for s in started[:2]
            ]
            worker.start()
            # The second life dies too, while the confirmations are running.
            await asyncio.sleep(1.5)
            worker.kill()
            worker.start()
            confirmed = await asyncio.gather(*confirms)
            cancelled = await api.merchants.CancelRedemption(
                pb.CancelRedemptionRequest(id=started[2].redemption.id),
                metadata=as_resident(buyers[2].id),
            )
        finally:
            worker.stop()
        ends = [
            (
                await api.merchants.GetRedemption(
                    pb.GetRedemptionRequest(id=s.redemption.id), metadata=AS_OPERATOR
                )
            ).redemption.state
            for s in started
        ]
        stock = await api.merchants.GetOffer(
            pb.GetOfferRequest(id=soap.id), metadata=AS_OPERATOR
        )
        await api.close()

    assert [c.redemption.state for c in confirmed] == [
        pb.REDEMPTION_STATE_COMMITTED
    ] * 2
    assert cancelled.redemption.state == pb.REDEMPTION_STATE_RELEASED
    assert ends == [pb.REDEMPTION_STATE_COMMITTED] * 2 + [pb.REDEMPTION_STATE_RELEASED]
    postings = [
        await hold_postings(residents_service, s.redemption.hold_id) for s in started
    ]
    assert postings == [[HOLD, COMMIT], [HOLD, COMMIT], [HOLD, RELEASE]]
    assert stock.offer.stock == 8
    await assert_ledger_balanced(residents_service)
