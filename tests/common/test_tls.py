"""Mutual TLS: only systems with a known client certificate get in, each as
the identity its certificate maps to."""

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cloudark.grids.v1 import grids_pb2 as pb
from cloudark.grids.v1 import grids_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import Settings
from services.common.server import RunningService, start_service
from services.common.tls import TlsConfig, load_clients
from services.grids.server import DEFINITION
from tests.conftest import OPERATOR
from tests.helpers import call_error
from tools.devcerts import make


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs")
    make(folder, ["gateway", "insurance-office"])
    make(folder / "stranger", ["gateway"], ca_name="Some other CA")
    return folder


def config(folder: Path, stem: str, ca: Path) -> TlsConfig:
    return TlsConfig(
        cert=(folder / f"{stem}.pem").read_bytes(),
        key=(folder / f"{stem}-key.pem").read_bytes(),
        ca=ca.read_bytes(),
        clients=load_clients(ca.parent / "clients.json"),
    )


@pytest.fixture(scope="module")
async def tls_service(certs: Path, settings: Settings) -> AsyncIterator[RunningService]:
    tls = config(certs, "server", certs / "ca.pem")
    service = await start_service(DEFINITION, settings, port=0, tls=tls)
    yield service
    await service.stop(grace=1)


def channel(
    service: RunningService, creds: grpc.ChannelCredentials
) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(f"localhost:{service.port}", creds)


def client_creds(
    certs: Path, stem: str, folder: Path | None = None
) -> grpc.ChannelCredentials:
    folder = folder or certs
    return grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca.pem").read_bytes(),
        private_key=(folder / f"{stem}-key.pem").read_bytes(),
        certificate_chain=(folder / f"{stem}.pem").read_bytes(),
    )


async def test_call_without_a_client_certificate_is_refused(
    certs: Path, tls_service: RunningService
) -> None:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca.pem").read_bytes()
    )
    async with channel(tls_service, creds) as ch:
        stub = pb_grpc.GridsServiceStub(ch)
        error = await call_error(
            stub.ListAreas(
                pb.ListAreasRequest(), metadata=OPERATOR.metadata(), timeout=5
            )
        )

    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_certificate_from_another_ca_is_refused(
    certs: Path, tls_service: RunningService
) -> None:
    creds = client_creds(certs, "gateway", certs / "stranger")
    async with channel(tls_service, creds) as ch:
        stub = pb_grpc.GridsServiceStub(ch)
        error = await call_error(stub.ListAreas(pb.ListAreasRequest(), timeout=5))

    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_gateway_certificate_calls_for_the_user_in_metadata(
    certs: Path, tls_service: RunningService
) -> None:
    async with channel(tls_service, client_creds(certs, "gateway")) as ch:
        stub = pb_grpc.GridsServiceStub(ch)
        created = await stub.CreateArea(
            pb.CreateAreaRequest(kind=pb.AREA_KIND_CITY, name="TLS city"),
            metadata=OPERATOR.metadata(),
        )
        anonymous = await call_error(
            stub.GetArea(pb.GetAreaRequest(id=created.area.id))
        )

    assert created.area.name == "TLS city"
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_government_system_may_call_only_its_listed_methods(
    certs: Path, tls_service: RunningService
) -> None:
    async with channel(tls_service, client_creds(certs, "gateway")) as ch:
        city = await pb_grpc.GridsServiceStub(ch).CreateArea(
            pb.CreateAreaRequest(kind=pb.AREA_KIND_CITY, name="Listed city"),
            metadata=OPERATOR.metadata(),
        )
    async with channel(tls_service, client_creds(certs, "insurance-office")) as ch:
        stub = pb_grpc.GridsServiceStub(ch)
        # Metadata claiming to be an operator is ignored for such a client.
        got = await stub.GetArea(
            pb.GetAreaRequest(id=city.area.id), metadata=OPERATOR.metadata()
        )
        denied = await call_error(
            stub.CreateArea(
                pb.CreateAreaRequest(kind=pb.AREA_KIND_CITY, name="Not mine"),
                metadata=OPERATOR.metadata(),
            )
        )
        health = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest()
        )

    assert got.area.id == city.area.id
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert health.status == health_pb2.HealthCheckResponse.SERVING
