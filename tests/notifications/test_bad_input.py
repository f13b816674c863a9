"""Bad input gets a precise error and sends nothing."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.server import RunningService
from services.notifications.quiet import QuietHours
from tests.helpers import bad_fields, call_error, rich_status
from tests.notifications.conftest import Sending
from tests.notifications.support import SENDER, person
from tests.residents.support import place


async def _counts(service: RunningService) -> tuple[int, int, int]:
    async with service.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM notifications) AS n,"
            " (SELECT count(*) FROM deliveries) AS d,"
            " (SELECT count(*) FROM outbox_messages) AS o"
        )
    assert row is not None
    return row["n"], row["d"], row["o"]


async def _refused(
    sending: Sending, request: pb.SendNotificationRequest
) -> grpc.aio.AioRpcError:
    before = await _counts(sending.service)
    error = await call_error(
        sending.stub.SendNotification(request, metadata=SENDER.metadata())
    )
    assert await _counts(sending.service) == before
    return error


async def test_an_empty_audience_is_refused_naming_the_audience(
    sending: Sending,
) -> None:
    error = await _refused(sending, pb.SendNotificationRequest(title="t", body="b"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["audience"]


async def test_an_area_with_nobody_in_it_sends_nothing(
    sending: Sending, grids_channel: grpc.aio.Channel
) -> None:
    empty = await place(grids_channel)
    request = pb.SendNotificationRequest(
        title="t", body="b", audience=pb.Audience(area_ids=[empty.village.id])
    )

    error = await _refused(sending, request)

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_unknown_template_variable_is_named(
    sending: Sending,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    here = await place(grids_channel)
    someone = await person(residents_channel, here.micro_grid, [rpb.CHANNEL_APP])
    template = await sending.stub.CreateTemplate(
        pb.CreateTemplateRequest(name="visit", bodies={"zh": "{day}上门"}),
        metadata=SENDER.metadata(),
    )
    request = pb.SendNotificationRequest(
        template_id=template.template.id,
        variables={"day": "周五", "hour": "9"},
        audience=pb.Audience(resident_ids=[someone.id]),
    )

    error = await _refused(sending, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["variables.hour"]


async def test_a_missing_template_variable_is_named(
    sending: Sending,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    here = await place(grids_channel)
    someone = await person(residents_channel, here.micro_grid, [rpb.CHANNEL_APP])
    template = await sending.stub.CreateTemplate(
        pb.CreateTemplateRequest(name="visit", bodies={"zh": "{day}{hour}点上门"}),
        metadata=SENDER.metadata(),
    )
    request = pb.SendNotificationRequest(
        template_id=template.template.id,
        variables={"day": "周五"},
        audience=pb.Audience(resident_ids=[someone.id]),
    )

    error = await _refused(sending, request)

    assert bad_fields(error) == ["variables.hour"]


async def test_an_unknown_channel_is_named(sending: Sending) -> None:
    request = pb.SendNotificationRequest(
        title="t",
        body="b",
        audience=pb.Audience(area_ids=["7b0c3c1e-8d5e-4a53-9d7f-1c1f0f3b9a11"]),
        channels=[pb.CHANNEL_APP, 9],  # type: ignore[list-item]
    )

    error = await _refused(sending, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["channels[1]"]


async def test_an_unknown_resident_is_not_found_naming_the_field(
    sending: Sending,
) -> None:
    request = pb.SendNotificationRequest(
        title="t",
        body="b",
        audience=pb.Audience(resident_ids=["7b0c3c1e-8d5e-4a53-9d7f-1c1f0f3b9a11"]),
    )

    error = await _refused(sending, request)

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "audience.resident_ids[0]" in (error.details() or "")


async def test_quiet_hours_that_outlast_the_expiry_make_delivery_impossible(
    sending: Sending,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    here = await place(grids_channel)
    someone = await person(residents_channel, here.micro_grid, [rpb.CHANNEL_APP])
    now = datetime.now(UTC)
    # Quiet from an hour ago to three hours from now, local time.
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    start = (local.hour * 60 + local.minute - 60) % 1440
    end = (start + 240) % 1440
    expire = Timestamp()
    expire.FromDatetime(now + timedelta(hours=1))
    request = pb.SendNotificationRequest(
        title="停水通知",
        body="明早停水",
        audience=pb.Audience(resident_ids=[someone.id]),
        urgency=pb.URGENCY_NORMAL,
        quiet_hours=pb.QuietHours(start_minute=start, end_minute=end),
        expire_time=expire,
    )

    error = await _refused(sending, request)

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "quiet_hours" in str(rich_status(error).details)


async def test_quiet_hours_of_no_length_are_refused(sending: Sending) -> None:
    request = pb.SendNotificationRequest(
        title="t",
        body="b",
        audience=pb.Audience(area_ids=["7b0c3c1e-8d5e-4a53-9d7f-1c1f0f3b9a11"]),
        quiet_hours=pb.QuietHours(start_minute=600, end_minute=600),
    )

    error = await _refused(sending, request)

    assert bad_fields(error) == ["quiet_hours"]


@pytest.mark.parametrize(
    ("start", "end", "hour", "quiet"),
    [
        (1320, 420, 23, True),
        (1320, 420, 3, True),
        (1320, 420, 12, False),
        (60, 120, 1, True),
        (60, 120, 2, False),
    ],
)
def test_quiet_hours_may_cross_midnight(
    start: int, end: int, hour: int, quiet: bool
) -> None:
    moment = datetime(2022, 12, 5, hour, 30, tzinfo=ZoneInfo("Asia/Shanghai"))

    assert QuietHours(start, end).contains(moment) is quiet


def test_quiet_hours_end_at_the_next_end_minute() -> None:
    late = datetime(2022, 12, 5, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

    ends = QuietHours(1320, 420).ends_after(late)

    assert ends == datetime(2022, 12, 6, 7, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
