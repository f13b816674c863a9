"""Who may call what: every RPC has its roles, and callers outside them are
refused before anything is read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from cloudark.merchants.v1 import merchants_pb2 as pb
from google.protobuf import message_factory
from google.protobuf.message import Message

from services.common.identity import Caller, Role
from services.common.server import RunningService
from services.merchants import access

SERVICE = pb.DESCRIPTOR.services_by_name["MerchantsService"]


def test_every_rpc_says_which_roles_may_call_it() -> None:
    assert set(access.ROLES) == {m.name for m in SERVICE.methods}
    assert set(access.ROLES) >= access.SYSTEM_METHODS


@pytest.fixture
async def channel(merchants_service: RunningService) -> AsyncIterator[grpc.aio.Channel]:
    address = f"127.0.0.1:{merchants_service.port}"
    async with grpc.aio.insecure_channel(address) as opened:
        yield opened


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_roles_outside_an_rpcs_roles_are_permission_denied(
    channel: grpc.aio.Channel, role: Role
) -> None:
    caller = Caller(subject=f"{role.value}-1", role=role)
    refused = []
    for method in SERVICE.methods:
        allowed = role in access.ROLES[method.name]
        if role == Role.SYSTEM:
            allowed = method.name in access.SYSTEM_METHODS
        if allowed:
            continue
        request_class = message_factory.GetMessageClass(method.input_type)
        output_class = message_factory.GetMessageClass(method.output_type)
        rpc: grpc.aio.UnaryUnaryMultiCallable[Message, Message] = channel.unary_unary(
            f"/{SERVICE.full_name}/{method.name}",
            request_serializer=_serialize,
            response_deserializer=output_class.FromString,
        )
        try:
            await rpc(request_class(), metadata=caller.metadata())
        except grpc.aio.AioRpcError as error:
            refused.append(error.code())
        else:
            refused.append(grpc.StatusCode.OK)
    assert set(refused) <= {grpc.StatusCode.PERMISSION_DENIED}


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
