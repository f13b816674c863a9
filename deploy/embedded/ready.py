"""Waits for the stack, loads the city (demo or full), says where everything listens.

It stays up afterwards (honcho stops the whole stack when any process ends)
and exits on SIGTERM or SIGINT.
"""

import asyncio
import logging
import signal

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from services.common.config import Settings, env, env_int
from services.common.logs import configure_logging
from services.common.temporal import connect_temporal
from services.common.tls import open_channel, tls_from_env
from services.grids import config as grids_config
from services.grids import loader
from services.grids.loader import FULL_STAFF
from services.merchants.loader import load_people as load_merchants
from workflows.city.plan import DEMO, FULL
from workflows.city.workflows import LoadCityInput, LoadCityResult, LoadCityWorkflow

log = logging.getLogger(__name__)

SERVICES = [
    "grids",
    "residents",
    "notifications",
    "merchants",
    "errands",
    "casework",
    "care",
]
CITY_SIZES = {"demo": DEMO, "full": FULL}


async def wait_until_serving(address: str, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with open_channel(address, tls_from_env()) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"{address} did not become ready")
            await asyncio.sleep(0.5)


async def load_full_city(settings: Settings) -> LoadCityResult:
    """The seed-size city, bulk-loaded with COPY (the API would take minutes)."""
    conn = await asyncpg.connect(
        settings.database_url, server_settings={"search_path": grids_config.SCHEMA}
    )
    if load_merchants not in loader.PEOPLE_LOADERS:
        loader.PEOPLE_LOADERS.append(load_merchants)
    try:
        loaded = await loader.load_city(
            conn, name="Zhoushan", code="3309", size=FULL, staff=FULL_STAFF, seed=2022
        )
    finally:
        await conn.close()
    created = loaded.areas if loaded.created else 0
    areas = loaded.plan.count() if loaded.plan else 0
    return LoadCityResult(city_id=str(loaded.city_id), areas=areas, created=created)


async def load_city(settings: Settings, size_name: str) -> LoadCityResult:
    if size_name == "full":
        return await load_full_city(settings)
    client = await connect_temporal(settings)
    handle: WorkflowHandle[
        LoadCityWorkflow, LoadCityResult
    ] = await client.start_workflow(
        LoadCityWorkflow.run,
        LoadCityInput(
            name="Zhoushan", code="3309", size=CITY_SIZES[size_name], seed=2022
        ),
        id=f"city-load-3309-{size_name}",
        task_queue=settings.temporal_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return await handle.result()


def banner(settings: Settings, result: LoadCityResult | None) -> str:
    rows = [("Temporal Web UI", f"http://localhost:{settings.temporal_ui_port}")]
    rows.append(("Temporal frontend (gRPC)", settings.temporal_address))
    rows.append(("PostgreSQL", _without_password(settings.database_url)))
    rows += [
        (f"{name} service (gRPC)", settings.service_address(name)) for name in SERVICES
    ]
    gateway = f"http://localhost:{env_int('CLOUDARK_GATEWAY_PORT', 8080)}"
    rows.append(("gateway (HTTP/JSON, docs at /docs)", gateway))
    rows.append(
        ("codec server", f"http://localhost:{env_int('CLOUDARK_CODEC_PORT', 8888)}")
    )
    width = max(len(label) for label, _ in rows)
    lines = [f"  {label.ljust(width)}  {where}" for label, where in rows]
    if result is not None:
        lines.append(f"  city loaded: {result.areas} areas, city id {result.city_id}")
    return "Cloud Ark is up.\n" + "\n".join(lines) + "\n  Ctrl-C stops everything."


def _without_password(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}@{tail}"


async def _run() -> None:
    settings = Settings.from_env()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    for name in SERVICES:
        await wait_until_serving(settings.service_address(name))
    city = env("CLOUDARK_CITY", "demo")
    result = await load_city(settings, city) if city in CITY_SIZES else None
    print(banner(settings, result), flush=True)
    await stop.wait()


def main() -> None:
    configure_logging("ready")
    asyncio.run(_run())


if __name__ == "__main__":
    main()
