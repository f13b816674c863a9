"""Story 1 as the mini-program sees it: HTTP/JSON through the gateway to the
errands front door, the workflow and the real grids and residents services."""

import httpx
from temporalio.testing import WorkflowEnvironment

from services.common.identity import Caller, Role
from services.gateway.server import create_app
from tests.errands.conftest import Parts
from tests.errands.support import offered_to, town
from tests.gateway.test_gateway import CONFIG, TOKENS, bearer


async def test_resident_and_helper_run_an_errand_over_http(
    parts: Parts, temporal_env: WorkflowEnvironment
) -> None:
    place = await town(parts.grids, parts.residents)
    resident = TOKENS.issue(Caller(subject=place.resident_id, role=Role.RESIDENT))
    worker = TOKENS.issue(Caller(subject=place.worker.id, role=Role.GRID_WORKER))
    async with parts.stack(temporal_env.client) as s:
        app = create_app(CONFIG, lambda service: s.channels[service])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            asked = await http.post(
                "/v1/errands",
                json={
                    "resident_id": place.resident_id,
                    "kind": "ERRAND_KIND_MEDICINE",
                    "details": "fever medicine",
                },
                headers=bearer(resident.access_token),
            )
            errand_id = asked.json()["errand"]["id"]
            await offered_to(s.errands, errand_id, place.worker.id)
            accepted = await http.post(
                f"/v1/errands/{errand_id}:accept",
                json={"helper_id": place.worker.id, "request_id": "tap-1"},
                headers=bearer(worker.access_token),
            )
            early_rating = await http.post(
                f"/v1/errands/{errand_id}:rate",
                json={"rating": 5},
                headers=bearer(resident.access_token),
            )
            delivered = await http.post(
                f"/v1/errands/{errand_id}:reportDelivered",
                json={
                    "helper_id": place.worker.id,
                    "note": "Medicine is at your door.",
                },
                headers=bearer(worker.access_token),
            )
            seen = await http.get(
                f"/v1/errands/{errand_id}", headers=bearer(resident.access_token)
            )

    assert asked.status_code == 200, asked.text
    assert asked.json()["errand"]["due_time"]
    assert accepted.json()["errand"]["status"] == "ERRAND_STATUS_ACCEPTED"
    assert early_rating.status_code == 400
    assert early_rating.headers["content-type"].startswith("application/problem+json")
    assert delivered.json()["errand"]["status"] == "ERRAND_STATUS_DELIVERED"
    assert [step["kind"] for step in seen.json()["steps"]] == [
        "STEP_KIND_REQUESTED",
        "STEP_KIND_OFFERED",
        "STEP_KIND_ACCEPTED",
        "STEP_KIND_DELIVERED",
    ]
