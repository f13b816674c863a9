"""The grids service and Temporal as the front door sees them: calls, and
their failures turned into domain errors with the same precise codes."""

import hashlib
import uuid

import grpc
from cloudark.grids.v1 import (
    cases_pb2,
    cases_pb2_grpc,
    grids_pb2,
    grids_pb2_grpc,
    staff_pb2,
    staff_pb2_grpc,
)
from google.protobuf import any_pb2
from google.rpc import status_pb2
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from services.casework import config
from services.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    NotFound,
    Unavailable,
)
from services.common.identity import Caller, Role

# The front door calls the grids service as itself.
METADATA = Caller(subject="cloudark-casework", role=Role.SYSTEM).metadata()
PASSED_ON = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ABORTED,
    }
)


class Passed(DomainError):
    """A grids service error handed on with its code and details."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[any_pb2.Any]):
        super().__init__(message)
        self.code = code
        self._details = details

    def details(self) -> list[any_pb2.Any]:
        return self._details


def from_grids(error: grpc.aio.AioRpcError) -> DomainError:
    code = error.code()
    if code not in PASSED_ON:
        return Unavailable("the grids service is not available; retry")
    details: list[any_pb2.Any] = []
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            details = list(status_pb2.Status.FromString(value).details)
    return Passed(code, error.details() or code.name, details)


def from_update(error: Exception) -> DomainError:
    """Maps a failed workflow update or query to a domain error."""
    if isinstance(error, WorkflowUpdateFailedError):
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.type == "FAILED_PRECONDITION":
            subject = str(cause.details[0]) if cause.details else "case_id"
            return FailedPrecondition(cause.message, subject=subject)
        return Aborted("the case changed meanwhile; look again and retry")
    if isinstance(error, RPCError):
        if error.status == RPCStatusCode.NOT_FOUND and "update" in error.message:
            # The test server answers a rejected update this way.
            return Aborted("the case changed meanwhile; look again and retry")
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return FailedPrecondition(
                "case_id: the case is closed; report it anew", subject="case_id"
            )
    return Unavailable("the case workflow is not reachable; retry")


def derived_request_id(caller: Caller, method: str, request_id: str) -> str:
    """A key for a downstream call, fixed by the caller's own request_id."""
    if not request_id:
        return str(uuid.uuid4())
    raw = f"{caller.subject}\x00{method}\x00{request_id}".encode()
    return f"casework-{hashlib.sha256(raw).hexdigest()[:40]}"


class Grids:
    """The grids service calls the front door makes."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._areas = grids_pb2_grpc.GridsServiceStub(channel)
        self._cases = cases_pb2_grpc.CasesServiceStub(channel)
        self._staff = staff_pb2_grpc.StaffServiceStub(channel)

    async def area(self, area_id: str) -> grids_pb2.Area:
        try:
            reply = await self._areas.GetArea(
                grids_pb2.GetAreaRequest(id=area_id),
                metadata=METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("micro-grid", "micro_grid_id") from None
            raise from_grids(error) from None
        return reply.area

    async def helper(self, helper_id: str, field: str) -> staff_pb2.Helper:
        try:
            reply = await self._staff.GetHelper(
                staff_pb2.GetHelperRequest(id=helper_id),
                metadata=METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("helper", field) from None
            raise from_grids(error) from None
        return reply.helper

    async def create_case(
        self, request: cases_pb2.CreateCaseRequest, reporter: Caller
    ) -> cases_pb2.Case:
        """Records the case as its reporter, who is the timeline's first actor."""
        try:
            reply = await self._cases.CreateCase(
                request, metadata=reporter.metadata(), timeout=config.CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise from_grids(error) from None
        return reply.case

    async def case(self, case_id: str) -> cases_pb2.Case:
        try:
            reply = await self._cases.GetCase(
                cases_pb2.GetCaseRequest(id=case_id),
                metadata=METADATA,
                timeout=config.CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise from_grids(error) from None
        return reply.case

    async def list_cases(
        self, request: cases_pb2.ListCasesRequest
    ) -> cases_pb2.ListCasesResponse:
        try:
            reply: cases_pb2.ListCasesResponse = await self._cases.ListCases(
                request, metadata=METADATA, timeout=config.CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            raise from_grids(error) from None
        return reply

    async def reporter_cases(
        self, request: cases_pb2.ListReporterCasesRequest
    ) -> cases_pb2.ListReporterCasesResponse:
        try:
            reply: cases_pb2.ListReporterCasesResponse = (
                await self._cases.ListReporterCases(
                    request, metadata=METADATA, timeout=config.CALL_TIMEOUT
                )
            )
        except grpc.aio.AioRpcError as error:
            raise from_grids(error) from None
        return reply
