"""What the notifications service and the workflows both need: the
workflow's input and its readable ids. Kept free of workflow code so the
service can import it."""

from dataclasses import dataclass

# DeliveryPurpose values (notifications.proto).
MESSAGE, FALLBACK_TEXT, GRID_WORKER_ALERT = 1, 2, 3
_SUFFIX = {MESSAGE: "", FALLBACK_TEXT: "-fallback-text", GRID_WORKER_ALERT: "-alerts"}


@dataclass
class NotificationInput:
    notification_id: str
    # Which deliveries this run sends: the message, fallback texts or alerts.
    purpose: int = MESSAGE
    # Fallback, for the message run: 0 means none.
    fallback_after_seconds: int = 0
    alert_grid_worker: bool = False
    # Carried across continue-as-new.
    after_seq: int = 0
    retry_pass: int = 0
    sent: int = 0
    failed: int = 0


def notification_workflow_id(notification_id: str, purpose: int) -> str:
    """notification-<id> for the message; -fallback-text, -alerts for the others."""
    return f"notification-{notification_id}{_SUFFIX[purpose]}"
