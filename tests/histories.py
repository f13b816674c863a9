"""Recorded workflow histories, replayed in CI so that a non-deterministic
change to a workflow fails the suite.

To record (or re-record after a deliberate, patched change):
    CLOUDARK_RECORD_HISTORIES=1 make test
Tests that run a workflow call `record(handle, name)`; it writes
tests/histories/<WorkflowType>/<name>.json only when that variable is set.
Histories are sealed with the development payload key (workflows/codec.py).
"""

import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

FOLDER = Path(__file__).parent / "histories"


async def record(
    handle: WorkflowHandle[Any, Any], workflow_type: str, name: str
) -> None:
    if os.environ.get("CLOUDARK_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    target = FOLDER / workflow_type / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")


def recorded() -> list[Path]:
    return sorted(FOLDER.glob("*/*.json"))
