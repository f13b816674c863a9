"""Who may call what on errands, and which errands a caller reaches.

Residents request, cancel, rate and see their own errands (subject = resident
id). Helpers — the volunteer and grid_worker roles, subject = their grids
helper id — accept, report and drop errands for themselves and see the
errands offered to them or taken by them. Grid workers and cadres also see
the errands of their areas (Caller.area_ids). Operators and the system reach
everything; only the system records workflow steps.
"""

import uuid
from dataclasses import replace

from services.common.errors import PermissionDenied
from services.common.identity import Caller, Role
from services.errands.repository import ErrandFilter, ErrandRow

R, V, GW, C, OP, SYS = (
    Role.RESIDENT,
    Role.VOLUNTEER,
    Role.GRID_WORKER,
    Role.CADRE,
    Role.OPERATOR,
    Role.SYSTEM,
)
HELPERS = frozenset({V, GW})
AREA_STAFF = frozenset({GW, C})

ROLES: dict[str, frozenset[Role]] = {
    "RequestErrand": frozenset({R, GW, OP, SYS}),
    "GetErrand": frozenset({R, V, GW, C, OP, SYS}),
    "ListErrands": frozenset({R, V, GW, C, OP, SYS}),
    "AcceptErrand": frozenset({V, GW, OP, SYS}),
    "ReportPickedUp": frozenset({V, GW, OP, SYS}),
    "ReportDelivered": frozenset({V, GW, OP, SYS}),
    "CancelErrand": frozenset({R, GW, OP, SYS}),
    "DropErrand": frozenset({V, GW, OP, SYS}),
    "RateErrand": frozenset({R, OP}),
    "RecordErrandStep": frozenset({SYS}),
}


def require_role(caller: Caller, method: str) -> None:
    if caller.role not in ROLES[method]:
        raise PermissionDenied(f"role {caller.role.value} may not call {method}")


def area_ids_of(caller: Caller) -> list[uuid.UUID]:
    """The caller's areas that are well-formed ids."""
    found = []
    for area in caller.area_ids:
        try:
            found.append(uuid.UUID(area))
        except ValueError:
            continue
    return found


def _is_helper_of(caller: Caller, row: ErrandRow) -> bool:
    mine = {str(h) for h in row.offered_helper_ids}
    if row.helper_id is not None:
        mine.add(str(row.helper_id))
    return caller.subject in mine


def reaches(caller: Caller, row: ErrandRow) -> bool:
    if caller.role in (OP, SYS):
        return True
    if caller.role == R:
        return caller.subject == str(row.resident_id)
    if caller.role in HELPERS and _is_helper_of(caller, row):
        return True
    if caller.role in AREA_STAFF:
        return bool(set(area_ids_of(caller)) & set(row.area_ids))
    return False


def require_reach(caller: Caller, row: ErrandRow) -> None:
    if not reaches(caller, row):
        raise PermissionDenied("the errand is not the caller's to see or change")


def require_self(caller: Caller, helper_id: uuid.UUID) -> None:
    """Helpers act only for themselves; operators and the system for anyone."""
    if caller.role in HELPERS and caller.subject != str(helper_id):
        raise PermissionDenied("helper_id: a helper may act only for itself")


def scoped(caller: Caller, where: ErrandFilter) -> ErrandFilter:
    """Narrows a list filter to what the caller reaches."""
    if caller.role in (OP, SYS):
        return where
    if caller.role == R:
        if where.resident_id is not None and str(where.resident_id) != caller.subject:
            raise PermissionDenied("resident_id: a resident lists only their own")
        return replace(where, resident_id=_subject_id(caller))
    if caller.role == V:
        if where.helper_id is not None and str(where.helper_id) != caller.subject:
            raise PermissionDenied("helper_id: a volunteer lists only its own")
        return replace(where, helper_id=_subject_id(caller))
    return replace(
        where, scope_area_ids=area_ids_of(caller), scope_helper_id=_subject_id(caller)
    )


# Matches no errand: the subject of a caller whose subject is not an id.
NOBODY = uuid.UUID(int=0)


def _subject_id(caller: Caller) -> uuid.UUID:
    try:
        return uuid.UUID(caller.subject)
    except ValueError:
        return NOBODY
