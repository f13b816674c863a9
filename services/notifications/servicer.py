"""NotificationsService: validation, authorization and the RPCs.

Senders are staff, operators and systems (our workflows). A notification is
resolved and recorded in one transaction with its request_id; sending is the
NotificationWorkflow's, started once the record is committed.
"""

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.notifications.v1 import notifications_pb2_grpc as pb_grpc
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from services.common.db import Connection
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.idempotency import run_once
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import decode_token, encode_token, fingerprint
from services.common.validation import Violations
from services.notifications import config, templates
from services.notifications import repository as repo
from services.notifications.audience import (
    APP,
    GROUP_CHAT,
    TEXT,
    TV,
    AudienceResolver,
    Recipient,
    Resolved,
)
from services.notifications.dispatch import Dispatcher, message_text
from services.notifications.quiet import QuietHours
from services.notifications.shared import (
    int_cursor,
    page_size,
    required_id,
    time_cursor,
    timestamp,
    uuid_cursor,
)
from workflows.notifications.shared import NotificationInput, notification_workflow_id

log = logging.getLogger(__name__)
Context = Any  # grpc.aio.ServicerContext; typed loosely to match the stubs.

SENDERS = (Role.OPERATOR, Role.SYSTEM, Role.GRID_WORKER, Role.CADRE)
OVERSEERS = (Role.OPERATOR, Role.SYSTEM)
CHANNELS = (APP, TEXT, GROUP_CHAT, TV)
URGENCIES = (pb.URGENCY_NORMAL, pb.URGENCY_URGENT)
TAGS = frozenset(pb.AudienceTag.values()) - {pb.AUDIENCE_TAG_UNSPECIFIED}
STATUSES = frozenset(pb.DeliveryStatus.values())
FALLBACK_MAX_SECONDS = 7 * 24 * 3600
# Younger notifications may still be between their commit and their start.
RESUME_AFTER = timedelta(minutes=1)
ALERT_TITLE = "请电话联系居民 / Please phone a resident"
ALERT_BODY = (
    "通知 {notification} 未能通过应用或短信送达居民 {resident}，请电话联系。"
    " Notification {notification} did not reach resident {resident} in the app"
    " or by text message; please phone them."
)


class NotificationsServicer(pb_grpc.NotificationsServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        resolver: AudienceResolver,
        dispatcher: Dispatcher,
        temporal: Client | None,
        task_queue: str,
    ) -> None:
        self._pool = pool
        self._resolver = resolver
        self._dispatcher = dispatcher
        self._temporal = temporal
        self._task_queue = task_queue

    # ---- sending ----

    async def SendNotification(
        self, request: pb.SendNotificationRequest, context: Context
    ) -> pb.SendNotificationResponse:
        caller = caller_of(context)
        caller.require(*SENDERS)
        _validate_send(request)
        async with self._pool.acquire() as conn:
            titles, bodies = await _texts(conn, request)
        _check_quiet_hours(request, datetime.now(UTC))

        async def send(conn: Connection) -> pb.SendNotificationResponse:
            resolved = await self._resolver.resolve(request.audience)
            row = _notification_row(caller, request, titles, bodies, resolved)
            deliveries = plan_deliveries(resolved, list(request.channels))
            if not deliveries:
                raise FailedPrecondition(
                    "the audience has nobody the channels can reach",
                    subject="audience",
                )
            await repo.insert_notification(conn, row)
            await repo.insert_deliveries(conn, row.id, deliveries, first_seq=1)
            log.info(
                "notification %s recorded: %s recipients, %s deliveries",
                row.id,
                row.recipients,
                len(deliveries),
            )
            counts = {repo.QUEUED: len(deliveries)}
            return pb.SendNotificationResponse(
                notification=notification_proto(row, counts)
            )

        response = await run_once(
            self._pool,
            caller=caller,
            method="SendNotification",
            request=request,
            response_type=pb.SendNotificationResponse,
            action=send,
        )
        await self._start_sending(response.notification)
        return response

    async def _start_sending(self, notification: pb.Notification) -> None:
        """Starts the notification's workflow unless it runs or ran already."""
        if self._temporal is None:
            raise Unavailable("no Temporal client: cannot start sending")
        try:
            await self._temporal.start_workflow(
                "NotificationWorkflow",
                NotificationInput(
                    notification_id=notification.id,
                    purpose=pb.DELIVERY_PURPOSE_MESSAGE,
                    fallback_after_seconds=notification.fallback.text_message_after_seconds,
                    alert_grid_worker=notification.fallback.alert_grid_worker_on_failure,
                ),
                id=notification_workflow_id(
                    notification.id, pb.DELIVERY_PURPOSE_MESSAGE
                ),
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass
        except RPCError as error:
            log.warning(
                "notification %s: workflow not started: %s", notification.id, error
            )
            raise Unavailable(
                "recorded, but sending could not start; retry with the same request_id"
            ) from None
        async with self._pool.acquire() as conn:
            await repo.mark_started(conn, uuid.UUID(notification.id))

    async def resume_sending(self) -> int:
        """Starts the workflows of notifications left without one: the process
        died between recording one and starting its workflow. Returns how
        many it started."""
        try:
            async with self._pool.acquire() as conn:
                rows = await repo.unstarted_candidates(conn, RESUME_AFTER)
            for row in rows:
                await self._start_sending(notification_proto(row, {}))
        except Exception:
            log.exception(
                "resuming notifications failed; they resume at the next start"
            )
            return 0
        if rows:
            log.info("started the workflows of %s notifications", len(rows))
        return len(rows)

    # ---- reading ----

    async def GetNotification(
        self, request: pb.GetNotificationRequest, context: Context
    ) -> pb.GetNotificationResponse:
        caller = caller_of(context)
        notification_id = required_id("id", request.id)
        async with self._pool.acquire() as conn:
            row = await _readable(conn, caller, notification_id, "id")
            counts = await repo.status_counts(conn, row.id)
        return pb.GetNotificationResponse(notification=notification_proto(row, counts))

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: Context
    ) -> pb.ListDeliveriesResponse:
        caller = caller_of(context)
        v = Violations()
        notification_id = v.id("notification_id", request.notification_id)
        if request.status not in STATUSES:
            v.add("status", "is not a delivery status")
        if len(request.recipient_id) > config.ID_MAX:
            v.add("recipient_id", f"must be at most {config.ID_MAX} characters")
        limit = page_size(v, request.page_size)
        v.raise_if_any()
        assert notification_id is not None
        query = fingerprint(
            "ListDeliveries", notification_id, request.status, request.recipient_id
        )
        after = int_cursor(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            await _readable(conn, caller, notification_id, "notification_id")
            rows = await repo.list_deliveries(
                conn,
                notification_id,
                request.status,
                request.recipient_id,
                after,
                limit + 1,
            )
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [page[-1].seq]) if more else ""
        return pb.ListDeliveriesResponse(
            deliveries=[delivery_proto(r) for r in page], next_page_token=token
        )

    async def ListInbox(
        self, request: pb.ListInboxRequest, context: Context
    ) -> pb.ListInboxResponse:
        caller = caller_of(context)
        v = Violations()
        v.text("recipient_id", request.recipient_id, max_length=config.ID_MAX)
        limit = page_size(v, request.page_size)
        v.raise_if_any()
        if caller.role not in OVERSEERS and caller.subject != request.recipient_id:
            raise PermissionDenied("an inbox is read by its owner only")
        query = fingerprint("ListInbox", request.recipient_id, request.unread_only)
        after = time_cursor(decode_token(request.page_token, query))

        async with self._pool.acquire() as conn:
            rows = await repo.inbox(
                conn, request.recipient_id, request.unread_only, after, limit + 1
            )
            page, more = rows[:limit], len(rows) > limit
            notifications = await _notifications_of(conn, page)
            messages = [
                _inbox_message(notifications[r.notification_id], r) for r in page
            ]
        token = ""
        if more and page[-1].sent_time is not None:
            token = encode_token(
                query, [page[-1].sent_time.isoformat(), str(page[-1].id)]
            )
        return pb.ListInboxResponse(messages=messages, next_page_token=token)

    async def MarkRead(
        self, request: pb.MarkReadRequest, context: Context
    ) -> pb.MarkReadResponse:
        caller = caller_of(context)
        v = Violations()
        delivery_id = v.id("delivery_id", request.delivery_id)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert delivery_id is not None

        async def mark(conn: Connection) -> pb.MarkReadResponse:
            row = await repo.get_delivery(conn, delivery_id, for_update=True)
            if row is None:
                raise NotFound("delivery", "delivery_id")
            if caller.role not in OVERSEERS and caller.subject != row.person_id:
                raise PermissionDenied("only the recipient marks a message read")
            if row.channel != APP or row.sent_time is None:
                raise FailedPrecondition(
                    "only an in-app message in the inbox can be read",
                    subject="delivery_id",
                )
            await repo.mark_read(conn, delivery_id)
            marked = await repo.get_delivery(conn, delivery_id)
            assert marked is not None
            return pb.MarkReadResponse(delivery=delivery_proto(marked))

        return await run_once(
            self._pool,
            caller=caller,
            method="MarkRead",
            request=request,
            response_type=pb.MarkReadResponse,
            action=mark,
        )

    # ---- templates ----

    async def CreateTemplate(
        self, request: pb.CreateTemplateRequest, context: Context
    ) -> pb.CreateTemplateResponse:
        caller = caller_of(context)
        caller.require(*SENDERS)
        v = Violations()
        name = v.text("name", request.name, max_length=config.TEMPLATE_NAME_MAX)
        titles = _languages(v, "titles", request.titles, config.TITLE_MAX)
        bodies = _languages(v, "bodies", request.bodies, config.BODY_MAX)
        if not bodies:
            v.add("bodies", "needs a body in zh or en")
        v.request_id(request.request_id)
        v.raise_if_any()
        variables = templates.variables_of(*titles.values(), *bodies.values())

        async def create(conn: Connection) -> pb.CreateTemplateResponse:
            row = await repo.insert_template(conn, name, titles, bodies, variables)
            return pb.CreateTemplateResponse(template=template_proto(row))

        return await run_once(
            self._pool,
            caller=caller,
            method="CreateTemplate",
            request=request,
            response_type=pb.CreateTemplateResponse,
            action=create,
        )

    async def GetTemplate(
        self, request: pb.GetTemplateRequest, context: Context
    ) -> pb.GetTemplateResponse:
        caller_of(context).require(*SENDERS)
        template_id = required_id("id", request.id)
        async with self._pool.acquire() as conn:
            row = await repo.get_template(conn, template_id)
        if row is None:
            raise NotFound("template")
        return pb.GetTemplateResponse(template=template_proto(row))

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, context: Context
    ) -> pb.ListTemplatesResponse:
        caller_of(context).require(*SENDERS)
        v = Violations()
        limit = page_size(v, request.page_size)
        v.raise_if_any()
        query = fingerprint("ListTemplates")
        after = uuid_cursor(decode_token(request.page_token, query))
        async with self._pool.acquire() as conn:
            rows = await repo.list_templates(conn, after, limit + 1)
        page, more = rows[:limit], len(rows) > limit
        token = encode_token(query, [str(page[-1].id)]) if more else ""
        return pb.ListTemplatesResponse(
            templates=[template_proto(r) for r in page], next_page_token=token
        )

    async def ListOutboxMessages(
        self, request: pb.ListOutboxMessagesRequest, context: Context
    ) -> pb.ListOutboxMessagesResponse:
        caller_of(context).require(*OVERSEERS)
        v = Violations()
        notification_id = v.id(
            "notification_id", request.notification_id, required=False
        )
        limit = page_size(v, request.page_size)
        v.raise_if_any()
        query = fingerprint("ListOutboxMessages", notification_id)
        after = time_cursor(decode_token(request.page_token, query))
        async with self._pool.acquire() as conn:
            rows = await repo.list_outbox(conn, notification_id, after, limit + 1)
        page, more = rows[:limit], len(rows) > limit
        token = ""
        if more:
            token = encode_token(
                query, [page[-1].create_time.isoformat(), str(page[-1].id)]
            )
        return pb.ListOutboxMessagesResponse(
            messages=[
                pb.OutboxMessage(
                    id=str(r.id),
                    delivery_id=str(r.delivery_id),
                    channel=r.channel,  # type: ignore[arg-type]
                    address=r.address,
                    title=r.title,
                    body=r.body,
                    create_time=timestamp(r.create_time),
                )
                for r in page
            ],
            next_page_token=token,
        )

    # ---- for the workflows ----

    async def DispatchDeliveries(
        self, request: pb.DispatchDeliveriesRequest, context: Context
    ) -> pb.DispatchDeliveriesResponse:
        caller_of(context).require(Role.SYSTEM)
        v = Violations()
        notification_id = v.id("notification_id", request.notification_id)
        if request.purpose not in (1, 2, 3):
            v.add("purpose", "is not a delivery purpose")
        if request.after_seq < 0:
            v.add("after_seq", "must not be negative")
        if not 0 <= request.limit <= config.DISPATCH_PAGE_MAX:
            v.add("limit", f"must be 0 to {config.DISPATCH_PAGE_MAX}")
        v.raise_if_any()
        assert notification_id is not None
        async with self._pool.acquire() as conn:
            row = await repo.get_notification(conn, notification_id)
        if row is None:
            raise NotFound("notification", "notification_id")

        result = await self._dispatcher.dispatch(
            row,
            request.purpose,
            request.after_seq,
            request.limit or config.DISPATCH_PAGE_DEFAULT,
            datetime.now(UTC),
        )
        response = pb.DispatchDeliveriesResponse(
            last_seq=result.last_seq,
            done=result.done,
            sent=result.sent,
            failed=result.failed,
            retrying=result.retrying,
            retry_after_seconds=int(result.retry_after + 0.999),
            remaining=result.remaining,
        )
        if result.wait_until is not None:
            response.wait_until.CopyFrom(timestamp(result.wait_until))
        return response

    async def QueueFallbackDeliveries(
        self, request: pb.QueueFallbackDeliveriesRequest, context: Context
    ) -> pb.QueueFallbackDeliveriesResponse:
        caller_of(context).require(Role.SYSTEM)
        v = Violations()
        notification_id = v.id("notification_id", request.notification_id)
        if request.purpose not in (repo.FALLBACK_TEXT, repo.GRID_WORKER_ALERT):
            v.add("purpose", "must be FALLBACK_TEXT or GRID_WORKER_ALERT")
        v.raise_if_any()
        assert notification_id is not None
        async with self._pool.acquire() as conn:
            if await repo.get_notification(conn, notification_id) is None:
                raise NotFound("notification", "notification_id")
            if request.purpose == repo.FALLBACK_TEXT:
                rows = await repo.unread_app_residents(conn, notification_id)
                new = [_fallback_text(r) for r in rows]
            else:
                rows = await repo.failed_fallback_texts(conn, notification_id)
                new = await self._alerts(notification_id, rows)
        async with self._pool.acquire() as conn, conn.transaction():
            added = await repo.insert_deliveries_once(conn, notification_id, new)
            # All of them, not just the new: a repeated call after a crash
            # must still tell the workflow there is something to send.
            queued = await conn.fetchval(
                "SELECT count(*) FROM deliveries"
                " WHERE notification_id = $1 AND purpose = $2",
                notification_id,
                request.purpose,
            )
        log.info(
            "notification %s: %s fallback deliveries added", notification_id, added
        )
        return pb.QueueFallbackDeliveriesResponse(queued=queued)

    async def _alerts(
        self, notification_id: uuid.UUID, failed: list[repo.DeliveryRow]
    ) -> list[repo.NewDelivery]:
        workers: dict[str, list[Recipient]] = {}
        new = []
        for row in failed:
            micro_grid = str(row.micro_grid_id) if row.micro_grid_id else ""
            if not micro_grid:
                continue
            if micro_grid not in workers:
                workers[micro_grid] = await self._resolver.grid_workers_of(micro_grid)
            text = ALERT_BODY.format(
                notification=notification_id, resident=row.recipient_id
            )
            for worker in workers[micro_grid]:
                new.append(
                    repo.NewDelivery(
                        purpose=repo.GRID_WORKER_ALERT,
                        recipient_kind=pb.RECIPIENT_KIND_STAFF,
                        recipient_id=worker.id,
                        person_id=worker.person_id,
                        micro_grid_id="",
                        channel=APP,
                        language=config.DEFAULT_LANGUAGE,
                        about_id=row.recipient_id,
                        title=ALERT_TITLE,
                        body=text,
                    )
                )
        return new


# ---- validation ----


def _validate_send(request: pb.SendNotificationRequest) -> None:
    v = Violations()
    audience = request.audience
    if not (audience.resident_ids or audience.staff_ids or audience.area_ids):
        v.add("audience", "is empty: name residents, staff or areas")
    for name in (
        "resident_ids",
        "staff_ids",
        "area_ids",
        "exclude_resident_ids",
        "exclude_staff_ids",
    ):
        values = getattr(audience, name)
        if len(values) > config.NAMED_MAX:
            v.add(f"audience.{name}", f"must name at most {config.NAMED_MAX}")
        for i, value in enumerate(values):
            v.id(f"audience.{name}[{i}]", value)
    for i, tag in enumerate(audience.tags):
        if tag not in TAGS:
            v.add(f"audience.tags[{i}]", "is not an audience tag")
    if audience.tags and not audience.area_ids:
        v.add("audience.tags", "narrow audience.area_ids, which is empty")
    for i, channel in enumerate(request.channels):
        if channel not in CHANNELS:
            v.add(f"channels[{i}]", "is not a known channel")
    if pb.CHANNEL_TV in request.channels and not audience.area_ids:
        v.add("channels", "TV displays need audience.area_ids")
    if request.urgency not in (0, *URGENCIES):
        v.add("urgency", "is not an urgency")
    _validate_text(v, request)
    _validate_fallback(v, request)
    _validate_quiet(v, request)
    if len(request.reference) > config.REFERENCE_MAX:
        v.add("reference", f"must be at most {config.REFERENCE_MAX} characters")
    v.request_id(request.request_id)
    v.raise_if_any()


def _validate_text(v: Violations, request: pb.SendNotificationRequest) -> None:
    if request.template_id:
        v.id("template_id", request.template_id)
        if request.title or request.body:
            v.add("template_id", "give a template or a title and body, not both")
        return
    v.text("title", request.title, max_length=config.TITLE_MAX)
    v.text("body", request.body, max_length=config.BODY_MAX)
    for name in sorted(request.variables):
        v.add(f"variables.{name}", "is not a variable: there is no template")


def _validate_fallback(v: Violations, request: pb.SendNotificationRequest) -> None:
    fallback = request.fallback
    seconds = fallback.text_message_after_seconds
    if not 0 <= seconds <= FALLBACK_MAX_SECONDS:
        v.add(
            "fallback.text_message_after_seconds",
            f"must be 0 to {FALLBACK_MAX_SECONDS}",
        )
    if fallback.alert_grid_worker_on_failure and seconds == 0:
        v.add(
            "fallback.alert_grid_worker_on_failure",
            "needs fallback.text_message_after_seconds",
        )
    if seconds and request.channels and APP not in request.channels:
        v.add("fallback", "falls back from the app, which channels leaves out")


def _validate_quiet(v: Violations, request: pb.SendNotificationRequest) -> None:
    if request.HasField("quiet_hours"):
        quiet = request.quiet_hours
        for name in ("start_minute", "end_minute"):
            if not 0 <= getattr(quiet, name) < 24 * 60:
                v.add(f"quiet_hours.{name}", "must be 0 to 1439")
        if quiet.start_minute == quiet.end_minute:
            v.add("quiet_hours", "start_minute and end_minute must differ")


def _check_quiet_hours(request: pb.SendNotificationRequest, now: datetime) -> None:
    """A non-urgent message that quiet hours hold past its expiry is refused."""
    if not request.HasField("expire_time"):
        return
    expire = request.expire_time.ToDatetime(tzinfo=UTC)
    if expire <= now:
        raise InvalidArgument.field("expire_time", "is in the past")
    if request.urgency == pb.URGENCY_URGENT or not request.HasField("quiet_hours"):
        return
    quiet = QuietHours(request.quiet_hours.start_minute, request.quiet_hours.end_minute)
    if quiet.blocks_until(now, expire):
        raise FailedPrecondition(
            "quiet hours last past expire_time: a non-urgent message could"
            " never be sent; make it urgent or give it longer",
            subject="quiet_hours",
        )


async def _texts(
    conn: Connection, request: pb.SendNotificationRequest
) -> tuple[dict[str, str], dict[str, str]]:
    """The title and body in each language, variables filled in."""
    if not request.template_id:
        title, body = request.title.strip(), request.body.strip()
        return dict.fromkeys(config.LANGUAGES, title), dict.fromkeys(
            config.LANGUAGES, body
        )
    template = await repo.get_template(conn, uuid.UUID(request.template_id))
    if template is None:
        raise NotFound("template", "template_id")
    v = Violations()
    for name in sorted(set(request.variables) - set(template.variables)):
        v.add(f"variables.{name}", "is not a variable of the template")
    for name in sorted(set(template.variables) - set(request.variables)):
        v.add(f"variables.{name}", "is required by the template")
    for name, value in request.variables.items():
        if len(value) > config.VARIABLE_MAX:
            v.add(
                f"variables.{name}", f"must be at most {config.VARIABLE_MAX} characters"
            )
    v.raise_if_any()
    values = dict(request.variables)
    return (
        templates.render_languages(template.titles, values),
        templates.render_languages(template.bodies, values),
    )


def _languages(
    v: Violations, field: str, texts: Any, max_length: int
) -> dict[str, str]:
    result = {}
    for language in sorted(texts):
        if language not in config.LANGUAGES:
            v.add(f"{field}.{language}", "must be zh or en")
            continue
        result[language] = v.text(
            f"{field}.{language}", texts[language], max_length=max_length
        )
    return result


# ---- what a notification becomes ----


def plan_deliveries(
    resolved: Resolved, channels: Sequence[int]
) -> list[repo.NewDelivery]:
    """One delivery per (recipient, channel): personal channels per person,
    one group chat message per micro-grid, one TV message per area."""
    planned: dict[tuple[int, str, int], repo.NewDelivery] = {}

    def add(
        kind: int, recipient_id: str, person: Recipient | None, channel: int
    ) -> None:
        key = (kind, recipient_id, channel)
        if key not in planned:
            planned[key] = repo.NewDelivery(
                purpose=repo.MESSAGE,
                recipient_kind=kind,
                recipient_id=recipient_id,
                person_id=person.person_id if person else "",
                micro_grid_id=(person.micro_grid_id if person else "")
                or (recipient_id if kind == pb.RECIPIENT_KIND_GROUP_CHAT else ""),
                channel=channel,
                language=person.language if person else config.DEFAULT_LANGUAGE,
            )

    for person in resolved.recipients:
        wanted = list(channels) or [_preferred(person)]
        for channel in wanted:
            if channel in (APP, TEXT):
                add(person.kind, person.id, person, channel)
            elif channel == GROUP_CHAT and person.micro_grid_id:
                add(pb.RECIPIENT_KIND_GROUP_CHAT, person.micro_grid_id, None, channel)
            elif channel == GROUP_CHAT and not channels:
                # Preferred a group chat but has none (staff): the app instead.
                add(person.kind, person.id, person, APP)
    if TV in channels:
        for area_id in resolved.area_ids:
            add(pb.RECIPIENT_KIND_TV, area_id, None, TV)
    return list(planned.values())


def _preferred(person: Recipient) -> int:
    """A person's first preferred channel; the app without one. Named
    people are reached personally, never through their group chat."""
    choices = person.channels
    if person.named:
        choices = tuple(c for c in choices if c in (APP, TEXT))
    return choices[0] if choices else APP


def _notification_row(
    caller: Caller,
    request: pb.SendNotificationRequest,
    titles: dict[str, str],
    bodies: dict[str, str],
    resolved: Resolved,
) -> repo.NotificationRow:
    quiet = request.quiet_hours if request.HasField("quiet_hours") else None
    return repo.NotificationRow(
        id=uuid.uuid4(),
        sender_id=caller.subject,
        template_id=uuid.UUID(request.template_id) if request.template_id else None,
        variables=dict(request.variables),
        titles=titles,
        bodies=bodies,
        audience=request.audience.SerializeToString(deterministic=True),
        channels=list(request.channels),
        urgency=request.urgency or pb.URGENCY_NORMAL,
        fallback_after_seconds=request.fallback.text_message_after_seconds,
        alert_grid_worker=request.fallback.alert_grid_worker_on_failure,
        reference=request.reference,
        quiet_start_minute=quiet.start_minute if quiet else None,
        quiet_end_minute=quiet.end_minute if quiet else None,
        expire_time=request.expire_time.ToDatetime(tzinfo=UTC)
        if request.HasField("expire_time")
        else None,
        recipients=len(resolved.recipients),
        create_time=datetime.now(UTC),
    )


def _fallback_text(row: repo.DeliveryRow) -> repo.NewDelivery:
    return repo.NewDelivery(
        purpose=repo.FALLBACK_TEXT,
        recipient_kind=row.recipient_kind,
        recipient_id=row.recipient_id,
        person_id=row.person_id,
        micro_grid_id=str(row.micro_grid_id) if row.micro_grid_id else "",
        channel=TEXT,
        language=row.language,
    )


async def _readable(
    conn: Connection, caller: Caller, notification_id: uuid.UUID, field: str
) -> repo.NotificationRow:
    """The notification, if the caller sent it or oversees all of them."""
    row = await repo.get_notification(conn, notification_id)
    if row is None:
        raise NotFound("notification", field)
    if caller.role not in OVERSEERS and caller.subject != row.sender_id:
        raise PermissionDenied("only the sender sees a notification's deliveries")
    return row


async def _notifications_of(
    conn: Connection, rows: list[repo.DeliveryRow]
) -> dict[uuid.UUID, repo.NotificationRow]:
    """The notifications of a page of deliveries, each read once."""
    found = {}
    for notification_id in {r.notification_id for r in rows}:
        notification = await repo.get_notification(conn, notification_id)
        assert notification is not None
        found[notification_id] = notification
    return found


def _inbox_message(
    notification: repo.NotificationRow, row: repo.DeliveryRow
) -> pb.InboxMessage:
    title, body = message_text(notification, row)
    message = pb.InboxMessage(
        delivery_id=str(row.id),
        notification_id=str(row.notification_id),
        title=title,
        body=body,
        read=row.read_time is not None,
        reference=notification.reference,
    )
    if row.sent_time is not None:
        message.create_time.CopyFrom(timestamp(row.sent_time))
    return message


# ---- protos ----


def notification_proto(
    row: repo.NotificationRow, counts: dict[int, int]
) -> pb.Notification:
    notification = pb.Notification(
        id=str(row.id),
        template_id=str(row.template_id) if row.template_id else "",
        variables=row.variables,
        title=row.titles.get(config.DEFAULT_LANGUAGE, ""),
        body=row.bodies.get(config.DEFAULT_LANGUAGE, ""),
        audience=pb.Audience.FromString(row.audience),
        channels=row.channels,  # type: ignore[arg-type]
        urgency=row.urgency,  # type: ignore[arg-type]
        fallback=pb.Fallback(
            text_message_after_seconds=row.fallback_after_seconds,
            alert_grid_worker_on_failure=row.alert_grid_worker,
        ),
        sender_id=row.sender_id,
        create_time=timestamp(row.create_time),
        recipients=row.recipients,
        status_counts={pb.DeliveryStatus.Name(s): n for s, n in counts.items()},  # type: ignore[arg-type]
        reference=row.reference,
    )
    if row.quiet_start_minute is not None and row.quiet_end_minute is not None:
        notification.quiet_hours.CopyFrom(
            pb.QuietHours(
                start_minute=row.quiet_start_minute, end_minute=row.quiet_end_minute
            )
        )
    if row.expire_time is not None:
        notification.expire_time.CopyFrom(timestamp(row.expire_time))
    return notification


def delivery_proto(row: repo.DeliveryRow) -> pb.Delivery:
    delivery = pb.Delivery(
        id=str(row.id),
        notification_id=str(row.notification_id),
        recipient_kind=row.recipient_kind,  # type: ignore[arg-type]
        recipient_id=row.recipient_id,
        channel=row.channel,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        failure_reason=row.failure_reason,
        attempts=row.attempts,
        update_time=timestamp(row.update_time),
        purpose=row.purpose,  # type: ignore[arg-type]
        about_resident_id=row.about_id,
    )
    if row.read_time is not None:
        delivery.read_time.CopyFrom(timestamp(row.read_time))
    return delivery


def template_proto(row: repo.TemplateRow) -> pb.Template:
    return pb.Template(
        id=str(row.id),
        name=row.name,
        titles=row.titles,
        bodies=row.bodies,
        variables=row.variables,
    )
