"""The contract between `make bench` and its scenarios.

A scenario is a module in bench/scenarios/ with
`async def run(ctx: BenchContext) -> list[Figure]`, listed in
bench/scenarios/__init__.py. It measures each figure `ctx.repeats` times and,
where it compares against a bare part (a grpc.aio echo, an asyncpg select, a
bare Temporal workflow), measures that baseline in the same run, beside it.
The runner (bench/run.py) prints every figure's median and spread, the
baseline's median, their ratio and the target.
"""

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from temporalio.client import Client

from services.common.config import Settings
from services.common.server import RunningService, ServiceDefinition


@dataclass
class Figure:
    """One measured figure: a sample per repeat, and its baseline if any."""

    scenario: str
    name: str
    unit: str
    samples: list[float]
    # What is wanted, as "<op> <number>" in the figure's unit ("≥ 500",
    # "≤ 50 ms") or against the baseline ("≥ 0.5× baseline"); op is one of
    # ≥ ≤ >= <= > <. The runner judges targets of that form; other text is
    # shown but not judged.
    target: str = ""
    higher_is_better: bool = True
    baseline_name: str = ""
    baseline_samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ratio(self) -> float | None:
        """Figure over baseline, both medians; None without a baseline."""
        if not self.baseline_samples:
            return None
        return self.median / statistics.median(self.baseline_samples)


@dataclass
class BenchContext:
    """What a scenario gets: the bench stack's settings and Temporal client."""

    settings: Settings
    temporal: Client
    task_queue: str
    repeats: int
    start_service: Callable[[ServiceDefinition], Awaitable[RunningService]]
    channel: Callable[[RunningService], grpc.aio.Channel]
    # How long one throughput sample runs, in seconds; short in a quick run.
    seconds: float = 3.0
    # A smoke run (`make bench` --quick): tiny durations, figures not to cite.
    quick: bool = False


Scenario = Callable[[BenchContext], Awaitable[list[Figure]]]
