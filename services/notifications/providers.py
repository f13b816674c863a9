"""Channels behind one provider interface.

The in-app inbox is ours: a message is delivered when it is in the inbox.
Text messages, micro-grid group chats and TV displays go to a provider: the
outbox (records each message in the outbox table, in the same transaction
that marks the delivery sent, so it is recorded exactly once) or an HTTP
webhook gateway (each message carries its delivery id as Idempotency-Key, so
a call repeated after a crash is one message to a gateway that honours it).
"""

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from cloudark.notifications.v1 import notifications_pb2 as pb

from services.common.db import Connection
from services.notifications.config import ProviderSettings

CHANNEL_NAMES: dict[int, str] = {
    pb.CHANNEL_APP: "app",
    pb.CHANNEL_TEXT_MESSAGE: "text_message",
    pb.CHANNEL_GROUP_CHAT: "group_chat",
    pb.CHANNEL_TV: "tv",
}
# Webhook calls in flight at once.
WEBHOOK_PARALLEL = 16


@dataclass(frozen=True)
class OutgoingMessage:
    delivery_id: uuid.UUID
    notification_id: uuid.UUID
    channel: int
    recipient_kind: int
    # A resident or helper id, a micro-grid id (group chat), an area id (TV).
    address: str
    title: str
    body: str


class Outcome(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    # Failed for now; worth another attempt.
    RETRY = "retry"
    # Will never succeed.
    FAILED = "failed"


@dataclass(frozen=True)
class SendResult:
    delivery_id: uuid.UUID
    outcome: Outcome
    reason: str = ""
    # Seconds the provider asked us to wait (Retry-After).
    retry_after: float = 0.0


class Provider(Protocol):
    """Sends messages of one channel. conn is the transaction that records
    the outcomes; a provider may write in it (the outbox does)."""

    async def send(
        self, conn: Connection, messages: Sequence[OutgoingMessage]
    ) -> list[SendResult]: ...


class InboxProvider:
    """The in-app inbox: the message is there once its delivery is recorded."""

    async def send(
        self, conn: Connection, messages: Sequence[OutgoingMessage]
    ) -> list[SendResult]:
        return [SendResult(m.delivery_id, Outcome.DELIVERED) for m in messages]


class OutboxProvider:
    """Records each message instead of sending it; ListOutboxMessages shows them."""

    async def send(
        self, conn: Connection, messages: Sequence[OutgoingMessage]
    ) -> list[SendResult]:
        # A message already recorded (by an attempt that crashed after it
        # committed) is not recorded again.
        await conn.execute(
            "INSERT INTO outbox_messages"
            " (id, delivery_id, notification_id, channel, address, title, body)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[],"
            " $4::smallint[], $5::text[], $6::text[], $7::text[])"
            " ON CONFLICT (delivery_id) DO NOTHING",
            [uuid.uuid4() for _ in messages],
            [m.delivery_id for m in messages],
            [m.notification_id for m in messages],
            [m.channel for m in messages],
            [m.address for m in messages],
            [m.title for m in messages],
            [m.body for m in messages],
        )
        return [SendResult(m.delivery_id, Outcome.SENT) for m in messages]


class WebhookProvider:
    """POSTs each message as JSON to a gateway; 2xx is sent (or delivered when
    the gateway says so), 429 and 5xx and timeouts are retried, other 4xx fail."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout

    async def send(
        self, conn: Connection, messages: Sequence[OutgoingMessage]
    ) -> list[SendResult]:
        gate = asyncio.Semaphore(WEBHOOK_PARALLEL)

        async def one(message: OutgoingMessage) -> SendResult:
            async with gate:
                return await self._post(message)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def _post(self, message: OutgoingMessage) -> SendResult:
        payload = {
            "delivery_id": str(message.delivery_id),
            "notification_id": str(message.notification_id),
            "channel": CHANNEL_NAMES[message.channel],
            "recipient_kind": pb.RecipientKind.Name(message.recipient_kind),  # type: ignore[arg-type]
            "address": message.address,
            "title": message.title,
            "body": message.body,
        }
        try:
            status, headers, body = await asyncio.wait_for(
                post_json(self._url, payload, str(message.delivery_id)),
                self._timeout,
            )
        except TimeoutError:
            return SendResult(message.delivery_id, Outcome.RETRY, "gateway timed out")
        except OSError as error:
            reason = f"gateway unreachable ({type(error).__name__})"
            return SendResult(message.delivery_id, Outcome.RETRY, reason)
        return _result(message.delivery_id, status, headers, body)


def _result(
    delivery_id: uuid.UUID, status: int, headers: dict[str, str], body: bytes
) -> SendResult:
    if 200 <= status < 300:
        delivered = _answer_status(body) == "delivered"
        return SendResult(delivery_id, Outcome.DELIVERED if delivered else Outcome.SENT)
    if status == 429 or status >= 500:
        wait = _retry_after(headers.get("retry-after", ""))
        return SendResult(
            delivery_id, Outcome.RETRY, f"gateway answered {status}", retry_after=wait
        )
    return SendResult(delivery_id, Outcome.FAILED, f"gateway refused it ({status})")


def _answer_status(body: bytes) -> str:
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return ""
    return str(answer.get("status", "")) if isinstance(answer, dict) else ""


def _retry_after(raw: str) -> float:
    """Retry-After in seconds; dates and garbage count as no advice."""
    try:
        return max(0.0, min(float(raw.strip()), 3600.0))
    except ValueError:
        return 0.0


async def post_json(
    url: str, payload: dict[str, str], idempotency_key: str
) -> tuple[int, dict[str, str], bytes]:
    """A minimal HTTP/1.1 POST (one connection per call): status, headers, body."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    host = parts.hostname or ""
    reader, writer = await asyncio.open_connection(host, port, ssl=secure or None)
    try:
        body = json.dumps(payload, ensure_ascii=False).encode()
        head = (
            f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''}"
            f" HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n"
            f"Idempotency-Key: {idempotency_key}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    return _parse_response(raw)


def _parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise OSError("not an HTTP answer") from None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


class RateLimiter:
    """A token bucket per channel, per process: waits until n messages may go."""

    def __init__(self, rates: dict[str, float]) -> None:
        self._rates = rates
        self._next: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def take(self, channel: int, count: int) -> None:
        rate = self._rates.get(CHANNEL_NAMES.get(channel, ""), 0.0)
        if rate <= 0 or count <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(CHANNEL_NAMES[channel], now))
            self._next[CHANNEL_NAMES[channel]] = start + count / rate
        # The first message of the batch may go at start; a burst of one.
        if start > now:
            await asyncio.sleep(start - now)


def providers_from(settings: ProviderSettings) -> dict[int, Provider]:
    """The provider of each channel for these settings."""
    external: Provider
    if settings.webhook_url:
        external = WebhookProvider(settings.webhook_url, settings.webhook_timeout)
    else:
        external = OutboxProvider()
    return {
        pb.CHANNEL_APP: InboxProvider(),
        pb.CHANNEL_TEXT_MESSAGE: external,
        pb.CHANNEL_GROUP_CHAT: external,
        pb.CHANNEL_TV: external,
    }
