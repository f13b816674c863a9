"""The full-size city, its 2022 history import and the annual report."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cloudark.grids.v1 import cases_pb2
from cloudark.grids.v1 import reports_pb2 as pb
from cloudark.grids.v1 import reports_pb2_grpc as pb_grpc

from services.common.config import Settings
from services.common.db import Connection
from services.common.server import RunningService
from services.grids import history
from services.grids.history_export import Export, write_2022
from services.grids.loader import DEMO_STAFF, FULL_STAFF, CityLoad, area_id, load_city
from services.grids.taxonomy import (
    SEED_2022_CASES,
    SEED_2022_CATEGORY_COUNTS,
    SEED_2022_GROUP_COUNTS,
    SEED_2022_PATROLS,
)
from tests.conftest import OPERATOR
from workflows.city.plan import DEMO, FULL

AS_OPERATOR = OPERATOR.metadata()


@dataclass
class FullCity:
    city: CityLoad
    export: Export
    cases: history.ImportResult
    patrols: history.ImportResult


def unique_code() -> str:
    return f"8{random.randrange(10**6):06d}"


@pytest.fixture(scope="module")
async def full_city(
    grids_service: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> FullCity:
    """A city of the seed's size with the generated 2022 history imported."""
    code = unique_code()
    async with grids_service.pool.acquire() as conn:
        city = await load_city(
            conn, name=f"Full {code}", code=code, size=FULL, staff=FULL_STAFF, seed=2022
        )
        assert city.plan is not None
    export = write_2022(city.plan, tmp_path_factory.mktemp("export"), seed=2022)
    cases, patrols = await history.import_files(
        grids_service.pool,
        [("cases", export.cases_path), ("patrols", export.patrols_path)],
    )
    return FullCity(city, export, cases, patrols)


@pytest.fixture
def reports(grids_channel: grpc.aio.Channel) -> pb_grpc.ReportsServiceAsyncStub:
    return pb_grpc.ReportsServiceStub(grids_channel)


async def report(
    reports: pb_grpc.ReportsServiceAsyncStub, area: object, year: int = 2022
) -> pb.AnnualReport:
    response = await reports.GetAnnualReport(
        pb.GetAnnualReportRequest(area_id=str(area), year=year), metadata=AS_OPERATOR
    )
    return response.report


def categories(table: pb.AnnualReport) -> dict[int, int]:
    return {c.category: c.cases for g in table.groups for c in g.categories}


async def test_full_city_has_the_seeds_size(full_city: FullCity) -> None:
    loaded = full_city.city
    assert loaded.areas == 1 + 39 + 407 + 1_192 + 8_205
    assert loaded.staff == 3_934
    assert loaded.squads == 1_225


async def test_city_report_reproduces_every_seed_figure(
    full_city: FullCity, reports: pb_grpc.ReportsServiceAsyncStub
) -> None:
    table = await report(reports, full_city.city.city_id)

    assert full_city.cases.imported == SEED_2022_CASES == 345_628
    assert full_city.patrols.imported == SEED_2022_PATROLS
    assert table.patrols == 300_376
    assert table.cases == 345_628
    groups = {g.group: g.cases for g in table.groups}
    assert groups == SEED_2022_GROUP_COUNTS
    assert groups[cases_pb2.CASE_GROUP_EPIDEMIC] == 80_130
    assert groups[cases_pb2.CASE_GROUP_SAFETY] == 214_859
    assert groups[cases_pb2.CASE_GROUP_FRAUD_PREVENTION] == 3_336
    by_category = categories(table)
    assert by_category == SEED_2022_CATEGORY_COUNTS
    published = [988, 13_554, 10_759, 138_194, 4_148, 1_062, 4_417, 10_554, 2_087]
    assert [
        by_category[c] for c in (101, 102, 201, 202, 203, 204, 205, 206, 207)
    ] == published
    assert by_category[cases_pb2.CASE_CATEGORY_SAFETY_CITY_MANAGEMENT] == 43_638


async def test_town_reports_add_up_to_their_share_and_to_the_city(
    full_city: FullCity, reports: pb_grpc.ReportsServiceAsyncStub
) -> None:
    assert full_city.city.plan is not None
    towns = full_city.city.plan.children
    total_cases = total_patrols = 0
    for town in towns:
        table = await report(reports, area_id(town.code))
        assert table.cases == full_city.export.town_cases[town.code]
        assert table.patrols == full_city.export.town_patrols[town.code]
        total_cases += table.cases
        total_patrols += table.patrols
    first = towns[0]
    by_category = categories(await report(reports, area_id(first.code)))
    expected = full_city.export.town_categories[first.code]
    assert {c: n for c, n in by_category.items() if n} == dict(expected)
    assert (total_cases, total_patrols) == (SEED_2022_CASES, SEED_2022_PATROLS)


async def test_village_report_counts_only_its_subtree(
    full_city: FullCity, reports: pb_grpc.ReportsServiceAsyncStub
) -> None:
    assert full_city.city.plan is not None
    town = full_city.city.plan.children[0]
    villages = [await report(reports, area_id(v.code)) for v in town.children]
    town_table = await report(reports, area_id(town.code))

    assert sum(v.cases for v in villages) == town_table.cases
    assert sum(v.patrols for v in villages) == town_table.patrols


async def test_another_year_reports_nothing(
    full_city: FullCity, reports: pb_grpc.ReportsServiceAsyncStub
) -> None:
    table = await report(reports, full_city.city.city_id, year=2021)

    assert (table.cases, table.patrols) == (0, 0)
    assert len(table.groups) == 4


async def test_rerunning_a_finished_import_changes_nothing(
    full_city: FullCity, grids_service: RunningService
) -> None:
    async with grids_service.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM cases")
        again = await history.import_file(conn, full_city.export.cases_path, "cases")
        after = await conn.fetchval("SELECT count(*) FROM cases")

    assert again.imported == 0
    assert again.skipped_batches == again.batches == full_city.cases.batches
    assert before == after


async def test_loading_the_same_city_again_changes_nothing(
    full_city: FullCity, grids_service: RunningService
) -> None:
    plan = full_city.city.plan
    assert plan is not None
    async with grids_service.pool.acquire() as conn:
        again = await load_city(
            conn, name=plan.name, code=plan.code, size=FULL, staff=FULL_STAFF, seed=2022
        )

    assert again.city_id == full_city.city.city_id
    assert not again.created


def write_rows(path: Path, kind: str, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(history.COLUMNS[kind])
        writer.writerows(rows)
    return path


async def test_a_batch_with_broken_rows_reports_each_and_imports_nothing(
    grids_service: RunningService, tmp_path: Path
) -> None:
    code = unique_code()
    async with grids_service.pool.acquire() as conn:
        city = await _demo_city(conn, code)
        assert city.plan is not None
        grid = city.plan.children[0].children[0].children[0]
        good = grid.children[0].code
        when = "2022-05-01T09:30:00+08:00"
        rows = [
            [f"{code}-1", when, good, "safety.fire", "patrol", ""],
            [f"{code}-2", when, "no-such-code", "safety.fire", "patrol", ""],
            [f"{code}-3", "2022-02-30T10:00:00+08:00", good, "other", "hotline", ""],
            [f"{code}-4", when, good, "safety.volcano", "hotline", ""],
            [f"{code}-1", when, good, "other", "hotline", ""],
            [f"{code}-6", when, good, "other", "hotline", ""],
        ]
        path = write_rows(tmp_path / "broken.csv", "cases", rows)
        result = await history.import_file(conn, path, "cases", batch_size=4)
        imported = await conn.fetchval(
            "SELECT count(*) FROM cases WHERE external_id LIKE $1", f"{code}-%"
        )

    assert [(b.row, b.reason.split(":")[0]) for b in result.bad_rows] == [
        (2, "unknown micro-grid"),
        (3, "bad date"),
        (4, "unknown category"),
        (5, "duplicate id"),
    ]
    # Batch 1 (rows 1-4) is refused whole; batch 2 (rows 5-6) too, for row 5.
    assert (result.refused_batches, result.imported, imported) == (2, 0, 0)


async def test_fixed_file_imports_under_the_same_import_id(
    grids_service: RunningService, tmp_path: Path
) -> None:
    code = unique_code()
    async with grids_service.pool.acquire() as conn:
        city = await _demo_city(conn, code)
        assert city.plan is not None
        good = city.plan.children[0].children[0].children[0].children[0].code
        when = "2022-05-01T09:30:00+08:00"
        broken = [[f"{code}-1", when, "nowhere", "patrol", ""]]
        fixed = [[f"{code}-1", when, good, "patrol", ""]]
        import_id = f"patrols-{code}"
        first = await history.import_file(
            conn,
            write_rows(tmp_path / "a.csv", "patrols", broken),
            "patrols",
            import_id=import_id,
        )
        second = await history.import_file(
            conn,
            write_rows(tmp_path / "b.csv", "patrols", fixed),
            "patrols",
            import_id=import_id,
        )
        counted = await conn.fetchval(
            "SELECT patrols FROM patrol_counts"
            " WHERE year = 2022 AND micro_grid_id = $1",
            area_id(good),
        )

    assert (first.imported, second.imported, counted) == (0, 1, 1)


async def test_cli_imports_several_files_and_refuses_odd_arguments(
    grids_service: RunningService, settings: Settings, tmp_path: Path
) -> None:
    code = unique_code()
    async with grids_service.pool.acquire() as conn:
        city = await _demo_city(conn, code)
    assert city.plan is not None
    good = city.plan.children[0].children[0].children[0].children[0].code
    when = "2022-06-01T10:00:00+08:00"
    cases = write_rows(
        tmp_path / "c.csv", "cases", [[f"{code}-c", when, good, "other", "hotline", ""]]
    )
    patrols = write_rows(
        tmp_path / "p.csv", "patrols", [[f"{code}-p", when, good, "patrol", ""]]
    )
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "CLOUDARK_LOG_FORMAT": "text",
    }

    good_run = await _cli(env, "import", "cases", str(cases), "patrols", str(patrols))
    odd_run = await _cli(env, "import", "cases", str(cases), "patrols")

    assert good_run[0] == 0, good_run[1]
    assert [r["imported"] for r in json.loads(good_run[1])] == [1, 1]
    assert odd_run[0] != 0


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.grids.history",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def _demo_city(conn: Connection, code: str) -> CityLoad:
    return await load_city(
        conn,
        name=f"Demo {code}",
        code=code,
        size=DEMO,
        staff=DEMO_STAFF,
        seed=1,
    )
