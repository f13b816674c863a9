"""Every recorded history replays against today's workflow code."""

import dataclasses
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from tests.histories import recorded
from workflows.codec import DEVELOPMENT_KEYS, EncryptionCodec
from workflows.worker import WORKFLOWS

CONVERTER = dataclasses.replace(
    DataConverter.default, payload_codec=EncryptionCodec(DEVELOPMENT_KEYS, "dev-1")
)


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded_types = {path.parent.name for path in recorded()}
    assert {w.__name__ for w in WORKFLOWS} <= recorded_types


@pytest.mark.parametrize("path", recorded(), ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)

    await replayer.replay_workflow(history)
