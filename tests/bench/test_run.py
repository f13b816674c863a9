"""`python -m bench.run` end to end: a tiny run of the baselines scenario."""

import subprocess
import sys
from pathlib import Path

from services.common.config import ROOT


def test_quick_baselines_run_prints_the_table_and_stops_its_stack(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    report = tmp_path / "benchmarks.md"

    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--seconds",
            "0.1",
            "--only",
            "baselines",
            "--state",
            str(state),
            "--output",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )

    assert finished.returncode == 0, finished.stderr
    assert "| baselines | grpc.aio echo 64 B, 50 in flight: throughput |" in (
        finished.stdout
    )
    assert "asyncpg primary-key select" in finished.stdout
    assert "bare workflow, 3 no-op activities" in finished.stdout
    assert "**failed**" not in finished.stdout
    assert "- Command: `python -m bench.run --quick" in report.read_text()
    assert not _processes_using(state)


def _processes_using(folder: Path) -> list[str]:
    """Command lines of running processes that name folder (postgres -D, …)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in text:
            found.append(text)
    return found
