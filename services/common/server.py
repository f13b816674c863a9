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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, cast

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import db
from services.common.config import Settings
from services.common.errors import (
    DomainError,
    Unavailable,
    from_database_error,
    to_status,
)
from services.common.idempotency import forget_old_keys
from services.common.logs import configure_logging
from services.common.tracing import setup_tracing

log = logging.getLogger(__name__)

# Adds the service's servicers to the server; returns their full names.
Register = Callable[[grpc.aio.Server, asyncpg.Pool, Settings], Sequence[str]]


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    schema: str
    migrations: Path
    register: Register


@dataclass
class RunningService:
    definition: ServiceDefinition
    server: grpc.aio.Server
    port: int
    pool: asyncpg.Pool
    health: health.aio.HealthServicer

    async def stop(self, grace: float = 5.0) -> None:
        """Stops taking calls, lets calls in flight finish, closes the pool."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.pool.close()


async def start_service(
    definition: ServiceDefinition, settings: Settings, port: int | None = None
) -> RunningService:
    """Starts the service on port (its configured port when None; 0 for any)."""
    await db.wait_for_database(settings.database_url)
    pool = await db.create_pool(settings, definition.schema)
    if settings.migrate_on_start:
        await db.migrate(pool, definition.schema, definition.migrations)
    await forget_old_keys(pool)

    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
    names = list(definition.register(server, pool, settings))
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
    bound = server.add_insecure_port(f"{settings.bind_host}:{wanted}")
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "service %s listening on %s:%s", definition.name, settings.bind_host, bound
    )
    return RunningService(definition, server, bound, pool, health_servicer)


def main(definition: ServiceDefinition) -> None:
    """Entry point of a service process: serve until SIGTERM or SIGINT."""
    configure_logging(definition.name)
    setup_tracing(definition.name)
    asyncio.run(_serve_until_signalled(definition))


async def _serve_until_signalled(definition: ServiceDefinition) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = await start_service(definition, Settings.from_env())
    await stop.wait()
    log.info("service %s stopping", definition.name)
    await service.stop()


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Turns every failure of a handler into a precise gRPC status.

    Domain errors keep their code and details; database errors are mapped;
    anything else is logged and answered INTERNAL, never UNKNOWN.
    """

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
            _guarded(behaviour, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _guarded(behaviour: Behaviour, method: str) -> Behaviour:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behaviour(request, context)
        except grpc.aio.AbortError:
            raise
        except DomainError as error:
            failure = error
        except asyncpg.PostgresError as error:
            failure = from_database_error(error)
            if failure.code == grpc.StatusCode.INTERNAL:
                log.error("database error in %s: %s", method, type(error).__name__)
        except (OSError, asyncpg.InterfaceError) as error:
            log.warning(
                "%s could not reach the database: %s", method, type(error).__name__
            )
            failure = Unavailable("the database is not reachable; retry")
        except Exception:
            log.exception("unexpected failure in %s", method)
            failure = DomainError("internal error")
        status = to_status(failure)
        await context.abort(status.code, status.details, status.trailing_metadata)

    return guarded
