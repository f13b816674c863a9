"""A merchant who never confirms: on Temporal's time-skipping test server the
fifteen minutes pass at once, and the points and the item go back."""

from __future__ import annotations

from datetime import timedelta

import grpc
from cloudark.merchants.v1 import merchants_pb2 as pb
from cloudark.residents.v1 import residents_pb2 as rpb
from temporalio.testing import WorkflowEnvironment

from services.common.config import Settings
from services.common.server import RunningService
from services.merchants import config
from tests.conftest import merchants_stack
from tests.helpers import call_error
from tests.histories import record
from tests.merchants.support import (
    AS_OPERATOR,
    as_merchant,
    as_resident,
    assert_ledger_balanced,
    hold_postings,
    offer,
    place,
    points_of,
    resident_with_points,
    shop,
    stubs,
)
from tests.merchants.test_redemptions import precondition_kind
from workflows.redemption.workflows import RedemptionWorkflow
from workflows.worker import build_worker


async def test_an_unconfirmed_redemption_expires_and_moves_no_points(
    settings: Settings,
    grids_service: RunningService,
    grids_channel: grpc.aio.Channel,
    residents_service: RunningService,
    residents_channel: grpc.aio.Channel,
    own_time_skipping_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    client = own_time_skipping_env.client
    async with merchants_stack(
        settings, grids_service, residents_service, client, task_queue
    ) as (service, channels):
        api = stubs(service, residents_channel)
        town = await place(grids_channel)
        buyer = await resident_with_points(api.residents, town)
        supermarket = await shop(api.merchants, town.village.id)
        soap = await offer(api.merchants, supermarket.id, title="Soap", points=50)

        async with build_worker(client, task_queue, channels):
            started = await api.merchants.RedeemOffer(
                pb.RedeemOfferRequest(offer_id=soap.id, resident_id=buyer.id),
                metadata=as_resident(buyer.id),
            )
            handle = client.get_workflow_handle_for(
                RedemptionWorkflow.run, f"redemption-{started.redemption.id}"
            )
            await own_time_skipping_env.sleep(
                timedelta(minutes=config.CONFIRM_MINUTES, seconds=1)
            )
            result = await handle.result()
            late = await call_error(
                api.merchants.ConfirmRedemption(
                    pb.ConfirmRedemptionRequest(id=started.redemption.id),
                    metadata=as_merchant(supermarket.id),
                )
            )
        seen = await api.merchants.GetRedemption(
            pb.GetRedemptionRequest(id=started.redemption.id), metadata=AS_OPERATOR
        )
        stock = await api.merchants.GetOffer(
            pb.GetOfferRequest(id=soap.id), metadata=AS_OPERATOR
        )
        await api.close()

    await record(handle, "RedemptionWorkflow", "expired")
    assert (result.state, result.release_reason) == ("released", "expired")
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_kind(late) == "EXPIRED"
    assert seen.redemption.release_reason == pb.RELEASE_REASON_EXPIRED
    assert stock.offer.stock == 10
    assert await points_of(api.residents, rpb.ACCOUNT_KIND_RESIDENT, buyer.id) == 60
    assert await hold_postings(residents_service, started.redemption.hold_id) == [3, 5]
    await assert_ledger_balanced(residents_service)
