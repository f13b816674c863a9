"""No plaintext ID or phone number in the database, the logs, or the answers
given to callers who may not see them."""

from __future__ import annotations

import logging
import uuid

import grpc
import pytest
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc
from google.protobuf.field_mask_pb2 import FieldMask

from services.common.identity import Role
from services.common.server import RunningService
from tests.helpers import call_error
from tests.residents.support import (
    AS_OPERATOR,
    as_resident,
    as_staff,
    household,
    national_id,
    phone,
    place,
    resident,
)

TEXT_TYPES = ("text", "character varying", "bytea", "json", "jsonb", "ARRAY")


async def occurrences(service: RunningService, secrets: list[str]) -> list[str]:
    """Every column of every table, in every schema, that holds a secret."""
    found: list[str] = []
    async with service.pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT table_schema, table_name, column_name, data_type"
            " FROM information_schema.columns"
            " JOIN information_schema.tables USING (table_schema, table_name)"
            " WHERE table_type = 'BASE TABLE' AND data_type = ANY($1::text[])"
            "   AND table_schema NOT IN ('pg_catalog', 'information_schema')",
            list(TEXT_TYPES),
        )
        for c in columns:
            column = f'"{c["table_schema"]}"."{c["table_name"]}"."{c["column_name"]}"'
            as_bytes = (
                f'"{c["column_name"]}"'
                if c["data_type"] == "bytea"
                else f"convert_to(\"{c['column_name']}\"::text, 'UTF8')"
            )
            for secret in secrets:
                hit = await conn.fetchval(
                    f'SELECT true FROM "{c["table_schema"]}"."{c["table_name"]}"'
                    f" WHERE position(convert_to($1, 'UTF8') in {as_bytes}) > 0"
                    " LIMIT 1",
                    secret,
                )
                if hit:
                    found.append(column)
    return found


async def test_plaintext_numbers_appear_nowhere_they_should_not(
    residents_channel: grpc.aio.Channel,
    grids_channel: grpc.aio.Channel,
    residents_service: RunningService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub = pb_grpc.ResidentsServiceStub(residents_channel)
    town = await place(grids_channel)
    home = await household(stub, town.micro_grid)
    number, first_phone, second_phone = national_id(), phone(), phone()
    secrets = [number, first_phone, second_phone]
    cadre = as_staff(Role.CADRE, town.village)
    worker = as_staff(Role.GRID_WORKER, town.grid)
    answers: dict[str, list[bytes]] = {"cadre": [], "housemate": [], "worker": []}

    with caplog.at_level(logging.DEBUG):
        registered = await stub.RegisterResident(
            pb.RegisterResidentRequest(
                household_id=home.id,
                name="王海",
                national_id=number,
                phone=first_phone,
                request_id=str(uuid.uuid4()),
            ),
            metadata=AS_OPERATOR,
        )
        me = registered.resident
        housemate = await resident(stub, home.id)
        await stub.UpdateResident(
            pb.UpdateResidentRequest(
                resident=pb.Resident(id=me.id, phone=second_phone),
                update_mask=FieldMask(paths=["phone"]),
                request_id=str(uuid.uuid4()),
            ),
            metadata=as_resident(me.id),
        )
        duplicate = await call_error(
            stub.RegisterResident(
                pb.RegisterResidentRequest(
                    household_id=home.id,
                    name="x",
                    national_id=number,
                    phone=first_phone,
                ),
                metadata=AS_OPERATOR,
            )
        )
        malformed = await call_error(
            stub.RegisterResident(
                pb.RegisterResidentRequest(
                    household_id=home.id,
                    name="x",
                    national_id=number[:-1] + ("0" if number[-1] != "0" else "1"),
                    phone="2" + first_phone[1:],
                ),
                metadata=AS_OPERATOR,
            )
        )
        for who, metadata in [
            ("cadre", cadre),
            ("housemate", as_resident(housemate.id)),
            ("worker", worker),
        ]:
            replies = [
                await stub.GetResident(
                    pb.GetResidentRequest(id=me.id), metadata=metadata
                ),
                await stub.GetHousehold(
                    pb.GetHouseholdRequest(id=home.id), metadata=metadata
                ),
            ]
            if who != "housemate":
                replies += [
                    await stub.ListResidents(
                        pb.ListResidentsRequest(area_id=town.micro_grid.id),
                        metadata=metadata,
                    ),
                    await stub.SearchResidents(
                        pb.SearchResidentsRequest(national_id=number), metadata=metadata
                    ),
                ]
            answers[who] = [r.SerializeToString() for r in replies]

    assert me.national_id == number  # the operator sees it, so it was there to leak
    assert await occurrences(residents_service, secrets) == []
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert [s for s in secrets if s in logged] == []
    for error in (duplicate, malformed):
        assert [s for s in secrets if s in (error.details() or "")] == []
    for who in ("cadre", "housemate"):
        blob = b"".join(answers[who])
        assert [s for s in secrets if s.encode() in blob] == [], who
    worker_blob = b"".join(answers["worker"])
    assert number.encode() not in worker_blob
    assert second_phone.encode() in worker_blob  # grid workers phone residents
