"""A tip-off through the casework API on the real Temporal dev server, as it
runs in `make run`: the record, the timeline, the points, and what
operators filter on in the Web UI."""

import asyncio

import grpc
from cloudark.casework.v1 import casework_pb2 as pb
from cloudark.grids.v1 import cases_pb2 as cases_pb

from tests.casework.support import Stack, scene, settled, tip_off


async def test_story_3_on_the_dev_server_with_operator_filters(
    dev_stack: Stack,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    city = await scene(grids_channel, residents_channel)
    case = await tip_off(dev_stack, city, cases_pb.CASE_CATEGORY_SAFETY_DISPUTE)
    await settled(dev_stack, case.record.id, pb.CASE_STAGE_VERIFYING)

    done = await dev_stack.stub.RecordVisit(
        pb.RecordVisitRequest(
            case_id=case.record.id,
            outcome=pb.VISIT_OUTCOME_RESOLVED_ON_SPOT,
            note="mediated",
        ),
        metadata=city.as_worker,
    )

    timeline = done.case.record.timeline
    assert [s.status for s in timeline] == [
        cases_pb.CASE_STATUS_REPORTED,
        cases_pb.CASE_STATUS_ASSIGNED,
        cases_pb.CASE_STATUS_RESOLVED,
    ]
    actors = [s.actor_id for s in timeline]
    assert actors == [city.resident_id, "system", city.worker_person]
    query = (
        f"CaseCategory = 'SAFETY_DISPUTE' AND CaseStatus = 'RESOLVED'"
        f" AND GridId = '{city.place.grid.id}' AND Overdue = false"
    )
    found = await _listed(dev_stack, query)
    assert found == [f"case-{case.record.id}"]


async def _listed(stack: Stack, query: str) -> list[str]:
    """Workflow ids the visibility store answers for query (it lags a little)."""
    for _ in range(300):
        ids = [w.id async for w in stack.client.list_workflows(query)]
        if ids:
            return ids
        await asyncio.sleep(0.1)
    return []
