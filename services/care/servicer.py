"""CareService: care plans, visits, due lists, the mode switch, campaigns and
figures. Squads, members and areas are read from the grids service, the
roster from the residents service; squad, mode and campaign workflows are
started or signalled through Temporal."""

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from cloudark.care.v1 import care_pb2 as pb
from cloudark.care.v1 import care_pb2_grpc as pb_grpc
from cloudark.errands.v1 import errands_pb2
from cloudark.grids.v1 import cases_pb2, grids_pb2, staff_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from services.care import config
from services.care import repository as repo
from services.care.clients import Upstream
from services.care.repository import CampaignRow, Placement, PlanRow, VisitRow
from services.care.schedule import due_items
from services.common.config import Settings
from services.common.db import Connection
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.common.idempotency import ResponseT, run_once
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import (
    decode_token,
    encode_token,
    fingerprint,
    page_size,
)
from services.common.validation import Violations
from workflows import search_attributes as sa
from workflows.care.workflows import (
    AreaModeInput,
    CampaignCheck,
    CampaignInput,
    SquadInput,
    SquadRefresh,
    area_mode_workflow_id,
    campaign_workflow_id,
    mode_name,
    squad_workflow_id,
)

log = logging.getLogger(__name__)
Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.

GW, V, C, D, OP, SYS = (
    Role.GRID_WORKER,
    Role.VOLUNTEER,
    Role.CADRE,
    Role.DEPARTMENT,
    Role.OPERATOR,
    Role.SYSTEM,
)
PLANNERS = (GW, C, OP, SYS)
SQUAD_WORK = (GW, V, C, OP, SYS)
REPORT_READERS = (GW, C, D, OP, SYS)
NEED_KINDS = set(pb.NeedKind.values()) - {pb.NEED_KIND_UNSPECIFIED}
CHANNELS = set(pb.ContactChannel.values())
OUTCOMES = set(pb.VisitOutcome.values()) - {pb.VISIT_OUTCOME_UNSPECIFIED}
CAMPAIGN_KINDS = set(pb.CampaignKind.values()) - {pb.CAMPAIGN_KIND_UNSPECIFIED}
CASE_CATEGORIES = set(cases_pb2.CaseCategory.values()) - {0}
ERRAND_KINDS = set(errands_pb2.ErrandKind.values())
FINAL_STATUSES = {pb.RECIPIENT_STATUS_DELIVERED, pb.RECIPIENT_STATUS_REFUSED}
MODES = {grids_pb2.MODE_PEACETIME, grids_pb2.MODE_WARTIME}
AREA_LEVELS = (
    grids_pb2.AREA_KIND_CITY,
    grids_pb2.AREA_KIND_TOWN,
    grids_pb2.AREA_KIND_VILLAGE,
)
# Visit ids derived from a caller's request_id, so a retried RecordVisit
# opens its case once (the case's own request_id is the visit id).
_VISIT_IDS = uuid.UUID("6f1d2c8e-6b0e-4c57-9d55-0c2a1e7f4b11")


class CareServicer(pb_grpc.CareServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        upstream: Upstream,
        temporal: Client | None,
        settings: Settings,
    ) -> None:
        self._pool = pool
        self._up = upstream
        self._temporal = temporal
        self._task_queue = settings.temporal_task_queue

    async def _once(
        self,
        caller: Caller,
        method: str,
        request: Any,
        response_type: type[ResponseT],
        action: Callable[[Connection], Awaitable[ResponseT]],
    ) -> ResponseT:
        return await run_once(
            self._pool,
            caller=caller,
            method=method,
            request=request,
            response_type=response_type,
            action=action,
        )

    # ---- plans ----

    async def AssignRecipient(
        self, request: pb.AssignRecipientRequest, context: Context
    ) -> pb.AssignRecipientResponse:
        caller = caller_of(context)
        caller.require(*PLANNERS)
        v = Violations()
        recipient_id = v.id("recipient_id", request.recipient_id)
        squad_id = v.id("squad_id", request.squad_id)
        member_id = v.id("member_id", request.member_id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert recipient_id
        assert squad_id
        assert member_id
        place = await self._placement(request)
        async with self._pool.acquire() as conn:
            before = await repo.get_plan(conn, recipient_id)

        async def assign(conn: Connection) -> pb.AssignRecipientResponse:
            plan = await repo.assign(
                conn, recipient_id, place, config.DEFAULT_VISIT_EVERY_DAYS
            )
            return pb.AssignRecipientResponse(plan=plan_proto(plan))

        response = await self._once(
            caller, "AssignRecipient", request, pb.AssignRecipientResponse, assign
        )
        await self._refresh_squad(response.plan.squad_id, response.plan.village_id)
        if before is not None and str(before.squad_id) != response.plan.squad_id:
            # The squad the recipient left drops them from its schedule now.
            await self._refresh_squad(str(before.squad_id), str(before.village_id))
        return response

    async def _placement(self, request: pb.AssignRecipientRequest) -> Placement:
        """Checks roster, squad and member; where the recipient is served from."""
        resident = await self._up.resident(request.recipient_id, "recipient_id")
        if not resident.active or not resident.HasField("care_profile"):
            raise FailedPrecondition(
                "recipient_id: the resident is not on the key service recipient roster",
                subject="recipient_id",
                kind="ROSTER",
            )
        member = await self._up.helper(request.member_id, "member_id")
        if member.kind != staff_pb2.HELPER_KIND_SQUAD_MEMBER or not member.active:
            raise FailedPrecondition(
                "member_id: not an active squad member", subject="member_id"
            )
        if member.squad_id != request.squad_id:
            raise FailedPrecondition(
                "member_id: not a member of the squad", subject="member_id"
            )
        micro_grid = await self._up.area(resident.micro_grid_id, "recipient_id")
        village_id = micro_grid.ancestor_ids[2]
        if list(member.area_ids) != [village_id]:
            raise FailedPrecondition(
                "squad_id: the squad belongs to another village than the recipient's",
                subject="squad_id",
                kind="VILLAGE",
            )
        reasons = resident.care_profile.reasons
        return Placement(
            squad_id=uuid.UUID(request.squad_id),
            member_id=uuid.UUID(request.member_id),
            village_id=uuid.UUID(village_id),
            micro_grid_id=uuid.UUID(micro_grid.id),
            area_ids=[uuid.UUID(a) for a in [*micro_grid.ancestor_ids, micro_grid.id]],
            lives_alone=1 in reasons,  # CARE_REASON_ELDERLY_ALONE
        )

    async def SetCarePlan(
        self, request: pb.SetCarePlanRequest, context: Context
    ) -> pb.SetCarePlanResponse:
        caller = caller_of(context)
        caller.require(*PLANNERS)
        v = Violations()
        recipient_id = v.id("recipient_id", request.recipient_id)
        _every_days(v, "visit_every_days", request.visit_every_days)
        needs: dict[int, int] = {}
        for i, need in enumerate(request.regular_needs):
            field = f"regular_needs[{i}]"
            if need.kind not in NEED_KINDS:
                v.add(f"{field}.kind", "must be medicine, meals or daily supplies")
            elif need.kind in needs:
                v.add(f"{field}.kind", "appears twice")
            _every_days(v, f"{field}.every_days", need.every_days)
            needs[need.kind] = need.every_days
        contact = request.contact
        if contact.channel not in CHANNELS:
            v.add("contact.channel", "is not a contact channel")
        for name in ("from_minute", "to_minute"):
            if not 0 <= getattr(contact, name) <= 1439:
                v.add(f"contact.{name}", "must be between 0 and 1439")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert recipient_id is not None

        async def set_plan(conn: Connection) -> pb.SetCarePlanResponse:
            if await repo.get_plan(conn, recipient_id, for_update=True) is None:
                raise NotFound("care plan", "recipient_id")
            plan = await repo.set_plan(
                conn,
                recipient_id,
                every_days=request.visit_every_days,
                contact=(contact.channel, contact.from_minute, contact.to_minute),
                needs=needs,
            )
            return pb.SetCarePlanResponse(plan=plan_proto(plan))

        response = await self._once(
            caller, "SetCarePlan", request, pb.SetCarePlanResponse, set_plan
        )
        await self._refresh_squad(response.plan.squad_id, response.plan.village_id)
        return response

    async def GetCarePlan(
        self, request: pb.GetCarePlanRequest, context: Context
    ) -> pb.GetCarePlanResponse:
        caller_of(context).require(*SQUAD_WORK)
        v = Violations()
        recipient_id = v.id("recipient_id", request.recipient_id)
        v.raise_if_any()
        assert recipient_id is not None
        async with self._pool.acquire() as conn:
            plan = await repo.get_plan(conn, recipient_id)
        if plan is None:
            raise NotFound("care plan", "recipient_id")
        return pb.GetCarePlanResponse(plan=plan_proto(plan))

    # ---- visits ----

    async def RecordVisit(
        self, request: pb.RecordVisitRequest, context: Context
    ) -> pb.RecordVisitResponse:
        caller = caller_of(context)
        caller.require(*SQUAD_WORK)
        recipient_id, member_id = _valid_visit(request)
        async with self._pool.acquire() as conn:
            plan = await repo.get_plan(conn, recipient_id)
        if plan is None:
            raise NotFound("care plan", "recipient_id")
        missing = set(request.delivered_needs) - {n.kind for n in plan.needs}
        if missing:
            raise FailedPrecondition(
                "delivered_needs: not a regular need of the plan",
                subject="delivered_needs",
            )
        member = await self._up.helper(request.member_id, "member_id")
        if member.squad_id != str(plan.squad_id):
            raise FailedPrecondition(
                "member_id: not a member of the recipient's squad", subject="member_id"
            )
        visit_id = uuid.uuid4()
        if request.request_id:
            visit_id = uuid.uuid5(_VISIT_IDS, f"{caller.subject}/{request.request_id}")
        case_id = errand_id = None
        if request.outcome == pb.VISIT_OUTCOME_NEEDS_HELP:
            if request.help.errand_kind:
                errand_id = await self._open_errand(request, plan, visit_id)
            else:
                case_id = await self._open_case(request, plan, member, visit_id)

        async def record(conn: Connection) -> pb.RecordVisitResponse:
            locked = await repo.get_plan(conn, recipient_id, for_update=True)
            assert locked is not None
            visit = await repo.insert_visit(
                conn,
                locked,
                visit_id=visit_id,
                member_id=member_id,
                outcome=request.outcome,
                delivered=list(request.delivered_needs),
                case_id=case_id,
                errand_id=errand_id,
            )
            updated = await repo.get_plan(conn, recipient_id)
            assert updated is not None
            return pb.RecordVisitResponse(
                visit=visit_proto(visit), plan=plan_proto(updated)
            )

        response = await self._once(
            caller, "RecordVisit", request, pb.RecordVisitResponse, record
        )
        await self._refresh_squad(str(plan.squad_id), str(plan.village_id))
        return response

    async def _open_case(
        self,
        request: pb.RecordVisitRequest,
        plan: PlanRow,
        member: staff_pb2.Helper,
        visit_id: uuid.UUID,
    ) -> uuid.UUID:
        case = await self._up.create_case(
            cases_pb2.CreateCaseRequest(
                category=request.help.category,
                source=cases_pb2.CASE_SOURCE_PATROL,
                micro_grid_id=str(plan.micro_grid_id),
                description=request.help.description.strip(),
                reporter_id=member.person_id,
                request_id=f"care-visit/{visit_id}",
            )
        )
        log.info("visit %s opened case %s", visit_id, case.id)
        return uuid.UUID(case.id)

    async def _open_errand(
        self, request: pb.RecordVisitRequest, plan: PlanRow, visit_id: uuid.UUID
    ) -> uuid.UUID:
        errand = await self._up.request_errand(
            errands_pb2.RequestErrandRequest(
                resident_id=str(plan.recipient_id),
                kind=request.help.errand_kind,
                details=request.help.description.strip(),
                source_reference=f"care-visit-{visit_id}",
                request_id=f"care-visit/{visit_id}",
            )
        )
        log.info("visit %s opened errand %s", visit_id, errand.id)
        return uuid.UUID(errand.id)

    async def ListDueVisits(
        self, request: pb.ListDueVisitsRequest, context: Context
    ) -> pb.ListDueVisitsResponse:
        caller_of(context).require(*SQUAD_WORK)
        v = Violations()
        squad_id = v.id("squad_id", request.squad_id)
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        assert squad_id is not None
        now = datetime.now(UTC)
        until = now + config.DUE_HORIZON
        if request.HasField("until"):
            until = request.until.ToDatetime(tzinfo=UTC)
        limit = page_size(request.page_size)
        query = fingerprint("ListDueVisits", squad_id, until.isoformat())
        offset = _offset(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            plans = await repo.squad_plans(conn, squad_id)
        if not plans:
            raise NotFound("squad with care plans", "squad_id")
        mode = await self._up.mode(str(plans[0].village_id), "squad_id")
        switch_time = (
            mode.switch_time.ToDatetime(tzinfo=UTC)
            if mode.HasField("switch_time")
            else None
        )
        items = due_items(
            plans,
            wartime=mode.mode == grids_pb2.MODE_WARTIME,
            switch_time=switch_time,
            until=until,
        )
        page = items[offset : offset + limit]
        more = len(items) > offset + limit
        token = encode_token(query, [offset + limit]) if more else ""
        return pb.ListDueVisitsResponse(
            items=[due_proto(i) for i in page], area_mode=mode, next_page_token=token
        )

    # ---- peacetime and wartime ----

    async def SwitchAreaMode(
        self, request: pb.SwitchAreaModeRequest, context: Context
    ) -> pb.SwitchAreaModeResponse:
        caller = caller_of(context)
        caller.require(OP, SYS)
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if request.mode not in MODES:
            v.add("mode", "must be peacetime or wartime")
        v.text("reason", request.reason, max_length=config.REASON_MAX)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert area_id is not None

        forwarded = (
            f"{caller.subject}/{request.request_id}" if request.request_id else ""
        )
        area_mode = await self._up.set_mode(
            grids_pb2.SetAreaModeRequest(
                area_id=request.area_id,
                mode=request.mode,
                reason=request.reason.strip(),
                request_id=forwarded[:128],
            )
        )
        switch_id = f"{area_mode.switch_time.ToMilliseconds()}"
        workflow_id = area_mode_workflow_id(request.area_id, switch_id)
        await self._start(
            "AreaModeWorkflow",
            AreaModeInput(
                area_id=request.area_id,
                mode=mode_name(request.mode),
                switch_id=switch_id,
            ),
            workflow_id,
            [SearchAttributePair(sa.AREA_MODE, mode_name(request.mode))],
        )
        log.info(
            "area %s switched to %s by %s",
            area_id,
            mode_name(request.mode),
            caller.subject,
        )
        return pb.SwitchAreaModeResponse(area_mode=area_mode, workflow_id=workflow_id)

    # ---- campaigns ----

    async def StartCampaign(
        self, request: pb.StartCampaignRequest, context: Context
    ) -> pb.StartCampaignResponse:
        caller = caller_of(context)
        caller.require(C, OP, SYS)
        village_ids = _valid_campaign(request)
        for i, village_id in enumerate(village_ids):
            area = await self._up.area(str(village_id), f"village_ids[{i}]")
            if area.kind != grids_pb2.AREA_KIND_VILLAGE:
                raise FailedPrecondition(
                    f"village_ids[{i}]: must be a village", subject=f"village_ids[{i}]"
                )
        campaign_id = uuid.uuid4()
        workflow_id = campaign_workflow_id(str(campaign_id))
        due_time = request.due_time.ToDatetime(tzinfo=UTC)

        async def start(conn: Connection) -> pb.StartCampaignResponse:
            row = await repo.insert_campaign(
                conn,
                campaign_id=campaign_id,
                kind=request.kind,
                village_ids=village_ids,
                due_time=due_time,
                started_by=caller.subject,
                workflow_id=workflow_id,
            )
            # In the transaction: a workflow that cannot start leaves no campaign.
            await self._start(
                "CampaignWorkflow",
                CampaignInput(
                    campaign_id=str(campaign_id),
                    village_ids=[str(v) for v in village_ids],
                    due_time=due_time.isoformat(),
                ),
                workflow_id,
                [SearchAttributePair(sa.DUE_TIME, due_time)],
            )
            return pb.StartCampaignResponse(campaign=campaign_proto(row))

        return await self._once(
            caller, "StartCampaign", request, pb.StartCampaignResponse, start
        )

    async def GetCampaign(
        self, request: pb.GetCampaignRequest, context: Context
    ) -> pb.GetCampaignResponse:
        caller_of(context).require(*SQUAD_WORK)
        v = Violations()
        campaign_id = v.id("id", request.id)
        v.raise_if_any()
        assert campaign_id is not None
        async with self._pool.acquire() as conn:
            row = await repo.get_campaign(conn, campaign_id)
        if row is None:
            raise NotFound("campaign", "id")
        return pb.GetCampaignResponse(campaign=campaign_proto(row))

    async def ListCampaignRecipients(
        self, request: pb.ListCampaignRecipientsRequest, context: Context
    ) -> pb.ListCampaignRecipientsResponse:
        caller_of(context).require(*SQUAD_WORK)
        v = Violations()
        campaign_id = v.id("campaign_id", request.campaign_id)
        if request.status not in pb.RecipientStatus.values():
            v.add("status", "is not a recipient status")
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        assert campaign_id is not None
        limit = page_size(request.page_size)
        query = fingerprint("ListCampaignRecipients", campaign_id, request.status)
        after = _id_cursor(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            if await repo.get_campaign(conn, campaign_id) is None:
                raise NotFound("campaign", "campaign_id")
            rows = await repo.list_campaign_recipients(
                conn, campaign_id, request.status, after=after, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [str(page[-1].recipient_id)]) if more else ""
        return pb.ListCampaignRecipientsResponse(
            recipients=[recipient_proto(r) for r in page], next_page_token=token
        )

    async def RecordCampaignDelivery(
        self, request: pb.RecordCampaignDeliveryRequest, context: Context
    ) -> pb.RecordCampaignDeliveryResponse:
        caller = caller_of(context)
        caller.require(*SQUAD_WORK)
        v = Violations()
        campaign_id = v.id("campaign_id", request.campaign_id)
        recipient_id = v.id("recipient_id", request.recipient_id)
        if request.status not in FINAL_STATUSES:
            v.add("status", "must be delivered or refused")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert campaign_id
        assert recipient_id

        async def record(conn: Connection) -> pb.RecordCampaignDeliveryResponse:
            row = await repo.get_campaign_recipient(conn, campaign_id, recipient_id)
            if row is None:
                raise NotFound("campaign recipient", "recipient_id")
            if row.status != repo.PENDING and row.status != request.status:
                raise FailedPrecondition(
                    "status: the recipient's outcome is already recorded",
                    subject="status",
                )
            if row.status == repo.PENDING:
                row = await repo.set_recipient_status(
                    conn, campaign_id, recipient_id, request.status, caller.subject
                )
            return pb.RecordCampaignDeliveryResponse(recipient=recipient_proto(row))

        response = await self._once(
            caller,
            "RecordCampaignDelivery",
            request,
            pb.RecordCampaignDeliveryResponse,
            record,
        )
        await self._check_campaign(campaign_id)
        return response

    async def _check_campaign(self, campaign_id: uuid.UUID) -> None:
        """Wakes the campaign's workflow once nobody is left pending."""
        async with self._pool.acquire() as conn:
            row = await repo.get_campaign(conn, campaign_id)
        if self._temporal is None or row is None or row.pending or row.enrolling:
            return
        handle = self._temporal.get_workflow_handle(row.workflow_id)
        try:
            await handle.signal("check", CampaignCheck(reason="nobody pending"))
        except RPCError as error:
            # It finished already, or polls again within the hour anyway.
            log.info("campaign %s not signalled: %s", campaign_id, error.status.name)

    async def EnrollCampaignRecipients(
        self, request: pb.EnrollCampaignRecipientsRequest, context: Context
    ) -> pb.EnrollCampaignRecipientsResponse:
        caller = caller_of(context)
        caller.require(OP, SYS)
        v = Violations()
        campaign_id = v.id("campaign_id", request.campaign_id)
        village_id = v.id("village_id", request.village_id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert campaign_id
        assert village_id
        async with self._pool.acquire() as conn:
            campaign = await repo.get_campaign(conn, campaign_id)
        if campaign is None:
            raise NotFound("campaign", "campaign_id")
        if village_id not in campaign.village_ids:
            raise FailedPrecondition(
                "village_id: not one of the campaign's villages", subject="village_id"
            )
        page = await self._up.roster_page(str(village_id), request.roster_page_token)
        enrolments = await self._enrolments(page.residents)

        async def enroll(conn: Connection) -> pb.EnrollCampaignRecipientsResponse:
            count = await repo.enroll(
                conn,
                campaign_id,
                village_id,
                enrolments,
                last_page=not page.next_page_token,
            )
            return pb.EnrollCampaignRecipientsResponse(
                enrolled=count, next_roster_page_token=page.next_page_token
            )

        return await self._once(
            caller,
            "EnrollCampaignRecipients",
            request,
            pb.EnrollCampaignRecipientsResponse,
            enroll,
        )

    async def _enrolments(self, residents: Any) -> list[repo.Enrolment]:
        """Each recipient with its micro-grid's ancestors (a lookup per micro-grid)."""
        areas: dict[str, list[uuid.UUID]] = {}
        found = []
        for resident in residents:
            if resident.micro_grid_id not in areas:
                area = await self._up.area(resident.micro_grid_id, "village_id")
                areas[area.id] = [uuid.UUID(a) for a in [*area.ancestor_ids, area.id]]
            found.append(
                repo.Enrolment(
                    recipient_id=uuid.UUID(resident.id),
                    micro_grid_id=uuid.UUID(resident.micro_grid_id),
                    area_ids=areas[resident.micro_grid_id],
                )
            )
        return found

    # ---- figures ----

    async def GetCareFigures(
        self, request: pb.GetCareFiguresRequest, context: Context
    ) -> pb.GetCareFiguresResponse:
        caller_of(context).require(*REPORT_READERS)
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if not config.REPORT_YEAR_MIN <= request.year <= config.REPORT_YEAR_MAX:
            years = f"{config.REPORT_YEAR_MIN} and {config.REPORT_YEAR_MAX}"
            v.add("year", f"must be between {years}")
        v.raise_if_any()
        assert area_id is not None
        area = await self._up.area(request.area_id, "area_id")
        if area.kind not in AREA_LEVELS:
            raise FailedPrecondition(
                "area_id: figures are kept for a city, town or village",
                subject="area_id",
            )
        async with self._pool.acquire() as conn:
            counts = await repo.figures(
                conn, area_id, request.year, config.REPORT_TIME_ZONE
            )
        return pb.GetCareFiguresResponse(
            figures=pb.CareFigures(area_id=request.area_id, year=request.year, **counts)
        )

    # ---- workflows ----

    async def _refresh_squad(self, squad_id: str, village_id: str) -> None:
        """Wakes the squad's workflow (starting it when needed) to re-plan.

        A lost signal only delays: the workflow re-reads its plans at its
        next wake-up anyway.
        """
        if self._temporal is None:
            return
        try:
            await self._temporal.start_workflow(
                "SquadWorkflow",
                SquadInput(squad_id=squad_id, village_id=village_id),
                id=squad_workflow_id(squad_id),
                task_queue=self._task_queue,
                start_signal="refresh",
                start_signal_args=[SquadRefresh(reason="plans changed")],
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(sa.VILLAGE_ID, village_id)]
                ),
            )
        except RPCError as error:
            log.warning("squad %s not signalled: %s", squad_id, error.status.name)

    async def _start(
        self, workflow: str, data: object, workflow_id: str, attributes: list[Any]
    ) -> None:
        if self._temporal is None:
            raise Unavailable("this service has no Temporal connection")
        try:
            await self._temporal.start_workflow(
                workflow,
                data,
                id=workflow_id,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(attributes),
            )
        except WorkflowAlreadyStartedError:
            pass  # A retry of a request that started it: nothing more to do.
        except RPCError as error:
            raise Unavailable(
                f"Temporal refused the start ({error.status.name})"
            ) from None


# ---- validation ----


def _every_days(v: Violations, field: str, value: int) -> None:
    if not 1 <= value <= config.EVERY_DAYS_MAX:
        v.add(field, f"must be between 1 and {config.EVERY_DAYS_MAX} days")


def _valid_visit(request: pb.RecordVisitRequest) -> tuple[uuid.UUID, uuid.UUID]:
    v = Violations()
    recipient_id = v.id("recipient_id", request.recipient_id)
    member_id = v.id("member_id", request.member_id)
    if request.outcome not in OUTCOMES:
        v.add("outcome", "must be done, not at home or needs help")
    delivered = list(request.delivered_needs)
    if any(n not in NEED_KINDS for n in delivered) or len(set(delivered)) < len(
        delivered
    ):
        v.add("delivered_needs", "must be distinct kinds of need")
    if request.outcome == pb.VISIT_OUTCOME_NOT_AT_HOME and delivered:
        v.add("delivered_needs", "nothing is handed over when nobody is at home")
    needs_help = request.outcome == pb.VISIT_OUTCOME_NEEDS_HELP
    if needs_help:
        _valid_help(v, request.help)
    elif request.HasField("help"):
        v.add("help", "is only for a visit that found the recipient in need")
    v.request_id(request.request_id)
    v.raise_if_any()
    assert recipient_id
    assert member_id
    return recipient_id, member_id


def _valid_help(v: Violations, help: pb.HelpNeeded) -> None:
    """An errand needs its kind; a case needs its category."""
    errand = help.errand_kind != errands_pb2.ERRAND_KIND_UNSPECIFIED
    if help.errand_kind not in ERRAND_KINDS:
        v.add("help.errand_kind", "is not a kind of errand")
    elif not errand and help.category not in CASE_CATEGORIES:
        v.add("help.category", "must be a case category when no errand is asked")
    limit = config.ERRAND_DETAILS_MAX if errand else config.DESCRIPTION_MAX
    v.text("help.description", help.description, max_length=limit)


def _valid_campaign(request: pb.StartCampaignRequest) -> list[uuid.UUID]:
    v = Violations()
    if request.kind not in CAMPAIGN_KINDS:
        v.add("kind", "must be a kind of campaign")
    village_ids: list[uuid.UUID] = []
    for i, raw in enumerate(request.village_ids):
        village_id = v.id(f"village_ids[{i}]", raw)
        if village_id in village_ids:
            v.add(f"village_ids[{i}]", "appears twice")
        elif village_id is not None:
            village_ids.append(village_id)
    if not 1 <= len(request.village_ids) <= config.CAMPAIGN_VILLAGES_MAX:
        v.add("village_ids", f"must name 1 to {config.CAMPAIGN_VILLAGES_MAX} villages")
    if not request.HasField("due_time"):
        v.add("due_time", "is required")
    elif request.due_time.ToDatetime(tzinfo=UTC) <= datetime.now(UTC):
        v.add("due_time", "must be in the future")
    v.request_id(request.request_id)
    v.raise_if_any()
    return village_ids


def _offset(cursor: list[Any] | None) -> int:
    if cursor is None:
        return 0
    try:
        (raw,) = cursor
        return max(0, int(raw))
    except (ValueError, TypeError):
        raise _bad_token() from None


def _id_cursor(cursor: list[Any] | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        (raw,) = cursor
        return uuid.UUID(str(raw))
    except (ValueError, TypeError):
        raise _bad_token() from None


def _bad_token() -> InvalidArgument:
    return InvalidArgument.field(
        "page_token", "is not a page token this service issued"
    )


# ---- messages ----


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def plan_proto(plan: PlanRow) -> pb.CarePlan:
    return pb.CarePlan(
        recipient_id=str(plan.recipient_id),
        squad_id=str(plan.squad_id),
        member_id=str(plan.member_id),
        village_id=str(plan.village_id),
        micro_grid_id=str(plan.micro_grid_id),
        visit_every_days=plan.visit_every_days,
        regular_needs=[
            pb.RegularNeed(
                kind=n.kind,  # type: ignore[arg-type]
                every_days=n.every_days,
                last_delivery_time=_ts(n.last_delivery_time),
            )
            for n in plan.needs
        ],
        contact=pb.ContactPreferences(
            channel=plan.contact_channel,  # type: ignore[arg-type]
            from_minute=plan.contact_from,
            to_minute=plan.contact_to,
        ),
        lives_alone=plan.lives_alone,
        last_visit_time=_ts(plan.last_visit_time),
        create_time=_ts(plan.create_time),
        update_time=_ts(plan.update_time),
    )


def visit_proto(visit: VisitRow) -> pb.Visit:
    return pb.Visit(
        id=str(visit.id),
        recipient_id=str(visit.recipient_id),
        squad_id=str(visit.squad_id),
        member_id=str(visit.member_id),
        outcome=visit.outcome,  # type: ignore[arg-type]
        delivered_needs=visit.delivered_needs,  # type: ignore[arg-type]
        case_id=str(visit.case_id) if visit.case_id else "",
        errand_id=str(visit.errand_id) if visit.errand_id else "",
        visit_time=_ts(visit.visit_time),
    )


def due_proto(item: Any) -> pb.DueItem:
    return pb.DueItem(
        recipient_id=str(item.recipient_id),
        member_id=str(item.member_id),
        micro_grid_id=str(item.micro_grid_id),
        grid_id=str(item.grid_id),
        kind=item.kind,
        need=item.need,
        due_time=_ts(item.due_time),
        priority=item.priority,
        lives_alone=item.lives_alone,
    )


def campaign_proto(row: CampaignRow) -> pb.Campaign:
    status = pb.CAMPAIGN_STATUS_IN_PROGRESS
    if row.enrolling:
        status = pb.CAMPAIGN_STATUS_ENROLLING
    elif row.pending == 0:
        status = pb.CAMPAIGN_STATUS_FINISHED
    return pb.Campaign(
        id=str(row.id),
        kind=row.kind,  # type: ignore[arg-type]
        village_ids=[str(v) for v in row.village_ids],
        due_time=_ts(row.due_time),
        status=status,
        recipients=row.pending + row.delivered + row.refused,
        delivered=row.delivered,
        refused=row.refused,
        pending=row.pending,
        workflow_id=row.workflow_id,
        create_time=_ts(row.create_time),
    )


def recipient_proto(row: repo.CampaignRecipientRow) -> pb.CampaignRecipient:
    return pb.CampaignRecipient(
        campaign_id=str(row.campaign_id),
        recipient_id=str(row.recipient_id),
        village_id=str(row.village_id),
        micro_grid_id=str(row.micro_grid_id),
        status=row.status,  # type: ignore[arg-type]
        recorded_by=row.recorded_by,
        update_time=_ts(row.update_time),
    )
