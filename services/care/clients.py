"""The care service's calls to the grids and residents services.

Calls carry the care service's own system identity. A NOT_FOUND from the
other side becomes our NOT_FOUND on the request field that named the thing;
a service that cannot be reached becomes UNAVAILABLE, so the caller retries.
"""

from dataclasses import dataclass

import grpc
from cloudark.errands.v1 import errands_pb2, errands_pb2_grpc
from cloudark.grids.v1 import (
    cases_pb2,
    cases_pb2_grpc,
    grids_pb2,
    grids_pb2_grpc,
    staff_pb2,
    staff_pb2_grpc,
)
from cloudark.residents.v1 import residents_pb2, residents_pb2_grpc

from services.care import config
from services.common.config import Settings
from services.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.common.identity import Caller, Role

METADATA = Caller(subject="cloudark-care", role=Role.SYSTEM).metadata()


@dataclass(frozen=True)
class Lookup:
    """What a NOT_FOUND or a refusal of the other service means for our caller."""

    resource: str
    field: str


def _mapped(error: grpc.aio.AioRpcError, lookup: Lookup) -> DomainError:
    code = error.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(lookup.resource, lookup.field)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(
            f"{lookup.field}: {error.details()}", subject=lookup.field
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument.field(lookup.field, error.details() or "is not valid")
    return Unavailable(f"{lookup.resource} lookup failed ({code.name}); retry")


class Upstream:
    """One channel each to grids, residents and errands, shared by the process."""

    def __init__(
        self, grids_address: str, residents_address: str, errands_address: str
    ) -> None:
        self._grids_channel = grpc.aio.insecure_channel(grids_address)
        self._residents_channel = grpc.aio.insecure_channel(residents_address)
        self._errands_channel = grpc.aio.insecure_channel(errands_address)
        self.errands = errands_pb2_grpc.ErrandsServiceStub(self._errands_channel)
        self.areas = grids_pb2_grpc.GridsServiceStub(self._grids_channel)
        self.staff = staff_pb2_grpc.StaffServiceStub(self._grids_channel)
        self.cases = cases_pb2_grpc.CasesServiceStub(self._grids_channel)
        self.residents = residents_pb2_grpc.ResidentsServiceStub(
            self._residents_channel
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> "Upstream":
        return cls(
            settings.service_address("grids"),
            settings.service_address("residents"),
            settings.service_address("errands"),
        )

    async def close(self) -> None:
        await self._grids_channel.close()
        await self._residents_channel.close()
        await self._errands_channel.close()

    async def resident(self, resident_id: str, field: str) -> residents_pb2.Resident:
        try:
            reply = await self.residents.GetResident(
                residents_pb2.GetResidentRequest(id=resident_id),
                metadata=METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise _mapped(error, Lookup("resident", field)) from None
        return reply.resident

    async def area(self, area_id: str, field: str) -> grids_pb2.Area:
        try:
            reply = await self.areas.GetArea(
                grids_pb2.GetAreaRequest(id=area_id),
                metadata=METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise _mapped(error, Lookup("area", field)) from None
        return reply.area

    async def helper(self, helper_id: str, field: str) -> staff_pb2.Helper:
        try:
            reply = await self.staff.GetHelper(
                staff_pb2.GetHelperRequest(id=helper_id),
                metadata=METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise _mapped(error, Lookup("squad member", field)) from None
        return reply.helper

    async def mode(self, area_id: str, field: str) -> grids_pb2.AreaMode:
        try:
            reply = await self.areas.GetAreaMode(
                grids_pb2.GetAreaModeRequest(area_id=area_id),
                metadata=METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise _mapped(error, Lookup("area", field)) from None
        return reply.area_mode

    async def set_mode(
        self, request: grids_pb2.SetAreaModeRequest
    ) -> grids_pb2.AreaMode:
        try:
            reply = await self.areas.SetAreaMode(
                request, metadata=METADATA, timeout=config.CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                # Every other field was checked here first.
                raise InvalidArgument.field(
                    "request_id", "was already used for a different request"
                ) from None
            raise _mapped(error, Lookup("area", "area_id")) from None
        return reply.area_mode

    async def create_case(self, request: cases_pb2.CreateCaseRequest) -> cases_pb2.Case:
        try:
            reply = await self.cases.CreateCase(
                request, metadata=METADATA, timeout=config.CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise _mapped(error, Lookup("micro-grid", "help")) from None
        return reply.case

    async def request_errand(
        self, request: errands_pb2.RequestErrandRequest
    ) -> errands_pb2.Errand:
        try:
            reply = await self.errands.RequestErrand(
                request, metadata=METADATA, timeout=config.CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise _mapped(error, Lookup("recipient", "recipient_id")) from None
        return reply.errand

    async def roster_page(
        self, village_id: str, page_token: str
    ) -> residents_pb2.ListKeyServiceRecipientsResponse:
        try:
            reply: residents_pb2.ListKeyServiceRecipientsResponse = (
                await self.residents.ListKeyServiceRecipients(
                    residents_pb2.ListKeyServiceRecipientsRequest(
                        area_id=village_id,
                        page_size=config.ENROLL_PAGE,
                        page_token=page_token,
                    ),
                    metadata=METADATA,
                    timeout=config.CALL_TIMEOUT,
                )
            )
        except grpc.aio.AioRpcError as error:
            raise _mapped(error, Lookup("roster page", "roster_page_token")) from None
        return reply
