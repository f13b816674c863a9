"""ErrandWorkflow's timers on Temporal's time-skipping server: offer windows
running out, the fifteen-minute promise breached, a helper gone silent. The
grids and residents services are the real ones."""

from datetime import timedelta

from cloudark.errands.v1 import errands_pb2 as pb
from temporalio.testing import WorkflowEnvironment

from tests.errands.conftest import Parts
from tests.errands.support import (
    MEDICINE,
    as_helper,
    as_resident,
    errand,
    eventually,
    load_of,
    offered_to,
    steps,
    town,
)
from tests.histories import record
from workflows import search_attributes as sa
from workflows.errands.workflows import ErrandWorkflow


def ask(resident_id: str) -> pb.RequestErrandRequest:
    return pb.RequestErrandRequest(
        resident_id=resident_id, kind=MEDICINE, details="fever medicine"
    )


async def test_nobody_accepting_escalates_to_the_supervisor_and_widens(
    parts: Parts, skipping_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    async with parts.stack(skipping_env.client) as s:
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand
        await offered_to(s.errands, e.id, place.worker.id)

        # Two 90 s windows pass: the worker, then the volunteer, say nothing.
        await skipping_env.sleep(timedelta(seconds=200))
        await offered_to(s.errands, e.id, place.neighbour.id)
        accepted = await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(id=e.id, helper_id=place.neighbour.id),
            metadata=as_helper(place.neighbour),
        )
        handle = skipping_env.client.get_workflow_handle_for(
            ErrandWorkflow.run, e.workflow_id
        )
        await s.errands.CancelErrand(pb.CancelErrandRequest(id=e.id), metadata=me)
        await handle.result()
        seen = await s.errands.GetErrand(pb.GetErrandRequest(id=e.id), metadata=me)

    await record(handle, "ErrandWorkflow", "widened")
    assert [(x.kind, x.helper_id) for x in seen.steps[:6]] == [
        (pb.STEP_KIND_REQUESTED, ""),
        (pb.STEP_KIND_OFFERED, place.worker.id),
        (pb.STEP_KIND_OFFERED, place.volunteer.id),
        (pb.STEP_KIND_ESCALATED, ""),
        (pb.STEP_KIND_WIDENED, ""),
        (pb.STEP_KIND_OFFERED, place.neighbour.id),
    ]
    assert accepted.errand.helper_id == place.neighbour.id
    alerts = [c for c in parts.fake.about(e.id) if "alert-escalate" in c.reference]
    assert [c.staff_ids for c in alerts] == [[place.supervisor.id]]


async def test_undelivered_at_the_due_time_is_breached_and_carries_on(
    parts: Parts, skipping_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents, worker_on_duty=False)
    me = as_resident(place.resident_id)
    helper = as_helper(place.volunteer)
    async with parts.stack(skipping_env.client) as s:
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand
        await offered_to(s.errands, e.id, place.volunteer.id)
        await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(id=e.id, helper_id=place.volunteer.id),
            metadata=helper,
        )
        await skipping_env.sleep(timedelta(minutes=8))
        await s.errands.ReportPickedUp(
            pb.ReportPickedUpRequest(id=e.id, helper_id=place.volunteer.id),
            metadata=helper,
        )
        before_due = await errand(s.errands, e.id)
        await skipping_env.sleep(timedelta(minutes=8))

        async def breached() -> bool:
            return (await errand(s.errands, e.id)).breached

        await eventually(breached)
        handle = skipping_env.client.get_workflow_handle_for(
            ErrandWorkflow.run, e.workflow_id
        )
        marked = (await handle.describe()).typed_search_attributes
        delivered = await s.errands.ReportDelivered(
            pb.ReportDeliveredRequest(
                id=e.id, helper_id=place.volunteer.id, note="Medicine is at your door."
            ),
            metadata=helper,
        )
        result = await handle.result()
        kinds = await steps(s.errands, e.id)

    await record(handle, "ErrandWorkflow", "breached")
    assert not before_due.breached
    assert marked.get(sa.BREACHED) is True
    assert marked.get(sa.ERRAND_STATUS) == "PICKED_UP"
    assert marked.get(sa.GRID_ID) == place.place.grid.id
    assert delivered.errand.status == pb.ERRAND_STATUS_DELIVERED
    assert result.breached
    assert kinds.index(pb.STEP_KIND_BREACHED) < kinds.index(pb.STEP_KIND_DELIVERED)
    alerts = [c for c in parts.fake.about(e.id) if "alert-breach" in c.reference]
    assert [c.staff_ids for c in alerts] == [[place.supervisor.id]]


async def test_helper_silent_after_accepting_loses_the_errand(
    parts: Parts, skipping_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    async with parts.stack(skipping_env.client) as s:
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand
        await offered_to(s.errands, e.id, place.worker.id)
        await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(id=e.id, helper_id=place.worker.id),
            metadata=as_helper(place.worker),
        )

        # Ten minutes without a report sends it back to dispatch.
        await skipping_env.sleep(timedelta(minutes=11))
        await offered_to(s.errands, e.id, place.volunteer.id)
        kinds = await steps(s.errands, e.id)
        worker_load = await load_of(parts.grids, place.worker.id)

    assert kinds[:5] == [
        pb.STEP_KIND_REQUESTED,
        pb.STEP_KIND_OFFERED,
        pb.STEP_KIND_ACCEPTED,
        pb.STEP_KIND_TIMED_OUT,
        pb.STEP_KIND_OFFERED,
    ]
    assert worker_load == 0


async def test_errand_goes_on_while_messages_cannot_be_sent(
    parts: Parts, skipping_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    parts.fake.down = True
    try:
        async with parts.stack(skipping_env.client) as s:
            e = (
                await s.errands.RequestErrand(ask(place.resident_id), metadata=me)
            ).errand
            await offered_to(s.errands, e.id, place.worker.id)

            # The offer cannot reach the worker: once its message is given up
            # (the offer window), the next helper is asked, and can accept.
            await skipping_env.sleep(timedelta(seconds=120))
            await offered_to(s.errands, e.id, place.volunteer.id)
            accepted = await s.errands.AcceptErrand(
                pb.AcceptErrandRequest(id=e.id, helper_id=place.volunteer.id),
                metadata=as_helper(place.volunteer),
            )
    finally:
        parts.fake.down = False

    assert accepted.errand.status == pb.ERRAND_STATUS_ACCEPTED
