"""The webhook provider against a local gateway that times out, answers 429
with Retry-After and 500: retried with backoff, shown as statuses, never
lost, and each message carries one idempotency key however often it is tried."""

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from cloudark.notifications.v1 import notifications_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb

from tests.notifications.conftest import Sending
from tests.notifications.gateway import FakeGateway
from tests.notifications.support import SENDER, all_deliveries, finished, person
from tests.residents.support import place


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    fake = FakeGateway(hang=2.0)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def provider_env(gateway: FakeGateway) -> dict[str, str]:
    return {
        "CLOUDARK_NOTIFICATIONS_WEBHOOK_URL": f"http://127.0.0.1:{gateway.port}/send",
        "CLOUDARK_NOTIFICATIONS_WEBHOOK_TIMEOUT_MS": "300",
        "CLOUDARK_NOTIFICATIONS_MAX_ATTEMPTS": "3",
    }


async def test_gateway_failures_are_retried_and_shown_as_statuses(
    sending: Sending,
    gateway: FakeGateway,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    here = await place(grids_channel)
    texts = [rpb.CHANNEL_TEXT_MESSAGE]
    people = {
        name: await person(residents_channel, here.micro_grid, texts)
        for name in ("ok", "busy", "broken", "slow", "down", "refused")
    }
    ids = {name: p.id for name, p in people.items()}
    gateway.script = {
        ids["busy"]: ["429", "200"],
        ids["broken"]: ["500", "500", "200"],
        ids["slow"]: ["timeout", "200"],
        ids["down"]: ["500"],
        ids["refused"]: ["400"],
    }

    sent = await sending.stub.SendNotification(
        pb.SendNotificationRequest(
            title="台风",
            body="今晚台风过境，请勿出海。",
            audience=pb.Audience(resident_ids=list(ids.values())),
            urgency=pb.URGENCY_URGENT,
        ),
        metadata=SENDER.metadata(),
    )
    result = await finished(sending.env, sent.notification.id)

    deliveries = {
        d.recipient_id: d
        for d in await all_deliveries(sending.stub, sent.notification.id)
    }
    status = {name: deliveries[i].status for name, i in ids.items()}
    assert status == {
        "ok": pb.DELIVERY_STATUS_SENT,
        "busy": pb.DELIVERY_STATUS_SENT,
        "broken": pb.DELIVERY_STATUS_SENT,
        "slow": pb.DELIVERY_STATUS_SENT,
        "down": pb.DELIVERY_STATUS_FAILED,
        "refused": pb.DELIVERY_STATUS_FAILED,
    }
    assert (result.sent, result.failed) == (4, 2)
    assert deliveries[ids["down"]].failure_reason == (
        "gave up after 3 attempts: gateway answered 500"
    )
    assert deliveries[ids["refused"]].failure_reason == "gateway refused it (400)"
    attempts = {name: len(gateway.calls_to(i)) for name, i in ids.items()}
    assert attempts == {
        "ok": 1,
        "busy": 2,
        "broken": 3,
        "slow": 2,
        "down": 3,
        "refused": 1,
    }
    assert {name: deliveries[i].attempts for name, i in ids.items()} == attempts
    busy = gateway.calls_to(ids["busy"])
    assert busy[1].at - busy[0].at >= 1.0, "Retry-After: 1 was honoured"
    for i in ids.values():
        assert {c.idempotency_key for c in gateway.calls_to(i)} == {deliveries[i].id}
    assert sorted(gateway.accepted().values()) == [1, 1, 1, 1]


async def test_a_retrying_delivery_shows_as_retrying_with_its_reason(
    sending: Sending,
    gateway: FakeGateway,
    grids_channel: grpc.aio.Channel,
    residents_channel: grpc.aio.Channel,
) -> None:
    here = await place(grids_channel)
    busy = await person(residents_channel, here.micro_grid, [rpb.CHANNEL_TEXT_MESSAGE])
    gateway.script = {busy.id: ["429"]}
    sent = await sending.stub.SendNotification(
        pb.SendNotificationRequest(
            title="t",
            body="b",
            audience=pb.Audience(resident_ids=[busy.id]),
            urgency=pb.URGENCY_URGENT,
        ),
        metadata=SENDER.metadata(),
    )

    seen: list[tuple[int, str]] = []
    while not seen or seen[-1][0] != pb.DELIVERY_STATUS_FAILED:
        (delivery,) = await all_deliveries(sending.stub, sent.notification.id)
        if not seen or seen[-1] != (delivery.status, delivery.failure_reason):
            seen.append((delivery.status, delivery.failure_reason))
        await asyncio.sleep(0.05)
    await finished(sending.env, sent.notification.id)

    assert (pb.DELIVERY_STATUS_RETRYING, "gateway answered 429") in seen
    assert seen[-1] == (
        pb.DELIVERY_STATUS_FAILED,
        "gave up after 3 attempts: gateway answered 429",
    )
