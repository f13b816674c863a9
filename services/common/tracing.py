"""OpenTelemetry tracing, set up once per process from the environment.

OTEL_TRACES_EXPORTER chooses the exporter: "none" (the default), "console"
or "otlp" (configured by the standard OTEL_EXPORTER_OTLP_* variables).
"""

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from services.common.config import env

log = logging.getLogger(__name__)


def setup_tracing(process: str) -> bool:
    """Installs the tracer provider and the gRPC and asyncpg instrumentation.

    Must run before any gRPC server or channel is created. Returns whether
    tracing is on.
    """
    exporter_name = env("OTEL_TRACES_EXPORTER", "none").lower()
    if exporter_name == "none":
        return False
    exporter = _exporter(exporter_name)
    provider = TracerProvider(resource=Resource.create({"service.name": process}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    log.info("tracing on, exporting to %s", exporter_name)
    return True


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter()
    raise SystemExit(
        f"OTEL_TRACES_EXPORTER must be none, console or otlp, not {name!r}"
    )


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )

    GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
