"""GetResident under load, beside a bare grpc.aio echo of the same payload.

Both run in this process with about 50 calls in flight: the residents
service (with a real PostgreSQL, decryption and masking) and a generic-handler
echo server that answers every request with bytes of the same size as a
GetResident answer. The ratio says what the service costs over bare gRPC;
the target is at least 0.6.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import grpc
from cloudark.grids.v1 import grids_pb2 as gpb
from cloudark.grids.v1 import grids_pb2_grpc as gpb_grpc
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc

from bench.harness import BenchContext, Figure
from services.common.identity import Caller, Role
from services.grids.server import DEFINITION as GRIDS
from services.residents.pii import national_id_check_char
from services.residents.server import DEFINITION as RESIDENTS

IN_FLIGHT = 50
REQUESTS = 5_000
WARM_UP = 200
ECHO_METHOD = "/bench.Echo/Echo"
OPERATOR = Caller(subject="bench-operator", role=Role.OPERATOR).metadata()

Call = Callable[[], Awaitable[object]]


async def run(ctx: BenchContext) -> list[Figure]:
    stub, resident_id = await _residents_stub(ctx)
    request = pb.GetResidentRequest(id=resident_id)
    answer = await stub.GetResident(request, metadata=OPERATOR)
    payload = answer.SerializeToString()
    echo_server, echo_port = await _echo_server(len(payload))
    rates: list[float] = []
    p99s: list[float] = []
    echo_rates: list[float] = []
    echo_p99s: list[float] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}") as channel:
            echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
            echo = channel.unary_unary(ECHO_METHOD)
            raw = request.SerializeToString()

            async def echo_call() -> object:
                return await echo(raw, metadata=OPERATOR)

            async def service_call() -> object:
                return await stub.GetResident(request, metadata=OPERATOR)

            for _ in range(ctx.repeats):
                rate, p99 = await measure(service_call)
                rates.append(rate)
                p99s.append(p99)
                rate, p99 = await measure(echo_call)
                echo_rates.append(rate)
                echo_p99s.append(p99)
    finally:
        await echo_server.stop(None)
    return [
        Figure(
            scenario="residents",
            name=f"GetResident requests/s, {IN_FLIGHT} in flight",
            unit="req/s",
            samples=rates,
            target="≥ 0.6 × echo",
            baseline_name=f"grpc.aio echo, {len(payload)} bytes",
            baseline_samples=echo_rates,
        ),
        Figure(
            scenario="residents",
            name=f"GetResident p99, {IN_FLIGHT} in flight",
            unit="ms",
            samples=p99s,
            higher_is_better=False,
            baseline_name=f"grpc.aio echo, {len(payload)} bytes",
            baseline_samples=echo_p99s,
        ),
    ]


async def measure(call: Call) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) of REQUESTS calls, IN_FLIGHT at once."""
    await _drive(call, WARM_UP)
    latencies = await _drive(call, REQUESTS)
    elapsed = latencies.pop()
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    return REQUESTS / elapsed, p99


async def _drive(call: Call, total: int) -> list[float]:
    """Latencies of total calls by IN_FLIGHT workers, then the wall time."""
    remaining = total
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return [*latencies, time.perf_counter() - started]


async def _residents_stub(
    ctx: BenchContext,
) -> tuple[pb_grpc.ResidentsServiceAsyncStub, str]:
    """Starts grids and residents and registers one resident to read back."""
    grids = await ctx.start_service(GRIDS)
    saved = os.environ.get("CLOUDARK_GRIDS_ADDRESS")
    os.environ["CLOUDARK_GRIDS_ADDRESS"] = f"127.0.0.1:{grids.port}"
    try:
        residents = await ctx.start_service(RESIDENTS)
    finally:
        if saved is None:
            os.environ.pop("CLOUDARK_GRIDS_ADDRESS", None)
        else:
            os.environ["CLOUDARK_GRIDS_ADDRESS"] = saved
    micro_grid = await _micro_grid(gpb_grpc.GridsServiceStub(ctx.channel(grids)))
    stub = pb_grpc.ResidentsServiceStub(ctx.channel(residents))
    home = await stub.RegisterHousehold(
        pb.RegisterHouseholdRequest(micro_grid_id=micro_grid, address="No. 1 Quay"),
        metadata=OPERATOR,
    )
    member = await stub.RegisterResident(
        pb.RegisterResidentRequest(
            household_id=home.household.id,
            name="王海",
            national_id=_fresh_national_id(),
            phone="13812345678",
            request_id=f"bench-{home.household.id}",
        ),
        metadata=OPERATOR,
    )
    return stub, member.resident.id


def _fresh_national_id() -> str:
    # A new number per run: the bench database may keep earlier runs' residents.
    body = f"330904{random.randrange(1940, 2005)}0101{random.randrange(1000):03d}"
    return body + national_id_check_char(body)


async def _micro_grid(stub: gpb_grpc.GridsServiceAsyncStub) -> str:
    parent = ""
    for kind in range(gpb.AREA_KIND_CITY, gpb.AREA_KIND_MICRO_GRID + 1):
        reply = await stub.CreateArea(
            gpb.CreateAreaRequest(
                kind=kind,  # type: ignore[arg-type]
                name=f"bench {uuid.uuid4().hex[:8]}",
                parent_id=parent,
            ),
            metadata=OPERATOR,
        )
        parent = reply.area.id
    return parent


async def _echo_server(answer_size: int) -> tuple[grpc.aio.Server, int]:
    """A bare grpc.aio server answering every call with answer_size bytes."""
    answer = b"x" * answer_size

    async def echo(
        request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return answer

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port
