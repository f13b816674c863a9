"""gRPC status to HTTP status, with an application/problem+json body."""

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

# The canonical mapping of google/rpc/code.proto.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def problem(
    code: grpc.StatusCode, detail: str, violations: list[dict[str, str]]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://cloudark.dev/problems/{code.name.lower().replace('_', '-')}",
        "title": code.name,
        "status": HTTP_STATUS.get(code, 500),
        "detail": detail,
    }
    if violations:
        body["violations"] = violations
    return body


def from_rpc_error(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The problem document for a failed gRPC call, keeping its field violations."""
    return problem(error.code(), error.details() or "", _violations(error))


def _violations(error: grpc.aio.AioRpcError) -> list[dict[str, str]]:
    found = []
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                found += [
                    {"field": v.field, "description": v.description}
                    for v in bad_request.field_violations
                ]
    return found
