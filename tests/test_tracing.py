"""One trace runs from the caller's request through the workflow start, the
workflow, each activity, the gRPC calls it makes and the SQL they run."""

import uuid
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import start_service
from services.common.tracing import (
    instrument_libraries,
    temporal_interceptors,
    uninstrument_libraries,
)
from services.grids.server import DEFINITION
from workflows.city.plan import CitySize
from workflows.city.workflows import LoadCityInput, LoadCityWorkflow
from workflows.worker import build_worker


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument_libraries(provider)
    yield provider, exporter
    uninstrument_libraries()
    provider.shutdown()


async def test_spans_of_one_request_link_into_one_trace(
    traced: tuple[TracerProvider, InMemorySpanExporter],
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    task_queue: str,
) -> None:
    provider, exporter = traced
    service = await start_service(DEFINITION, settings, port=0)
    base = temporal_env.client
    client = Client(
        base.service_client,
        namespace=base.namespace,
        data_converter=base.data_converter,
        interceptors=temporal_interceptors(provider),
    )
    code = str(uuid.uuid4().int)[:8]
    size = CitySize(towns=1, villages=1, grids=1, micro_grids=1)
    data = LoadCityInput(name=f"Traced {code}", code=code, size=size, seed=1)
    tracer = provider.get_tracer("test")
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
            build_worker(client, task_queue, {"grids": channel}),
        ):
            with tracer.start_as_current_span("request") as root:
                await client.execute_workflow(
                    LoadCityWorkflow.run,
                    data,
                    id=f"traced-{code}",
                    task_queue=task_queue,
                )
    finally:
        await service.stop(grace=1)

    spans = exporter.get_finished_spans()
    in_trace = [
        s for s in spans if s.context.trace_id == root.get_span_context().trace_id
    ]
    names = {s.name for s in in_trace}
    assert "StartWorkflow:LoadCityWorkflow" in names
    assert "RunWorkflow:LoadCityWorkflow" in names
    assert "RunActivity:create_subtree" in names
    assert _grpc_spans(in_trace, "CreateArea") >= 2, "client and server spans"
    assert any(
        s.attributes and s.attributes.get("db.system") == "postgresql" for s in in_trace
    )


def _grpc_spans(spans: list[ReadableSpan], method: str) -> int:
    return sum(1 for s in spans if s.name.endswith(f"GridsService/{method}"))
