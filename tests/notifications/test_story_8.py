"""Story 8 through the gRPC API: every key service recipient of one village,
once each, on their preferred channel; the sender sees who got it and who
read it."""

import grpc
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb

from tests.conftest import OPERATOR
from tests.histories import record
from tests.notifications.conftest import Sending
from tests.notifications.support import SENDER, all_deliveries, finished, person
from tests.residents.support import as_resident, place


async def test_key_service_recipients_of_a_village_get_it_once_on_their_channel(
    sending: Sending,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    here, elsewhere = await place(grids_channel), await place(grids_channel)
    by_text = await person(
        residents_channel, here.micro_grid, [rpb.CHANNEL_TEXT_MESSAGE], key_service=True
    )
    by_app = await person(
        residents_channel,
        here.other_micro_grid,
        [rpb.CHANNEL_APP],
        language=rpb.LANGUAGE_EN,
        key_service=True,
    )
    by_chat = await person(
        residents_channel, here.micro_grid, [rpb.CHANNEL_GROUP_CHAT], key_service=True
    )
    no_preference = await person(
        residents_channel, here.micro_grid, [], key_service=True
    )
    await person(residents_channel, here.micro_grid, [rpb.CHANNEL_APP])
    await person(
        residents_channel, elsewhere.micro_grid, [rpb.CHANNEL_APP], key_service=True
    )
    template = await sending.stub.CreateTemplate(
        pb.CreateTemplateRequest(
            name="cold wave",
            titles={"zh": "寒潮预警", "en": "Cold wave"},
            bodies={
                "zh": "{day}有寒潮，网格员会上门看望。",
                "en": "A cold wave arrives {day}; your grid worker will visit.",
            },
        ),
        metadata=SENDER.metadata(),
    )
    request = pb.SendNotificationRequest(
        template_id=template.template.id,
        variables={"day": "12-05"},
        audience=pb.Audience(
            area_ids=[here.village.id], tags=[pb.AUDIENCE_TAG_KEY_SERVICE_RECIPIENTS]
        ),
        reference="story-8",
        request_id="story-8-send",
    )

    sent = await sending.stub.SendNotification(request, metadata=SENDER.metadata())
    again = await sending.stub.SendNotification(request, metadata=SENDER.metadata())
    notification = sent.notification
    result = await finished(sending.env, notification.id)

    assert again.notification.id == notification.id
    assert notification.recipients == 4
    assert (result.sent, result.failed) == (4, 0)
    deliveries = await all_deliveries(sending.stub, notification.id)
    reached = sorted((d.recipient_id, d.channel) for d in deliveries)
    # The one who prefers the group chat is reached through it, not alone.
    assert by_chat.id not in {d.recipient_id for d in deliveries}
    assert reached == sorted(
        [
            (by_text.id, pb.CHANNEL_TEXT_MESSAGE),
            (by_app.id, pb.CHANNEL_APP),
            (no_preference.id, pb.CHANNEL_APP),
            (here.micro_grid.id, pb.CHANNEL_GROUP_CHAT),
        ]
    )
    outbox = await sending.stub.ListOutboxMessages(
        pb.ListOutboxMessagesRequest(notification_id=notification.id),
        metadata=OPERATOR.metadata(),
    )
    assert sorted(m.address for m in outbox.messages) == sorted(
        [by_text.id, here.micro_grid.id]
    )
    assert all(m.body == "12-05有寒潮，网格员会上门看望。" for m in outbox.messages)

    inbox = await sending.stub.ListInbox(
        pb.ListInboxRequest(recipient_id=by_app.id), metadata=as_resident(by_app.id)
    )
    assert [m.body for m in inbox.messages] == [
        "A cold wave arrives 12-05; your grid worker will visit."
    ]
    await sending.stub.MarkRead(
        pb.MarkReadRequest(delivery_id=inbox.messages[0].delivery_id),
        metadata=as_resident(by_app.id),
    )
    seen = await sending.stub.GetNotification(
        pb.GetNotificationRequest(id=notification.id), metadata=SENDER.metadata()
    )
    assert dict(seen.notification.status_counts) == {
        "DELIVERY_STATUS_SENT": 2,
        "DELIVERY_STATUS_DELIVERED": 1,
        "DELIVERY_STATUS_READ": 1,
    }
    read = await sending.stub.ListDeliveries(
        pb.ListDeliveriesRequest(
            notification_id=notification.id, status=pb.DELIVERY_STATUS_READ
        ),
        metadata=SENDER.metadata(),
    )
    assert [d.recipient_id for d in read.deliveries] == [by_app.id]
    handle = sending.env.client.get_workflow_handle(f"notification-{notification.id}")
    await record(handle, "NotificationWorkflow", "story-8")
