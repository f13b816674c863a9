"""CaseworkService: reports in, steps of the follow-up as workflow updates.

Each step is checked here first (who may act on this case, and whether the
step may follow the case's current stage, from the workflow's query), so a
bad step gets a precise error and moves nothing; the workflow checks again.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

import asyncpg
from cloudark.casework.v1 import casework_pb2 as pb
from cloudark.casework.v1 import casework_pb2_grpc as pb_grpc
from cloudark.grids.v1 import cases_pb2 as grids_pb
from cloudark.grids.v1 import grids_pb2 as areas_pb
from cloudark.grids.v1 import staff_pb2 as staff_pb
from google.protobuf.message import Message
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from services.casework import config
from services.casework import repository as repo
from services.casework.repository import CaseRow
from services.casework.upstream import Grids, derived_request_id, from_update
from services.common.db import Connection
from services.common.errors import (
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.idempotency import run_once
from services.common.identity import Caller, Role, caller_of
from services.common.validation import Violations
from workflows import search_attributes as attrs
from workflows.casework import steps
from workflows.casework.steps import CaseRules, CaseState, Refusal
from workflows.casework.workflows import (
    AssignInput,
    CaseInput,
    CaseWorkflow,
    EscalateInput,
    RectificationInput,
    ReinspectionInput,
    StepInput,
    VisitInput,
)

log = logging.getLogger(__name__)

Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.
ResponseT = TypeVar("ResponseT", bound=Message)
Payload = Callable[[Caller, CaseState, CaseRow], Awaitable[Any]]
Authorize = Callable[[Caller, CaseState, CaseRow], None]

R, GW, C, D, OP, SYS = (
    Role.RESIDENT,
    Role.GRID_WORKER,
    Role.CADRE,
    Role.DEPARTMENT,
    Role.OPERATOR,
    Role.SYSTEM,
)
REPORTERS = (R, GW, C, D, OP, SYS)
CATEGORIES = set(grids_pb.CaseCategory.values()) - {grids_pb.CASE_CATEGORY_UNSPECIFIED}
SOURCES = set(grids_pb.CaseSource.values()) - {grids_pb.CASE_SOURCE_UNSPECIFIED}
STATUSES = set(grids_pb.CaseStatus.values()) - {grids_pb.CASE_STATUS_UNSPECIFIED}
OUTCOMES = set(pb.VisitOutcome.values()) - {pb.VISIT_OUTCOME_UNSPECIFIED}
CLOSED = {grids_pb.CASE_STATUS_CLOSED, grids_pb.CASE_STATUS_REJECTED}


class CaseworkServicer(pb_grpc.CaseworkServiceServicer):
    def __init__(
        self, pool: asyncpg.Pool, temporal: Client, grids: Grids, task_queue: str
    ) -> None:
        self._pool = pool
        self._temporal = temporal
        self._grids = grids
        self._task_queue = task_queue

    # ---- reports and reads ----

    async def ReportCase(
        self, request: pb.ReportCaseRequest, context: Context
    ) -> pb.ReportCaseResponse:
        caller = caller_of(context)
        caller.require(*REPORTERS)
        micro_grid_id = _valid_report(request, caller)

        async def report(conn: Connection) -> pb.ReportCaseResponse:
            rules = await repo.category_rules(conn, request.category)
            if rules is None:
                raise FailedPrecondition(
                    "category: has no deadlines configured", subject="category"
                )
            area = await self._grids.area(str(micro_grid_id))
            if area.kind != areas_pb.AREA_KIND_MICRO_GRID:
                raise FailedPrecondition(
                    "micro_grid_id: must be a micro-grid", subject="micro_grid_id"
                )
            await repo.lock_micro_grid_category(conn, micro_grid_id, request.category)
            original = await self._open_case(conn, micro_grid_id, request.category)
            record = await self._create_record(request, caller)
            row = _case_row(record, area, original)
            await repo.insert_case(conn, row)
            await self._start(row, rules)
            state = CaseState(
                stage=pb.CASE_STAGE_UNASSIGNED,
                status=record.status,
                duplicate_of=str(original or ""),
            )
            return pb.ReportCaseResponse(case=_view(record, state))

        return await run_once(
            self._pool,
            caller=caller,
            method="ReportCase",
            request=request,
            response_type=pb.ReportCaseResponse,
            action=report,
        )

    async def GetCase(
        self, request: pb.GetCaseRequest, context: Context
    ) -> pb.GetCaseResponse:
        caller = caller_of(context)
        caller.require(R, GW, C, D, OP, SYS)
        v = Violations()
        case_id = v.id("id", request.id)
        v.raise_if_any()
        assert case_id is not None
        async with self._pool.acquire() as conn:
            row = await _existing(conn, case_id, "id")
        try:
            state = await self._state(case_id)
        except FailedPrecondition:
            state = None  # the workflow is past Temporal's retention
        record = await self._grids.case(str(case_id))
        state = state or _final_state(record)
        _may_read(caller, state, row)
        return pb.GetCaseResponse(case=_view(record, state))

    async def ListCases(
        self, request: pb.ListCasesRequest, context: Context
    ) -> pb.ListCasesResponse:
        caller = caller_of(context)
        caller.require(R, GW, C, D, OP, SYS)
        v = Violations()
        if caller.role == R:
            if request.area_id:
                v.add("area_id", "residents list their own cases; leave it empty")
        else:
            v.id("area_id", request.area_id)
        if request.category and request.category not in CATEGORIES:
            v.add("category", "is not a case category")
        if request.status and request.status not in STATUSES:
            v.add("status", "is not a case status")
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        if caller.role == R:
            own = await self._grids.reporter_cases(
                grids_pb.ListReporterCasesRequest(
                    reporter_id=caller.subject,
                    page_size=request.page_size,
                    page_token=request.page_token,
                )
            )
            return pb.ListCasesResponse(
                cases=own.cases, next_page_token=own.next_page_token
            )
        # TODO(#8): x-cloudark-areas does not yet narrow staff lists, as in grids.
        page = await self._grids.list_cases(
            grids_pb.ListCasesRequest(
                area_id=request.area_id,
                category=request.category,
                status=request.status,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        )
        return pb.ListCasesResponse(
            cases=page.cases, next_page_token=page.next_page_token
        )

    # ---- steps ----

    async def AssignCase(
        self, request: pb.AssignCaseRequest, context: Context
    ) -> pb.AssignCaseResponse:
        v = Violations()
        case_id = v.id("case_id", request.case_id)
        helper_id = v.id("helper_id", request.helper_id)
        note = v.text("note", request.note, max_length=config.NOTE_MAX, required=False)
        v.request_id(request.request_id)
        v.raise_if_any()

        async def payload(caller: Caller, state: CaseState, row: CaseRow) -> Any:
            helper = await self._grids.helper(str(helper_id), "helper_id")
            if (
                helper.kind != staff_pb.HELPER_KIND_GRID_WORKER
                or not helper.active
                or str(row.grid_id) not in helper.area_ids
            ):
                raise FailedPrecondition(
                    "helper_id: must be an active grid worker of the case's grid",
                    subject="helper_id",
                )
            supervisor = ""
            if helper.supervisor_id:
                boss = await self._grids.helper(helper.supervisor_id, "helper_id")
                supervisor = boss.person_id
            return AssignInput(
                caller.subject,
                helper.person_id,
                supervisor,
                note,
                helper_id=helper.id,
                supervisor_helper_id=helper.supervisor_id,
            )

        return await self._apply(
            context,
            request,
            "AssignCase",
            pb.AssignCaseResponse,
            case_id,
            _grid_staff,
            lambda state, row: steps.check_assign(state),
            CaseWorkflow.assign,
            payload,
        )

    async def RecordVisit(
        self, request: pb.RecordVisitRequest, context: Context
    ) -> pb.RecordVisitResponse:
        v = Violations()
        case_id = v.id("case_id", request.case_id)
        if request.outcome not in OUTCOMES:
            v.add("outcome", "is not a visit outcome")
        note = v.text("note", request.note, max_length=config.NOTE_MAX, required=False)
        _attachments(v, request.attachment_refs)
        v.request_id(request.request_id)
        v.raise_if_any()
        outcome = request.outcome

        async def payload(caller: Caller, state: CaseState, row: CaseRow) -> Any:
            return VisitInput(caller.subject, outcome, note)

        return await self._apply(
            context,
            request,
            "RecordVisit",
            pb.RecordVisitResponse,
            case_id,
            _grid_staff,
            lambda state, row: steps.check_visit(state, outcome, row.category),
            CaseWorkflow.record_visit,
            payload,
        )

    async def OrderRectification(
        self, request: pb.OrderRectificationRequest, context: Context
    ) -> pb.OrderRectificationResponse:
        v = Violations()
        case_id = v.id("case_id", request.case_id)
        if not 0 <= request.days <= config.RECTIFY_DAYS_MAX:
            v.add("days", f"must be between 0 and {config.RECTIFY_DAYS_MAX}")
        note = v.text("note", request.note, max_length=config.NOTE_MAX, required=False)
        v.request_id(request.request_id)
        v.raise_if_any()
        days = request.days

        async def payload(caller: Caller, state: CaseState, row: CaseRow) -> Any:
            return RectificationInput(caller.subject, days, note)

        return await self._apply(
            context,
            request,
            "OrderRectification",
            pb.OrderRectificationResponse,
            case_id,
            _grid_staff,
            lambda state, row: steps.check_order_rectification(state),
            CaseWorkflow.order_rectification,
            payload,
        )

    async def RecordRectified(
        self, request: pb.RecordRectifiedRequest, context: Context
    ) -> pb.RecordRectifiedResponse:
        case_id, note = _note_step(request, "note")
        return await self._apply(
            context,
            request,
            "RecordRectified",
            pb.RecordRectifiedResponse,
            case_id,
            _grid_staff,
            lambda state, row: steps.check_rectified(state),
            CaseWorkflow.record_rectified,
            _step_input(note),
        )

    async def RecordReinspection(
        self, request: pb.RecordReinspectionRequest, context: Context
    ) -> pb.RecordReinspectionResponse:
        case_id, note = _note_step(request, "note")
        passed = request.passed

        async def payload(caller: Caller, state: CaseState, row: CaseRow) -> Any:
            return ReinspectionInput(caller.subject, passed, note)

        return await self._apply(
            context,
            request,
            "RecordReinspection",
            pb.RecordReinspectionResponse,
            case_id,
            _grid_staff,
            lambda state, row: steps.check_reinspection(state),
            CaseWorkflow.record_reinspection,
            payload,
        )

    async def EscalateCase(
        self, request: pb.EscalateCaseRequest, context: Context
    ) -> pb.EscalateCaseResponse:
        v = Violations()
        case_id = v.id("case_id", request.case_id)
        contact_id = v.id("department_contact_id", request.department_contact_id)
        note = v.text("note", request.note, max_length=config.NOTE_MAX, required=False)
        v.request_id(request.request_id)
        v.raise_if_any()

        async def payload(caller: Caller, state: CaseState, row: CaseRow) -> Any:
            contact = await self._department_contact(str(contact_id), row)
            return EscalateInput(caller.subject, contact.id, contact.person_id, note)

        return await self._apply(
            context,
            request,
            "EscalateCase",
            pb.EscalateCaseResponse,
            case_id,
            _grid_staff,
            lambda state, row: steps.check_escalate(state),
            CaseWorkflow.escalate,
            payload,
        )

    async def AcknowledgeEscalation(
        self, request: pb.AcknowledgeEscalationRequest, context: Context
    ) -> pb.AcknowledgeEscalationResponse:
        case_id, note = _note_step(request, "note")
        return await self._apply(
            context,
            request,
            "AcknowledgeEscalation",
            pb.AcknowledgeEscalationResponse,
            case_id,
            _department,
            lambda state, row: steps.check_department_step(state),
            CaseWorkflow.acknowledge,
            _step_input(note),
        )

    async def RecordDepartmentOutcome(
        self, request: pb.RecordDepartmentOutcomeRequest, context: Context
    ) -> pb.RecordDepartmentOutcomeResponse:
        v = Violations()
        case_id = v.id("case_id", request.case_id)
        outcome = v.text("outcome", request.outcome, max_length=config.NOTE_MAX)
        v.request_id(request.request_id)
        v.raise_if_any()
        return await self._apply(
            context,
            request,
            "RecordDepartmentOutcome",
            pb.RecordDepartmentOutcomeResponse,
            case_id,
            _department,
            lambda state, row: steps.check_department_step(state),
            CaseWorkflow.record_department_outcome,
            _step_input(outcome),
        )

    async def CloseCase(
        self, request: pb.CloseCaseRequest, context: Context
    ) -> pb.CloseCaseResponse:
        case_id, note = _note_step(request, "note")
        return await self._apply(
            context,
            request,
            "CloseCase",
            pb.CloseCaseResponse,
            case_id,
            _grid_staff,
            lambda state, row: steps.check_close(state),
            CaseWorkflow.close,
            _step_input(note),
        )

    async def ReopenCase(
        self, request: pb.ReopenCaseRequest, context: Context
    ) -> pb.ReopenCaseResponse:
        case_id, reason = _note_step(request, "reason", required=True)
        return await self._apply(
            context,
            request,
            "ReopenCase",
            pb.ReopenCaseResponse,
            case_id,
            _grid_staff,
            lambda state, row: steps.check_reopen(state),
            CaseWorkflow.reopen,
            _step_input(reason),
        )

    async def DisputeOutcome(
        self, request: pb.DisputeOutcomeRequest, context: Context
    ) -> pb.DisputeOutcomeResponse:
        case_id, reason = _note_step(request, "reason", required=True)
        return await self._apply(
            context,
            request,
            "DisputeOutcome",
            pb.DisputeOutcomeResponse,
            case_id,
            _reporter,
            lambda state, row: steps.check_reopen(state),
            CaseWorkflow.dispute,
            _step_input(reason),
        )

    # ---- category deadlines ----

    async def ListCategoryRules(
        self, request: pb.ListCategoryRulesRequest, context: Context
    ) -> pb.ListCategoryRulesResponse:
        caller_of(context).require(GW, C, D, OP, SYS)
        async with self._pool.acquire() as conn:
            rules = await repo.all_category_rules(conn)
        return pb.ListCategoryRulesResponse(
            rules=[_rule_proto(category, r) for category, r in rules]
        )

    async def SetCategoryRule(
        self, request: pb.SetCategoryRuleRequest, context: Context
    ) -> pb.SetCategoryRuleResponse:
        caller = caller_of(context)
        caller.require(OP)
        rule = _valid_rule(request)

        async def set_rule(conn: Connection) -> pb.SetCategoryRuleResponse:
            await repo.set_category_rule(conn, request.rule.category, rule)
            return pb.SetCategoryRuleResponse(
                rule=_rule_proto(request.rule.category, rule)
            )

        return await run_once(
            self._pool,
            caller=caller,
            method="SetCategoryRule",
            request=request,
            response_type=pb.SetCategoryRuleResponse,
            action=set_rule,
        )

    # ---- plumbing ----

    async def _apply(
        self,
        context: Context,
        request: Message,
        method: str,
        response_type: type[ResponseT],
        case_id: uuid.UUID | None,
        authorize: Authorize,
        check: Callable[[CaseState, CaseRow], Refusal | None],
        update: Any,
        payload: Payload,
    ) -> ResponseT:
        """Checks the caller and the step, sends it to the workflow, answers
        with the case as it now stands; once per request_id."""
        caller = caller_of(context)
        assert case_id is not None
        request_id: str = getattr(request, "request_id", "")
        update_id = derived_request_id(caller, method, request_id)

        async def act(conn: Connection) -> ResponseT:
            row = await _existing(conn, case_id, "case_id")
            state = await self._state(case_id)
            authorize(caller, state, row)
            refusal = check(state, row)
            if refusal is None:
                argument = await payload(caller, state, row)
                after = await self._update(case_id, update, argument, update_id)
            else:
                taken = None
                if request_id:
                    argument = payload(caller, state, row)
                    taken = await self._taken_before(
                        case_id, update, argument, update_id
                    )
                if taken is None:
                    raise _refused(refusal)
                after = taken
            record = await self._grids.case(str(case_id))
            return response_type(case=_view(record, after))  # type: ignore[call-arg]

        return await run_once(
            self._pool,
            caller=caller,
            method=method,
            request=request,
            response_type=response_type,
            action=act,
        )

    async def _update(
        self, case_id: uuid.UUID, update: Any, argument: Any, update_id: str
    ) -> CaseState:
        try:
            state: CaseState = await self._handle(case_id).execute_update(
                update, argument, id=update_id
            )
        except Exception as error:
            raise from_update(error) from None
        return state

    async def _taken_before(
        self, case_id: uuid.UUID, update: Any, argument: Awaitable[Any], update_id: str
    ) -> CaseState | None:
        """A retry whose step was taken but whose answer was lost (the
        request_id store rolled back): the workflow still knows the update by
        its id and answers its first outcome. None when it was never taken."""
        try:
            state: CaseState = await self._handle(case_id).execute_update(
                update, await argument, id=update_id
            )
        except Exception:
            return None
        return state

    def _handle(self, case_id: uuid.UUID) -> WorkflowHandle[Any, Any]:
        return self._temporal.get_workflow_handle(f"case-{case_id}")

    async def _state(self, case_id: uuid.UUID) -> CaseState:
        try:
            state: CaseState = await self._handle(case_id).query(CaseWorkflow.state)
        except RPCError as error:
            raise from_update(error) from None
        return state

    async def _open_case(
        self, conn: Connection, micro_grid_id: uuid.UUID, category: int
    ) -> uuid.UUID | None:
        """The open, followed case of that category in that micro-grid."""
        page = await self._grids.list_cases(
            grids_pb.ListCasesRequest(
                area_id=str(micro_grid_id),
                category=category,  # type: ignore[arg-type]
                page_size=100,
            )
        )
        for case in page.cases:
            if case.status in CLOSED:
                continue
            row = await repo.get_case(conn, uuid.UUID(case.id))
            if row is not None and row.duplicate_of is None:
                return row.id
        return None

    async def _create_record(
        self, request: pb.ReportCaseRequest, caller: Caller
    ) -> grids_pb.Case:
        create = grids_pb.CreateCaseRequest(
            category=request.category,
            source=request.source,
            micro_grid_id=request.micro_grid_id,
            description=request.description.strip(),
            attachment_refs=request.attachment_refs,
            reporter_id=request.reporter_id.strip(),
            patrol_id=request.patrol_id,
            request_id=derived_request_id(caller, "ReportCase", request.request_id),
        )
        if request.HasField("coordinates"):
            create.coordinates.CopyFrom(request.coordinates)
        return await self._grids.create_case(create, caller)

    async def _start(self, row: CaseRow, rules: CaseRules) -> None:
        data = CaseInput(
            case_id=str(row.id),
            category=row.category,
            source=row.source,
            micro_grid_id=str(row.micro_grid_id),
            grid_id=str(row.grid_id),
            village_id=str(row.village_id),
            town_id=str(row.town_id),
            reporter_id=row.reporter_id,
            rules=rules,
            duplicate_of=str(row.duplicate_of or ""),
        )
        category = steps.category_name(row.category)
        try:
            await self._temporal.start_workflow(
                CaseWorkflow.run,
                data,
                id=f"case-{row.id}",
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(attrs.CASE_CATEGORY, category),
                        SearchAttributePair(attrs.CASE_STATUS, "REPORTED"),
                        SearchAttributePair(attrs.MICRO_GRID_ID, data.micro_grid_id),
                        SearchAttributePair(attrs.GRID_ID, data.grid_id),
                        SearchAttributePair(attrs.VILLAGE_ID, data.village_id),
                        SearchAttributePair(attrs.TOWN_ID, data.town_id),
                        SearchAttributePair(attrs.OVERDUE, False),
                    ]
                ),
                memo={"case_id": data.case_id, "category": category},
            )
        except WorkflowAlreadyStartedError:
            return  # a retried report whose workflow has already finished
        except RPCError as error:
            log.warning("case %s: workflow not started: %s", row.id, error.status)
            raise Unavailable("case follow-up cannot start now; retry") from None

    async def _department_contact(
        self, contact_id: str, row: CaseRow
    ) -> staff_pb.Helper:
        field = "department_contact_id"
        contact = await self._grids.helper(contact_id, field)
        if (
            contact.kind != staff_pb.HELPER_KIND_DEPARTMENT_CONTACT
            or not contact.active
        ):
            raise FailedPrecondition(
                f"{field}: is not an active department contact", subject=field
            )
        if row.category not in contact.handled_categories:
            category = steps.category_name(row.category)
            raise FailedPrecondition(
                f"{field}: the department does not handle {category} cases",
                subject=field,
            )
        area = await self._grids.area(str(row.micro_grid_id))
        if not {area.id, *area.ancestor_ids} & set(contact.area_ids):
            raise FailedPrecondition(
                f"{field}: the department does not cover the case's area",
                subject=field,
            )
        return contact


def _valid_report(request: pb.ReportCaseRequest, caller: Caller) -> uuid.UUID:
    v = Violations()
    if request.category not in CATEGORIES:
        v.add("category", "is not a case category")
    if request.source not in SOURCES:
        v.add("source", "is not a case source")
    elif caller.role == R and request.source != grids_pb.CASE_SOURCE_RESIDENT_TIP_OFF:
        v.add("source", "residents report as a tip-off")
    micro_grid_id = v.id("micro_grid_id", request.micro_grid_id)
    if request.HasField("coordinates"):
        if not -90 <= request.coordinates.latitude <= 90:
            v.add("coordinates.latitude", "must be between -90 and 90")
        if not -180 <= request.coordinates.longitude <= 180:
            v.add("coordinates.longitude", "must be between -180 and 180")
    v.text("description", request.description, max_length=config.DESCRIPTION_MAX)
    _attachments(v, request.attachment_refs)
    reporter_id = v.text(
        "reporter_id", request.reporter_id, max_length=config.PERSON_ID_MAX
    )
    v.id("patrol_id", request.patrol_id, required=False)
    v.request_id(request.request_id)
    v.raise_if_any()
    if caller.role == R and reporter_id != caller.subject:
        raise PermissionDenied("a resident may only report cases as itself")
    assert micro_grid_id is not None
    return micro_grid_id


def _valid_rule(request: pb.SetCategoryRuleRequest) -> CaseRules:
    v = Violations()
    rule = request.rule
    if rule.category not in CATEGORIES:
        v.add("rule.category", "is not a case category")
    limits = {
        "verify_hours": (1, config.HOURS_MAX),
        "rectify_days": (1, config.RECTIFY_DAYS_MAX),
        "reminder_hours": (0, config.HOURS_MAX),
        "acknowledge_hours": (1, config.HOURS_MAX),
        "dispute_days": (0, config.RECTIFY_DAYS_MAX),
    }
    for name, (low, high) in limits.items():
        if not low <= getattr(rule, name) <= high:
            v.add(f"rule.{name}", f"must be between {low} and {high}")
    if rule.reminder_hours >= rule.rectify_days * 24 > 0:
        v.add("rule.reminder_hours", "must fall before the rectification deadline")
    v.request_id(request.request_id)
    v.raise_if_any()
    return CaseRules(
        verify_hours=rule.verify_hours,
        rectify_days=rule.rectify_days,
        reminder_hours=rule.reminder_hours,
        acknowledge_hours=rule.acknowledge_hours,
        dispute_days=rule.dispute_days,
    )


def _rule_proto(category: int, rule: CaseRules) -> pb.CategoryRule:
    return pb.CategoryRule(
        category=category,  # type: ignore[arg-type]
        verify_hours=rule.verify_hours,
        rectify_days=rule.rectify_days,
        reminder_hours=rule.reminder_hours,
        acknowledge_hours=rule.acknowledge_hours,
        dispute_days=rule.dispute_days,
    )


def _attachments(v: Violations, refs: Any) -> None:
    if len(refs) > config.ATTACHMENTS_MAX:
        v.add("attachment_refs", f"must hold at most {config.ATTACHMENTS_MAX}")
    for i, ref in enumerate(refs):
        v.text(f"attachment_refs[{i}]", ref, max_length=config.ATTACHMENT_REF_MAX)


def _note_step(
    request: Any, field: str, *, required: bool = False
) -> tuple[uuid.UUID | None, str]:
    v = Violations()
    case_id = v.id("case_id", request.case_id)
    text = v.text(
        field, getattr(request, field), max_length=config.NOTE_MAX, required=required
    )
    v.request_id(request.request_id)
    v.raise_if_any()
    return case_id, text


def _step_input(note: str) -> Payload:
    async def payload(caller: Caller, state: CaseState, row: CaseRow) -> Any:
        return StepInput(caller.subject, note)

    return payload


def _case_row(
    record: grids_pb.Case, area: areas_pb.Area, original: uuid.UUID | None
) -> CaseRow:
    # A micro-grid's ancestors: city, town, village, grid.
    _, town, village, grid = (uuid.UUID(a) for a in area.ancestor_ids)
    return CaseRow(
        id=uuid.UUID(record.id),
        category=record.category,
        source=record.source,
        micro_grid_id=uuid.UUID(area.id),
        grid_id=grid,
        village_id=village,
        town_id=town,
        reporter_id=record.reporter_id,
        duplicate_of=original,
    )


async def _existing(conn: Connection, case_id: uuid.UUID, field: str) -> CaseRow:
    row = await repo.get_case(conn, case_id)
    if row is None:
        raise NotFound("case", field)
    return row


def _view(record: grids_pb.Case, state: CaseState) -> pb.CaseView:
    view = pb.CaseView(
        record=record,
        stage=state.stage,  # type: ignore[arg-type]
        deadline_kind=state.deadline_kind,  # type: ignore[arg-type]
        overdue=state.overdue,
        duplicate_of=state.duplicate_of,
        duplicate_ids=state.duplicate_ids,
        department_contact_id=state.department_contact_id,
        rectification_round=state.rectification_round,
    )
    if state.deadline is not None:
        view.next_deadline.FromDatetime(state.deadline.astimezone(UTC))
    return view


def _refused(refusal: Refusal) -> FailedPrecondition:
    return FailedPrecondition(
        f"{refusal.field}: {refusal.reason}", subject=refusal.field
    )


def _final_state(record: grids_pb.Case) -> CaseState:
    """What is left to say of a case whose workflow history is gone."""
    stages = {
        grids_pb.CASE_STATUS_CLOSED: pb.CASE_STAGE_CLOSED,
        grids_pb.CASE_STATUS_REJECTED: pb.CASE_STAGE_REJECTED,
    }
    stage = stages.get(record.status, pb.CASE_STAGE_UNSPECIFIED)
    return CaseState(stage=stage, status=record.status)


def _grid_staff(caller: Caller, state: CaseState, row: CaseRow) -> None:
    if caller.role in (OP, SYS):
        return
    if caller.role == GW and str(row.grid_id) in caller.area_ids:
        return
    raise PermissionDenied("only the case's grid workers, operators and the system")


def _department(caller: Caller, state: CaseState, row: CaseRow) -> None:
    if caller.role in (OP, SYS):
        return
    if caller.role == D and caller.subject == state.department_person_id:
        return
    raise PermissionDenied("only the department the case is escalated to")


def _reporter(caller: Caller, state: CaseState, row: CaseRow) -> None:
    if caller.role in (OP, SYS):
        return
    if caller.role == R and caller.subject == row.reporter_id:
        return
    raise PermissionDenied("only the resident who reported the case")


def _may_read(caller: Caller, state: CaseState, row: CaseRow) -> None:
    """Residents read their own; staff the cases of their areas."""
    areas = set(caller.area_ids)
    allowed = (
        caller.role in (OP, SYS)
        or (caller.role == R and caller.subject == row.reporter_id)
        or (caller.role == GW and str(row.grid_id) in areas)
        or (caller.role == C and str(row.village_id) in areas)
        or (caller.role == D and caller.subject == state.department_person_id)
    )
    if not allowed:
        raise PermissionDenied("this case is outside the caller's reach")
