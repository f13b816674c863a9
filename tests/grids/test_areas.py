"""The grids hierarchy through the gRPC API of a real server on a real port."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from cloudark.grids.v1 import grids_pb2 as pb
from cloudark.grids.v1 import grids_pb2_grpc as pb_grpc

from services.common.identity import Caller, Role
from tests.conftest import OPERATOR
from tests.helpers import bad_fields, call_error, rich_status

CITY, TOWN, VILLAGE, GRID, MICRO_GRID = (
    pb.AREA_KIND_CITY,
    pb.AREA_KIND_TOWN,
    pb.AREA_KIND_VILLAGE,
    pb.AREA_KIND_GRID,
    pb.AREA_KIND_MICRO_GRID,
)
AS_OPERATOR = OPERATOR.metadata()


@pytest.fixture
def stub(grids_channel: grpc.aio.Channel) -> pb_grpc.GridsServiceAsyncStub:
    return pb_grpc.GridsServiceStub(grids_channel)


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


async def create(
    stub: pb_grpc.GridsServiceAsyncStub,
    kind: int,
    parent: pb.Area | None = None,
    **fields: str,
) -> pb.Area:
    request = pb.CreateAreaRequest(
        kind=kind,  # type: ignore[arg-type]
        name=fields.pop("name", unique("area")),
        parent_id=parent.id if parent else "",
        **fields,
    )
    response = await stub.CreateArea(request, metadata=AS_OPERATOR)
    return response.area


async def chain(stub: pb_grpc.GridsServiceAsyncStub) -> list[pb.Area]:
    """A fresh city with one town, village, grid and micro-grid under it."""
    areas = [await create(stub, CITY)]
    for kind in (TOWN, VILLAGE, GRID, MICRO_GRID):
        areas.append(await create(stub, kind, areas[-1]))
    return areas


async def children(
    stub: pb_grpc.GridsServiceAsyncStub, parent: pb.Area
) -> list[pb.Area]:
    response = await stub.ListAreas(
        pb.ListAreasRequest(parent_id=parent.id, page_size=1000), metadata=AS_OPERATOR
    )
    return list(response.areas)


async def test_each_kind_sits_under_the_kind_above_it(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    city, town, village, grid, micro_grid = await chain(stub)

    assert micro_grid.parent_id == grid.id
    assert list(micro_grid.ancestor_ids) == [city.id, town.id, village.id, grid.id]
    fetched = await stub.GetArea(
        pb.GetAreaRequest(id=micro_grid.id), metadata=AS_OPERATOR
    )
    assert fetched.area == micro_grid


async def test_children_are_listed_by_name_across_pages(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    city = await create(stub, CITY)
    names = [f"Town {i}" for i in (3, 1, 4, 5, 2)]
    for name in names:
        await create(stub, TOWN, city, name=name)

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stub.ListAreas(
            pb.ListAreasRequest(parent_id=city.id, page_size=2, page_token=token),
            metadata=AS_OPERATOR,
        )
        seen += [a.name for a in page.areas]
        pages += 1
        token = page.next_page_token
        if not token:
            break

    assert seen == sorted(names)
    assert pages == 3


async def test_rename_keeps_the_area_and_changes_its_name(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    _, town, *_ = await chain(stub)

    renamed = await stub.RenameArea(
        pb.RenameAreaRequest(id=town.id, name="Shenjiamen Street"), metadata=AS_OPERATOR
    )

    assert renamed.area.id == town.id
    assert renamed.area.name == "Shenjiamen Street"
    before, after = town.update_time.ToDatetime(), renamed.area.update_time.ToDatetime()
    assert after > before


async def test_move_carries_the_whole_subtree(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    city, town, village, grid, micro_grid = await chain(stub)
    other_town = await create(stub, TOWN, city)

    moved = await stub.MoveArea(
        pb.MoveAreaRequest(id=village.id, new_parent_id=other_town.id),
        metadata=AS_OPERATOR,
    )

    assert moved.area.parent_id == other_town.id
    assert list(moved.area.ancestor_ids) == [city.id, other_town.id]
    deep = await stub.GetArea(pb.GetAreaRequest(id=micro_grid.id), metadata=AS_OPERATOR)
    assert list(deep.area.ancestor_ids) == [city.id, other_town.id, village.id, grid.id]
    assert await children(stub, town) == []


async def test_same_request_id_creates_one_area_and_answers_the_same(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    city = await create(stub, CITY)
    request = pb.CreateAreaRequest(
        kind=TOWN, name="Dinghai", parent_id=city.id, request_id=str(uuid.uuid4())
    )

    answers = await asyncio.gather(
        *(stub.CreateArea(request, metadata=AS_OPERATOR) for _ in range(10))
    )

    assert all(a == answers[0] for a in answers)
    assert [a.id for a in await children(stub, city)] == [answers[0].area.id]


async def test_request_id_reused_for_another_request_is_rejected(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    city = await create(stub, CITY)
    request_id = str(uuid.uuid4())
    await stub.CreateArea(
        pb.CreateAreaRequest(
            kind=TOWN, name="A", parent_id=city.id, request_id=request_id
        ),
        metadata=AS_OPERATOR,
    )

    error = await call_error(
        stub.CreateArea(
            pb.CreateAreaRequest(
                kind=TOWN, name="B", parent_id=city.id, request_id=request_id
            ),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["request_id"]
    assert [a.name for a in await children(stub, city)] == ["A"]


@pytest.mark.parametrize(
    ("request_fields", "fields"),
    [
        ({"kind": TOWN, "name": ""}, ["name"]),
        ({"kind": TOWN, "name": "   "}, ["name"]),
        ({"kind": TOWN, "name": "x" * 101}, ["name"]),
        ({"kind": TOWN, "name": "bad\x07name"}, ["name"]),
        ({"kind": 0, "name": "no kind"}, ["kind"]),
        ({"kind": 42, "name": "odd kind"}, ["kind"]),
        ({"kind": TOWN, "name": "T", "parent_id": "not-an-id"}, ["parent_id"]),
        ({"kind": CITY, "name": "C", "parent_id": uuid.uuid4().hex}, ["parent_id"]),
        ({"kind": TOWN, "name": "", "parent_id": ""}, ["name", "parent_id"]),
    ],
)
async def test_malformed_create_names_every_bad_field(
    stub: pb_grpc.GridsServiceAsyncStub,
    request_fields: dict[str, object],
    fields: list[str],
) -> None:
    request = pb.CreateAreaRequest(**request_fields)  # type: ignore[arg-type]
    if request.kind != CITY and "parent_id" not in request_fields:
        request.parent_id = (await create(stub, CITY)).id

    error = await call_error(stub.CreateArea(request, metadata=AS_OPERATOR))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(bad_fields(error)) == sorted(fields)


async def test_unknown_parent_is_not_found(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    name = unique("orphan")
    error = await call_error(
        stub.CreateArea(
            pb.CreateAreaRequest(kind=TOWN, name=name, parent_id=str(uuid.uuid4())),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "parent_id" in (error.details() or "")


async def test_micro_grid_directly_under_a_town_is_refused(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    _, town, *_ = await chain(stub)
    before = await children(stub, town)

    error = await call_error(
        stub.CreateArea(
            pb.CreateAreaRequest(kind=MICRO_GRID, name="Stray", parent_id=town.id),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "parent_id" in (error.details() or "")
    assert rich_status(error).details, "a PreconditionFailure detail is attached"
    assert await children(stub, town) == before


async def test_moves_that_would_make_a_cycle_are_refused(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    _, town, village, grid, _ = await chain(stub)

    onto_itself = await call_error(
        stub.MoveArea(
            pb.MoveAreaRequest(id=village.id, new_parent_id=village.id),
            metadata=AS_OPERATOR,
        )
    )
    under_own_grid = await call_error(
        stub.MoveArea(
            pb.MoveAreaRequest(id=village.id, new_parent_id=grid.id),
            metadata=AS_OPERATOR,
        )
    )

    assert onto_itself.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(onto_itself) == ["new_parent_id"]
    assert under_own_grid.code() == grpc.StatusCode.FAILED_PRECONDITION
    unchanged = await stub.GetArea(
        pb.GetAreaRequest(id=village.id), metadata=AS_OPERATOR
    )
    assert unchanged.area.parent_id == town.id


async def test_a_city_cannot_be_moved(stub: pb_grpc.GridsServiceAsyncStub) -> None:
    city = await create(stub, CITY)
    other = await create(stub, CITY)

    error = await call_error(
        stub.MoveArea(
            pb.MoveAreaRequest(id=city.id, new_parent_id=other.id), metadata=AS_OPERATOR
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_sibling_with_the_same_name_already_exists(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    city = await create(stub, CITY)
    await create(stub, TOWN, city, name="Putuo")

    error = await call_error(
        stub.CreateArea(
            pb.CreateAreaRequest(kind=TOWN, name="Putuo", parent_id=city.id),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("page_size", "page_token", "field"),
    [
        (-1, "", "page_size"),
        (10, "garbage!", "page_token"),
        (10, "eyJ2IjoxfQ", "page_token"),
    ],
)
async def test_bad_paging_is_invalid_argument(
    stub: pb_grpc.GridsServiceAsyncStub, page_size: int, page_token: str, field: str
) -> None:
    error = await call_error(
        stub.ListAreas(
            pb.ListAreasRequest(page_size=page_size, page_token=page_token),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == [field]


async def test_page_token_of_another_parent_is_refused(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    city = await create(stub, CITY)
    for _ in range(3):
        await create(stub, TOWN, city)
    other = await create(stub, CITY)
    first = await stub.ListAreas(
        pb.ListAreasRequest(parent_id=city.id, page_size=1), metadata=AS_OPERATOR
    )

    error = await call_error(
        stub.ListAreas(
            pb.ListAreasRequest(parent_id=other.id, page_token=first.next_page_token),
            metadata=AS_OPERATOR,
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["page_token"]


async def test_page_size_above_the_maximum_is_clamped(
    stub: pb_grpc.GridsServiceAsyncStub,
) -> None:
    city = await create(stub, CITY)
    await create(stub, TOWN, city)

    page = await stub.ListAreas(
        pb.ListAreasRequest(parent_id=city.id, page_size=1_000_000),
        metadata=AS_OPERATOR,
    )

    assert len(page.areas) == 1


async def test_changes_need_an_editor_role(stub: pb_grpc.GridsServiceAsyncStub) -> None:
    city = await create(stub, CITY)
    resident = Caller(subject="resident-1", role=Role.RESIDENT)

    denied = await call_error(
        stub.CreateArea(
            pb.CreateAreaRequest(kind=TOWN, name="Mine", parent_id=city.id),
            metadata=resident.metadata(),
        )
    )
    anonymous = await call_error(stub.GetArea(pb.GetAreaRequest(id=city.id)))
    can_read = await stub.GetArea(
        pb.GetAreaRequest(id=city.id), metadata=resident.metadata()
    )

    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    assert can_read.area.id == city.id
    assert await children(stub, city) == []


async def test_unknown_area_is_not_found(stub: pb_grpc.GridsServiceAsyncStub) -> None:
    error = await call_error(
        stub.GetArea(pb.GetAreaRequest(id=str(uuid.uuid4())), metadata=AS_OPERATOR)
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
