"""Running a Cloud Ark gRPC service: one pattern for every service.

A service describes itself with a `ServiceDefinition` (its schema, its
migrations, how to add its servicers). `start_service` gives it a pool,
applies migrations, and serves it with error mapping, health checking and
reflection; `main` runs it until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, cast

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from temporalio.client import Client

from services.common import db
from services.common.config import Settings
from services.common.errors import (
    DomainError,
    Unavailable,
    from_database_error,
    to_status,
)
from services.common.idempotency import forget_old_keys
from services.common.identity import TRANSPORT_CALLER
from services.common.logs import configure_logging
from services.common.metrics import RPC_DURATION, RPC_HANDLED, serve_metrics
from services.common.temporal import connect_temporal
from services.common.tls import TlsConfig, tls_from_env, transport_caller
from services.common.tracing import setup_tracing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceContext:
    """What a service's servicers may use: its pool, the settings, and a
    Temporal client when the service starts workflows (a front door)."""

    pool: asyncpg.Pool
    settings: Settings
    temporal: Client | None = None


# Adds the service's servicers to the server; returns their full names.
Register = Callable[[grpc.aio.Server, ServiceContext], Sequence[str]]


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    schema: str
    migrations: Path
    register: Register
    # Front doors start and steer workflows, so they get a Temporal client.
    uses_temporal: bool = False


@dataclass
class RunningService:
    definition: ServiceDefinition
    server: grpc.aio.Server
    port: int
    pool: asyncpg.Pool
    health: health.aio.HealthServicer
    # Full names of the gRPC services it serves, e.g. cloudark.grids.v1.GridsService.
    service_names: list[str]

    async def stop(self, grace: float = 5.0) -> None:
        """Stops taking calls, lets calls in flight finish, closes the pool."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.pool.close()


async def start_service(
    definition: ServiceDefinition,
    settings: Settings,
    port: int | None = None,
    tls: TlsConfig | None = None,
    temporal: Client | None = None,
) -> RunningService:
    """Starts the service on port (its configured port when None; 0 for any).

    With tls, the server requires client certificates (services/common/tls.py).
    """
    await db.wait_for_database(settings.database_url)
    if definition.uses_temporal and temporal is None:
        temporal = await connect_temporal(settings)
    pool = await db.create_pool(settings, definition.schema)
    context = ServiceContext(pool, settings, temporal)
    try:
        return await _serve(definition, context, port, tls)
    except BaseException:
        await pool.close()
        raise


async def _serve(
    definition: ServiceDefinition,
    context: ServiceContext,
    port: int | None,
    tls: TlsConfig | None,
) -> RunningService:
    pool, settings = context.pool, context.settings
    if settings.migrate_on_start:
        await db.migrate(pool, definition.schema, definition.migrations)
    await forget_old_keys(pool)

    server = grpc.aio.server(interceptors=[EdgeInterceptor(tls)])
    names = list(definition.register(server, context))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    wanted = settings.service_port(definition.name) if port is None else port
    address = f"{settings.bind_host}:{wanted}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, tls.server_credentials())
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "service %s listening on %s:%s", definition.name, settings.bind_host, bound
    )
    return RunningService(definition, server, bound, pool, health_servicer, names)


def main(definition: ServiceDefinition) -> None:
    """Entry point of a service process: serve until SIGTERM or SIGINT."""
    configure_logging(definition.name)
    setup_tracing(definition.name)
    serve_metrics(definition.name)
    asyncio.run(_serve_until_signalled(definition))


async def _serve_until_signalled(definition: ServiceDefinition) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = await start_service(definition, Settings.from_env(), tls=tls_from_env())
    await stop.wait()
    log.info("service %s stopping", definition.name)
    await service.stop()


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    """The edge of every service: who is calling, what it costs, how it failed.

    With mutual TLS it resolves the caller from the client certificate; it
    records each call's status code and latency; and it turns every failure
    into a precise status: domain errors keep their code and details,
    database errors are mapped, anything else is logged and answered
    INTERNAL, never UNKNOWN.
    """

    def __init__(self, tls: TlsConfig | None = None) -> None:
        self._tls = tls

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method: str = handler_call_details.method
        behaviour = cast(Behaviour, handler.unary_unary)
        return grpc.unary_unary_rpc_method_handler(
            _guarded(behaviour, method, self._tls),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _guarded(behaviour: Behaviour, method: str, tls: TlsConfig | None) -> Behaviour:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if tls is not None:
                TRANSPORT_CALLER.set(transport_caller(tls, method, context))
            return await behaviour(request, context)
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except Exception as error:
            failure = _failure(error, method)
            code = failure.code
            status = to_status(failure)
            await context.abort(status.code, status.details, status.trailing_metadata)
        finally:
            RPC_HANDLED.labels(method, code.name).inc()
            RPC_DURATION.labels(method).observe(time.perf_counter() - started)

    return guarded


def _failure(error: Exception, method: str) -> DomainError:
    """The domain error a failure of a handler stands for."""
    if isinstance(error, DomainError):
        return error
    if isinstance(error, asyncpg.PostgresError):
        failure = from_database_error(error)
        if failure.code == grpc.StatusCode.INTERNAL:
            log.error("database error in %s: %s", method, type(error).__name__)
        return failure
    if isinstance(error, OSError | asyncpg.InterfaceError):
        log.warning("%s could not reach the database: %s", method, type(error).__name__)
        return Unavailable("the database is not reachable; retry")
    log.error("unexpected failure in %s", method, exc_info=error)
    return DomainError("internal error")
