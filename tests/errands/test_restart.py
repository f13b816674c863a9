"""A worker killed with SIGKILL mid-errand, again and again: the errand still
completes, with one offer, one message per step and the points paid once."""

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cloudark.errands.v1 import errands_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb
from cloudark.residents.v1 import residents_pb2_grpc as rpb_grpc
from temporalio.testing import WorkflowEnvironment

from services.common.config import ROOT
from services.common.server import RunningService
from tests.errands.conftest import Parts
from tests.errands.support import (
    AS_OPERATOR,
    MEDICINE,
    as_helper,
    as_resident,
    load_of,
    offered_to,
    steps,
    town,
)
from workflows.errands.workflows import ErrandWorkflow


class Workers:
    """Starts `python -m workflows.worker` processes on the test's task queue."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._env = env
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workflows.worker"],
                env=self._env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()


@contextmanager
def workers(env: dict[str, str], log: Path) -> Iterator[Workers]:
    found = Workers(env, log)
    try:
        yield found
    finally:
        if found.process is not None and found.process.poll() is None:
            found.kill()


async def test_killed_worker_restarts_and_repeats_nothing(
    parts: Parts,
    temporal_env: WorkflowEnvironment,
    grids_service: RunningService,
    tmp_path: Path,
) -> None:
    place = await town(parts.grids, parts.residents, worker_on_duty=False)
    me = as_resident(place.resident_id)
    helper = as_helper(place.volunteer)
    client = temporal_env.client
    async with parts.stack(client, worker=False) as s:
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace,
            "TEMPORAL_TASK_QUEUE": parts.task_queue,
            "CLOUDARK_GRIDS_ADDRESS": f"127.0.0.1:{grids_service.port}",
            "CLOUDARK_RESIDENTS_ADDRESS": f"127.0.0.1:{parts.residents_port}",
            "CLOUDARK_NOTIFICATIONS_ADDRESS": f"127.0.0.1:{parts.notifications_port}",
            "CLOUDARK_ERRANDS_ADDRESS": f"127.0.0.1:{s.service.port}",
            "CLOUDARK_WORKER_METRICS_PORT": "0",
            "CLOUDARK_WORKER_SDK_METRICS_PORT": "0",
            "CLOUDARK_LOG_FORMAT": "text",
        }
        with workers(env, tmp_path / "worker.log") as worker:
            worker.start()
            e = (
                await s.errands.RequestErrand(
                    pb.RequestErrandRequest(
                        resident_id=place.resident_id, kind=MEDICINE, details="medicine"
                    ),
                    metadata=me,
                )
            ).errand
            # Killed right after the offer is recorded, maybe before it is sent.
            await offered_to(s.errands, e.id, place.volunteer.id, timeout=60)
            worker.restart()
            await s.errands.AcceptErrand(
                pb.AcceptErrandRequest(id=e.id, helper_id=place.volunteer.id),
                metadata=helper,
            )
            worker.restart()
            await s.errands.ReportPickedUp(
                pb.ReportPickedUpRequest(id=e.id, helper_id=place.volunteer.id),
                metadata=helper,
            )
            await s.errands.ReportDelivered(
                pb.ReportDeliveredRequest(
                    id=e.id, helper_id=place.volunteer.id, note="at your door"
                ),
                metadata=helper,
            )
            # Killed while the points and the load are being settled.
            worker.restart()
            handle = client.get_workflow_handle_for(ErrandWorkflow.run, e.workflow_id)
            result = await handle.result()
        kinds = await steps(s.errands, e.id)

    assert result.status == pb.ERRAND_STATUS_DELIVERED
    assert collections.Counter(kinds) == {
        pb.STEP_KIND_REQUESTED: 1,
        pb.STEP_KIND_OFFERED: 1,
        pb.STEP_KIND_ACCEPTED: 1,
        pb.STEP_KIND_PICKED_UP: 1,
        pb.STEP_KIND_DELIVERED: 1,
        pb.STEP_KIND_POINTS_EARNED: 1,
    }
    # Retries may resend a message, always under its first request_id, which
    # the notifications service answers once.
    sent = {c.request_id for c in parts.fake.about(e.id)}
    assert sorted(r.split("/")[1] for r in sent) == [
        "notify-offer-1",
        "tell-accept-1",
        "tell-deliver",
        "tell-pickup-1",
    ]
    statement = await rpb_grpc.ResidentsServiceStub(parts.residents).ListStatement(
        rpb.ListStatementRequest(
            account=rpb.AccountRef(
                kind=rpb.ACCOUNT_KIND_RESIDENT, owner_id=place.volunteer.person_id
            )
        ),
        metadata=AS_OPERATOR,
    )
    earned = [x for x in statement.entries if x.activity == rpb.ACTIVITY_ERRAND_HELPED]
    assert len(earned) == 1
    assert await load_of(parts.grids, place.volunteer.id) == 0
