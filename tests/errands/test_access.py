"""The role gate of every ErrandsService RPC: a role outside the table is
PERMISSION_DENIED before anything is read; a role inside it gets on to
validation (an empty request is INVALID_ARGUMENT, or an empty list)."""

import grpc
import pytest
from cloudark.errands.v1 import errands_pb2 as pb
from google.protobuf.message import Message

from services.common.identity import Caller, Role
from services.common.server import RunningService
from services.errands.access import ROLES
from tests.reliability.fuzz import service_descriptor

SERVICE = "cloudark.errands.v1.ErrandsService"


def test_the_table_covers_every_rpc() -> None:
    methods = {m.name for m in service_descriptor(SERVICE).methods}
    assert set(ROLES) == methods


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("method", sorted(ROLES))
async def test_role_gate(
    errands_service: RunningService, method: str, role: Role
) -> None:
    caller = Caller(subject="00000000-0000-0000-0000-00000000abcd", role=role)
    request = getattr(pb, f"{method}Request")()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{errands_service.port}") as ch:
        rpc: grpc.aio.UnaryUnaryMultiCallable[Message, Message] = ch.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=getattr(pb, f"{method}Response").FromString,
        )
        try:
            await rpc(request, metadata=caller.metadata(), timeout=10)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            code = error.code()

    if role in ROLES[method]:
        assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OK)
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED
