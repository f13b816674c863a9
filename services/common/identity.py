"""Who is calling: the caller identity carried in gRPC metadata.

The gateway (for people) and other government systems (for machines) set
these keys; services read them here and decide what the caller may do. Until
tokens and mutual TLS arrive (issues #10, #11) the metadata is trusted as
sent, so services must only be reachable from trusted networks.
"""

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

import grpc

from services.common.errors import PermissionDenied, Unauthenticated

SUBJECT_KEY = "x-cloudark-subject"
ROLE_KEY = "x-cloudark-role"
AREAS_KEY = "x-cloudark-areas"


class Role(StrEnum):
    RESIDENT = "resident"
    VOLUNTEER = "volunteer"
    GRID_WORKER = "grid_worker"
    CADRE = "cadre"
    DEPARTMENT = "department"
    MERCHANT = "merchant"
    OPERATOR = "operator"
    # Another government system or one of our own workflows.
    SYSTEM = "system"


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: a subject id, a role and the areas it answers for."""

    subject: str
    role: Role
    area_ids: tuple[str, ...] = ()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata that carries this identity on an outgoing call."""
        return (
            (SUBJECT_KEY, self.subject),
            (ROLE_KEY, self.role.value),
            (AREAS_KEY, ",".join(self.area_ids)),
        )

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise PermissionDenied(
                f"role {self.role.value} may not do this; needs {allowed}"
            )


def caller_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> Caller:
    """Reads the caller from request metadata; UNAUTHENTICATED when it is missing."""
    values: dict[str, str] = {}
    for key, value in metadata:
        if isinstance(value, str):
            values[key.lower()] = value.strip()
    subject = values.get(SUBJECT_KEY, "")
    role_name = values.get(ROLE_KEY, "")
    if not subject or not role_name:
        raise Unauthenticated(f"calls need the {SUBJECT_KEY} and {ROLE_KEY} metadata")
    try:
        role = Role(role_name)
    except ValueError:
        raise Unauthenticated(f"unknown role {role_name!r}") from None
    areas = tuple(a for a in values.get(AREAS_KEY, "").split(",") if a)
    return Caller(subject=subject, role=role, area_ids=areas)


# Set at the edge when the transport (a client certificate) names the caller.
TRANSPORT_CALLER: ContextVar[Caller | None] = ContextVar(
    "transport_caller", default=None
)


def caller_of(context: grpc.aio.ServicerContext[object, object]) -> Caller:
    """The caller of the RPC being served: its certificate's, else its metadata's."""
    from_transport = TRANSPORT_CALLER.get()
    if from_transport is not None:
        return from_transport
    metadata = context.invocation_metadata() or ()
    return caller_from_metadata(metadata)


SYSTEM_CALLER = Caller(subject="cloudark-workflows", role=Role.SYSTEM)
