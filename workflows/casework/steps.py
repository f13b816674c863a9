"""The case follow-up's state and which step may follow which.

Pure and deterministic: the workflow checks every update with these rules,
and the front door checks them first against the queried state so that a
step out of order gets a precise FAILED_PRECONDITION before anything moves.
"""

from dataclasses import dataclass, field
from datetime import datetime

from cloudark.casework.v1 import casework_pb2 as pb
from cloudark.grids.v1 import cases_pb2 as grids_pb

OPEN_STAGES = frozenset(
    {
        pb.CASE_STAGE_UNASSIGNED,
        pb.CASE_STAGE_VERIFYING,
        pb.CASE_STAGE_CONFIRMED,
        pb.CASE_STAGE_RECTIFYING,
        pb.CASE_STAGE_REINSPECTING,
        pb.CASE_STAGE_ESCALATED,
        pb.CASE_STAGE_RESOLVED,
    }
)
FINAL_STAGES = frozenset({pb.CASE_STAGE_CLOSED, pb.CASE_STAGE_REJECTED})
# Stages at which the hazard is confirmed and an outcome may be chosen.
AFTER_VISIT = frozenset({pb.CASE_STAGE_CONFIRMED, pb.CASE_STAGE_REINSPECTING})


@dataclass
class CaseRules:
    """Deadlines of a category (casework.category_rules)."""

    verify_hours: int
    rectify_days: int
    # The reminder goes this long before the rectification deadline.
    reminder_hours: int
    acknowledge_hours: int
    dispute_days: int


@dataclass
class CaseState:
    """Where one case stands; ids only, never names or numbers."""

    stage: int
    status: int
    # Person ids (staff accounts), as the case record names them.
    assignee_id: str = ""
    supervisor_id: str = ""
    # The same people's helper ids, as the notifications service addresses staff.
    assignee_helper_id: str = ""
    supervisor_helper_id: str = ""
    deadline: datetime | None = None
    deadline_kind: int = pb.DEADLINE_KIND_UNSPECIFIED
    reminder_time: datetime | None = None
    overdue: bool = False
    visited: bool = False
    rectification_round: int = 0
    department_contact_id: str = ""
    department_person_id: str = ""
    acknowledged: bool = False
    duplicate_of: str = ""
    duplicate_ids: list[str] = field(default_factory=list)
    # The reporters of those duplicates (ids), told of every change.
    duplicate_reporter_ids: list[str] = field(default_factory=list)
    points_awarded: bool = False
    # Timeline steps written so far: numbers every step key.
    steps: int = 0


@dataclass(frozen=True)
class Refusal:
    """Why a step may not happen now, and the request field it concerns."""

    field: str
    reason: str


def refuse_if_closed(state: CaseState) -> Refusal | None:
    if state.stage in FINAL_STAGES:
        return Refusal("case_id", "the case is closed; report it anew")
    return None


def check_assign(state: CaseState) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed or state.stage != pb.CASE_STAGE_RESOLVED:
        return closed
    return Refusal("case_id", "the case is resolved; reopen it first")


def check_visit(state: CaseState, outcome: int, category: int) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed:
        return closed
    if state.stage == pb.CASE_STAGE_UNASSIGNED:
        return Refusal("case_id", "the case has no grid worker yet; assign it first")
    if state.stage != pb.CASE_STAGE_VERIFYING:
        return Refusal("case_id", "the case was already verified")
    fraud = category == grids_pb.CASE_CATEGORY_FRAUD_PREVENTION
    if outcome == pb.VISIT_OUTCOME_FRAUD_RECORDED and not fraud:
        return Refusal("outcome", "only fraud prevention cases record fraud")
    return None


def check_order_rectification(state: CaseState) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed:
        return closed
    if not state.visited:
        return Refusal("case_id", "no verification visit is recorded yet")
    if state.stage not in AFTER_VISIT:
        return Refusal("case_id", "rectification may follow only a confirmed hazard")
    return None


def check_rectified(state: CaseState) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed or state.stage == pb.CASE_STAGE_RECTIFYING:
        return closed
    return Refusal("case_id", "no rectification is under way")


def check_reinspection(state: CaseState) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed or state.stage in {pb.CASE_STAGE_RECTIFYING, pb.CASE_STAGE_REINSPECTING}:
        return closed
    return Refusal("case_id", "no rectification was ordered")


def check_escalate(state: CaseState) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed:
        return closed
    if not state.visited:
        return Refusal("case_id", "no verification visit is recorded yet")
    if state.stage not in AFTER_VISIT | {pb.CASE_STAGE_RECTIFYING}:
        return Refusal("case_id", "only a confirmed, unresolved case is escalated")
    return None


def check_department_step(state: CaseState) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed or state.stage == pb.CASE_STAGE_ESCALATED:
        return closed
    return Refusal("case_id", "the case is not with a department")


def check_close(state: CaseState) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed or state.stage == pb.CASE_STAGE_RESOLVED:
        return closed
    return Refusal("case_id", "only a resolved case is closed")


def check_reopen(state: CaseState) -> Refusal | None:
    closed = refuse_if_closed(state)
    if closed or state.stage == pb.CASE_STAGE_RESOLVED:
        return closed
    return Refusal("case_id", "only a resolved case is reopened")


def stage_name(stage: int) -> str:
    return pb.CaseStage.Name(stage).removeprefix("CASE_STAGE_")  # type: ignore[arg-type]


def status_name(status: int) -> str:
    name = grids_pb.CaseStatus.Name(status)  # type: ignore[arg-type]
    return name.removeprefix("CASE_STATUS_")


def category_name(category: int) -> str:
    name = grids_pb.CaseCategory.Name(category)  # type: ignore[arg-type]
    return name.removeprefix("CASE_CATEGORY_")
