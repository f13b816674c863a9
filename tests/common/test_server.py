"""Every server answers health checks, lists itself through reflection and
maps every failure to a precise status."""

import urllib.request
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from cloudark.grids.v1 import grids_pb2 as pb
from cloudark.grids.v1 import grids_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from services.common.errors import DomainError
from services.common.metrics import serve_metrics
from services.common.server import EdgeInterceptor
from tests.conftest import OPERATOR, free_port
from tests.helpers import call_error


async def test_grids_server_is_serving(grids_channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(grids_channel)

    overall = await health.Check(health_pb2.HealthCheckRequest())
    grids = await health.Check(
        health_pb2.HealthCheckRequest(service="cloudark.grids.v1.GridsService")
    )

    assert overall.status == health_pb2.HealthCheckResponse.SERVING
    assert grids.status == health_pb2.HealthCheckResponse.SERVING


async def test_grids_server_lists_its_services_through_reflection(
    grids_channel: grpc.aio.Channel,
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(grids_channel)

    async def one_request() -> reflection_pb2.ServerReflectionResponse:
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        async for response in call:
            return response
        raise AssertionError("no reflection answer")

    answer = await one_request()
    names = {s.name for s in answer.list_services_response.service}

    assert "cloudark.grids.v1.GridsService" in names
    assert "grpc.health.v1.Health" in names


class Broken(pb_grpc.GridsServiceServicer):
    """A servicer with bugs, to show what a client sees when code fails."""

    async def GetArea(
        self, request: pb.GetAreaRequest, context: object
    ) -> pb.GetAreaResponse:
        raise KeyError("a bug")

    async def ListAreas(
        self, request: pb.ListAreasRequest, context: object
    ) -> pb.ListAreasResponse:
        raise DomainError("internal error")


@pytest.fixture
async def broken_channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[EdgeInterceptor()])
    pb_grpc.add_GridsServiceServicer_to_server(Broken(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    await channel.close()
    await server.stop(None)


async def test_a_bug_in_a_handler_is_internal_never_unknown(
    broken_channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    stub = pb_grpc.GridsServiceStub(broken_channel)

    bug = await call_error(
        stub.GetArea(pb.GetAreaRequest(id="x"), metadata=OPERATOR.metadata())
    )
    plain = await call_error(stub.ListAreas(pb.ListAreasRequest()))

    assert bug.code() == grpc.StatusCode.INTERNAL
    assert "a bug" not in (bug.details() or "")
    assert plain.code() == grpc.StatusCode.INTERNAL
    assert any("unexpected failure" in r.message for r in caplog.records)


async def test_every_answer_is_counted_by_method_and_code(
    grids_channel: grpc.aio.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = pb_grpc.GridsServiceStub(grids_channel)
    labels = {"method": "/cloudark.grids.v1.GridsService/GetArea", "code": "NOT_FOUND"}
    before = REGISTRY.get_sample_value("cloudark_rpc_handled_total", labels) or 0.0

    await call_error(
        stub.GetArea(
            pb.GetAreaRequest(id=str(uuid.uuid4())), metadata=OPERATOR.metadata()
        )
    )

    after = REGISTRY.get_sample_value("cloudark_rpc_handled_total", labels)
    assert after == before + 1
    monkeypatch.setenv("CLOUDARK_GRIDS_METRICS_PORT", str(free_port()))
    port = serve_metrics("grids")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        scraped = reply.read().decode()
    assert 'cloudark_rpc_handled_total{code="NOT_FOUND"' in scraped
