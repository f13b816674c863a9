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
from temporalio.contrib.opentelemetry import TracingInterceptor

from services.common.config import env

log = logging.getLogger(__name__)


def setup_tracing(process: str) -> bool:
    """Installs the tracer provider and the gRPC and asyncpg instrumentation.

    Must run before any gRPC server or channel is created. Returns whether
    tracing is on.
    """
    if not tracing_enabled():
        return False
    exporter_name = env("OTEL_TRACES_EXPORTER", "none").lower()
    exporter = _exporter(exporter_name)
    provider = TracerProvider(resource=Resource.create({"service.name": process}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument_libraries()
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


def instrument_libraries(provider: TracerProvider | None = None) -> None:
    """Traces gRPC servers and channels created from now on, and asyncpg."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )

    for instrumentor in (
        GrpcAioInstrumentorServer(),  # type: ignore[no-untyped-call]
        GrpcAioInstrumentorClient(),  # type: ignore[no-untyped-call]
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
    ):
        instrumentor.instrument(tracer_provider=provider)


def uninstrument_libraries() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )

    for instrumentor in (
        GrpcAioInstrumentorServer(),  # type: ignore[no-untyped-call]
        GrpcAioInstrumentorClient(),  # type: ignore[no-untyped-call]
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
    ):
        instrumentor.uninstrument()


def temporal_interceptors(
    provider: TracerProvider | None = None,
) -> list[TracingInterceptor]:
    """Temporal client and worker interceptors: spans for workflows and activities."""
    if provider is None and not tracing_enabled():
        return []
    tracer = (provider or trace.get_tracer_provider()).get_tracer("cloudark.temporal")
    return [TracingInterceptor(tracer)]


def tracing_enabled() -> bool:
    return env("OTEL_TRACES_EXPORTER", "none").lower() != "none"
