"""Story 1, the fifteen-minute errand, through the gRPC API against the real
grids and residents services and a real Temporal dev server."""

import grpc
from cloudark.errands.v1 import errands_pb2 as pb
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService
from tests.errands.support import (
    MEDICINE,
    FakeNotifications,
    as_helper,
    as_resident,
    balance,
    load_of,
    offered_to,
    stack,
    town,
)
from tests.helpers import call_error
from tests.histories import record
from workflows import search_attributes as sa
from workflows.errands.workflows import ErrandWorkflow


async def test_medicine_is_requested_offered_accepted_and_delivered_with_proof(
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
    residents_service: RunningService,
    notifications: tuple[FakeNotifications, int],
    task_queue: str,
) -> None:
    fake, notifications_port = notifications
    # The grid worker is out on a patrol: the volunteer next door is asked first.
    place = await town(grids_channel, residents_channel, worker_on_duty=False)
    me = as_resident(place.resident_id)
    points_before = await balance(residents_channel, place.volunteer.person_id)

    async with stack(
        settings,
        temporal_env.client,
        task_queue,
        grids=grids_channel,
        residents=residents_channel,
        residents_port=residents_service.port,
        notifications_port=notifications_port,
    ) as s:
        asked = await s.errands.RequestErrand(
            pb.RequestErrandRequest(
                resident_id=place.resident_id,
                kind=MEDICINE,
                details="fever medicine",
                request_id="story-1",
            ),
            metadata=me,
        )
        e = asked.errand
        promised = e.due_time.ToDatetime() - e.create_time.ToDatetime()
        await offered_to(s.errands, e.id, place.volunteer.id)
        helper = as_helper(place.volunteer)

        accepted = await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(
                id=e.id, helper_id=place.volunteer.id, request_id="a1"
            ),
            metadata=helper,
        )
        # The app retries the tap: the same request_id gets the same answer.
        retried = await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(
                id=e.id, helper_id=place.volunteer.id, request_id="a1"
            ),
            metadata=helper,
        )
        load_in_hand = await load_of(grids_channel, place.volunteer.id)
        picked = await s.errands.ReportPickedUp(
            pb.ReportPickedUpRequest(id=e.id, helper_id=place.volunteer.id),
            metadata=helper,
        )
        delivered = await s.errands.ReportDelivered(
            pb.ReportDeliveredRequest(
                id=e.id,
                helper_id=place.volunteer.id,
                note="Medicine is at your door.",
                photo_ref="photos/door-handle.jpg",
                request_id="d1",
            ),
            metadata=helper,
        )
        handle = temporal_env.client.get_workflow_handle_for(
            ErrandWorkflow.run, e.workflow_id
        )
        await handle.result()
        described = await handle.describe()
        seen = await s.errands.GetErrand(pb.GetErrandRequest(id=e.id), metadata=me)
        rated = await s.errands.RateErrand(
            pb.RateErrandRequest(id=e.id, rating=5, comment="quick"), metadata=me
        )
        rated_again = await call_error(
            s.errands.RateErrand(pb.RateErrandRequest(id=e.id, rating=4), metadata=me)
        )

    await record(handle, "ErrandWorkflow", "story-1")
    assert promised.total_seconds() == 15 * 60
    # What operators see in the Temporal UI: ids and states, no personal data.
    marked = described.typed_search_attributes
    assert marked.get(sa.ERRAND_STATUS) == "DELIVERED"
    assert marked.get(sa.BREACHED) is False
    assert marked.get(sa.MICRO_GRID_ID) == place.place.micro_grid.id
    assert marked.get(sa.VILLAGE_ID) == place.place.village.id
    memo = await described.memo()
    assert sorted(memo) == ["due_time", "errand_id", "kind", "micro_grid_id"]
    assert memo["kind"] == "MEDICINE"
    assert e.status == pb.ERRAND_STATUS_WAITING_FOR_HELPER
    assert accepted.errand.status == pb.ERRAND_STATUS_ACCEPTED
    assert accepted.errand.helper_id == place.volunteer.id
    assert retried == accepted
    assert picked.errand.status == pb.ERRAND_STATUS_PICKED_UP
    assert delivered.errand.status == pb.ERRAND_STATUS_DELIVERED
    assert delivered.errand.delivery_note == "Medicine is at your door."
    assert delivered.errand.photo_ref == "photos/door-handle.jpg"
    assert [s.kind for s in seen.steps] == [
        pb.STEP_KIND_REQUESTED,
        pb.STEP_KIND_OFFERED,
        pb.STEP_KIND_ACCEPTED,
        pb.STEP_KIND_PICKED_UP,
        pb.STEP_KIND_DELIVERED,
        pb.STEP_KIND_POINTS_EARNED,
    ]
    assert not seen.errand.breached
    assert rated.errand.rating == 5
    assert rated_again.code() == grpc.StatusCode.FAILED_PRECONDITION
    # The resident heard of each step; the helper got one offer.
    to_resident = {
        c.reference.split("/")[1]: c.body
        for c in fake.about(e.id)
        if c.resident_ids == [place.resident_id]
    }
    assert sorted(to_resident) == ["accept-1", "deliver", "pickup-1"]
    assert to_resident["deliver"] == "Medicine is at your door."
    offers = [c for c in fake.about(e.id) if "offer" in c.reference]
    assert [c.resident_ids for c in offers] == [[place.volunteer.person_id]]
    # Points once, and the helper's load back where it was.
    points_after = await balance(residents_channel, place.volunteer.person_id)
    assert points_after > points_before
    assert load_in_hand == 1
    assert await load_of(grids_channel, place.volunteer.id) == 0
