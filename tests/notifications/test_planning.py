"""Which deliveries an audience becomes, channel by channel."""

from cloudark.notifications.v1 import notifications_pb2 as pb

from services.notifications.audience import Recipient, Resolved
from services.notifications.servicer import plan_deliveries

RESIDENT, STAFF = pb.RECIPIENT_KIND_RESIDENT, pb.RECIPIENT_KIND_STAFF
APP, TEXT, CHAT, TV = (
    pb.CHANNEL_APP,
    pb.CHANNEL_TEXT_MESSAGE,
    pb.CHANNEL_GROUP_CHAT,
    pb.CHANNEL_TV,
)


def resident(
    rid: str, micro_grid: str, *channels: int, named: bool = False
) -> Recipient:
    return Recipient(RESIDENT, rid, rid, micro_grid, tuple(channels), named=named)


def planned(resolved: Resolved, channels: list[int]) -> list[tuple[int, str, int]]:
    return sorted(
        (d.recipient_kind, d.recipient_id, d.channel)
        for d in plan_deliveries(resolved, channels)
    )


def test_preferred_group_chats_become_one_message_per_micro_grid() -> None:
    resolved = Resolved(
        [
            resident("r1", "m1", CHAT),
            resident("r2", "m1", CHAT, APP),
            resident("r3", "m2", CHAT),
        ]
    )

    assert planned(resolved, []) == [
        (pb.RECIPIENT_KIND_GROUP_CHAT, "m1", CHAT),
        (pb.RECIPIENT_KIND_GROUP_CHAT, "m2", CHAT),
    ]


def test_a_named_resident_is_told_personally_not_in_the_group_chat() -> None:
    resolved = Resolved(
        [
            resident("r1", "m1", CHAT, TEXT, named=True),
            resident("r2", "m1", CHAT, named=True),
        ]
    )

    assert planned(resolved, []) == [(RESIDENT, "r1", TEXT), (RESIDENT, "r2", APP)]


def test_helpers_get_the_app_and_tv_goes_once_to_each_area() -> None:
    helper = Recipient(STAFF, "h1", "person-1", "")
    resolved = Resolved([helper, resident("r1", "m1")], area_ids=["v1"])

    assert planned(resolved, [APP, TV]) == [
        (RESIDENT, "r1", APP),
        (STAFF, "h1", APP),
        (pb.RECIPIENT_KIND_TV, "v1", TV),
    ]
