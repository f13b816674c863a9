"""Domain errors, and their one mapping to gRPC status codes.

Servicers and repositories raise these; `EdgeInterceptor` (see
services/common/server.py) turns them into statuses at the edge, so that no
client ever sees UNKNOWN or a stack trace.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. "area.name") and why."""

    field: str
    description: str


class DomainError(Exception):
    """A failure the caller can act on; carries its gRPC status code."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        return []


class InvalidArgument(DomainError):
    """The request itself is wrong, whatever the state of the system."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        fields = ", ".join(v.field for v in violations)
        super().__init__(f"invalid request: {fields}")
        self.violations = list(violations)

    @classmethod
    def field(cls, field: str, description: str) -> "InvalidArgument":
        return cls([FieldViolation(field, description)])

    def details(self) -> list[any_pb2.Any]:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        return [packed]


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, resource: str, field: str = "id") -> None:
        super().__init__(f"{field}: no such {resource}")
        self.resource = resource
        self.field = field

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ResourceInfo(
            resource_type=self.resource,
            description=f"no {self.resource} at {self.field}",
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    """The request is well formed but the system is not in a state to do it."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, *, subject: str = "", kind: str = "STATE") -> None:
        super().__init__(message)
        self.subject = subject
        self.kind = kind

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=self.kind, subject=self.subject, description=self.message
                )
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(failure)
        return [packed]


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Aborted(DomainError):
    """A conflict with a concurrent change; the caller may retry."""

    code = grpc.StatusCode.ABORTED


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE


def from_database_error(error: asyncpg.PostgresError) -> DomainError:
    """Maps the database errors a request can cause to domain errors.

    Constraint names are reported, never the row values, which may be personal
    data.
    """
    constraint = getattr(error, "constraint_name", None) or "constraint"
    if isinstance(error, asyncpg.UniqueViolationError):
        return AlreadyExists(f"already exists ({constraint})")
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        return FailedPrecondition(
            f"refers to something missing or still in use ({constraint})",
            subject=constraint,
        )
    if isinstance(error, asyncpg.CheckViolationError | asyncpg.NotNullViolationError):
        return FailedPrecondition(f"violates {constraint}", subject=constraint)
    if isinstance(error, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return Aborted("conflicted with a concurrent change; retry")
    if isinstance(
        error, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError
    ):
        return Unavailable("the database is not available; retry")
    return DomainError("internal error")


def to_status(error: DomainError) -> grpc.Status:
    """The rich gRPC status (google.rpc.Status with details) for an error."""
    status = status_pb2.Status(
        code=_RPC_CODES[error.code], message=error.message, details=error.details()
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result


_RPC_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    grpc.StatusCode.ABORTED: code_pb2.ABORTED,
    grpc.StatusCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
}
