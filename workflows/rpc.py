"""How activities call the gRPC services: channels, identity, error mapping."""

import grpc
from temporalio.exceptions import ApplicationError

from services.common.config import Settings
from services.common.identity import SYSTEM_CALLER
from services.common.tls import open_channel, tls_from_env

# Worth another attempt: the service or the database was briefly away, or a
# concurrent change got in first.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
    }
)

CALL_TIMEOUT = 10.0
METADATA = SYSTEM_CALLER.metadata()


def channel_to(service: str, settings: Settings) -> grpc.aio.Channel:
    return open_channel(settings.service_address(service), tls_from_env())


def activity_error(error: grpc.aio.AioRpcError) -> Exception:
    """Retryable codes stay retryable; every other status ends the activity.

    Only the status code and message travel into the workflow history; the
    services keep personal data out of their messages.
    """
    code = error.code()
    message = f"{code.name}: {error.details()}"
    return ApplicationError(
        message, type=code.name, non_retryable=code not in RETRYABLE
    )
