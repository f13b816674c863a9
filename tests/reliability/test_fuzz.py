"""Every RPC of every service, fed generated requests: only documented codes
come back (never UNKNOWN or INTERNAL), and a request that fails changes
nothing. CLOUDARK_FUZZ_REQUESTS sets how many per service (default 300)."""

import collections
import os
import random

import asyncpg
import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from services.catalog import DEFINITIONS
from services.common.identity import Caller, Role
from services.common.server import RunningService, ServiceDefinition
from tests.conftest import OPERATOR
from tests.reliability.fuzz import RequestFuzzer, service_descriptor

DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.ABORTED,
}
CALLERS: list[Caller | None] = [
    OPERATOR,
    OPERATOR,
    Caller(subject="fuzz-resident", role=Role.RESIDENT),
    Caller(subject="fuzz-worker", role=Role.GRID_WORKER),
    None,
]
REQUESTS = int(os.environ.get("CLOUDARK_FUZZ_REQUESTS", "300"))


@pytest.fixture(params=DEFINITIONS, ids=lambda d: d.name)
def service(request: pytest.FixtureRequest) -> RunningService:
    """The session's running service of that name (fixture `<name>_service`)."""
    definition: ServiceDefinition = request.param
    running: RunningService = request.getfixturevalue(f"{definition.name}_service")
    return running


async def test_generated_requests_get_documented_codes_and_failures_change_nothing(
    service: RunningService,
) -> None:
    methods = [
        method
        for name in service.service_names
        for method in service_descriptor(name).methods
    ]
    fuzzer = RequestFuzzer(seed=2022, known_ids=await known_ids(service))
    rng = random.Random(7)
    codes: collections.Counter[str] = collections.Counter()
    unexpected, changed = [], []
    await watch_writes(service)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            for _ in range(REQUESTS):
                method = rng.choice(methods)
                request = fuzzer.request(method)
                before = await fingerprint(service)
                code = await call(channel, method, request, rng.choice(CALLERS))
                codes[code.name] += 1
                if code not in DOCUMENTED:
                    unexpected.append((method.name, code.name, request))
                elif (
                    code != grpc.StatusCode.OK and await fingerprint(service) != before
                ):
                    changed.append((method.name, code.name, request))
    finally:
        await unwatch_writes(service)

    assert unexpected == []
    assert changed == []
    assert codes["INVALID_ARGUMENT"] > 0, "the generator reaches validation"
    assert len(codes) > 2, f"only {dict(codes)}"


async def call(
    channel: grpc.aio.Channel,
    method: MethodDescriptor,
    request: Message,
    caller: Caller | None,
) -> grpc.StatusCode:
    response_class = message_factory.GetMessageClass(method.output_type)
    rpc: grpc.aio.UnaryUnaryMultiCallable[Message, Message] = channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=_serialize,
        response_deserializer=response_class.FromString,
    )
    try:
        await rpc(request, metadata=caller.metadata() if caller else None, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def known_ids(service: RunningService) -> list[str]:
    """Ids already in the service's tables, so requests reach past lookups."""
    tables = await _tables(service.pool, service.definition.schema)
    ids: list[str] = []
    for table in tables:
        has_id = await service.pool.fetchval(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 AND column_name = 'id'",
            service.definition.schema,
            table,
        )
        if has_id:
            rows = await service.pool.fetch(f'SELECT id::text FROM "{table}" LIMIT 50')
            ids += [r["id"] for r in rows]
    return ids


async def watch_writes(service: RunningService) -> None:
    """Counts committed writes to the service's tables in a side table.

    A statement trigger bumps the counter inside the writing transaction, so
    a request that fails and rolls back leaves the counter as it was.
    """
    schema = service.definition.schema
    async with service.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS fuzz_writes (n bigint NOT NULL);"
            "DELETE FROM fuzz_writes; INSERT INTO fuzz_writes VALUES (0);"
            "CREATE OR REPLACE FUNCTION fuzz_count_write() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN UPDATE fuzz_writes SET n = n + 1;"
            " RETURN NULL; END $$;"
        )
        for table in await _tables(service.pool, schema):
            if table == "fuzz_writes":
                continue
            await conn.execute(
                f"CREATE OR REPLACE TRIGGER fuzz_watch AFTER INSERT OR UPDATE OR DELETE"
                f' ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION fuzz_count_write()'
            )


async def unwatch_writes(service: RunningService) -> None:
    async with service.pool.acquire() as conn, conn.transaction():
        for table in await _tables(service.pool, service.definition.schema):
            if table != "fuzz_writes":
                await conn.execute(f'DROP TRIGGER IF EXISTS fuzz_watch ON "{table}"')
        await conn.execute("DROP TABLE fuzz_writes; DROP FUNCTION fuzz_count_write()")


async def fingerprint(service: RunningService) -> int:
    """How many committed statements have written to the service's tables."""
    count: int = await service.pool.fetchval("SELECT n FROM fuzz_writes")
    return count


async def _tables(pool: asyncpg.Pool, schema: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = $1 AND table_type = 'BASE TABLE'"
        " AND table_name <> 'schema_migrations'",
        schema,
    )
    return sorted(r["table_name"] for r in rows)
