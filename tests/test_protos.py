"""The generated code is committed; it must be what `make protos` makes."""

import filecmp
from pathlib import Path

from services.common.config import ROOT
from tools.protogen import generate


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    generate(tmp_path)

    committed = ROOT / "gen"
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    kept = sorted(
        p.relative_to(committed)
        for p in committed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert fresh == kept, "run `make protos` and commit the result"
    stale = [
        str(p)
        for p in fresh
        if not filecmp.cmp(tmp_path / p, committed / p, shallow=False)
    ]
    assert stale == [], "run `make protos` and commit the result"
