"""Who may call what, and who sees which personal numbers in full.

Roles first (ROLES; other systems by SYSTEM_METHODS), then scope once the
record is loaded: a resident reaches themself and their household (their
subject is their resident id), grid workers and cadres the residents whose
areas include one of theirs (Caller.area_ids: a grid worker's grids, a
cadre's villages), operators everything. Anything else is PERMISSION_DENIED.
The README's "Who sees what" table says the same in words.
"""

import uuid
from collections.abc import Iterable

from services.common.errors import PermissionDenied
from services.common.identity import Caller, Role

R, V, GW, C, D, M, OP, SYS = (
    Role.RESIDENT,
    Role.VOLUNTEER,
    Role.GRID_WORKER,
    Role.CADRE,
    Role.DEPARTMENT,
    Role.MERCHANT,
    Role.OPERATOR,
    Role.SYSTEM,
)
STAFF = frozenset({GW, C})

ROLES: dict[str, frozenset[Role]] = {
    "RegisterHousehold": frozenset({GW, C, OP, SYS}),
    "GetHousehold": frozenset({R, GW, C, OP, SYS}),
    "MoveHousehold": frozenset({R, GW, C, OP, SYS}),
    "RegisterResident": frozenset({GW, C, OP, SYS}),
    "GetResident": frozenset({R, GW, C, OP, SYS}),
    "UpdateResident": frozenset({R, GW, C, OP}),
    "VerifyResident": frozenset({GW, C, OP, SYS}),
    "DeactivateResident": frozenset({GW, C, OP}),
    "ListResidents": frozenset({GW, C, OP, SYS}),
    "SearchResidents": frozenset({GW, C, OP}),
    "SetCareProfile": frozenset({GW, C, OP}),
    "RemoveCareProfile": frozenset({GW, C, OP}),
    "ListKeyServiceRecipients": frozenset({GW, C, OP, SYS}),
    "EarnPoints": frozenset({GW, C, OP, SYS}),
    "SpendPoints": frozenset({R, OP, SYS}),
    "HoldPoints": frozenset({R, OP, SYS}),
    "CommitHold": frozenset({M, OP, SYS}),
    "ReleaseHold": frozenset({R, M, OP, SYS}),
    "GetBalance": frozenset({R, M, GW, C, OP, SYS}),
    "ListStatement": frozenset({R, M, GW, C, OP, SYS}),
    "ListLeaderboard": frozenset({R, V, GW, C, OP, SYS}),
    "ListEarningRules": frozenset(Role),
    "SetEarningRule": frozenset({OP}),
    "OpenMerchantAccount": frozenset({OP, SYS}),
}

# What other government systems and our own workflows may call: reads for
# notifications and care work, and the points movements merchants settle.
SYSTEM_METHODS = frozenset(
    {
        "RegisterHousehold",
        "GetHousehold",
        "MoveHousehold",
        "RegisterResident",
        "GetResident",
        "VerifyResident",
        "ListResidents",
        "ListKeyServiceRecipients",
        "EarnPoints",
        "SpendPoints",
        "HoldPoints",
        "CommitHold",
        "ReleaseHold",
        "GetBalance",
        "ListStatement",
        "ListLeaderboard",
        "ListEarningRules",
        "OpenMerchantAccount",
    }
)


def require_role(caller: Caller, method: str) -> None:
    """The first check of every RPC: may this role call the method at all?"""
    allowed = caller.role in ROLES[method]
    if caller.role == SYS:
        allowed = method in SYSTEM_METHODS
    if not allowed:
        raise PermissionDenied(f"role {caller.role.value} may not call {method}")


def covers(caller: Caller, area_ids: Iterable[uuid.UUID]) -> bool:
    """Whether one of the areas (an area and its ancestors) is the caller's."""
    mine = set(caller.area_ids)
    return any(str(a) in mine for a in area_ids)


def require_area(caller: Caller, area_ids: Iterable[uuid.UUID]) -> None:
    """Staff must answer for one of the areas; operators and systems pass."""
    if caller.role in (OP, SYS):
        return
    if caller.role in STAFF and covers(caller, area_ids):
        return
    raise PermissionDenied("the area is outside the caller's areas")


def require_resident(
    caller: Caller,
    resident_id: uuid.UUID,
    area_ids: Iterable[uuid.UUID],
    *,
    same_household: bool = False,
) -> None:
    """A resident reaches themself (and household members when same_household
    says the record shares the caller's household); staff their areas."""
    if caller.role == R:
        if caller.subject == str(resident_id) or same_household:
            return
        raise PermissionDenied("a resident reaches only themself and their household")
    require_area(caller, area_ids)


def sees_full_phone(caller: Caller, resident_id: uuid.UUID) -> bool:
    """Grid workers phone their residents; systems send text messages."""
    if caller.role in (OP, GW, SYS):
        return True
    return caller.role == R and caller.subject == str(resident_id)


def sees_full_national_id(caller: Caller, resident_id: uuid.UUID) -> bool:
    """Only operators (real-name checks) and the resident themself."""
    if caller.role == OP:
        return True
    return caller.role == R and caller.subject == str(resident_id)
