"""The errands service's view of residents: where a resident lives."""

import uuid
from dataclasses import dataclass

import grpc
from cloudark.residents.v1 import residents_pb2 as pb
from cloudark.residents.v1 import residents_pb2_grpc as pb_grpc

from services.common.config import Settings
from services.common.errors import FailedPrecondition, NotFound, Unavailable
from services.common.identity import Caller, Role
from services.errands import config

# Calls carry the errands service's own identity.
_METADATA = Caller(subject="cloudark-errands", role=Role.SYSTEM).metadata()


@dataclass(frozen=True)
class Home:
    """A resident's micro-grid and the areas above it, the city first."""

    resident_id: uuid.UUID
    area_ids: list[uuid.UUID]


class ResidentsClient:
    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = pb_grpc.ResidentsServiceStub(self._channel)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ResidentsClient":
        return cls(settings.service_address("residents"))

    async def home_of(self, resident_id: uuid.UUID, field: str) -> Home:
        """NOT_FOUND for an unknown resident; FAILED_PRECONDITION for one who left."""
        try:
            resident = (
                await self._stub.GetResident(
                    pb.GetResidentRequest(id=str(resident_id)),
                    metadata=_METADATA,
                    timeout=config.RESIDENTS_TIMEOUT,
                )
            ).resident
            if not resident.active:
                raise FailedPrecondition(
                    f"{field}: the resident no longer lives in the city", subject=field
                )
            household = (
                await self._stub.GetHousehold(
                    pb.GetHouseholdRequest(id=resident.household_id),
                    metadata=_METADATA,
                    timeout=config.RESIDENTS_TIMEOUT,
                )
            ).household
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("resident", field) from None
            raise Unavailable("the residents service is not available; retry") from None
        areas = [*household.area_ids, household.micro_grid_id]
        return Home(resident_id, [uuid.UUID(a) for a in areas])

    async def close(self) -> None:
        await self._channel.close()
