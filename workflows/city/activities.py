"""Activities that write the city's hierarchy through the grids service."""

from dataclasses import dataclass

import grpc
from cloudark.grids.v1 import grids_pb2 as pb
from cloudark.grids.v1 import grids_pb2_grpc as pb_grpc
from temporalio import activity

from workflows.city.plan import AreaPlan
from workflows.rpc import CALL_TIMEOUT, METADATA, activity_error

# Area kinds by depth: the city is depth 0.
KINDS = [
    pb.AREA_KIND_CITY,
    pb.AREA_KIND_TOWN,
    pb.AREA_KIND_VILLAGE,
    pb.AREA_KIND_GRID,
    pb.AREA_KIND_MICRO_GRID,
]


@dataclass
class CreateSubtreeInput:
    plan: AreaPlan
    # Empty for a city.
    parent_id: str
    depth: int


@dataclass
class CreateSubtreeResult:
    area_id: str
    created: int


class CityActivities:
    def __init__(self, grids: grpc.aio.Channel) -> None:
        self._grids = pb_grpc.GridsServiceStub(grids)

    @activity.defn
    async def create_subtree(self, data: CreateSubtreeInput) -> CreateSubtreeResult:
        """Creates an area and everything beneath it, skipping what exists.

        Existing areas are found by name under their parent, and each create
        carries a request_id derived from the area's code, so a retried or
        repeated load converges on one copy of the city.
        """
        try:
            siblings = await self._children(data.parent_id)
            created, area_id = await self._ensure(
                data.plan, data.parent_id, data.depth, siblings
            )
        except grpc.aio.AioRpcError as error:
            raise activity_error(error) from error
        return CreateSubtreeResult(area_id=area_id, created=created)

    async def _ensure(
        self, plan: AreaPlan, parent_id: str, depth: int, siblings: dict[str, pb.Area]
    ) -> tuple[int, str]:
        area = siblings.get(plan.name)
        created = 0
        children: dict[str, pb.Area] = {}
        if area is None:
            area = await self._create(plan, parent_id, KINDS[depth])
            created = 1
        elif plan.children:
            children = await self._children(area.id)
        for child in plan.children:
            count, _ = await self._ensure(child, area.id, depth + 1, children)
            created += count
        if depth <= 2:
            activity.heartbeat(plan.code)
        return created, area.id

    async def _create(self, plan: AreaPlan, parent_id: str, kind: int) -> pb.Area:
        response = await self._grids.CreateArea(
            pb.CreateAreaRequest(
                kind=kind,  # type: ignore[arg-type]
                name=plan.name,
                parent_id=parent_id,
                code=plan.code,
                request_id=f"city-load/{plan.code}",
            ),
            metadata=METADATA,
            timeout=CALL_TIMEOUT,
        )
        return response.area

    async def _children(self, parent_id: str) -> dict[str, pb.Area]:
        found: dict[str, pb.Area] = {}
        token = ""
        while True:
            page = await self._grids.ListAreas(
                pb.ListAreasRequest(
                    parent_id=parent_id, page_size=1000, page_token=token
                ),
                metadata=METADATA,
                timeout=CALL_TIMEOUT,
            )
            found.update((a.name, a) for a in page.areas)
            token = page.next_page_token
            if not token:
                return found
