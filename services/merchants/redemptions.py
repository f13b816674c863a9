"""The redemption RPCs of MerchantsService: the front door of the saga.

RedeemOffer starts RedemptionWorkflow (workflows/redemption) and answers
once the points are held and the item reserved; Confirm, Refuse and Cancel
are updates of that workflow; the saga's own steps (ReserveStock,
SettleRedemption) write the redemptions table that Get and List read, so
the resident and the merchant each see the outcome.
"""

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import asyncpg
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.merchants.v1 import merchants_pb2_grpc as pb_grpc
from google.protobuf.message import Message
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from services.common.db import Connection
from services.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.idempotency import run_once
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import decode_token, encode_token, fingerprint
from services.common.pagination import page_size as clamp_page_size
from services.common.validation import Violations
from services.merchants import access, config
from services.merchants import repository as repo
from services.merchants.shared import (
    merchant_of,
    offer_of,
    owner_filter,
    require_trading,
    required_id,
    time_cursor,
    time_key,
    timestamp,
)
from workflows.redemption.workflows import (
    CANCEL,
    CONFIRM,
    REFUSE,
    AwaitReservationInput,
    DecisionInput,
    RedemptionInput,
    RedemptionWorkflow,
)
from workflows.search_attributes import TOWN_ID, VILLAGE_ID

Context = Any
ResponseT = TypeVar("ResponseT", bound=Message)

# Redemption ids derived from a caller's request_id, so a retried
# RedeemOffer finds the workflow the first one started.
_ID_NAMESPACE = uuid.UUID("5d0c6f1e-8f7a-4c2b-9a51-6b1f3f0c2d7e")
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_CODE = re.compile(r"[0-9]{6}")
_RELEASED_BECAUSE: dict[int, str] = {
    pb.RELEASE_REASON_EXPIRED: "the time to confirm ran out",
    pb.RELEASE_REASON_REFUSED: "the merchant refused it",
    pb.RELEASE_REASON_CANCELLED: "it was cancelled",
}


def workflow_id(redemption_id: uuid.UUID | str) -> str:
    return f"redemption-{redemption_id}"


class RedemptionRpcs(pb_grpc.MerchantsServiceServicer):
    """Mixed into MerchantsServicer; holds the pool and the Temporal client."""

    def __init__(
        self, *, pool: asyncpg.Pool, temporal: Client | None, task_queue: str
    ) -> None:
        self.pool = pool
        self._temporal = temporal
        self._task_queue = task_queue

    async def once(
        self,
        caller: Caller,
        method: str,
        request: Message,
        action: Callable[[Connection], Awaitable[ResponseT]],
    ) -> ResponseT:
        """run_once for a method whose answer is the message <method>Response."""
        response_type = cast(type[ResponseT], getattr(pb, f"{method}Response"))
        return await run_once(
            self.pool,
            caller=caller,
            method=method,
            request=request,
            response_type=response_type,
            action=action,
        )

    # ---- the front door ----

    async def RedeemOffer(
        self, request: pb.RedeemOfferRequest, context: Context
    ) -> pb.RedeemOfferResponse:
        caller = _caller(context, "RedeemOffer")
        v = Violations()
        offer_id = v.id("offer_id", request.offer_id)
        resident_id = v.id("resident_id", request.resident_id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert offer_id is not None
        assert resident_id is not None
        access.require_self(caller, resident_id)
        redemption_id = _redemption_id(caller, request.request_id)

        existing = await self._redemption(redemption_id)
        if existing is None:
            offer, merchant = await self._redeemable(offer_id)
            data = RedemptionInput(
                redemption_id=str(redemption_id),
                offer_id=str(offer.id),
                merchant_id=str(offer.merchant_id),
                resident_id=str(resident_id),
                points=offer.points,
                confirm_seconds=config.CONFIRM_MINUTES * 60,
            )
            await self._start(data, merchant.area_ids)
            existing = await self._redemption(redemption_id)
        if existing is None:
            raise Unavailable("the redemption is still starting; retry")
        if (existing.offer_id, existing.resident_id) != (offer_id, resident_id):
            raise InvalidArgument.field(
                "request_id", "was already used for a different request"
            )
        return pb.RedeemOfferResponse(redemption=redemption_proto(existing))

    async def ConfirmRedemption(
        self, request: pb.ConfirmRedemptionRequest, context: Context
    ) -> pb.ConfirmRedemptionResponse:
        row = await self._decide(context, "ConfirmRedemption", request, CONFIRM)
        return pb.ConfirmRedemptionResponse(redemption=row)

    async def RefuseRedemption(
        self, request: pb.RefuseRedemptionRequest, context: Context
    ) -> pb.RefuseRedemptionResponse:
        row = await self._decide(context, "RefuseRedemption", request, REFUSE)
        return pb.RefuseRedemptionResponse(redemption=row)

    async def CancelRedemption(
        self, request: pb.CancelRedemptionRequest, context: Context
    ) -> pb.CancelRedemptionResponse:
        row = await self._decide(context, "CancelRedemption", request, CANCEL)
        return pb.CancelRedemptionResponse(redemption=row)

    # ---- reading ----

    async def FindRedemption(
        self, request: pb.FindRedemptionRequest, context: Context
    ) -> pb.FindRedemptionResponse:
        caller = _caller(context, "FindRedemption")
        v = Violations()
        merchant_id = v.id("merchant_id", request.merchant_id)
        if not _CODE.fullmatch(request.code):
            v.add("code", "must be the six digits shown at the till")
        v.raise_if_any()
        assert merchant_id is not None
        access.require_merchant(caller, merchant_id)
        async with self.pool.acquire() as conn:
            found = await repo.pending_by_code(conn, merchant_id, request.code)
        if not found:
            raise NotFound("pending redemption", "code")
        if len(found) > 1:
            raise FailedPrecondition(
                "code: two pending redemptions show it; use the redemption id",
                subject="code",
                kind="AMBIGUOUS",
            )
        return pb.FindRedemptionResponse(redemption=redemption_proto(found[0]))

    async def GetRedemption(
        self, request: pb.GetRedemptionRequest, context: Context
    ) -> pb.GetRedemptionResponse:
        caller = _caller(context, "GetRedemption")
        redemption_id = required_id("id", request.id)
        row = await self._redemption(redemption_id)
        if row is None:
            raise NotFound("redemption", "id")
        access.require_party(caller, row.merchant_id, row.resident_id)
        return pb.GetRedemptionResponse(redemption=redemption_proto(row))

    async def ListRedemptions(
        self, request: pb.ListRedemptionsRequest, context: Context
    ) -> pb.ListRedemptionsResponse:
        caller = _caller(context, "ListRedemptions")
        column, owner = owner_filter(caller, request)
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListRedemptions", column, owner)
        before = time_cursor(decode_token(request.page_token, query))
        async with self.pool.acquire() as conn:
            rows = await repo.list_redemptions(
                conn, column, owner, before=before, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, time_key(page[-1])) if more else ""
        return pb.ListRedemptionsResponse(
            redemptions=[redemption_proto(r) for r in page], next_page_token=token
        )

    async def GetStatement(
        self, request: pb.GetStatementRequest, context: Context
    ) -> pb.GetStatementResponse:
        caller = _caller(context, "GetStatement")
        v = Violations()
        merchant_id = v.id("merchant_id", request.merchant_id)
        month = _month(v, request.month)
        v.raise_if_any()
        assert merchant_id is not None
        assert month is not None
        access.require_merchant(caller, merchant_id)
        async with self.pool.acquire() as conn:
            if await repo.get_merchant(conn, merchant_id) is None:
                raise NotFound("merchant", "merchant_id")
            lines = await repo.statement_lines(
                conn, merchant_id, month, config.CITY_TIME_ZONE
            )
        points = sum(line.points for line in lines)
        return pb.GetStatementResponse(
            merchant_id=str(merchant_id),
            month=request.month,
            redemptions=sum(line.redemptions for line in lines),
            points=points,
            value_fen=points * 100 // config.POINTS_PER_YUAN,
            lines=[
                pb.StatementLine(
                    offer_id=str(line.offer_id),
                    title=line.title,
                    redemptions=line.redemptions,
                    points=line.points,
                )
                for line in lines
            ],
        )

    # ---- the saga's steps ----

    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: Context
    ) -> pb.ReserveStockResponse:
        caller = _caller(context, "ReserveStock")
        v = Violations()
        redemption_id = v.id("redemption_id", request.redemption_id)
        offer_id = v.id("offer_id", request.offer_id)
        resident_id = v.id("resident_id", request.resident_id)
        hold_id = v.id("hold_id", request.hold_id)
        if not request.HasField("confirm_deadline"):
            v.add("confirm_deadline", "is required")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert redemption_id is not None
        assert offer_id is not None
        assert resident_id is not None
        assert hold_id is not None

        async def reserve(conn: Connection) -> pb.ReserveStockResponse:
            found = await repo.get_redemption(conn, redemption_id)
            if found is None:
                found = await _take_item(
                    conn, request, redemption_id, offer_id, resident_id, hold_id
                )
            return pb.ReserveStockResponse(redemption=redemption_proto(found))

        return await self.once(caller, "ReserveStock", request, reserve)

    async def SettleRedemption(
        self, request: pb.SettleRedemptionRequest, context: Context
    ) -> pb.SettleRedemptionResponse:
        caller = _caller(context, "SettleRedemption")
        v = Violations()
        redemption_id = v.id("id", request.id)
        released = request.state == pb.REDEMPTION_STATE_RELEASED
        if request.state not in (
            pb.REDEMPTION_STATE_COMMITTED,
            pb.REDEMPTION_STATE_RELEASED,
        ):
            v.add("state", "must be COMMITTED or RELEASED")
        if released != (request.release_reason in _REASONS):
            v.add("release_reason", "is given exactly when RELEASED")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert redemption_id is not None

        async def settle(conn: Connection) -> pb.SettleRedemptionResponse:
            row = await repo.get_redemption(conn, redemption_id, for_update=True)
            if row is None:
                raise NotFound("redemption", "id")
            if row.state == repo.PENDING:
                row = await repo.settle_redemption(
                    conn, redemption_id, request.state, request.release_reason or None
                )
                if released:
                    await repo.update_offer(conn, row.offer_id, stock_change=1)
            elif row.state != request.state:
                raise FailedPrecondition("id: already settled otherwise", subject="id")
            return pb.SettleRedemptionResponse(redemption=redemption_proto(row))

        return await self.once(caller, "SettleRedemption", request, settle)

    # ---- shared steps ----

    async def _redemption(self, redemption_id: uuid.UUID) -> repo.RedemptionRow | None:
        async with self.pool.acquire() as conn:
            return await repo.get_redemption(conn, redemption_id)

    async def _redeemable(
        self, offer_id: uuid.UUID
    ) -> tuple[repo.OfferRow, repo.MerchantRow]:
        """The offer and its merchant, if a redemption of it may start now."""
        async with self.pool.acquire() as conn:
            offer = await offer_of(conn, offer_id, "offer_id")
            merchant = await merchant_of(conn, offer.merchant_id, "offer_id")
        require_trading(merchant, "offer_id")
        require_open(offer)
        if not merchant.accepts_points:
            raise FailedPrecondition(
                "offer_id: the merchant does not accept points", subject="offer_id"
            )
        return offer, merchant

    def _client(self) -> Client:
        if self._temporal is None:
            raise Unavailable("redemptions are not available: no Temporal client")
        return self._temporal

    async def _start(self, data: RedemptionInput, area_ids: list[uuid.UUID]) -> None:
        """Starts the workflow (or finds it) and waits for the reservation.

        Operators find a village's redemptions by the merchant's town and
        village (area_ids: city, town, village).
        """
        client = self._client()
        wid = workflow_id(data.redemption_id)
        start = WithStartWorkflowOperation(
            RedemptionWorkflow.run,
            data,
            id=wid,
            task_queue=self._task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(TOWN_ID, str(area_ids[1])),
                    SearchAttributePair(VILLAGE_ID, str(area_ids[2])),
                ]
            ),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A refused redemption failed: the same request may run again.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
        try:
            reserved = await asyncio.wait_for(
                client.execute_update_with_start_workflow(
                    RedemptionWorkflow.await_reservation,
                    AwaitReservationInput(),
                    start_workflow_operation=start,
                ),
                config.SAGA_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            # Settled already: the redemption's row says how.
            return
        except TimeoutError:
            raise Unavailable("the redemption is still starting; retry") from None
        if reserved.state == "failed":
            raise _saga_error(reserved.error_type, reserved.error_message)

    async def _decide(
        self, context: Context, method: str, request: Any, decision: str
    ) -> pb.Redemption:
        caller = _caller(context, method)
        v = Violations()
        redemption_id = v.id("id", request.id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert redemption_id is not None
        row = await self._redemption(redemption_id)
        if row is None:
            raise NotFound("redemption", "id")
        if decision == CANCEL:
            access.require_resident(caller, row.resident_id)
        elif not access.is_merchant(caller, row.merchant_id):
            raise PermissionDenied("only the redemption's merchant decides")
        wanted = repo.COMMITTED if decision == CONFIRM else repo.RELEASED
        if row.state == repo.PENDING:
            await self._update(row, caller, decision)
            row = await self._redemption(redemption_id)
            assert row is not None
        return _outcome(row, wanted, decision)

    async def _update(
        self, row: repo.RedemptionRow, caller: Caller, decision: str
    ) -> None:
        handle = self._client().get_workflow_handle(workflow_id(row.id))
        data = DecisionInput(
            decision=decision,
            actor_id=caller.subject,
            by_operator=caller.role == Role.OPERATOR,
        )
        try:
            await asyncio.wait_for(
                handle.execute_update(RedemptionWorkflow.decide, data),
                config.SAGA_TIMEOUT,
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            if (
                isinstance(cause, ApplicationError)
                and cause.type == "PERMISSION_DENIED"
            ):
                raise PermissionDenied(str(cause.message)) from None
            # Otherwise no longer pending: the stored outcome says why.
        except RPCError:
            # The workflow has closed: the stored outcome says how.
            pass
        except TimeoutError:
            raise Unavailable("the redemption is busy; retry") from None


def _caller(context: Context, method: str) -> Caller:
    caller = caller_of(context)
    access.require_role(caller, method)
    return caller


def _redemption_id(caller: Caller, request_id: str) -> uuid.UUID:
    if not request_id:
        return uuid.uuid4()
    return uuid.uuid5(_ID_NAMESPACE, f"{caller.subject}/{request_id}")


def _month(v: Violations, value: str) -> datetime | None:
    match = _MONTH.fullmatch(value)
    if match is None or not 2000 <= int(match[1]) <= 2100:
        v.add("month", "must be a month between 2000-01 and 2100-12, as YYYY-MM")
        return None
    return datetime(int(match[1]), int(match[2]), 1)


_REASONS = frozenset(pb.ReleaseReason.values()) - {pb.RELEASE_REASON_UNSPECIFIED}


def require_open(offer: repo.OfferRow) -> None:
    if offer.state != repo.OPEN:
        raise FailedPrecondition(
            "offer_id: the offer was withdrawn", subject="offer_id", kind="WITHDRAWN"
        )
    if offer.stock <= 0:
        raise FailedPrecondition(
            "offer_id: the offer is sold out", subject="offer_id", kind="STOCK"
        )


async def _take_item(
    conn: Connection,
    request: pb.ReserveStockRequest,
    redemption_id: uuid.UUID,
    offer_id: uuid.UUID,
    resident_id: uuid.UUID,
    hold_id: uuid.UUID,
) -> repo.RedemptionRow:
    offer = await repo.get_offer(conn, offer_id, for_update=True)
    if offer is None:
        raise NotFound("offer", "offer_id")
    if request.points != offer.points:
        raise FailedPrecondition(
            "points: not the offer's price", subject="points", kind="PRICE"
        )
    # Suspended or withdrawn since RedeemOffer looked: the hold goes back.
    require_trading(await merchant_of(conn, offer.merchant_id, "offer_id"), "offer_id")
    require_open(offer)
    await repo.take_one(conn, offer_id)
    return await repo.insert_redemption(
        conn,
        id=redemption_id,
        offer=offer,
        resident_id=resident_id,
        hold_id=hold_id,
        confirm_deadline=request.confirm_deadline.ToDatetime(tzinfo=UTC),
    )


def _outcome(row: repo.RedemptionRow, wanted: int, decision: str) -> pb.Redemption:
    """The settled redemption when it ended as the decision wanted; else why not."""
    if row.state == wanted and (
        decision == CONFIRM or row.release_reason == _REASON_OF[decision]
    ):
        return redemption_proto(row)
    if row.state == repo.PENDING:
        raise Unavailable("the redemption is still settling; retry")
    if row.state == repo.COMMITTED:
        raise FailedPrecondition(
            "id: the redemption was already confirmed", subject="id", kind="COMMITTED"
        )
    reason = row.release_reason or 0
    kind = "EXPIRED" if reason == pb.RELEASE_REASON_EXPIRED else "RELEASED"
    raise FailedPrecondition(
        f"id: the redemption was released: {_RELEASED_BECAUSE.get(reason, '')}",
        subject="id",
        kind=kind,
    )


_REASON_OF: dict[str, int] = {
    REFUSE: pb.RELEASE_REASON_REFUSED,
    CANCEL: pb.RELEASE_REASON_CANCELLED,
}


def _saga_error(code: str, message: str) -> DomainError:
    """The error a refused saga step stands for, as the caller should see it."""
    field, _, detail = message.partition(": ")
    if code == "NOT_FOUND" and detail.startswith("no such "):
        return NotFound(detail.removeprefix("no such "), field)
    if code == "FAILED_PRECONDITION":
        kind = "BALANCE" if field == "points" else "STATE"
        if "sold out" in detail:
            kind = "STOCK"
        return FailedPrecondition(message, subject=field, kind=kind)
    if code == "PERMISSION_DENIED":
        return PermissionDenied(message)
    if code == "INVALID_ARGUMENT":
        return InvalidArgument.field(field or "request", detail or message)
    return Unavailable("a step of the redemption failed; retry")


def redemption_proto(row: repo.RedemptionRow) -> pb.Redemption:
    message = pb.Redemption(
        id=str(row.id),
        offer_id=str(row.offer_id),
        merchant_id=str(row.merchant_id),
        resident_id=str(row.resident_id),
        points=row.points,
        state=row.state,  # type: ignore[arg-type]
        release_reason=row.release_reason or 0,  # type: ignore[arg-type]
        hold_id=str(row.hold_id),
        code=row.code,
        confirm_deadline=timestamp(row.confirm_deadline),
        create_time=timestamp(row.create_time),
    )
    if row.settle_time is not None:
        message.settle_time.CopyFrom(timestamp(row.settle_time))
    return message
