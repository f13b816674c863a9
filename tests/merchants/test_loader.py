"""The bulk loader: the seed city's 2,554 merchants, through the grids
loader's hook, with their offers and points accounts."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import grpc
import pytest
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb

from services.common.server import RunningService
from services.grids import loader as grids_loader
from services.grids.loader import DEMO_STAFF, load_city
from services.merchants import loader
from services.residents.pii import Keyring
from tests.merchants.support import (
    Stubs,
    as_resident,
    points_of,
    stubs,
)
from workflows.city.plan import DEMO


@pytest.fixture
async def api(
    merchants_service: RunningService, residents_channel: grpc.aio.Channel
) -> AsyncIterator[Stubs]:
    both = stubs(merchants_service, residents_channel)
    yield both
    await both.close()


async def test_a_bulk_loaded_city_gets_the_seeds_2554_merchants_once(
    api: Stubs,
    grids_service: RunningService,
    merchants_service: RunningService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = str(random.randrange(10**7, 10**8))
    monkeypatch.setattr(grids_loader, "PEOPLE_LOADERS", [loader.load_people])
    async with grids_service.pool.acquire() as conn:
        city = await load_city(
            conn, name=f"Demo {code}", code=code, size=DEMO, staff=DEMO_STAFF, seed=1
        )
        again = await load_city(
            conn, name=f"Demo {code}", code=code, size=DEMO, staff=DEMO_STAFF, seed=1
        )
        villages = await loader.villages_of_city(conn, city.city_id)
    async with merchants_service.pool.acquire() as conn:
        merchants = await conn.fetchval(
            "SELECT count(*) FROM merchants WHERE area_ids[1] = $1", city.city_id
        )
        offers = await conn.fetchval(
            "SELECT count(*) FROM offers o JOIN merchants m ON m.id = o.merchant_id"
            " WHERE m.area_ids[1] = $1",
            city.city_id,
        )
        one = await conn.fetchval(
            "SELECT id::text FROM merchants WHERE area_ids[1] = $1 AND legal_form = 1"
            " ORDER BY id LIMIT 1",
            city.city_id,
        )
        repeat = await loader.load(conn, Keyring.from_env(), villages, count=10)
    page = await api.merchants.ListMerchants(
        pb.ListMerchantsRequest(area_id=str(city.city_id), page_size=1000),
        metadata=as_resident("someone"),
    )
    shown = await api.merchants.GetMerchant(
        pb.GetMerchantRequest(id=one), metadata=as_resident("someone")
    )

    assert again.city_id == city.city_id
    assert merchants == loader.MERCHANTS == 2554
    assert offers > merchants // 2
    assert repeat == loader.LoadResult()
    assert len(page.merchants) == 1000
    assert page.next_page_token
    assert shown.merchant.contact_phone.startswith("17")
    assert "****" in shown.merchant.contact_phone
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_MERCHANT, one) == 0
