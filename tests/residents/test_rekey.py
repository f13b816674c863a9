"""Key rotation: old ciphertexts are re-sealed under the new key."""

from __future__ import annotations

import base64
import os

import grpc
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc

from services.common.server import RunningService
from services.residents import pii
from services.residents.pii import Keyring
from services.residents.rekey import reencrypt
from tests.residents.support import AS_OPERATOR, household, national_id, place, resident


async def test_rotation_reseals_every_resident_and_rotating_back_restores_them(
    residents_channel: grpc.aio.Channel,
    grids_channel: grpc.aio.Channel,
    residents_service: RunningService,
) -> None:
    stub = pb_grpc.ResidentsServiceStub(residents_channel)
    town = await place(grids_channel)
    number = national_id()
    member = await resident(
        stub, (await household(stub, town.micro_grid)).id, id_number=number
    )
    dev = Keyring.from_env({})
    rotated = Keyring(
        keys={**dev.keys, "k2": os.urandom(32)}, active="k2", hmac_key=dev.hmac_key
    )
    pool = residents_service.pool

    moved = await reencrypt(pool, rotated, batch=7)
    under_k2 = await pool.fetchval(
        "SELECT count(*) FROM residents WHERE pii_key_id <> 'k2'"
    )
    back = await reencrypt(pool, Keyring(dev.keys | rotated.keys, "dev", dev.hmac_key))
    reply = await stub.GetResident(
        pb.GetResidentRequest(id=member.id), metadata=AS_OPERATOR
    )

    assert moved >= 1
    assert under_k2 == 0
    assert back == moved
    assert reply.resident.national_id == number


def test_key_configuration_from_the_environment_format() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    ring = Keyring.from_env(
        {
            pii.KEYS_VAR: f"2025a:{key}, 2026a:{key}",
            pii.ACTIVE_VAR: "2026a",
            pii.HMAC_VAR: key,
        }
    )

    assert sorted(ring.keys) == ["2025a", "2026a"]
    assert not ring.development
