"""ErrandsService: the front door of the ErrandWorkflows.

RequestErrand writes the errand and starts its workflow; accept, the reports,
drop and cancel are workflow Updates, answered with the errand as the
workflow recorded it; reads come from the errands schema, which the
workflow keeps through RecordErrandStep. Every RPC checks the caller's role,
validates, loads, checks the caller's reach, then acts.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import asyncpg
from cloudark.errands.v1 import errands_pb2 as pb
from cloudark.errands.v1 import errands_pb2_grpc as pb_grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from services.common.db import Connection
from services.common.errors import (
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.idempotency import keep_answer, recorded_answer, run_once
from services.common.identity import Caller, caller_of
from services.common.pagination import decode_token, encode_token, fingerprint
from services.common.pagination import page_size as clamp_page_size
from services.common.validation import Violations
from services.errands import access, config
from services.errands import repository as repo
from services.errands.repository import ErrandFilter, ErrandRow
from services.errands.residents_client import ResidentsClient
from workflows import search_attributes as sa
from workflows.errands.workflows import (
    CancelInput,
    DeliverInput,
    ErrandInput,
    ErrandWorkflow,
    HelperInput,
    status_name,
)

Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.
ResponseT = TypeVar("ResponseT", bound=Message)

KINDS = frozenset(pb.ErrandKind.values()) - {pb.ERRAND_KIND_UNSPECIFIED}
STATUSES = frozenset(pb.ErrandStatus.values()) - {pb.ERRAND_STATUS_UNSPECIFIED}
STEP_KINDS = frozenset(pb.StepKind.values()) - {pb.STEP_KIND_UNSPECIFIED}
CLOSED = (pb.ERRAND_STATUS_DELIVERED, pb.ERRAND_STATUS_CANCELLED)


def workflow_id(errand_id: uuid.UUID | str) -> str:
    return f"errand-{errand_id}"


class ErrandsServicer(pb_grpc.ErrandsServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        temporal: Client,
        residents: ResidentsClient,
        promise: config.Promise,
        task_queue: str,
    ) -> None:
        self._pool = pool
        self._temporal = temporal
        self._residents = residents
        self._promise = promise
        self._task_queue = task_queue

    # ---- requesting and reading ----

    async def RequestErrand(
        self, request: pb.RequestErrandRequest, context: Context
    ) -> pb.RequestErrandResponse:
        caller = _caller(context, "RequestErrand")
        v = Violations()
        resident_id = v.id("resident_id", request.resident_id)
        if request.kind not in KINDS:
            v.add("kind", "must be MEDICINE, SHOPPING or OTHER")
        details = v.text("details", request.details, max_length=config.TEXT_MAX)
        reference = v.text(
            "source_reference",
            request.source_reference,
            max_length=config.STEP_KEY_MAX,
            required=False,
        )
        v.request_id(request.request_id)
        v.raise_if_any()
        assert resident_id is not None
        if caller.role == access.R and caller.subject != str(resident_id):
            raise PermissionDenied("resident_id: a resident asks only for themself")
        home = await self._residents.home_of(resident_id, "resident_id")
        if caller.role in access.AREA_STAFF and not set(
            access.area_ids_of(caller)
        ) & set(home.area_ids):
            raise PermissionDenied("resident_id: the resident is outside your areas")
        errand_id = uuid.uuid4()
        now = datetime.now(UTC)
        allowance = timedelta(seconds=self._promise.due_seconds[request.kind])

        async def insert(conn: Connection) -> pb.RequestErrandResponse:
            row = await repo.insert_errand(
                conn,
                id=errand_id,
                resident_id=resident_id,
                kind=request.kind,
                details=details,
                source_reference=reference,
                area_ids=home.area_ids,
                create_time=now,
                due_time=now + allowance,
            )
            return pb.RequestErrandResponse(errand=errand_proto(row))

        first = await _once(self._pool, caller, "RequestErrand", request, insert)
        await self._start(first.errand, abandon_on_failure=not request.request_id)
        return first

    async def GetErrand(
        self, request: pb.GetErrandRequest, context: Context
    ) -> pb.GetErrandResponse:
        caller = _caller(context, "GetErrand")
        errand_id = _required_id("id", request.id)
        async with self._pool.acquire() as conn:
            row = await _errand(conn, errand_id)
            access.require_reach(caller, row)
            steps = await repo.list_steps(conn, errand_id)
        return pb.GetErrandResponse(
            errand=errand_proto(row), steps=[step_proto(s) for s in steps]
        )

    async def ListErrands(
        self, request: pb.ListErrandsRequest, context: Context
    ) -> pb.ListErrandsResponse:
        caller = _caller(context, "ListErrands")
        v = Violations()
        where = ErrandFilter(
            resident_id=v.id("resident_id", request.resident_id, required=False),
            helper_id=v.id("helper_id", request.helper_id, required=False),
            area_id=v.id("area_id", request.area_id, required=False),
            status=request.status,
        )
        if request.status and request.status not in STATUSES:
            v.add("status", "is not an errand status")
        limit = _page_size(v, request.page_size)
        v.raise_if_any()
        where = access.scoped(caller, where)
        query = fingerprint("ListErrands", where, caller.role, caller.subject)
        after = decode_token(request.page_token, query)
        async with self._pool.acquire() as conn:
            rows = await repo.list_errands(conn, where, after, limit + 1)
        token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            token = encode_token(query, [last.create_time.isoformat(), str(last.id)])
        return pb.ListErrandsResponse(
            errands=[errand_proto(r) for r in rows], next_page_token=token
        )

    # ---- steering the workflow ----

    async def AcceptErrand(
        self, request: pb.AcceptErrandRequest, context: Context
    ) -> pb.AcceptErrandResponse:
        caller = _caller(context, "AcceptErrand")
        errand_id, helper_id = self._helper_request(caller, request)

        def check(row: ErrandRow) -> None:
            _require_open(row)
            if row.status != pb.ERRAND_STATUS_WAITING_FOR_HELPER:
                raise FailedPrecondition(
                    "id: another helper already accepted the errand", subject="id"
                )

        errand = await self._steer(
            caller,
            "AcceptErrand",
            request,
            errand_id,
            check,
            lambda h, uid: h.execute_update(
                ErrandWorkflow.accept, HelperInput(str(helper_id)), id=uid
            ),
        )
        return pb.AcceptErrandResponse(errand=errand)

    async def ReportPickedUp(
        self, request: pb.ReportPickedUpRequest, context: Context
    ) -> pb.ReportPickedUpResponse:
        caller = _caller(context, "ReportPickedUp")
        errand_id, helper_id = self._helper_request(caller, request)
        errand = await self._steer(
            caller,
            "ReportPickedUp",
            request,
            errand_id,
            _require_in_hand,
            lambda h, uid: h.execute_update(
                ErrandWorkflow.report_picked_up, HelperInput(str(helper_id)), id=uid
            ),
        )
        return pb.ReportPickedUpResponse(errand=errand)

    async def ReportDelivered(
        self, request: pb.ReportDeliveredRequest, context: Context
    ) -> pb.ReportDeliveredResponse:
        caller = _caller(context, "ReportDelivered")
        v = Violations()
        errand_id = v.id("id", request.id)
        helper_id = v.id("helper_id", request.helper_id)
        note = v.text("note", request.note, max_length=config.TEXT_MAX)
        photo_ref = v.text(
            "photo_ref", request.photo_ref, max_length=config.TEXT_MAX, required=False
        )
        v.request_id(request.request_id)
        v.raise_if_any()
        assert errand_id is not None
        assert helper_id is not None
        access.require_self(caller, helper_id)
        deliver = DeliverInput(str(helper_id), note, photo_ref)
        errand = await self._steer(
            caller,
            "ReportDelivered",
            request,
            errand_id,
            _require_in_hand,
            lambda h, uid: h.execute_update(
                ErrandWorkflow.report_delivered, deliver, id=uid
            ),
        )
        return pb.ReportDeliveredResponse(errand=errand)

    async def DropErrand(
        self, request: pb.DropErrandRequest, context: Context
    ) -> pb.DropErrandResponse:
        caller = _caller(context, "DropErrand")
        v = Violations()
        reason = v.text(
            "reason", request.reason, max_length=config.TEXT_MAX, required=False
        )
        errand_id, helper_id = self._helper_request(caller, request, v)
        drop = HelperInput(str(helper_id), reason)
        errand = await self._steer(
            caller,
            "DropErrand",
            request,
            errand_id,
            _require_in_hand,
            lambda h, uid: h.execute_update(ErrandWorkflow.drop, drop, id=uid),
        )
        return pb.DropErrandResponse(errand=errand)

    async def CancelErrand(
        self, request: pb.CancelErrandRequest, context: Context
    ) -> pb.CancelErrandResponse:
        caller = _caller(context, "CancelErrand")
        v = Violations()
        errand_id = v.id("id", request.id)
        reason = v.text(
            "reason", request.reason, max_length=config.TEXT_MAX, required=False
        )
        v.request_id(request.request_id)
        v.raise_if_any()
        assert errand_id is not None

        def check(row: ErrandRow) -> None:
            access.require_reach(caller, row)
            _require_open(row)

        errand = await self._steer(
            caller,
            "CancelErrand",
            request,
            errand_id,
            check,
            lambda h, uid: h.execute_update(
                ErrandWorkflow.cancel, CancelInput(reason), id=uid
            ),
        )
        return pb.CancelErrandResponse(errand=errand)

    # ---- after delivery ----

    async def RateErrand(
        self, request: pb.RateErrandRequest, context: Context
    ) -> pb.RateErrandResponse:
        caller = _caller(context, "RateErrand")
        v = Violations()
        errand_id = v.id("id", request.id)
        if not 1 <= request.rating <= 5:
            v.add("rating", "must be 1 to 5")
        comment = v.text(
            "comment", request.comment, max_length=config.TEXT_MAX, required=False
        )
        v.request_id(request.request_id)
        v.raise_if_any()
        assert errand_id is not None

        async def rate(conn: Connection) -> pb.RateErrandResponse:
            row = await _errand(conn, errand_id, for_update=True)
            access.require_reach(caller, row)
            if row.status != pb.ERRAND_STATUS_DELIVERED:
                raise FailedPrecondition(
                    "id: only a delivered errand can be rated", subject="id"
                )
            if row.rating:
                raise FailedPrecondition(
                    "id: the errand is already rated", subject="id"
                )
            rated = await repo.rate_errand(conn, errand_id, request.rating, comment)
            return pb.RateErrandResponse(errand=errand_proto(rated))

        return await _once(self._pool, caller, "RateErrand", request, rate)

    # ---- the workflow's own writes ----

    async def RecordErrandStep(
        self, request: pb.RecordErrandStepRequest, context: Context
    ) -> pb.RecordErrandStepResponse:
        _caller(context, "RecordErrandStep")
        v = Violations()
        errand_id = v.id("errand_id", request.errand_id)
        step_key = v.text("step_key", request.step_key, max_length=config.STEP_KEY_MAX)
        if request.step.kind not in STEP_KINDS:
            v.add("step.kind", "is not a step kind")
        if request.status not in STATUSES:
            v.add("status", "is not an errand status")
        step_helper = v.id("step.helper_id", request.step.helper_id, required=False)
        helper_id = v.id("helper_id", request.helper_id, required=False)
        offered = [
            v.id(f"offered_helper_ids[{i}]", h)
            for i, h in enumerate(request.offered_helper_ids)
        ]
        note = v.text(
            "step.note", request.step.note, max_length=config.TEXT_MAX, required=False
        )
        for name in ("delivery_note", "photo_ref"):
            v.text(
                name, getattr(request, name), max_length=config.TEXT_MAX, required=False
            )
        v.raise_if_any()
        assert errand_id is not None

        async with self._pool.acquire() as conn, conn.transaction():
            row = await _errand(conn, errand_id, field="errand_id", for_update=True)
            recorded = await repo.insert_step(
                conn, errand_id, step_key, request.step.kind, step_helper, note
            )
            if recorded:
                row = await repo.apply_step(
                    conn,
                    errand_id,
                    kind=request.step.kind,
                    status=request.status,
                    offered_helper_ids=[h for h in offered if h is not None],
                    helper_id=helper_id,
                    breached=request.breached,
                    delivery_note=request.delivery_note.strip(),
                    photo_ref=request.photo_ref.strip(),
                )
        return pb.RecordErrandStepResponse(errand=errand_proto(row), recorded=recorded)

    # ---- plumbing ----

    def _helper_request(
        self, caller: Caller, request: Any, v: Violations | None = None
    ) -> tuple[uuid.UUID, uuid.UUID]:
        v = v or Violations()
        errand_id = v.id("id", request.id)
        helper_id = v.id("helper_id", request.helper_id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert errand_id is not None
        assert helper_id is not None
        access.require_self(caller, helper_id)
        return errand_id, helper_id

    async def _steer(
        self,
        caller: Caller,
        method: str,
        request: Message,
        errand_id: uuid.UUID,
        check: Callable[[ErrandRow], None],
        update: Callable[[Any, str | None], Awaitable[Any]],
    ) -> pb.Errand:
        """Runs a workflow Update once per request_id; answers with the errand.

        No connection is held while the Update runs: its handler records the
        step through RecordErrandStep, which needs one from the same pool.
        """
        request_id: str = getattr(request, "request_id", "")
        update_id = f"{method}/{caller.subject}/{request_id}" if request_id else None
        response_type = getattr(pb, f"{method}Response")
        kept = await recorded_answer(
            self._pool,
            caller=caller,
            method=method,
            request=request,
            response_type=response_type,
        )
        if kept is not None:
            errand: pb.Errand = kept.errand
            return errand
        async with self._pool.acquire() as conn:
            check(await _errand(conn, errand_id))
        handle = self._temporal.get_workflow_handle(workflow_id(errand_id))
        await _updated(update(handle, update_id))
        async with self._pool.acquire() as conn:
            fresh = await _errand(conn, errand_id)
        answer = await keep_answer(
            self._pool,
            caller=caller,
            method=method,
            request=request,
            response=response_type(errand=errand_proto(fresh)),
        )
        errand = answer.errand
        return errand

    async def _start(self, errand: pb.Errand, *, abandon_on_failure: bool) -> None:
        """Starts the errand's workflow; a repeat finds it already started."""
        create, due = (
            errand.create_time.ToDatetime(UTC),
            errand.due_time.ToDatetime(UTC),
        )
        promise = self._promise
        data = ErrandInput(
            errand_id=errand.id,
            resident_id=errand.resident_id,
            kind=errand.kind,
            micro_grid_id=errand.micro_grid_id,
            ancestor_ids=list(errand.area_ids),
            due_time=due.isoformat(),
            due_seconds=int((due - create).total_seconds()),
            offer_window_seconds=promise.offer_window_seconds,
            offer_batch=promise.offer_batch,
            report_timeout_seconds=promise.report_timeout_seconds,
            redispatch_seconds=promise.redispatch_seconds,
        )
        try:
            await self._temporal.start_workflow(
                ErrandWorkflow.run,
                data,
                id=workflow_id(errand.id),
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=search_attributes(errand),
                memo=memo(errand),
            )
        except WorkflowAlreadyStartedError:
            return
        except RPCError:
            if abandon_on_failure:
                await self._abandon(uuid.UUID(errand.id))
            raise Unavailable("dispatch is not available; ask again") from None

    async def _abandon(self, errand_id: uuid.UUID) -> None:
        """Closes an errand whose workflow never started, so nobody waits on it."""
        async with self._pool.acquire() as conn, conn.transaction():
            await repo.insert_step(
                conn, errand_id, "abandon", pb.STEP_KIND_CANCELLED, None, "not started"
            )
            await repo.apply_step(
                conn,
                errand_id,
                kind=pb.STEP_KIND_CANCELLED,
                status=pb.ERRAND_STATUS_CANCELLED,
                offered_helper_ids=[],
                helper_id=None,
                breached=False,
                delivery_note="",
                photo_ref="",
            )


async def _updated(call: Awaitable[Any]) -> None:
    """Waits for an Update; its refusal becomes the matching domain error."""
    try:
        await asyncio.wait_for(call, config.UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as error:
        raise _refusal(error.cause) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise FailedPrecondition("id: the errand is closed", subject="id") from None
        raise Unavailable("the errand's workflow is not reachable; retry") from None
    except TimeoutError:
        raise Unavailable(
            "the errand's workflow did not answer in time; retry"
        ) from None


def _refusal(cause: BaseException | None) -> DomainError:
    if isinstance(cause, ApplicationError):
        if cause.type == "FAILED_PRECONDITION":
            return FailedPrecondition(f"id: {cause.message}", subject="id")
        if cause.type == "PERMISSION_DENIED":
            return PermissionDenied(cause.message)
    return Unavailable("the errand could not take the step; retry")


def search_attributes(errand: pb.Errand) -> TypedSearchAttributes:
    """Ids and states only: what operators filter errands by in the Temporal UI."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.ERRAND_STATUS, status_name(errand.status)),
        SearchAttributePair(sa.MICRO_GRID_ID, errand.micro_grid_id),
        SearchAttributePair(sa.DUE_TIME, errand.due_time.ToDatetime(UTC)),
        SearchAttributePair(sa.BREACHED, errand.breached),
    ]
    # area_ids: city, town, village, grid.
    for key, index in ((sa.TOWN_ID, 1), (sa.VILLAGE_ID, 2), (sa.GRID_ID, 3)):
        if len(errand.area_ids) > index:
            pairs.append(SearchAttributePair(key, errand.area_ids[index]))
    return TypedSearchAttributes(pairs)


def memo(errand: pb.Errand) -> dict[str, Any]:
    """A summary for the UI with no personal data: no details, no names."""
    return {
        "errand_id": errand.id,
        "kind": pb.ErrandKind.Name(errand.kind).removeprefix("ERRAND_KIND_"),
        "micro_grid_id": errand.micro_grid_id,
        "due_time": errand.due_time.ToDatetime(UTC).isoformat(),
    }


def errand_proto(row: ErrandRow) -> pb.Errand:
    errand = pb.Errand(
        id=str(row.id),
        workflow_id=workflow_id(row.id),
        resident_id=str(row.resident_id),
        kind=row.kind,  # type: ignore[arg-type]
        details=row.details,
        micro_grid_id=str(row.micro_grid_id),
        area_ids=[str(a) for a in row.ancestor_ids],
        status=row.status,  # type: ignore[arg-type]
        due_time=_timestamp(row.due_time),
        breached=row.breached,
        offered_helper_ids=[str(h) for h in row.offered_helper_ids],
        helper_id=str(row.helper_id) if row.helper_id else "",
        delivery_note=row.delivery_note,
        photo_ref=row.photo_ref,
        rating=row.rating,
        rating_comment=row.rating_comment,
        source_reference=row.source_reference,
        create_time=_timestamp(row.create_time),
        update_time=_timestamp(row.update_time),
    )
    for name in ("accept_time", "pick_up_time", "deliver_time", "cancel_time"):
        value = getattr(row, name)
        if value is not None:
            getattr(errand, name).CopyFrom(_timestamp(value))
    return errand


def step_proto(step: repo.StepRow) -> pb.ErrandStep:
    return pb.ErrandStep(
        kind=step.kind,  # type: ignore[arg-type]
        helper_id=str(step.helper_id) if step.helper_id else "",
        note=step.note,
        create_time=_timestamp(step.create_time),
    )


def _require_open(row: ErrandRow) -> None:
    if row.status == pb.ERRAND_STATUS_DELIVERED:
        raise FailedPrecondition("id: the errand is already delivered", subject="id")
    if row.status == pb.ERRAND_STATUS_CANCELLED:
        raise FailedPrecondition("id: the errand is cancelled", subject="id")


def _require_in_hand(row: ErrandRow) -> None:
    _require_open(row)
    if row.status == pb.ERRAND_STATUS_WAITING_FOR_HELPER:
        raise FailedPrecondition("id: nobody has accepted the errand yet", subject="id")


async def _errand(
    conn: Connection,
    errand_id: uuid.UUID,
    *,
    field: str = "id",
    for_update: bool = False,
) -> ErrandRow:
    row = await repo.get_errand(conn, errand_id, for_update=for_update)
    if row is None:
        raise NotFound("errand", field)
    return row


async def _once(
    pool: asyncpg.Pool,
    caller: Caller,
    method: str,
    request: Message,
    action: Callable[[Connection], Awaitable[ResponseT]],
) -> ResponseT:
    response_type = cast(type[ResponseT], getattr(pb, f"{method}Response"))
    return await run_once(
        pool,
        caller=caller,
        method=method,
        request=request,
        response_type=response_type,
        action=action,
    )


def _caller(context: Context, method: str) -> Caller:
    caller = caller_of(context)
    access.require_role(caller, method)
    return caller


def _required_id(field: str, value: str) -> uuid.UUID:
    v = Violations()
    parsed = v.id(field, value)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def _page_size(v: Violations, requested: int) -> int:
    if requested < 0:
        v.add("page_size", "must not be negative")
        return 0
    return clamp_page_size(requested)


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
