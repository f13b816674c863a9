"""Sending a page of deliveries through the providers, exactly once each.

A page is claimed with FOR UPDATE SKIP LOCKED, sent, and its outcomes are
recorded in the same transaction. If the process dies half-way, the
transaction rolls back and the page is pending again: the outbox's own
record rolls back with it, and a webhook gateway sees the same
Idempotency-Key (the delivery id) the second time.
"""

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cloudark.notifications.v1 import notifications_pb2 as pb

from services.common.db import Connection
from services.notifications import repository as repo
from services.notifications.providers import (
    Outcome,
    OutgoingMessage,
    Provider,
    RateLimiter,
    SendResult,
)
from services.notifications.quiet import QuietHours

log = logging.getLogger(__name__)

RETRY_FIRST = 1.0
RETRY_MAX = 300.0

_STATUS = {
    Outcome.SENT: repo.SENT,
    Outcome.DELIVERED: repo.DELIVERED,
    Outcome.FAILED: repo.FAILED,
    Outcome.RETRY: repo.RETRYING,
}


@dataclass
class PageResult:
    last_seq: int
    done: bool
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    remaining: int = 0
    # When done and some remain: seconds until the next is due.
    retry_after: float = 0.0
    wait_until: datetime | None = None


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        providers: dict[int, Provider],
        limiter: RateLimiter,
        max_attempts: int,
    ) -> None:
        self._pool = pool
        self._providers = providers
        self._limiter = limiter
        self._max_attempts = max_attempts

    async def dispatch(
        self,
        notification: repo.NotificationRow,
        purpose: int,
        after_seq: int,
        limit: int,
        now: datetime,
    ) -> PageResult:
        held = await self._hold(notification, purpose, now)
        if held is not None:
            held.last_seq = after_seq
            return held
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await repo.pending_page(
                conn, notification.id, purpose, after_seq, limit
            )
            result = PageResult(
                last_seq=rows[-1].seq if rows else after_seq, done=len(rows) < limit
            )
            await self._send(conn, notification, rows, result)
        if result.done:
            async with self._pool.acquire() as conn:
                result.remaining, result.retry_after = await repo.count_pending(
                    conn, notification.id, purpose
                )
        return result

    async def _hold(
        self, notification: repo.NotificationRow, purpose: int, now: datetime
    ) -> PageResult | None:
        """Non-urgent messages wait out quiet hours and give up when expired."""
        if notification.urgency == pb.URGENCY_URGENT:
            return None
        expire = notification.expire_time
        quiet = _quiet(notification)
        wait_until = quiet.ends_after(now) if quiet else now
        if expire is not None and (now >= expire or wait_until >= expire):
            async with self._pool.acquire() as conn:
                failed = await repo.expire_pending(conn, notification.id, purpose)
            log.info("notification %s: %s deliveries expired", notification.id, failed)
            return PageResult(last_seq=0, done=True, failed=failed)
        if wait_until > now:
            return PageResult(last_seq=0, done=False, wait_until=wait_until)
        return None

    async def _send(
        self,
        conn: Connection,
        notification: repo.NotificationRow,
        rows: list[repo.PendingRow],
        result: PageResult,
    ) -> None:
        by_channel: dict[int, list[repo.PendingRow]] = defaultdict(list)
        for row in rows:
            by_channel[row.channel].append(row)
        ids: list[uuid.UUID] = []
        statuses: list[int] = []
        reasons: list[str] = []
        delays: list[float] = []
        for channel, group in by_channel.items():
            await self._limiter.take(channel, len(group))
            messages = [_message(notification, row) for row in group]
            outcomes = await self._providers[channel].send(conn, messages)
            attempts = {row.id: row.attempts for row in group}
            for outcome in outcomes:
                tried = attempts[outcome.delivery_id]
                status, reason = self._status(outcome, tried)
                ids.append(outcome.delivery_id)
                statuses.append(status)
                reasons.append(reason)
                delays.append(_delay(outcome, tried) if status == repo.RETRYING else 0)
                _count(result, status)
        if ids:
            await repo.record_outcomes(conn, ids, statuses, reasons, delays)

    def _status(self, outcome: SendResult, attempts_before: int) -> tuple[int, str]:
        status = _STATUS[outcome.outcome]
        if status == repo.RETRYING and attempts_before + 1 >= self._max_attempts:
            reason = f"gave up after {attempts_before + 1} attempts: {outcome.reason}"
            return repo.FAILED, reason
        return status, outcome.reason


def _count(result: PageResult, status: int) -> None:
    if status in (repo.SENT, repo.DELIVERED):
        result.sent += 1
    elif status == repo.FAILED:
        result.failed += 1
    else:
        result.retrying += 1


def _delay(outcome: SendResult, attempts_before: int) -> float:
    """Seconds before the next attempt: doubling from one, at most five
    minutes, and never sooner than the provider's Retry-After."""
    backoff = min(RETRY_FIRST * 2.0**attempts_before, RETRY_MAX)
    return max(backoff, outcome.retry_after)


def _quiet(notification: repo.NotificationRow) -> QuietHours | None:
    if notification.quiet_start_minute is None or notification.quiet_end_minute is None:
        return None
    return QuietHours(notification.quiet_start_minute, notification.quiet_end_minute)


def _message(
    notification: repo.NotificationRow, row: repo.PendingRow
) -> OutgoingMessage:
    title, body = message_text(notification, row)
    return OutgoingMessage(
        delivery_id=row.id,
        notification_id=notification.id,
        channel=row.channel,
        recipient_kind=row.recipient_kind,
        address=row.recipient_id,
        title=title,
        body=body,
    )


def message_text(
    notification: repo.NotificationRow, row: repo.DeliveryRow | repo.PendingRow
) -> tuple[str, str]:
    """The title and body a delivery carries, in its recipient's language."""
    title = row.title or notification.titles.get(row.language, "")
    body = row.body or notification.bodies.get(row.language, "")
    return title, body
