"""Three-affairs disclosures: cadres publish for their village, residents
read, corrections keep every revision, nothing is deleted."""

import asyncpg
import grpc
import pytest
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.notifications.v1 import notifications_pb2_grpc as pb_grpc

from services.common.identity import Caller, Role
from services.common.server import RunningService
from tests.helpers import bad_fields, call_error
from tests.residents.support import as_resident, place


def cadre_of(*village_ids: str) -> tuple[tuple[str, str], ...]:
    return Caller(subject="cadre-1", role=Role.CADRE, area_ids=village_ids).metadata()


def finance_item(village_id: str, amount: str) -> pb.PublishDisclosureRequest:
    return pb.PublishDisclosureRequest(
        village_id=village_id,
        category=pb.DISCLOSURE_CATEGORY_FINANCE,
        title="2022年第四季度村级财务收支",
        body=f"收入 {amount} 元",
        attachments=[pb.Attachment(name="明细.pdf", uri="s3://disclosures/q4.pdf")],
        period="2022-Q4",
    )


async def test_a_correction_keeps_the_first_revision_and_residents_read_both(
    notifications_channel: grpc.aio.Channel, grids_channel: grpc.aio.Channel
) -> None:
    stub = pb_grpc.DisclosuresServiceStub(notifications_channel)
    village = (await place(grids_channel)).village
    published = await stub.PublishDisclosure(
        finance_item(village.id, "120,000"), metadata=cadre_of(village.id)
    )
    item = published.disclosure

    corrected = await stub.CorrectDisclosure(
        pb.CorrectDisclosureRequest(
            id=item.id,
            revision=1,
            category=item.category,
            title=item.title,
            body="收入 102,000 元",
            period=item.period,
            reason="数字录入错误",
        ),
        metadata=cadre_of(village.id),
    )
    reader = as_resident("resident-of-the-village")
    listed = await stub.ListDisclosures(
        pb.ListDisclosuresRequest(village_id=village.id), metadata=reader
    )
    history = await stub.ListDisclosureRevisions(
        pb.ListDisclosureRevisionsRequest(id=item.id), metadata=reader
    )

    assert corrected.disclosure.revision == 2
    assert [d.body for d in listed.disclosures] == ["收入 102,000 元"]
    assert [(r.revision, r.body, r.reason) for r in history.revisions] == [
        (1, "收入 120,000 元", ""),
        (2, "收入 102,000 元", "数字录入错误"),
    ]
    assert list(history.revisions[0].attachments) == list(item.attachments)


async def test_a_stale_correction_is_aborted_and_a_cadre_stays_in_their_village(
    notifications_channel: grpc.aio.Channel, grids_channel: grpc.aio.Channel
) -> None:
    stub = pb_grpc.DisclosuresServiceStub(notifications_channel)
    village, other = (
        (await place(grids_channel)).village,
        (await place(grids_channel)).village,
    )
    item = (
        await stub.PublishDisclosure(
            finance_item(village.id, "1"), metadata=cadre_of(village.id)
        )
    ).disclosure
    correction = pb.CorrectDisclosureRequest(
        id=item.id,
        revision=1,
        category=item.category,
        title=item.title,
        body="收入 2 元",
        period=item.period,
        reason="错",
    )
    await stub.CorrectDisclosure(correction, metadata=cadre_of(village.id))

    stale = await call_error(
        stub.CorrectDisclosure(correction, metadata=cadre_of(village.id))
    )
    outsider = await call_error(
        stub.PublishDisclosure(
            finance_item(village.id, "3"), metadata=cadre_of(other.id)
        )
    )
    no_reason = await call_error(
        stub.CorrectDisclosure(
            pb.CorrectDisclosureRequest(
                id=item.id,
                revision=2,
                category=item.category,
                title="t",
                body="b",
                period="2022-Q4",
            ),
            metadata=cadre_of(village.id),
        )
    )
    resident = await call_error(
        stub.PublishDisclosure(finance_item(village.id, "4"), metadata=as_resident("r"))
    )

    assert stale.code() == grpc.StatusCode.ABORTED
    assert outsider.code() == grpc.StatusCode.PERMISSION_DENIED
    assert no_reason.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(no_reason) == ["reason"]
    assert resident.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_revisions_cannot_be_rewritten_or_deleted_even_in_sql(
    notifications_channel: grpc.aio.Channel,
    grids_channel: grpc.aio.Channel,
    notifications_service: RunningService,
) -> None:
    stub = pb_grpc.DisclosuresServiceStub(notifications_channel)
    village = (await place(grids_channel)).village
    item = (
        await stub.PublishDisclosure(
            finance_item(village.id, "5"), metadata=cadre_of(village.id)
        )
    ).disclosure

    async with notifications_service.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE disclosure_revisions SET body = 'x' WHERE disclosure_id = $1",
                item.id,
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("DELETE FROM disclosures WHERE id = $1", item.id)
