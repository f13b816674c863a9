"""DisclosuresService: the three-affairs items a village's cadres publish.

Cadres publish and correct items of the villages they answer for
(`x-cloudark-areas`); operators and systems of any village. Anyone
signed in reads them: they are public by law. A correction needs a reason
and the revision it corrects, and every revision stays readable.
"""

import uuid
from typing import Any

import asyncpg
from cloudark.grids.v1 import grids_pb2
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.notifications.v1 import notifications_pb2_grpc as pb_grpc

from services.common.db import Connection
from services.common.errors import (
    Aborted,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from services.common.idempotency import run_once
from services.common.identity import Caller, Role, caller_of
from services.common.pagination import decode_token, encode_token, fingerprint
from services.common.validation import Violations
from services.notifications import config
from services.notifications import disclosures_repository as repo
from services.notifications.audience import AudienceResolver
from services.notifications.shared import (
    page_size,
    required_id,
    time_cursor,
    timestamp,
)

Context = Any
EDITORS = (Role.CADRE, Role.OPERATOR, Role.SYSTEM)
CATEGORIES = (
    pb.DISCLOSURE_CATEGORY_PARTY,
    pb.DISCLOSURE_CATEGORY_VILLAGE,
    pb.DISCLOSURE_CATEGORY_FINANCE,
)


class DisclosuresServicer(pb_grpc.DisclosuresServiceServicer):
    def __init__(self, pool: asyncpg.Pool, resolver: AudienceResolver) -> None:
        self._pool = pool
        self._resolver = resolver

    async def PublishDisclosure(
        self, request: pb.PublishDisclosureRequest, context: Context
    ) -> pb.PublishDisclosureResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        village_id = v.id("village_id", request.village_id)
        content = _content(v, request)
        v.request_id(request.request_id)
        v.raise_if_any()
        assert village_id is not None
        _require_village_of(caller, village_id)
        kind = await self._resolver.area_kind(str(village_id), "village_id")
        if kind != grids_pb2.AREA_KIND_VILLAGE:
            raise FailedPrecondition(
                "village_id is not a village", subject="village_id"
            )

        async def publish(conn: Connection) -> pb.PublishDisclosureResponse:
            disclosure_id = await repo.publish(
                conn, village_id, caller.subject, content
            )
            row = await repo.get(conn, disclosure_id)
            assert row is not None
            return pb.PublishDisclosureResponse(disclosure=disclosure_proto(row))

        return await run_once(
            self._pool,
            caller=caller,
            method="PublishDisclosure",
            request=request,
            response_type=pb.PublishDisclosureResponse,
            action=publish,
        )

    async def CorrectDisclosure(
        self, request: pb.CorrectDisclosureRequest, context: Context
    ) -> pb.CorrectDisclosureResponse:
        caller = caller_of(context)
        caller.require(*EDITORS)
        v = Violations()
        disclosure_id = v.id("id", request.id)
        if request.revision < 1:
            v.add("revision", "is required: the revision being corrected")
        content = _content(v, request)
        reason = v.text(
            "reason", request.reason, max_length=config.DISCLOSURE_REASON_MAX
        )
        v.request_id(request.request_id)
        v.raise_if_any()
        assert disclosure_id is not None

        async def correct(conn: Connection) -> pb.CorrectDisclosureResponse:
            row = await repo.get(conn, disclosure_id, for_update=True)
            if row is None:
                raise NotFound("disclosure")
            _require_village_of(caller, row.village_id)
            if row.revision != request.revision:
                raise Aborted(
                    f"revision {request.revision} is not the latest ({row.revision});"
                    " read it again"
                )
            await repo.correct(
                conn, disclosure_id, row.revision + 1, content, caller.subject, reason
            )
            corrected = await repo.get(conn, disclosure_id)
            assert corrected is not None
            return pb.CorrectDisclosureResponse(disclosure=disclosure_proto(corrected))

        return await run_once(
            self._pool,
            caller=caller,
            method="CorrectDisclosure",
            request=request,
            response_type=pb.CorrectDisclosureResponse,
            action=correct,
        )

    async def GetDisclosure(
        self, request: pb.GetDisclosureRequest, context: Context
    ) -> pb.GetDisclosureResponse:
        caller_of(context)
        disclosure_id = required_id("id", request.id)
        async with self._pool.acquire() as conn:
            row = await repo.get(conn, disclosure_id)
        if row is None:
            raise NotFound("disclosure")
        return pb.GetDisclosureResponse(disclosure=disclosure_proto(row))

    async def ListDisclosures(
        self, request: pb.ListDisclosuresRequest, context: Context
    ) -> pb.ListDisclosuresResponse:
        caller_of(context)
        v = Violations()
        village_id = v.id("village_id", request.village_id)
        if request.category and request.category not in CATEGORIES:
            v.add("category", "is not a disclosure category")
        limit = page_size(v, request.page_size)
        v.raise_if_any()
        assert village_id is not None
        query = fingerprint("ListDisclosures", village_id, request.category)
        after = time_cursor(decode_token(request.page_token, query))
        async with self._pool.acquire() as conn:
            rows = await repo.list_for_village(
                conn, village_id, request.category, after, limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        token = ""
        if more:
            last = page[-1]
            token = encode_token(query, [last.publish_time.isoformat(), str(last.id)])
        return pb.ListDisclosuresResponse(
            disclosures=[disclosure_proto(r) for r in page], next_page_token=token
        )

    async def ListDisclosureRevisions(
        self, request: pb.ListDisclosureRevisionsRequest, context: Context
    ) -> pb.ListDisclosureRevisionsResponse:
        caller_of(context)
        disclosure_id = required_id("id", request.id)
        async with self._pool.acquire() as conn:
            rows = await repo.revisions(conn, disclosure_id)
        if not rows:
            raise NotFound("disclosure")
        return pb.ListDisclosureRevisionsResponse(
            revisions=[
                pb.DisclosureRevision(
                    revision=r.revision,
                    category=r.content.category,  # type: ignore[arg-type]
                    title=r.content.title,
                    body=r.content.body,
                    attachments=_attachments(r.content),
                    period=r.content.period,
                    editor_id=r.editor_id,
                    reason=r.reason,
                    create_time=timestamp(r.create_time),
                )
                for r in rows
            ]
        )


def _require_village_of(caller: Caller, village_id: uuid.UUID) -> None:
    if caller.role == Role.CADRE and str(village_id) not in caller.area_ids:
        raise PermissionDenied("cadres publish for their own villages only")


def _content(
    v: Violations, request: pb.PublishDisclosureRequest | pb.CorrectDisclosureRequest
) -> repo.Content:
    if request.category not in CATEGORIES:
        v.add("category", "must be party, village or finance affairs")
    title = v.text("title", request.title, max_length=config.DISCLOSURE_TITLE_MAX)
    body = v.text("body", request.body, max_length=config.DISCLOSURE_BODY_MAX)
    period = v.text("period", request.period, max_length=config.DISCLOSURE_PERIOD_MAX)
    if len(request.attachments) > config.ATTACHMENTS_MAX:
        v.add("attachments", f"at most {config.ATTACHMENTS_MAX}")
    attachments = []
    for i, attachment in enumerate(request.attachments):
        name = v.text(
            f"attachments[{i}].name",
            attachment.name,
            max_length=config.ATTACHMENT_NAME_MAX,
        )
        uri = v.text(
            f"attachments[{i}].uri",
            attachment.uri,
            max_length=config.ATTACHMENT_URI_MAX,
        )
        attachments.append((name, uri))
    return repo.Content(request.category, title, body, attachments, period)


def _attachments(content: repo.Content) -> list[pb.Attachment]:
    return [pb.Attachment(name=n, uri=u) for n, u in content.attachments]


def disclosure_proto(row: repo.DisclosureRow) -> pb.Disclosure:
    return pb.Disclosure(
        id=str(row.id),
        village_id=str(row.village_id),
        category=row.content.category,  # type: ignore[arg-type]
        title=row.content.title,
        body=row.content.body,
        attachments=_attachments(row.content),
        period=row.content.period,
        revision=row.revision,
        publisher_id=row.publisher_id,
        publish_time=timestamp(row.publish_time),
        update_time=timestamp(row.update_time),
    )
