"""ErrandWorkflow paths through the gRPC API on the Temporal dev server, against
the real grids and residents services: cancel, drop, a race to accept, bad
input, breach, and what operators and residents can list."""

import asyncio
import dataclasses
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import grpc
from cloudark.errands.v1 import errands_pb2 as pb
from temporalio.testing import WorkflowEnvironment

from services.common.identity import Caller, Role
from tests.errands.conftest import Parts
from tests.errands.support import (
    AS_OPERATOR,
    MEDICINE,
    as_helper,
    as_resident,
    errand,
    eventually,
    load_of,
    offered_to,
    promise,
    steps,
    town,
)
from tests.helpers import bad_fields, call_error
from tests.histories import record
from workflows.errands.workflows import ErrandWorkflow

FP = grpc.StatusCode.FAILED_PRECONDITION


def ask(resident_id: str, **fields: str) -> pb.RequestErrandRequest:
    return pb.RequestErrandRequest(
        resident_id=resident_id, kind=MEDICINE, details="fever medicine", **fields
    )


async def test_resident_cancels_before_anyone_accepts(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    async with parts.stack(temporal_env.client) as s:
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand
        await offered_to(s.errands, e.id, place.worker.id)

        cancelled = await s.errands.CancelErrand(
            pb.CancelErrandRequest(id=e.id, reason="my son brought it"), metadata=me
        )
        handle = temporal_env.client.get_workflow_handle_for(
            ErrandWorkflow.run, e.workflow_id
        )
        result = await handle.result()
        again = await call_error(
            s.errands.CancelErrand(pb.CancelErrandRequest(id=e.id), metadata=me)
        )
        late = await call_error(
            s.errands.AcceptErrand(
                pb.AcceptErrandRequest(id=e.id, helper_id=place.worker.id),
                metadata=as_helper(place.worker),
            )
        )

    await record(handle, "ErrandWorkflow", "cancelled")
    assert cancelled.errand.status == pb.ERRAND_STATUS_CANCELLED
    assert cancelled.errand.offered_helper_ids == []
    assert result.status == pb.ERRAND_STATUS_CANCELLED
    assert (again.code(), late.code()) == (FP, FP)


async def test_dropped_errand_goes_to_the_next_helper(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    worker = as_helper(place.worker)
    async with parts.stack(temporal_env.client) as s:
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand
        await offered_to(s.errands, e.id, place.worker.id)
        await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(id=e.id, helper_id=place.worker.id), metadata=worker
        )
        load_in_hand = await load_of(parts.grids, place.worker.id)

        dropped = await s.errands.DropErrand(
            pb.DropErrandRequest(
                id=e.id, helper_id=place.worker.id, reason="called to a fire"
            ),
            metadata=worker,
        )
        await offered_to(s.errands, e.id, place.volunteer.id)
        retaken = await call_error(
            s.errands.AcceptErrand(
                pb.AcceptErrandRequest(id=e.id, helper_id=place.worker.id),
                metadata=worker,
            )
        )
        accepted = await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(id=e.id, helper_id=place.volunteer.id),
            metadata=as_helper(place.volunteer),
        )
        handle = temporal_env.client.get_workflow_handle_for(
            ErrandWorkflow.run, e.workflow_id
        )
        state = await handle.query(ErrandWorkflow.state)
        await s.errands.CancelErrand(pb.CancelErrandRequest(id=e.id), metadata=me)
        await handle.result()
        kinds = await steps(s.errands, e.id)

    await record(handle, "ErrandWorkflow", "dropped")
    assert load_in_hand == 1
    assert dropped.errand.status == pb.ERRAND_STATUS_WAITING_FOR_HELPER
    assert dropped.errand.helper_id == ""
    assert retaken.code() == FP
    assert accepted.errand.helper_id == place.volunteer.id
    assert state.status == pb.ERRAND_STATUS_ACCEPTED
    assert state.helper is not None
    assert state.helper.helper_id == place.volunteer.id
    assert state.excluded_helper_ids == [place.worker.id]
    assert kinds == [
        pb.STEP_KIND_REQUESTED,
        pb.STEP_KIND_OFFERED,
        pb.STEP_KIND_ACCEPTED,
        pb.STEP_KIND_DROPPED,
        pb.STEP_KIND_OFFERED,
        pb.STEP_KIND_ACCEPTED,
        pb.STEP_KIND_CANCELLED,
    ]
    assert await load_of(parts.grids, place.worker.id) == 0
    assert await load_of(parts.grids, place.volunteer.id) == 0


async def test_two_helpers_accepting_at_once_only_the_first_wins(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    async with parts.stack(temporal_env.client, promise(offer_batch=2)) as s:
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand
        await offered_to(s.errands, e.id, place.volunteer.id)

        answers = await asyncio.gather(
            *(
                s.errands.AcceptErrand(
                    pb.AcceptErrandRequest(id=e.id, helper_id=h.id),
                    metadata=as_helper(h),
                )
                for h in (place.worker, place.volunteer)
            ),
            return_exceptions=True,
        )
        final = await errand(s.errands, e.id)
        loads = [
            await load_of(parts.grids, h.id) for h in (place.worker, place.volunteer)
        ]

    won = [a for a in answers if isinstance(a, pb.AcceptErrandResponse)]
    lost = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(won) == 1
    assert [error.code() for error in lost] == [FP]
    assert "already accepted" in (lost[0].details() or "")
    assert final.helper_id == won[0].errand.helper_id
    assert sorted(loads) == [0, 1]


async def test_bad_input_gets_a_precise_error_and_changes_nothing(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    worker = as_helper(place.worker)
    async with parts.stack(temporal_env.client) as s:
        unknown = await call_error(
            s.errands.RequestErrand(
                ask("0b7e7d6e-8c4e-4c8f-9d4c-0f6f1b1f0001"), metadata=AS_OPERATOR
            )
        )
        malformed = await call_error(
            s.errands.RequestErrand(pb.RequestErrandRequest(), metadata=AS_OPERATOR)
        )
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand
        await offered_to(s.errands, e.id, place.worker.id)
        before = await steps(s.errands, e.id)

        not_offered = await call_error(
            s.errands.AcceptErrand(
                pb.AcceptErrandRequest(id=e.id, helper_id=place.neighbour.id),
                metadata=as_helper(place.neighbour),
            )
        )
        early = await call_error(
            s.errands.ReportDelivered(
                pb.ReportDeliveredRequest(
                    id=e.id, helper_id=place.worker.id, note="done"
                ),
                metadata=worker,
            )
        )
        impostor = await call_error(
            s.errands.AcceptErrand(
                pb.AcceptErrandRequest(id=e.id, helper_id=place.volunteer.id),
                metadata=worker,
            )
        )
        stranger = await call_error(
            s.errands.GetErrand(
                pb.GetErrandRequest(id=e.id),
                metadata=as_resident(place.volunteer.person_id),
            )
        )
        internal = await call_error(
            s.errands.RecordErrandStep(
                pb.RecordErrandStepRequest(errand_id=e.id), metadata=AS_OPERATOR
            )
        )
        after_failures = await steps(s.errands, e.id)

        await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(id=e.id, helper_id=place.worker.id), metadata=worker
        )
        someone_elses = await call_error(
            s.errands.ReportPickedUp(
                pb.ReportPickedUpRequest(id=e.id, helper_id=place.volunteer.id),
                metadata=as_helper(place.volunteer),
            )
        )
        await s.errands.ReportDelivered(
            pb.ReportDeliveredRequest(id=e.id, helper_id=place.worker.id, note="done"),
            metadata=worker,
        )
        too_late = await call_error(
            s.errands.CancelErrand(pb.CancelErrandRequest(id=e.id), metadata=me)
        )
        rated_badly = await call_error(
            s.errands.RateErrand(pb.RateErrandRequest(id=e.id, rating=9), metadata=me)
        )

    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(malformed) == ["resident_id", "kind", "details"]
    assert not_offered.code() == FP
    assert "not offered" in (not_offered.details() or "")
    assert early.code() == FP
    assert impostor.code() == grpc.StatusCode.PERMISSION_DENIED
    assert stranger.code() == grpc.StatusCode.PERMISSION_DENIED
    assert internal.code() == grpc.StatusCode.PERMISSION_DENIED
    assert after_failures == before
    assert someone_elses.code() == grpc.StatusCode.PERMISSION_DENIED
    assert too_late.code() == FP
    assert "delivered" in (too_late.details() or "")
    assert bad_fields(rated_badly) == ["rating"]


async def test_breached_errand_is_marked_alerted_and_found_by_operators(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    quick = promise(due_seconds={k: 1 for k in (1, 2, 3)})
    async with parts.stack(temporal_env.client, quick) as s:
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand

        async def breached() -> bool:
            return (await errand(s.errands, e.id)).breached

        await eventually(breached)
        # The README's filters for operators, as typed into the Web UI.
        china = timezone(timedelta(hours=8))
        midnight = datetime.now(china).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        breached_today = (
            f"WorkflowType = 'ErrandWorkflow' AND Breached = true"
            f" AND TownId = '{place.place.town.id}'"
            f" AND DueTime >= '{midnight.isoformat()}'"
        )
        waiting = (
            "WorkflowType = 'ErrandWorkflow' AND ErrandStatus = 'WAITING_FOR_HELPER'"
            f" AND VillageId = '{place.place.village.id}'"
        )

        async def found() -> bool:
            client = temporal_env.client
            hits = [w.id async for w in client.list_workflows(breached_today)]
            idle = [w.id async for w in client.list_workflows(waiting)]
            return hits == idle == [e.workflow_id]

        await eventually(found)
        # It carries on: still offered, and deliverable late.
        worker = as_helper(place.worker)
        await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(id=e.id, helper_id=place.worker.id), metadata=worker
        )
        late = await s.errands.ReportDelivered(
            pb.ReportDeliveredRequest(id=e.id, helper_id=place.worker.id, note="sorry"),
            metadata=worker,
        )

    assert late.errand.status == pb.ERRAND_STATUS_DELIVERED
    assert late.errand.breached
    alerts = [c for c in parts.fake.about(e.id) if "alert-breach" in c.reference]
    assert [c.staff_ids for c in alerts] == [[place.supervisor.id]]


async def test_lists_show_each_caller_their_own_errands(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    async with parts.stack(temporal_env.client, worker=False) as s:
        ids = [
            (
                await s.errands.RequestErrand(ask(place.resident_id), metadata=me)
            ).errand.id
            for _ in range(3)
        ]
        first = await s.errands.ListErrands(
            pb.ListErrandsRequest(page_size=2), metadata=me
        )
        second = await s.errands.ListErrands(
            pb.ListErrandsRequest(page_size=2, page_token=first.next_page_token),
            metadata=me,
        )
        grid_worker = Caller(
            subject=place.worker.id,
            role=Role.GRID_WORKER,
            area_ids=(place.place.grid.id,),
        ).metadata()
        in_grid = await s.errands.ListErrands(
            pb.ListErrandsRequest(area_id=place.place.micro_grid.id),
            metadata=grid_worker,
        )
        elsewhere = Caller(
            subject=place.neighbour.id,
            role=Role.GRID_WORKER,
            area_ids=(place.place.other_grid.id,),
        ).metadata()
        not_mine = await s.errands.ListErrands(
            pb.ListErrandsRequest(area_id=place.place.micro_grid.id), metadata=elsewhere
        )
        others = await call_error(
            s.errands.ListErrands(
                pb.ListErrandsRequest(resident_id=place.volunteer.person_id),
                metadata=me,
            )
        )

    listed = [x.id for x in first.errands] + [x.id for x in second.errands]
    assert listed == ids[::-1]
    assert second.next_page_token == ""
    assert sorted(x.id for x in in_grid.errands) == sorted(ids)
    assert not_mine.errands == []
    assert others.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_more_accepts_in_flight_than_database_connections_all_go_through(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    # Each accept's handler records its step through the same service, so the
    # front door must not hold a connection while it waits for the Update.
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    narrow = dataclasses.replace(parts, settings=replace(parts.settings, db_pool_max=2))
    async with narrow.stack(temporal_env.client) as s:
        ids = [
            (
                await s.errands.RequestErrand(ask(place.resident_id), metadata=me)
            ).errand.id
            for _ in range(4)
        ]
        for errand_id in ids:
            await offered_to(s.errands, errand_id, place.worker.id)

        answers = await asyncio.gather(
            *(
                s.errands.AcceptErrand(
                    pb.AcceptErrandRequest(id=errand_id, helper_id=place.worker.id),
                    metadata=as_helper(place.worker),
                )
                for errand_id in ids
            )
        )

    assert [a.errand.status for a in answers] == [pb.ERRAND_STATUS_ACCEPTED] * 4


async def test_cancelling_an_accepted_errand_frees_and_tells_the_helper(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    me = as_resident(place.resident_id)
    async with parts.stack(temporal_env.client) as s:
        e = (await s.errands.RequestErrand(ask(place.resident_id), metadata=me)).errand
        await offered_to(s.errands, e.id, place.worker.id)
        await s.errands.AcceptErrand(
            pb.AcceptErrandRequest(id=e.id, helper_id=place.worker.id),
            metadata=as_helper(place.worker),
        )
        cancelled = await s.errands.CancelErrand(
            pb.CancelErrandRequest(id=e.id), metadata=me
        )
        handle = temporal_env.client.get_workflow_handle_for(
            ErrandWorkflow.run, e.workflow_id
        )
        result = await handle.result()

    assert cancelled.errand.status == pb.ERRAND_STATUS_CANCELLED
    assert result.status == pb.ERRAND_STATUS_CANCELLED
    assert await load_of(parts.grids, place.worker.id) == 0
    told = [c for c in parts.fake.about(e.id) if c.reference.endswith("/cancel")]
    assert [c.staff_ids for c in told] == [[place.worker.id]]
