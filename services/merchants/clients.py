"""The merchants service's calls to other services, over gRPC.

It asks the grids service where a village lies, and the residents service to
open a merchant's points account. Calls carry the merchants service's own
identity.
"""

import uuid
from dataclasses import dataclass

import grpc
from cloudark.grids.v1 import grids_pb2, grids_pb2_grpc
from cloudark.residents.v1 import residents_pb2, residents_pb2_grpc

from services.common.config import Settings
from services.common.errors import Unavailable
from services.common.identity import Caller, Role
from services.common.tls import open_channel, tls_from_env
from services.merchants import config

VILLAGE = grids_pb2.AREA_KIND_VILLAGE
_METADATA = Caller(subject="cloudark-merchants", role=Role.SYSTEM).metadata()


@dataclass(frozen=True)
class AreaInfo:
    id: uuid.UUID
    kind: int
    ancestor_ids: list[uuid.UUID]


class Neighbours:
    """One channel each to the grids and residents services, for the process."""

    def __init__(self, grids_address: str, residents_address: str) -> None:
        tls = tls_from_env()
        self._channels = [
            open_channel(grids_address, tls),
            open_channel(residents_address, tls),
        ]
        self._grids = grids_pb2_grpc.GridsServiceStub(self._channels[0])
        self._residents = residents_pb2_grpc.ResidentsServiceStub(self._channels[1])

    @classmethod
    def from_settings(cls, settings: Settings) -> "Neighbours":
        return cls(
            settings.service_address("grids"), settings.service_address("residents")
        )

    async def get_area(self, area_id: uuid.UUID) -> AreaInfo | None:
        """The area, or None when the grids service does not know it."""
        try:
            reply = await self._grids.GetArea(
                grids_pb2.GetAreaRequest(id=str(area_id)),
                metadata=_METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise Unavailable("the grids service is not available; retry") from None
        area = reply.area
        return AreaInfo(
            id=uuid.UUID(area.id),
            kind=area.kind,
            ancestor_ids=[uuid.UUID(a) for a in area.ancestor_ids],
        )

    async def open_points_account(self, merchant_id: uuid.UUID) -> None:
        """Opens the merchant's points account; opening it again is harmless."""
        try:
            await self._residents.OpenMerchantAccount(
                residents_pb2.OpenMerchantAccountRequest(
                    merchant_id=str(merchant_id),
                    request_id=f"merchant-account/{merchant_id}",
                ),
                metadata=_METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError:
            raise Unavailable(
                "the residents service could not open the points account; retry"
            ) from None

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
