"""The Temporal cluster's values and its search-attribute registration."""

import asyncio
import os
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from deploy.embedded.temporal import temporal_binary
from deploy.temporal import search_attributes as registration
from deploy.validate import schema_errors
from workflows import search_attributes

VALUES = Path(registration.__file__).parent / "values.yaml"


def values() -> dict[str, object]:
    loaded = yaml.safe_load(VALUES.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_committed_script_and_job_are_what_the_module_generates() -> None:
    assert registration.SCRIPT.read_text() == registration.script()
    assert registration.JOB.read_text() == registration.job()


def test_script_registers_exactly_the_workflows_search_attributes() -> None:
    created = [
        line.split()[1:]
        for line in registration.script().splitlines()
        if line.strip().startswith("create ")
    ]

    assert [name for name, _ in created] == [k.name for k in search_attributes.ALL]
    assert {kind for _, kind in created} <= set(registration.SQL_VISIBILITY_LIMITS)


def test_search_attributes_fit_sql_visibility_limits() -> None:
    counts = Counter(kind for _, kind in registration.attributes())

    for kind, count in counts.items():
        assert count <= registration.SQL_VISIBILITY_LIMITS[kind], kind


def test_registration_job_matches_the_kubernetes_schema() -> None:
    job = yaml.safe_load(registration.JOB.read_text())

    assert schema_errors([job]) == []
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][2] == (
        registration.script()
    )


async def run_script(address: str, namespace: str) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(temporal_binary()).parent}:{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACES": namespace,
    }
    process = await asyncio.create_subprocess_exec(
        "sh",
        str(registration.SCRIPT),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_script_registers_every_attribute_and_can_run_again(
    temporal_env: WorkflowEnvironment,
) -> None:
    address = temporal_env.client.service_client.config.target_host
    namespace = f"sa-{uuid.uuid4().hex[:8]}"
    create = await asyncio.create_subprocess_exec(
        temporal_binary(),
        "operator",
        "namespace",
        "create",
        "--address",
        address,
        "--namespace",
        namespace,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await create.wait() == 0

    first = await run_script(address, namespace)
    again = await run_script(address, namespace)

    assert "already registered" not in first
    assert again.count("already registered") == len(search_attributes.ALL)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("server", "config", "persistence", "default", "driver"), "sql"),
        (("server", "config", "persistence", "default", "sql", "driver"), "postgres12"),
        (("server", "config", "persistence", "visibility", "driver"), "sql"),
        (
            ("server", "config", "persistence", "visibility", "sql", "driver"),
            "postgres12",
        ),
        (("elasticsearch", "enabled"), False),
        (("cassandra", "enabled"), False),
    ],
)
def test_values_keep_both_stores_on_postgresql(
    path: tuple[str, ...], expected: object
) -> None:
    node: object = values()
    for key in path:
        assert isinstance(node, dict)
        node = node[key]

    assert node == expected


def test_shard_count_is_a_fixed_power_of_two() -> None:
    server = values()["server"]
    assert isinstance(server, dict)
    shards = server["config"]["numHistoryShards"]

    assert shards == 1024
    assert shards & (shards - 1) == 0


def test_ui_decodes_payloads_through_our_codec_server() -> None:
    web = values()["web"]
    assert isinstance(web, dict)
    env = {e["name"]: e["value"] for e in web["additionalEnv"]}

    assert env["TEMPORAL_CODEC_ENDPOINT"] == "http://cloudark-codec:8888"


def test_values_create_the_namespaces_the_registration_covers() -> None:
    server = values()["server"]
    assert isinstance(server, dict)
    created = {n["name"] for n in server["config"]["namespaces"]["namespace"]}

    assert created == set(registration.NAMESPACES.split())
