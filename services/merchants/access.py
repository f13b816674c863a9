"""Who may call what in the merchants service.

Roles first (ROLES; other systems and our workflows by SYSTEM_METHODS), then
ownership once the record is loaded: a merchant (subject = its merchant id)
reaches its own shop, offers, life services, bookings, redemptions and
statements; a resident (subject = resident id) their own redemptions and
bookings; operators everything. Anything else is PERMISSION_DENIED. The
README's merchants section says the same in words.
"""

import uuid

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
EVERYONE = frozenset(Role)

ROLES: dict[str, frozenset[Role]] = {
    "RegisterMerchant": frozenset({C, OP, SYS}),
    "GetMerchant": EVERYONE,
    "VerifyMerchant": frozenset({C, OP}),
    "SuspendMerchant": frozenset({C, OP}),
    "ListMerchants": EVERYONE,
    "SearchMerchants": EVERYONE,
    "CreateOffer": frozenset({M, OP}),
    "GetOffer": EVERYONE,
    "ListOffers": EVERYONE,
    "RestockOffer": frozenset({M, OP}),
    "WithdrawOffer": frozenset({M, OP}),
    "CreateLifeService": frozenset({M, OP}),
    "ListLifeServices": EVERYONE,
    "BookLifeService": frozenset({R, OP}),
    "GetBooking": frozenset({R, M, OP, SYS}),
    "ListBookings": frozenset({R, M, OP, SYS}),
    "UpdateBookingState": frozenset({R, M, OP}),
    "RedeemOffer": frozenset({R, OP, SYS}),
    "ConfirmRedemption": frozenset({M}),
    "RefuseRedemption": frozenset({M}),
    "CancelRedemption": frozenset({R, OP}),
    "FindRedemption": frozenset({M, OP}),
    "GetRedemption": frozenset({R, M, OP, SYS}),
    "ListRedemptions": frozenset({R, M, OP, SYS}),
    "GetStatement": frozenset({M, OP, SYS}),
    "ReserveStock": frozenset({SYS}),
    "SettleRedemption": frozenset({SYS}),
}

# What other government systems and our own workflows may call: the
# registry, redemptions on a resident's behalf, statements for payment, and
# the saga's own steps.
SYSTEM_METHODS = frozenset(
    {
        "RegisterMerchant",
        "GetMerchant",
        "ListMerchants",
        "SearchMerchants",
        "GetOffer",
        "ListOffers",
        "ListLifeServices",
        "GetBooking",
        "ListBookings",
        "RedeemOffer",
        "GetRedemption",
        "ListRedemptions",
        "GetStatement",
        "ReserveStock",
        "SettleRedemption",
    }
)


def require_role(caller: Caller, method: str) -> None:
    """The first check of every RPC: may this role call the method at all?"""
    allowed = caller.role in ROLES[method]
    if caller.role == SYS:
        allowed = method in SYSTEM_METHODS
    if not allowed:
        raise PermissionDenied(f"role {caller.role.value} may not call {method}")


def is_merchant(caller: Caller, merchant_id: uuid.UUID) -> bool:
    return caller.role == M and caller.subject == str(merchant_id)


def is_resident(caller: Caller, resident_id: uuid.UUID) -> bool:
    return caller.role == R and caller.subject == str(resident_id)


def require_merchant(caller: Caller, merchant_id: uuid.UUID) -> None:
    """A merchant reaches only its own records; operators and systems all."""
    if caller.role in (OP, SYS) or is_merchant(caller, merchant_id):
        return
    raise PermissionDenied("a merchant reaches only its own shop")


def require_party(
    caller: Caller, merchant_id: uuid.UUID, resident_id: uuid.UUID
) -> None:
    """Bookings and redemptions: their merchant, their resident, operators."""
    if caller.role in (OP, SYS):
        return
    if is_merchant(caller, merchant_id) or is_resident(caller, resident_id):
        return
    raise PermissionDenied("the record belongs to another resident or merchant")


def require_self(caller: Caller, resident_id: uuid.UUID) -> None:
    """A resident acts only for themself."""
    if caller.role == R and not is_resident(caller, resident_id):
        raise PermissionDenied("a resident acts only for themself")


def sees_full_phone(caller: Caller, merchant_id: uuid.UUID, sole_trader: bool) -> bool:
    """A company's number is business data; a sole trader's is personal."""
    if not sole_trader or caller.role in (OP, SYS):
        return True
    return is_merchant(caller, merchant_id)


def require_area(caller: Caller, area_ids: list[uuid.UUID]) -> None:
    """Cadres act on the merchants of their villages; operators on all."""
    if caller.role in (OP, SYS):
        return
    if caller.role == C and set(caller.area_ids) & {str(a) for a in area_ids}:
        return
    raise PermissionDenied("the merchant is outside the caller's areas")


def require_resident(caller: Caller, resident_id: uuid.UUID) -> None:
    """A resident's own records: the resident, operators and systems."""
    if caller.role in (OP, SYS) or is_resident(caller, resident_id):
        return
    raise PermissionDenied("a resident's records are theirs alone")


def require_one_of(caller: Caller, roles: frozenset[Role], what: str) -> None:
    if caller.role not in roles:
        raise PermissionDenied(f"role {caller.role.value} may not {what}")
