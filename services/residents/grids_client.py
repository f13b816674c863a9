"""The residents service's view of the grids hierarchy, over gRPC.

The grids service owns areas; residents only asks it whether an area exists,
what kind it is and which areas lie above it.
"""

import uuid
from dataclasses import dataclass

import grpc
from cloudark.grids.v1 import grids_pb2, grids_pb2_grpc

from services.common.config import Settings
from services.common.errors import Unavailable
from services.common.identity import Caller, Role
from services.residents import config

MICRO_GRID = grids_pb2.AREA_KIND_MICRO_GRID
VILLAGE = grids_pb2.AREA_KIND_VILLAGE
# Calls carry the residents service's own identity.
_METADATA = Caller(subject="cloudark-residents", role=Role.SYSTEM).metadata()


@dataclass(frozen=True)
class AreaInfo:
    id: uuid.UUID
    kind: int
    ancestor_ids: list[uuid.UUID]


class GridsClient:
    """Looks areas up in the grids service; one channel for the process."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = grids_pb2_grpc.GridsServiceStub(self._channel)

    @classmethod
    def from_settings(cls, settings: Settings) -> "GridsClient":
        return cls(settings.service_address("grids"))

    async def get_area(self, area_id: uuid.UUID) -> AreaInfo | None:
        """The area, or None when the grids service does not know it."""
        try:
            reply = await self._stub.GetArea(
                grids_pb2.GetAreaRequest(id=str(area_id)),
                metadata=_METADATA,
                timeout=config.GRIDS_TIMEOUT,
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

    async def close(self) -> None:
        await self._channel.close()
