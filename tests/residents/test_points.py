"""The points ledger through the gRPC API of a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import asyncpg
import grpc
import pytest
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc

from services.common.server import RunningService
from tests.helpers import bad_fields, call_error
from tests.residents.support import (
    AS_OPERATOR,
    SYSTEM,
    Place,
    as_resident,
    household,
    open_merchant,
    place,
    resident,
)

AS_SYSTEM = SYSTEM.metadata()


@pytest.fixture
def stub(residents_channel: grpc.aio.Channel) -> pb_grpc.ResidentsServiceAsyncStub:
    return pb_grpc.ResidentsServiceStub(residents_channel)


@pytest.fixture
async def town(grids_channel: grpc.aio.Channel) -> Place:
    return await place(grids_channel)


# The seed's earning rules (migration 0002_points.sql).
SEED_RULES = {
    pb.ACTIVITY_VOLUNTEER_PATROL: 20,
    pb.ACTIVITY_ANTI_FRAUD_TALK: 30,
    pb.ACTIVITY_CONFIRMED_TIP_OFF: 50,
    pb.ACTIVITY_ERRAND_HELPED: 20,
    pb.ACTIVITY_CARE_VISIT: 20,
    pb.ACTIVITY_EPIDEMIC_DUTY: 30,
}


@pytest.fixture(autouse=True)
async def seed_rules(stub: pb_grpc.ResidentsServiceAsyncStub) -> None:
    """Puts the seed's rules back: the fuzz suite, earlier in the session, may
    have changed them through SetEarningRule."""
    for activity, points in SEED_RULES.items():
        await stub.SetEarningRule(
            pb.SetEarningRuleRequest(activity=activity, points=points),
            metadata=AS_OPERATOR,
        )


async def earn(
    stub: pb_grpc.ResidentsServiceAsyncStub, resident_id: str, activity: int
) -> pb.EarnPointsResponse:
    return await stub.EarnPoints(
        pb.EarnPointsRequest(resident_id=resident_id, activity=activity),  # type: ignore[arg-type]
        metadata=AS_SYSTEM,
    )


async def balance(
    stub: pb_grpc.ResidentsServiceAsyncStub, kind: int, owner: str
) -> int:
    reply = await stub.GetBalance(
        pb.GetBalanceRequest(account=pb.AccountRef(kind=kind, owner_id=owner)),  # type: ignore[arg-type]
        metadata=AS_OPERATOR,
    )
    return reply.points


async def funded(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place, patrols: int
) -> pb.Resident:
    """A resident who has walked the given number of 20-point patrols."""
    member = await resident(stub, (await household(stub, town.micro_grid)).id)
    for _ in range(patrols):
        await earn(stub, member.id, pb.ACTIVITY_VOLUNTEER_PATROL)
    return member


async def assert_ledger_balanced(service: RunningService) -> None:
    async with service.pool.acquire() as conn:
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT posting_id FROM entries GROUP BY posting_id"
            " HAVING count(*) <> 2 OR sum(points) <> 0) AS bad"
        )
        total = await conn.fetchval("SELECT coalesce(sum(points), 0) FROM entries")
        drift = await conn.fetchval(
            "SELECT count(*) FROM accounts a WHERE a.balance <>"
            " (SELECT coalesce(sum(points), 0) FROM entries e"
            "  WHERE e.account_id = a.id)"
        )
    assert (unbalanced, total, drift) == (0, 0, 0)


async def test_story_6_two_anti_fraud_talks_and_patrols_earn_120_and_rank_first(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    home = await household(stub, town.micro_grid)
    old_man = await resident(stub, home.id, name="林阿公")
    neighbour = await resident(stub, home.id, name="陈大姐")
    for activity in [pb.ACTIVITY_ANTI_FRAUD_TALK] * 2 + [
        pb.ACTIVITY_VOLUNTEER_PATROL
    ] * 3:
        await earn(stub, old_man.id, activity)
    await earn(stub, neighbour.id, pb.ACTIVITY_VOLUNTEER_PATROL)

    own = await stub.GetBalance(
        pb.GetBalanceRequest(
            account=pb.AccountRef(kind=pb.ACCOUNT_KIND_RESIDENT, owner_id=old_man.id)
        ),
        metadata=as_resident(old_man.id),
    )
    village = await stub.ListLeaderboard(
        pb.ListLeaderboardRequest(area_id=town.village.id),
        metadata=as_resident(neighbour.id),
    )
    micro_grid = await stub.ListLeaderboard(
        pb.ListLeaderboardRequest(area_id=town.micro_grid.id), metadata=AS_OPERATOR
    )

    assert (own.points, own.earned, own.value_fen) == (120, 120, 1200)
    rows = [(r.rank, r.resident_id, r.display_name, r.earned) for r in village.rows]
    assert rows == [(1, old_man.id, "林*", 120), (2, neighbour.id, "陈*", 20)]
    assert micro_grid.rows == village.rows


async def test_1000_concurrent_spends_against_100_points_let_exactly_100_through(
    stub: pb_grpc.ResidentsServiceAsyncStub,
    town: Place,
    residents_service: RunningService,
) -> None:
    member = await funded(stub, town, patrols=5)
    merchant_id = await open_merchant(stub)

    async def spend() -> grpc.StatusCode:
        try:
            await stub.SpendPoints(
                pb.SpendPointsRequest(
                    resident_id=member.id,
                    merchant_id=merchant_id,
                    points=1,
                    request_id=str(uuid.uuid4()),
                ),
                metadata=as_resident(member.id),
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    outcomes = Counter(await asyncio.gather(*(spend() for _ in range(1000))))

    assert outcomes == {
        grpc.StatusCode.OK: 100,
        grpc.StatusCode.FAILED_PRECONDITION: 900,
    }
    assert await balance(stub, pb.ACCOUNT_KIND_RESIDENT, member.id) == 0
    assert await balance(stub, pb.ACCOUNT_KIND_MERCHANT, merchant_id) == 100
    await assert_ledger_balanced(residents_service)


async def test_spends_with_one_request_id_post_once(
    stub: pb_grpc.ResidentsServiceAsyncStub,
    town: Place,
    residents_service: RunningService,
) -> None:
    member = await funded(stub, town, patrols=2)
    merchant_id = await open_merchant(stub)
    request = pb.SpendPointsRequest(
        resident_id=member.id,
        merchant_id=merchant_id,
        points=15,
        request_id=str(uuid.uuid4()),
    )

    answers = await asyncio.gather(
        *(stub.SpendPoints(request, metadata=AS_SYSTEM) for _ in range(20))
    )
    statement = await stub.ListStatement(
        pb.ListStatementRequest(
            account=pb.AccountRef(kind=pb.ACCOUNT_KIND_MERCHANT, owner_id=merchant_id)
        ),
        metadata=AS_OPERATOR,
    )

    assert all(a == answers[0] for a in answers)
    assert answers[0].entry.balance_after == 25
    assert await balance(stub, pb.ACCOUNT_KIND_RESIDENT, member.id) == 25
    assert [e.points for e in statement.entries] == [15]
    await assert_ledger_balanced(residents_service)


async def test_a_committed_hold_pays_the_merchant_once(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    member = await funded(stub, town, patrols=3)
    merchant_id = await open_merchant(stub)
    merchant = (("x-cloudark-subject", merchant_id), ("x-cloudark-role", "merchant"))

    held = await stub.HoldPoints(
        pb.HoldPointsRequest(resident_id=member.id, merchant_id=merchant_id, points=50),
        metadata=as_resident(member.id),
    )
    during = await balance(stub, pb.ACCOUNT_KIND_RESIDENT, member.id)
    commits = [
        await stub.CommitHold(
            pb.CommitHoldRequest(hold_id=held.hold.id), metadata=merchant
        )
        for _ in range(2)
    ]
    release = await call_error(
        stub.ReleaseHold(
            pb.ReleaseHoldRequest(hold_id=held.hold.id), metadata=as_resident(member.id)
        )
    )

    assert held.hold.state == pb.HOLD_STATE_PENDING
    assert during == 10
    assert [c.hold.state for c in commits] == [pb.HOLD_STATE_COMMITTED] * 2
    assert release.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await balance(stub, pb.ACCOUNT_KIND_MERCHANT, merchant_id) == 50
    assert await balance(stub, pb.ACCOUNT_KIND_RESIDENT, member.id) == 10


async def test_a_released_hold_gives_the_points_back_once(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    member = await funded(stub, town, patrols=1)
    merchant_id = await open_merchant(stub)
    held = await stub.HoldPoints(
        pb.HoldPointsRequest(resident_id=member.id, merchant_id=merchant_id, points=20),
        metadata=AS_SYSTEM,
    )

    for _ in range(2):
        released = await stub.ReleaseHold(
            pb.ReleaseHoldRequest(hold_id=held.hold.id), metadata=AS_SYSTEM
        )
    commit = await call_error(
        stub.CommitHold(pb.CommitHoldRequest(hold_id=held.hold.id), metadata=AS_SYSTEM)
    )

    assert released.hold.state == pb.HOLD_STATE_RELEASED
    assert commit.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await balance(stub, pb.ACCOUNT_KIND_RESIDENT, member.id) == 20
    assert await balance(stub, pb.ACCOUNT_KIND_MERCHANT, merchant_id) == 0


async def test_a_hold_beyond_the_balance_is_failed_precondition(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    member = await funded(stub, town, patrols=1)
    merchant_id = await open_merchant(stub)

    error = await call_error(
        stub.HoldPoints(
            pb.HoldPointsRequest(
                resident_id=member.id, merchant_id=merchant_id, points=21
            ),
            metadata=AS_SYSTEM,
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (error.details() or "").startswith("points")
    assert await balance(stub, pb.ACCOUNT_KIND_RESIDENT, member.id) == 20


async def test_statement_lists_entries_newest_first_across_pages(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    member = await funded(stub, town, patrols=2)
    await earn(stub, member.id, pb.ACTIVITY_CONFIRMED_TIP_OFF)
    account = pb.AccountRef(kind=pb.ACCOUNT_KIND_RESIDENT, owner_id=member.id)

    entries: list[pb.Entry] = []
    token = ""
    while True:
        page = await stub.ListStatement(
            pb.ListStatementRequest(account=account, page_size=2, page_token=token),
            metadata=as_resident(member.id),
        )
        entries += page.entries
        token = page.next_page_token
        if not token:
            break

    assert [(e.points, e.balance_after) for e in entries] == [
        (50, 90),
        (20, 40),
        (20, 20),
    ]
    assert entries[0].activity == pb.ACTIVITY_CONFIRMED_TIP_OFF
    assert entries[0].counterparty.kind == pb.ACCOUNT_KIND_CITY


async def test_an_operator_changes_what_an_activity_earns(
    stub: pb_grpc.ResidentsServiceAsyncStub, town: Place
) -> None:
    member = await resident(stub, (await household(stub, town.micro_grid)).id)
    rules = await stub.ListEarningRules(
        pb.ListEarningRulesRequest(), metadata=AS_SYSTEM
    )
    before = {r.activity: r.points for r in rules.rules}[pb.ACTIVITY_EPIDEMIC_DUTY]
    try:
        await stub.SetEarningRule(
            pb.SetEarningRuleRequest(activity=pb.ACTIVITY_EPIDEMIC_DUTY, points=45),
            metadata=AS_OPERATOR,
        )
        earned = await earn(stub, member.id, pb.ACTIVITY_EPIDEMIC_DUTY)
    finally:
        await stub.SetEarningRule(
            pb.SetEarningRuleRequest(activity=pb.ACTIVITY_EPIDEMIC_DUTY, points=before),
            metadata=AS_OPERATOR,
        )

    assert earned.entry.points == 45
    assert len(rules.rules) == 6


@pytest.mark.parametrize(
    ("points", "merchant", "bad"),
    [
        (-5, True, ["points"]),
        (0, True, ["points"]),
        (10_000_000, True, ["points"]),
        (5, False, []),
    ],
)
async def test_bad_spends_are_refused_precisely_and_change_nothing(
    stub: pb_grpc.ResidentsServiceAsyncStub,
    town: Place,
    points: int,
    merchant: bool,
    bad: list[str],
) -> None:
    member = await funded(stub, town, patrols=1)
    merchant_id = await open_merchant(stub) if merchant else str(uuid.uuid4())

    error = await call_error(
        stub.SpendPoints(
            pb.SpendPointsRequest(
                resident_id=member.id, merchant_id=merchant_id, points=points
            ),
            metadata=AS_SYSTEM,
        )
    )

    if bad:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_fields(error) == bad
    else:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "merchant_id" in (error.details() or "")
    assert await balance(stub, pb.ACCOUNT_KIND_RESIDENT, member.id) == 20


async def test_unknown_accounts_and_rules_are_refused(
    stub: pb_grpc.ResidentsServiceAsyncStub,
) -> None:
    nobody = str(uuid.uuid4())
    unknown_resident = await call_error(
        stub.EarnPoints(
            pb.EarnPointsRequest(
                resident_id=nobody, activity=pb.ACTIVITY_VOLUNTEER_PATROL
            ),
            metadata=AS_SYSTEM,
        )
    )
    unknown_account = await call_error(
        stub.GetBalance(
            pb.GetBalanceRequest(
                account=pb.AccountRef(kind=pb.ACCOUNT_KIND_MERCHANT, owner_id=nobody)
            ),
            metadata=AS_OPERATOR,
        )
    )
    bad_rule = await call_error(
        stub.SetEarningRule(
            pb.SetEarningRuleRequest(activity=pb.ACTIVITY_VOLUNTEER_PATROL, points=-1),
            metadata=AS_OPERATOR,
        )
    )
    no_activity = await call_error(
        stub.EarnPoints(pb.EarnPointsRequest(resident_id=nobody), metadata=AS_SYSTEM)
    )

    assert unknown_resident.code() == grpc.StatusCode.NOT_FOUND
    assert "resident_id" in (unknown_resident.details() or "")
    assert unknown_account.code() == grpc.StatusCode.NOT_FOUND
    assert "account.owner_id" in (unknown_account.details() or "")
    assert bad_rule.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(bad_rule) == ["points"]
    assert bad_fields(no_activity) == ["activity"]


async def test_the_ledger_is_append_only(residents_service: RunningService) -> None:
    async with residents_service.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="append-only"):
            await conn.execute("UPDATE entries SET points = points + 1")
        with pytest.raises(asyncpg.CheckViolationError, match="append-only"):
            await conn.execute("DELETE FROM postings")
