"""CasesService: cases with their timelines, and grid workers' patrols."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from cloudark.grids.v1 import cases_pb2 as pb
from cloudark.grids.v1 import cases_pb2_grpc as pb_grpc
from cloudark.grids.v1 import grids_pb2 as grids_pb
from cloudark.grids.v1 import staff_pb2 as staff_pb

from services.common.db import Connection
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.common.idempotency import run_once
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import (
    decode_token,
    encode_token,
    fingerprint,
    page_size,
)
from services.common.validation import Violations
from services.grids import cases_repository as repo
from services.grids import config, shared
from services.grids import staff_repository as staff_repo
from services.grids.cases_repository import (
    CaseFilter,
    CaseRow,
    NewCase,
    PatrolRow,
    TimelineRow,
)
from services.grids.taxonomy import CATEGORY_CODES, PATROL_KIND_CODES, SOURCE_CODES

Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.

CASE_WORKERS = (
    Role.OPERATOR,
    Role.SYSTEM,
    Role.GRID_WORKER,
    Role.CADRE,
    Role.DEPARTMENT,
)
PATROLLERS = (Role.OPERATOR, Role.SYSTEM, Role.GRID_WORKER)
FINAL = {pb.CASE_STATUS_CLOSED, pb.CASE_STATUS_REJECTED}
STATUSES = set(pb.CaseStatus.values()) - {pb.CASE_STATUS_UNSPECIFIED}
# A clock a little ahead of ours is not a patrol from the future.
CLOCK_SKEW = timedelta(minutes=5)


class CasesServicer(pb_grpc.CasesServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def CreateCase(
        self, request: pb.CreateCaseRequest, context: Context
    ) -> pb.CreateCaseResponse:
        caller = caller_of(context)
        caller.require(*shared.STAFF, Role.RESIDENT)
        new, patrol_id = _valid_new_case(request)
        if caller.role == Role.RESIDENT and new.reporter_id != caller.subject:
            raise PermissionDenied("a resident may only report cases as itself")

        async def create(conn: Connection) -> pb.CreateCaseResponse:
            area = await shared.require_area_in_scope(
                conn, caller, new.micro_grid_id, "micro_grid_id"
            )
            shared.require_kind(area, "micro_grid_id", grids_pb.AREA_KIND_MICRO_GRID)
            if patrol_id is not None and await repo.get_patrol(conn, patrol_id) is None:
                raise NotFound("patrol", "patrol_id")
            row = await repo.insert_case(conn, new, caller.subject)
            steps = await repo.timeline(conn, row.id)
            return pb.CreateCaseResponse(case=case_proto(row, steps))

        return await run_once(
            self._pool,
            caller=caller,
            method="CreateCase",
            request=request,
            response_type=pb.CreateCaseResponse,
            action=create,
        )

    async def GetCase(
        self, request: pb.GetCaseRequest, context: Context
    ) -> pb.GetCaseResponse:
        caller = caller_of(context)
        caller.require(*shared.STAFF, Role.RESIDENT)
        v = Violations()
        case_id = v.id("id", request.id)
        v.raise_if_any()
        assert case_id is not None
        async with self._pool.acquire() as conn:
            row = await _existing_case(conn, case_id, "id")
            _require_may_read(caller, row.reporter_id)
            await shared.require_area_in_scope(conn, caller, row.micro_grid_id, "id")
            steps = await repo.timeline(conn, case_id)
        return pb.GetCaseResponse(case=case_proto(row, steps))

    async def AppendCaseStep(
        self, request: pb.AppendCaseStepRequest, context: Context
    ) -> pb.AppendCaseStepResponse:
        caller = caller_of(context)
        caller.require(*CASE_WORKERS)
        v = Violations()
        case_id = v.id("case_id", request.case_id)
        step_key = v.text("step_key", request.step_key, max_length=config.STEP_KEY_MAX)
        if request.status and request.status not in STATUSES:
            v.add("status", "is not a case status")
        elif request.status == pb.CASE_STATUS_REPORTED:
            v.add("status", "a case cannot go back to reported")
        actor_id = v.text(
            "actor_id",
            request.actor_id,
            max_length=config.PERSON_ID_MAX,
            required=False,
        )
        note = v.text("note", request.note, max_length=config.NOTE_MAX, required=False)
        assignee_id = v.text(
            "assignee_id",
            request.assignee_id,
            max_length=config.PERSON_ID_MAX,
            required=False,
        )
        v.request_id(request.request_id)
        v.raise_if_any()
        assert case_id is not None

        async def append(conn: Connection) -> pb.AppendCaseStepResponse:
            row = await _existing_case(conn, case_id, "case_id", for_update=True)
            await shared.require_area_in_scope(
                conn, caller, row.micro_grid_id, "case_id"
            )
            done = await repo.find_step(conn, case_id, step_key)
            if done is None:
                row = await _apply_step(
                    conn,
                    row,
                    step_key=step_key,
                    status=request.status or row.status,
                    actor_id=actor_id or caller.subject,
                    note=note,
                    assignee_id=assignee_id or row.assignee_id,
                )
            elif done.note != note:
                raise FailedPrecondition(
                    "step_key: was already used for a different step",
                    subject="step_key",
                )
            steps = await repo.timeline(conn, case_id)
            return pb.AppendCaseStepResponse(case=case_proto(row, steps))

        return await run_once(
            self._pool,
            caller=caller,
            method="AppendCaseStep",
            request=request,
            response_type=pb.AppendCaseStepResponse,
            action=append,
        )

    async def ListCases(
        self, request: pb.ListCasesRequest, context: Context
    ) -> pb.ListCasesResponse:
        caller = caller_of(context)
        caller.require(*shared.STAFF)
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if request.category and request.category not in CATEGORY_CODES:
            v.add("category", "is not a case category")
        if request.status and request.status not in STATUSES:
            v.add("status", "is not a case status")
        span = _span(v, request)
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        assert area_id is not None
        where = CaseFilter(area_id, request.category, request.status, *span)
        limit = page_size(request.page_size)
        query = fingerprint("ListCases", where)
        after = shared.time_cursor(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            await shared.require_area_in_scope(conn, caller, area_id, "area_id")
            rows = await repo.list_cases(conn, where, after=after, limit=limit + 1)
        return _case_page(rows, limit, query)

    async def ListReporterCases(
        self, request: pb.ListReporterCasesRequest, context: Context
    ) -> pb.ListReporterCasesResponse:
        caller = caller_of(context)
        caller.require(*shared.STAFF, Role.RESIDENT)
        v = Violations()
        reporter_id = v.text(
            "reporter_id", request.reporter_id, max_length=config.PERSON_ID_MAX
        )
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        _require_may_read(caller, reporter_id)
        limit = page_size(request.page_size)
        query = fingerprint("ListReporterCases", reporter_id)
        after = shared.time_cursor(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            rows = await repo.list_reporter_cases(
                conn, reporter_id, after=after, limit=limit + 1
            )
        page = _case_page(rows, limit, query)
        return pb.ListReporterCasesResponse(
            cases=page.cases, next_page_token=page.next_page_token
        )

    async def RecordPatrol(
        self, request: pb.RecordPatrolRequest, context: Context
    ) -> pb.RecordPatrolResponse:
        caller = caller_of(context)
        caller.require(*PATROLLERS)
        v = Violations()
        worker_id = v.id("worker_id", request.worker_id)
        micro_grid_id = v.id("micro_grid_id", request.micro_grid_id)
        household_id = v.text(
            "household_id",
            request.household_id,
            max_length=config.HOUSEHOLD_ID_MAX,
            required=False,
        )
        if request.kind not in PATROL_KIND_CODES:
            v.add("kind", "must be patrol or home visit")
        notes = v.text(
            "notes", request.notes, max_length=config.NOTE_MAX, required=False
        )
        patrol_time = _patrol_time(v, request)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert worker_id is not None
        assert micro_grid_id is not None

        async def record(conn: Connection) -> pb.RecordPatrolResponse:
            area = await shared.require_area_in_scope(
                conn, caller, micro_grid_id, "micro_grid_id"
            )
            shared.require_kind(area, "micro_grid_id", grids_pb.AREA_KIND_MICRO_GRID)
            await _check_worker(conn, caller, worker_id, area.ancestor_ids[3])
            patrol = await repo.insert_patrol(
                conn,
                worker_id=worker_id,
                micro_grid_id=micro_grid_id,
                household_id=household_id or None,
                kind=request.kind,
                patrol_time=patrol_time,
                notes=notes,
            )
            return pb.RecordPatrolResponse(patrol=patrol_proto(patrol, []))

        return await run_once(
            self._pool,
            caller=caller,
            method="RecordPatrol",
            request=request,
            response_type=pb.RecordPatrolResponse,
            action=record,
        )

    async def GetPatrol(
        self, request: pb.GetPatrolRequest, context: Context
    ) -> pb.GetPatrolResponse:
        caller = caller_of(context)
        caller.require(*shared.STAFF)
        v = Violations()
        patrol_id = v.id("id", request.id)
        v.raise_if_any()
        assert patrol_id is not None
        async with self._pool.acquire() as conn:
            patrol = await repo.get_patrol(conn, patrol_id)
            if patrol is None:
                raise NotFound("patrol", "id")
            await shared.require_area_in_scope(conn, caller, patrol.micro_grid_id, "id")
            case_ids = await repo.patrol_case_ids(conn, patrol_id)
        return pb.GetPatrolResponse(patrol=patrol_proto(patrol, case_ids))

    async def ListPatrols(
        self, request: pb.ListPatrolsRequest, context: Context
    ) -> pb.ListPatrolsResponse:
        caller = caller_of(context)
        caller.require(*shared.STAFF)
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        worker_id = v.id("worker_id", request.worker_id, required=False)
        span = _span(v, request)
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        assert area_id is not None
        limit = page_size(request.page_size)
        query = fingerprint("ListPatrols", area_id, worker_id, *span)
        after = shared.time_cursor(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            await shared.require_area_in_scope(conn, caller, area_id, "area_id")
            rows = await repo.list_patrols(
                conn, area_id, worker_id, span, after=after, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        last = page[-1] if more else None
        token = (
            encode_token(query, [last.patrol_time.isoformat(), str(last.id)])
            if last
            else ""
        )
        return pb.ListPatrolsResponse(
            patrols=[patrol_proto(p, []) for p in page], next_page_token=token
        )


def case_proto(row: CaseRow, steps: list[TimelineRow]) -> pb.Case:
    message = pb.Case(
        id=str(row.id),
        category=row.category,  # type: ignore[arg-type]
        source=row.source,  # type: ignore[arg-type]
        micro_grid_id=str(row.micro_grid_id),
        description=row.description,
        attachment_refs=row.attachment_refs,
        reporter_id=row.reporter_id,
        assignee_id=row.assignee_id,
        status=row.status,  # type: ignore[arg-type]
        patrol_id=str(row.patrol_id) if row.patrol_id else "",
        report_time=shared.timestamp(row.report_time),
        update_time=shared.timestamp(row.update_time),
        timeline=[
            pb.TimelineEntry(
                status=s.status,  # type: ignore[arg-type]
                actor_id=s.actor_id,
                time=shared.timestamp(s.time),
                note=s.note,
                step_key=s.step_key,
            )
            for s in steps
        ],
    )
    if row.latitude is not None and row.longitude is not None:
        message.coordinates.latitude = row.latitude
        message.coordinates.longitude = row.longitude
    return message


def patrol_proto(row: PatrolRow, case_ids: list[uuid.UUID]) -> pb.Patrol:
    return pb.Patrol(
        id=str(row.id),
        worker_id=str(row.worker_id) if row.worker_id else "",
        micro_grid_id=str(row.micro_grid_id),
        household_id=row.household_id or "",
        kind=row.kind,  # type: ignore[arg-type]
        patrol_time=shared.timestamp(row.patrol_time),
        notes=row.notes,
        case_ids=[str(c) for c in case_ids],
    )


def _valid_new_case(request: pb.CreateCaseRequest) -> tuple[NewCase, uuid.UUID | None]:
    v = Violations()
    if request.category not in CATEGORY_CODES:
        v.add("category", "is not a case category")
    if request.source not in SOURCE_CODES:
        v.add("source", "is not a case source")
    micro_grid_id = v.id("micro_grid_id", request.micro_grid_id)
    latitude = longitude = None
    if request.HasField("coordinates"):
        latitude, longitude = _coordinates(v, request.coordinates)
    description = v.text(
        "description", request.description, max_length=config.DESCRIPTION_MAX
    )
    _attachments(v, request.attachment_refs)
    reporter_id = v.text(
        "reporter_id", request.reporter_id, max_length=config.PERSON_ID_MAX
    )
    assignee_id = v.text(
        "assignee_id",
        request.assignee_id,
        max_length=config.PERSON_ID_MAX,
        required=False,
    )
    patrol_id = v.id("patrol_id", request.patrol_id, required=False)
    v.request_id(request.request_id)
    v.raise_if_any()
    assert micro_grid_id is not None
    new = NewCase(
        category=request.category,
        source=request.source,
        micro_grid_id=micro_grid_id,
        latitude=latitude,
        longitude=longitude,
        description=description,
        attachment_refs=list(request.attachment_refs),
        reporter_id=reporter_id,
        assignee_id=assignee_id,
        patrol_id=patrol_id,
    )
    return new, patrol_id


def _coordinates(v: Violations, where: pb.Coordinates) -> tuple[float, float]:
    if not -90 <= where.latitude <= 90:
        v.add("coordinates.latitude", "must be between -90 and 90")
    if not -180 <= where.longitude <= 180:
        v.add("coordinates.longitude", "must be between -180 and 180")
    return where.latitude, where.longitude


def _attachments(v: Violations, refs: Any) -> None:
    if len(refs) > config.ATTACHMENTS_MAX:
        v.add("attachment_refs", f"must hold at most {config.ATTACHMENTS_MAX}")
    for i, ref in enumerate(refs):
        v.text(f"attachment_refs[{i}]", ref, max_length=config.ATTACHMENT_REF_MAX)


def _span(v: Violations, request: Any) -> tuple[datetime | None, datetime | None]:
    start = (
        shared.from_timestamp(request.start_time)
        if request.HasField("start_time")
        else None
    )
    end = (
        shared.from_timestamp(request.end_time)
        if request.HasField("end_time")
        else None
    )
    if start is not None and end is not None and end <= start:
        v.add("end_time", "must be after start_time")
    return start, end


def _patrol_time(v: Violations, request: pb.RecordPatrolRequest) -> datetime:
    now = datetime.now(UTC)
    if not request.HasField("patrol_time"):
        return now
    when = shared.from_timestamp(request.patrol_time)
    if when > now + CLOCK_SKEW:
        v.add("patrol_time", "must not be in the future")
    return when


async def _apply_step(
    conn: Connection,
    row: CaseRow,
    *,
    step_key: str,
    status: int,
    actor_id: str,
    note: str,
    assignee_id: str,
) -> CaseRow:
    if row.status in FINAL:
        raise FailedPrecondition(
            "case_id: the case is closed; it takes no more steps", subject="case_id"
        )
    step = TimelineRow(status, actor_id, datetime.now(UTC), note, step_key)
    return await repo.append_step(conn, row, step=step, assignee_id=assignee_id)


async def _existing_case(
    conn: Connection, case_id: uuid.UUID, field: str, *, for_update: bool = False
) -> CaseRow:
    row = await repo.get_case(conn, case_id, for_update=for_update)
    if row is None:
        raise NotFound("case", field)
    return row


def _require_may_read(caller: Caller, reporter_id: str) -> None:
    """Residents see only the cases they reported; staff see every case."""
    if caller.role == Role.RESIDENT and caller.subject != reporter_id:
        raise PermissionDenied("a resident may only read its own cases")


async def _check_worker(
    conn: Connection, caller: Caller, worker_id: uuid.UUID, grid_id: uuid.UUID
) -> None:
    """The patroller is an active grid worker of the micro-grid's grid."""
    worker = await staff_repo.get_helper(conn, worker_id)
    if worker is None:
        raise NotFound("helper", "worker_id")
    if caller.role == Role.GRID_WORKER and caller.subject != worker.person_id:
        raise PermissionDenied("a grid worker may only record its own patrols")
    if worker.kind != staff_pb.HELPER_KIND_GRID_WORKER or not worker.active:
        raise FailedPrecondition(
            "worker_id: must be an active grid worker", subject="worker_id"
        )
    if grid_id not in worker.area_ids:
        raise FailedPrecondition(
            "micro_grid_id: lies outside the worker's grids", subject="micro_grid_id"
        )


def _case_page(rows: list[CaseRow], limit: int, query: str) -> pb.ListCasesResponse:
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if more else None
    token = (
        encode_token(query, [last.report_time.isoformat(), str(last.id)])
        if last
        else ""
    )
    return pb.ListCasesResponse(
        cases=[case_proto(r, []) for r in page], next_page_token=token
    )
