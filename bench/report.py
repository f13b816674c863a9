"""The table `make bench` prints, and docs/benchmarks.md around it."""

import contextlib
import math
import os
import platform
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Figure

COLUMNS = [
    "scenario",
    "figure",
    "median",
    "spread (min–max)",
    "baseline",
    "baseline median",
    "ratio",
    "target",
    "met",
]

_TARGET = re.compile(
    r"^\s*(?P<op>>=|<=|≥|≤|>|<)\s*(?P<number>[0-9][0-9,_]*(?:\.[0-9]+)?)\s*"
    r"(?P<times>[×x]?)\s*(?P<rest>.*)$"
)
_COMPARE = {
    ">=": lambda a, b: a >= b,
    "≥": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "≤": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


@dataclass
class Failure:
    """A scenario that raised instead of returning its figures."""

    scenario: str
    error: str


def number(value: float) -> str:
    """Three significant figures, thousands separated: 2,460 · 20.1 · 0.345."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def judge(figure: Figure) -> bool | None:
    """Whether the figure meets its target; None when there is nothing to judge.

    "≥ 0.5× baseline" compares the ratio; "≤ 50 ms" compares the median.
    """
    match = _TARGET.match(figure.target)
    if match is None:
        return None
    wanted = float(match["number"].replace(",", "").replace("_", ""))
    against_baseline = bool(match["times"]) or "baseline" in match["rest"]
    measured = figure.ratio if against_baseline else figure.median
    if measured is None:
        return None
    return bool(_COMPARE[match["op"]](measured, wanted))


def row(figure: Figure) -> list[str]:
    unit = f" {figure.unit}" if figure.unit else ""
    low, high = min(figure.samples), max(figure.samples)
    baseline = "—"
    if figure.baseline_samples:
        baseline = number(statistics.median(figure.baseline_samples)) + unit
    ratio = figure.ratio
    met = judge(figure)
    return [
        figure.scenario,
        figure.name,
        number(figure.median) + unit,
        f"{number(low)}–{number(high)}",
        figure.baseline_name or "—",
        baseline,
        "—" if ratio is None else f"{number(ratio)}×",
        figure.target or "—",
        {True: "yes", False: "**no**", None: "—"}[met],
    ]


def table(figures: list[Figure], failures: list[Failure]) -> str:
    """One markdown table: every figure, then every failed scenario."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(" --- " for _ in COLUMNS) + "|",
    ]
    rows = [row(f) for f in figures]
    rows += [[f.scenario, "**failed**: " + f.error, *(["—"] * 7)] for f in failures]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg has them."""
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return ""


def machine() -> str:
    """CPU model, cores, memory, Python and the date, for the record."""
    cpu = "unknown CPU"
    memory = "unknown memory"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB memory"
                break
    cores = os.cpu_count() or 0
    python = f"Python {platform.python_version()}"
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{cpu}, {cores} cores, {memory}, {python}, {today}"


def document(
    figures: list[Figure],
    failures: list[Failure],
    command: str,
    repeats: int,
    minutes: float,
    load_at_start: str = "",
) -> str:
    """docs/benchmarks.md: where and how the table was measured, and the table."""
    return f"""# Benchmarks

Written by `make bench` (bench/run.py); do not edit by hand.

- Machine: {machine()}
- Load average (1, 5, 15 min) when it started: {load_at_start or "unknown"};
  the machine is shared, so other work shows in the spread.
- Command: `{command}`
- Each figure is the median of {repeats} repeats; the spread is their min–max.
  Baselines are measured in the same run, beside the figure; the ratio is
  figure median over baseline median. The whole run took {minutes:.1f} minutes.

{table(figures, failures)}

## Reading the table

- Targets of the bare parts (scenario `baselines`) are half the throughput
  and twice the latency ../shared/BASELINES.md measured on a like machine: a
  check that the bench stack is healthy, not a goal.
- The bench stack is the one `make run` starts (PostgreSQL with fsync on, the
  Temporal dev server on a SQLite file) in `.bench-state/`, created afresh.
- Services run in the bench's own process and event loop, so a service's
  client and server share one core; the echo baseline's server runs in a
  process of its own. Ratios against the echo are therefore pessimistic.
"""
