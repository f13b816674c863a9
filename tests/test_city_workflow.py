"""LoadCityWorkflow on a real Temporal dev server against the grids service."""

import uuid

import grpc
from cloudark.grids.v1 import grids_pb2 as pb
from cloudark.grids.v1 import grids_pb2_grpc as pb_grpc
from temporalio.testing import WorkflowEnvironment

from services.common.server import RunningService
from tests.conftest import OPERATOR
from tests.histories import record
from workflows.city.plan import DEMO, plan_city
from workflows.city.workflows import LoadCityInput, LoadCityWorkflow
from workflows.worker import build_worker


def test_plan_has_the_requested_sizes_and_is_repeatable() -> None:
    first = plan_city("C", "99", DEMO, seed=7)
    again = plan_city("C", "99", DEMO, seed=7)

    towns = first.children
    villages = [v for t in towns for v in t.children]
    grids = [g for v in villages for g in v.children]
    micro_grids = [m for g in grids for m in g.children]
    assert (len(towns), len(villages), len(grids), len(micro_grids)) == (2, 4, 10, 40)
    assert first == again


async def test_loading_a_city_twice_creates_it_once(
    temporal_env: WorkflowEnvironment,
    grids_service: RunningService,
    grids_channel: grpc.aio.Channel,
    task_queue: str,
) -> None:
    code = str(uuid.uuid4().int)[:8]
    data = LoadCityInput(name=f"City {code}", code=code, size=DEMO, seed=1)
    channels = {"grids": grids_channel}

    async with build_worker(temporal_env.client, task_queue, channels):
        handle = await temporal_env.client.start_workflow(
            LoadCityWorkflow.run, data, id=f"city-{code}-1", task_queue=task_queue
        )
        first = await handle.result()
        second = await temporal_env.client.execute_workflow(
            LoadCityWorkflow.run, data, id=f"city-{code}-2", task_queue=task_queue
        )

    await record(handle, "LoadCityWorkflow", "demo-city")
    assert (first.areas, first.created) == (57, 57)
    assert (second.city_id, second.created) == (first.city_id, 0)
    stub = pb_grpc.GridsServiceStub(grids_channel)
    towns = await stub.ListAreas(
        pb.ListAreasRequest(parent_id=first.city_id), metadata=OPERATOR.metadata()
    )
    assert [t.name for t in towns.areas] == ["Town 01", "Town 02"]
