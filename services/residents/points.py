"""The points RPCs of ResidentsService: a double-entry ledger.

Residents earn points from the city's issuing account by activity, spend them
at merchants directly or through holds (reserve, then commit to the merchant
or release back). Every movement is one posting of two entries summing to
zero (repository.post); every mutating RPC runs through run_once, and the
posting also records a request key, so a retry never posts twice.
"""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import asyncpg
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.db import Connection
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.common.idempotency import run_once
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import decode_token, encode_token, fingerprint
from services.common.pagination import page_size as clamp_page_size
from services.common.validation import Violations
from services.residents import access, config
from services.residents import repository as repo
from services.residents.grids_client import MICRO_GRID, VILLAGE, AreaInfo
from services.residents.pii import mask_name
from services.residents.repository import AccountRow, ResidentRow

Context = Any
ResponseT = TypeVar("ResponseT", bound=Message)

ACTIVITIES = frozenset(pb.Activity.values()) - {pb.ACTIVITY_UNSPECIFIED}
ACCOUNT_KINDS = frozenset(pb.AccountKind.values()) - {pb.ACCOUNT_KIND_UNSPECIFIED}
OWNED = (repo.RESIDENT, repo.MERCHANT)


class PointsRpcs(pb_grpc.ResidentsServiceServicer):
    """Mixed into ResidentsServicer, which supplies the resident lookups."""

    _pool: asyncpg.Pool

    async def reachable(
        self,
        conn: Connection,
        caller: Caller,
        resident_id: uuid.UUID,
        field: str,
        for_update: bool = False,
    ) -> ResidentRow:
        raise NotImplementedError

    async def area(self, area_id: uuid.UUID, field: str) -> AreaInfo:
        raise NotImplementedError

    # ---- movements ----

    async def EarnPoints(
        self, request: pb.EarnPointsRequest, context: Context
    ) -> pb.EarnPointsResponse:
        caller = _caller(context, "EarnPoints")
        v = Violations()
        resident_id = v.id("resident_id", request.resident_id)
        if request.activity not in ACTIVITIES:
            v.add("activity", "must be a known activity")
        v.request_id(request.request_id)
        v.raise_if_any()
        assert resident_id is not None

        async def earn(conn: Connection) -> pb.EarnPointsResponse:
            resident = await self.reachable(conn, caller, resident_id, "resident_id")
            _require_active(resident)
            rule = await repo.earning_rule(conn, request.activity)
            if rule is None or rule.points == 0:
                raise FailedPrecondition(
                    "activity: earns no points at present", subject="activity"
                )
            account = await _account_of(conn, repo.RESIDENT, resident_id, "resident_id")
            posted = await repo.post(
                conn,
                kind=repo.EARN,
                request_key=_request_key(caller, "EarnPoints", request.request_id),
                debit=repo.CITY_ACCOUNT,
                credit=account.id,
                points=rule.points,
                activity=request.activity,
            )
            return pb.EarnPointsResponse(
                entry=pb.Entry(
                    posting_id=str(posted.posting_id),
                    kind=pb.POSTING_KIND_EARN,
                    points=rule.points,
                    balance_after=posted.credit_balance,
                    activity=request.activity,
                    counterparty=pb.AccountRef(kind=pb.ACCOUNT_KIND_CITY),
                    create_time=timestamp(posted.create_time),
                )
            )

        return await once(self._pool, caller, "EarnPoints", request, earn)

    async def SpendPoints(
        self, request: pb.SpendPointsRequest, context: Context
    ) -> pb.SpendPointsResponse:
        caller = _caller(context, "SpendPoints")
        resident_id, merchant_id = _spend_fields(request)

        async def spend(conn: Connection) -> pb.SpendPointsResponse:
            payer, payee = await self._payer_and_payee(
                conn, caller, resident_id, merchant_id
            )
            posted = await _post_or_refuse(
                conn,
                kind=repo.SPEND,
                request_key=_request_key(caller, "SpendPoints", request.request_id),
                debit=payer.id,
                credit=payee.id,
                points=request.points,
            )
            return pb.SpendPointsResponse(
                entry=pb.Entry(
                    posting_id=str(posted.posting_id),
                    kind=pb.POSTING_KIND_SPEND,
                    points=-request.points,
                    balance_after=posted.debit_balance,
                    counterparty=pb.AccountRef(
                        kind=pb.ACCOUNT_KIND_MERCHANT, owner_id=str(merchant_id)
                    ),
                    create_time=timestamp(posted.create_time),
                )
            )

        return await once(self._pool, caller, "SpendPoints", request, spend)

    async def HoldPoints(
        self, request: pb.HoldPointsRequest, context: Context
    ) -> pb.HoldPointsResponse:
        caller = _caller(context, "HoldPoints")
        resident_id, merchant_id = _spend_fields(request)

        async def hold(conn: Connection) -> pb.HoldPointsResponse:
            payer, payee = await self._payer_and_payee(
                conn, caller, resident_id, merchant_id
            )
            hold_id = uuid.uuid4()
            await repo.insert_hold(conn, hold_id, payer.id, payee.id, request.points)
            await _post_or_refuse(
                conn,
                kind=repo.HOLD,
                request_key=_request_key(caller, "HoldPoints", request.request_id),
                debit=payer.id,
                credit=repo.HOLDS_ACCOUNT,
                points=request.points,
                hold_id=hold_id,
            )
            row = await repo.get_hold(conn, hold_id)
            assert row is not None
            return pb.HoldPointsResponse(hold=hold_proto(row))

        return await once(self._pool, caller, "HoldPoints", request, hold)

    async def CommitHold(
        self, request: pb.CommitHoldRequest, context: Context
    ) -> pb.CommitHoldResponse:
        caller = _caller(context, "CommitHold")
        hold_id = _hold_fields(request)

        async def commit(conn: Connection) -> pb.CommitHoldResponse:
            row = await _hold_in_reach(conn, caller, hold_id)
            if row.state == repo.RELEASED:
                raise FailedPrecondition(
                    "hold_id: the hold was released", subject="hold_id"
                )
            if row.state == repo.PENDING:
                await repo.post(
                    conn,
                    kind=repo.COMMIT,
                    request_key=f"hold/{hold_id}/settle",
                    debit=repo.HOLDS_ACCOUNT,
                    credit=row.merchant_account,
                    points=row.points,
                    hold_id=hold_id,
                )
                await repo.set_hold_state(conn, hold_id, repo.COMMITTED)
            settled = await repo.get_hold(conn, hold_id)
            assert settled is not None
            return pb.CommitHoldResponse(hold=hold_proto(settled))

        return await once(self._pool, caller, "CommitHold", request, commit)

    async def ReleaseHold(
        self, request: pb.ReleaseHoldRequest, context: Context
    ) -> pb.ReleaseHoldResponse:
        caller = _caller(context, "ReleaseHold")
        hold_id = _hold_fields(request)

        async def release(conn: Connection) -> pb.ReleaseHoldResponse:
            row = await _hold_in_reach(conn, caller, hold_id)
            if row.state == repo.COMMITTED:
                raise FailedPrecondition(
                    "hold_id: the hold was already committed", subject="hold_id"
                )
            if row.state == repo.PENDING:
                await repo.post(
                    conn,
                    kind=repo.RELEASE,
                    request_key=f"hold/{hold_id}/settle",
                    debit=repo.HOLDS_ACCOUNT,
                    credit=row.resident_account,
                    points=row.points,
                    hold_id=hold_id,
                )
                await repo.set_hold_state(conn, hold_id, repo.RELEASED)
            settled = await repo.get_hold(conn, hold_id)
            assert settled is not None
            return pb.ReleaseHoldResponse(hold=hold_proto(settled))

        return await once(self._pool, caller, "ReleaseHold", request, release)

    # ---- reading ----

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: Context
    ) -> pb.GetBalanceResponse:
        caller = _caller(context, "GetBalance")
        v = Violations()
        kind, owner = _account_ref(v, "account", request.account)
        v.raise_if_any()
        async with self._pool.acquire() as conn:
            account = await self._account_in_reach(conn, caller, kind, owner)
        return balance_proto(account)

    async def ListStatement(
        self, request: pb.ListStatementRequest, context: Context
    ) -> pb.ListStatementResponse:
        caller = _caller(context, "ListStatement")
        v = Violations()
        kind, owner = _account_ref(v, "account", request.account)
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListStatement", kind, owner)
        before = _int_cursor(decode_token(request.page_token, query))
        async with self._pool.acquire() as conn:
            account = await self._account_in_reach(conn, caller, kind, owner)
            rows = await repo.statement(
                conn, account.id, before=before, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [page[-1].id]) if more else ""
        return pb.ListStatementResponse(
            entries=[entry_proto(r) for r in page], next_page_token=token
        )

    async def ListLeaderboard(
        self, request: pb.ListLeaderboardRequest, context: Context
    ) -> pb.ListLeaderboardResponse:
        _caller(context, "ListLeaderboard")
        v = Violations()
        area_id = v.id("area_id", request.area_id)
        if request.page_size < 0:
            v.add("page_size", "must not be negative")
        v.raise_if_any()
        assert area_id is not None
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListLeaderboard", area_id)
        after = _leader_cursor(decode_token(request.page_token, query))
        area = await self.area(area_id, "area_id")
        if area.kind not in (VILLAGE, MICRO_GRID):
            raise FailedPrecondition(
                "area_id: leaderboards are kept per village and micro-grid",
                subject="area_id",
            )
        async with self._pool.acquire() as conn:
            rows = await repo.leaderboard(conn, area_id, after=after, limit=limit + 1)
            page = rows[:limit]
            ranks = {
                e: await repo.rank_of(conn, area_id, e)
                for e in {r.earned for r in page}
            }
        more = len(rows) > limit
        token = encode_token(query, [page[-1].earned, str(page[-1].resident_id)])
        return pb.ListLeaderboardResponse(
            rows=[leader_proto(r, ranks[r.earned]) for r in page],
            next_page_token=token if more else "",
        )

    # ---- rules and merchant accounts ----

    async def ListEarningRules(
        self, request: pb.ListEarningRulesRequest, context: Context
    ) -> pb.ListEarningRulesResponse:
        _caller(context, "ListEarningRules")
        limit = clamp_page_size(request.page_size)
        query = fingerprint("ListEarningRules")
        after = _int_cursor(decode_token(request.page_token, query))
        async with self._pool.acquire() as conn:
            rows = await repo.earning_rules(conn, after=after, limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [page[-1].activity]) if more else ""
        return pb.ListEarningRulesResponse(
            rules=[rule_proto(r) for r in page], next_page_token=token
        )

    async def SetEarningRule(
        self, request: pb.SetEarningRuleRequest, context: Context
    ) -> pb.SetEarningRuleResponse:
        caller = _caller(context, "SetEarningRule")
        v = Violations()
        if request.activity not in ACTIVITIES:
            v.add("activity", "must be a known activity")
        if not 0 <= request.points <= config.POINTS_MAX:
            v.add("points", f"must be between 0 and {config.POINTS_MAX}")
        v.request_id(request.request_id)
        v.raise_if_any()

        async def set_rule(conn: Connection) -> pb.SetEarningRuleResponse:
            row = await repo.set_earning_rule(conn, request.activity, request.points)
            return pb.SetEarningRuleResponse(rule=rule_proto(row))

        return await once(self._pool, caller, "SetEarningRule", request, set_rule)

    async def OpenMerchantAccount(
        self, request: pb.OpenMerchantAccountRequest, context: Context
    ) -> pb.OpenMerchantAccountResponse:
        caller = _caller(context, "OpenMerchantAccount")
        v = Violations()
        merchant_id = v.id("merchant_id", request.merchant_id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert merchant_id is not None

        async def open_account(conn: Connection) -> pb.OpenMerchantAccountResponse:
            account = await repo.open_account(conn, repo.MERCHANT, merchant_id)
            return pb.OpenMerchantAccountResponse(balance=balance_proto(account))

        return await once(
            self._pool, caller, "OpenMerchantAccount", request, open_account
        )

    # ---- shared steps ----

    async def _payer_and_payee(
        self,
        conn: Connection,
        caller: Caller,
        resident_id: uuid.UUID,
        merchant_id: uuid.UUID,
    ) -> tuple[AccountRow, AccountRow]:
        resident = await self.reachable(conn, caller, resident_id, "resident_id")
        if caller.role == Role.RESIDENT and caller.subject != str(resident_id):
            raise PermissionDenied("a resident spends only their own points")
        _require_active(resident)
        payer = await _account_of(conn, repo.RESIDENT, resident_id, "resident_id")
        payee = await _account_of(conn, repo.MERCHANT, merchant_id, "merchant_id")
        return payer, payee

    async def _account_in_reach(
        self, conn: Connection, caller: Caller, kind: int, owner: uuid.UUID | None
    ) -> AccountRow:
        field = "account.owner_id"
        if kind == repo.RESIDENT:
            assert owner is not None
            await self.reachable(conn, caller, owner, field)
        elif kind == repo.MERCHANT:
            own = caller.role == Role.MERCHANT and caller.subject == str(owner)
            if not own and caller.role not in (Role.OPERATOR, Role.SYSTEM):
                raise PermissionDenied("a merchant reaches only its own account")
        elif caller.role not in (Role.OPERATOR, Role.SYSTEM):
            raise PermissionDenied("only operators see the city's accounts")
        return await _account_of(conn, kind, owner, field)


async def once(
    pool: asyncpg.Pool,
    caller: Caller,
    method: str,
    request: Message,
    action: Callable[[Connection], Awaitable[ResponseT]],
) -> ResponseT:
    """run_once for a method whose answer is the message <method>Response."""
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


def _request_key(caller: Caller, method: str, request_id: str) -> str:
    # Without a request_id every call is its own request.
    return f"{caller.subject}/{method}/{request_id or uuid.uuid4()}"


def _spend_fields(
    request: pb.SpendPointsRequest | pb.HoldPointsRequest,
) -> tuple[uuid.UUID, uuid.UUID]:
    v = Violations()
    resident_id = v.id("resident_id", request.resident_id)
    merchant_id = v.id("merchant_id", request.merchant_id)
    if request.points <= 0:
        v.add("points", "must be more than zero")
    elif request.points > config.POINTS_MAX:
        v.add("points", f"must be at most {config.POINTS_MAX}")
    v.request_id(request.request_id)
    v.raise_if_any()
    assert resident_id is not None
    assert merchant_id is not None
    return resident_id, merchant_id


def _hold_fields(request: pb.CommitHoldRequest | pb.ReleaseHoldRequest) -> uuid.UUID:
    v = Violations()
    hold_id = v.id("hold_id", request.hold_id)
    v.request_id(request.request_id)
    v.raise_if_any()
    assert hold_id is not None
    return hold_id


def _account_ref(
    v: Violations, field: str, ref: pb.AccountRef
) -> tuple[int, uuid.UUID | None]:
    if ref.kind not in ACCOUNT_KINDS:
        v.add(f"{field}.kind", "must be city, resident, merchant or holds")
        return ref.kind, None
    if ref.kind in OWNED:
        return ref.kind, v.id(f"{field}.owner_id", ref.owner_id)
    if ref.owner_id:
        v.add(f"{field}.owner_id", "must be empty for the city and holds accounts")
    return ref.kind, None


async def _account_of(
    conn: Connection, kind: int, owner: uuid.UUID | None, field: str
) -> AccountRow:
    account = await repo.find_account(conn, kind, owner)
    if account is None:
        raise NotFound("account", field)
    return account


async def _post_or_refuse(conn: Connection, **posting: Any) -> repo.PostingResult:
    try:
        return await repo.post(conn, **posting)
    except repo.InsufficientPoints:
        raise FailedPrecondition(
            "points: more than the resident's balance",
            subject="points",
            kind="BALANCE",
        ) from None


async def _hold_in_reach(
    conn: Connection, caller: Caller, hold_id: uuid.UUID
) -> repo.HoldRow:
    row = await repo.get_hold(conn, hold_id, for_update=True)
    if row is None:
        raise NotFound("hold", "hold_id")
    if caller.role in (Role.OPERATOR, Role.SYSTEM):
        return row
    if caller.role == Role.MERCHANT and caller.subject == str(row.merchant_id):
        return row
    if caller.role == Role.RESIDENT and caller.subject == str(row.resident_id):
        return row
    raise PermissionDenied("the hold belongs to someone else")


def _require_active(row: ResidentRow) -> None:
    if not row.active:
        raise FailedPrecondition(
            "resident_id: the resident is deactivated", subject="resident_id"
        )


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def balance_proto(account: AccountRow) -> pb.GetBalanceResponse:
    return pb.GetBalanceResponse(
        account=pb.AccountRef(
            kind=account.kind,  # type: ignore[arg-type]
            owner_id=str(account.owner_id) if account.owner_id else "",
        ),
        points=account.balance,
        earned=account.earned,
        value_fen=account.balance * 100 // config.POINTS_PER_YUAN,
    )


def entry_proto(row: repo.StatementRow) -> pb.Entry:
    return pb.Entry(
        posting_id=str(row.posting_id),
        kind=row.kind,  # type: ignore[arg-type]
        points=row.points,
        balance_after=row.balance_after,
        activity=row.activity or 0,  # type: ignore[arg-type]
        counterparty=pb.AccountRef(
            kind=row.other_kind,  # type: ignore[arg-type]
            owner_id=str(row.other_owner) if row.other_owner else "",
        ),
        create_time=timestamp(row.create_time),
    )


def hold_proto(row: repo.HoldRow) -> pb.Hold:
    return pb.Hold(
        id=str(row.id),
        resident_id=str(row.resident_id),
        merchant_id=str(row.merchant_id),
        points=row.points,
        state=row.state,  # type: ignore[arg-type]
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def leader_proto(row: repo.LeaderRow, rank: int) -> pb.LeaderboardRow:
    return pb.LeaderboardRow(
        rank=rank,
        resident_id=str(row.resident_id),
        display_name=mask_name(row.name),
        earned=row.earned,
    )


def rule_proto(row: repo.RuleRow) -> pb.EarningRule:
    return pb.EarningRule(
        activity=row.activity,  # type: ignore[arg-type]
        points=row.points,
        update_time=timestamp(row.update_time),
    )


def _int_cursor(cursor: list[Any] | None) -> int | None:
    if cursor is None:
        return None
    try:
        (value,) = cursor
        return int(value)
    except (ValueError, TypeError):
        raise InvalidArgument.field(
            "page_token", "is not a page token this service issued"
        ) from None


def _leader_cursor(cursor: list[Any] | None) -> tuple[int, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        earned, raw_id = cursor
        return int(earned), uuid.UUID(str(raw_id))
    except (ValueError, TypeError):
        raise InvalidArgument.field(
            "page_token", "is not a page token this service issued"
        ) from None
