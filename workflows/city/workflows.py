"""LoadCityWorkflow: builds a synthetic city's hierarchy, town by town."""

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.city.plan import AreaPlan, CitySize, plan_city

with workflow.unsafe.imports_passed_through():
    from workflows.city.activities import (
        CityActivities,
        CreateSubtreeInput,
        CreateSubtreeResult,
    )

# Towns loaded at once: enough to keep the grids service busy, few enough
# that a city of 39 towns never floods it.
PARALLEL_TOWNS = 4


@dataclass
class LoadCityInput:
    name: str
    code: str
    size: CitySize
    seed: int


@dataclass
class LoadCityResult:
    city_id: str
    areas: int
    created: int


@workflow.defn
class LoadCityWorkflow:
    """Creates every area of a planned city that does not exist yet."""

    @workflow.run
    async def run(self, data: LoadCityInput) -> LoadCityResult:
        plan = plan_city(data.name, data.code, data.size, data.seed)
        city = await self._create(AreaPlan(plan.name, plan.code), parent_id="", depth=0)
        created = city.created
        towns = plan.children
        for start in range(0, len(towns), PARALLEL_TOWNS):
            batch = towns[start : start + PARALLEL_TOWNS]
            results = await asyncio.gather(
                *(self._create(town, parent_id=city.area_id, depth=1) for town in batch)
            )
            created += sum(r.created for r in results)
        workflow.logger.info("city %s loaded: %s areas created", data.code, created)
        return LoadCityResult(city_id=city.area_id, areas=plan.count(), created=created)

    async def _create(
        self, plan: AreaPlan, parent_id: str, depth: int
    ) -> CreateSubtreeResult:
        return await workflow.execute_activity_method(
            CityActivities.create_subtree,
            CreateSubtreeInput(plan=plan, parent_id=parent_id, depth=depth),
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )
