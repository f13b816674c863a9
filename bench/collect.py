"""Gathering a scenario's figures repeat by repeat."""

from bench.baselines import Load
from bench.harness import Figure


class Collected:
    """Figures by name, in the order first seen; each add is one repeat's sample.

    The first add of a name fixes its unit, target and baseline name; later
    adds only append samples (and baseline samples, when given).
    """

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self._figures: dict[str, Figure] = {}

    def add(
        self,
        name: str,
        unit: str,
        value: float,
        *,
        target: str = "",
        higher_is_better: bool = True,
        baseline_name: str = "",
        baseline: float | None = None,
    ) -> None:
        figure = self._figures.setdefault(
            name,
            Figure(
                self.scenario,
                name,
                unit,
                [],
                target,
                higher_is_better=higher_is_better,
                baseline_name=baseline_name,
            ),
        )
        figure.samples.append(value)
        if baseline is not None:
            figure.baseline_samples.append(baseline)

    def add_load(
        self, name: str, load: Load, unit: str, targets: tuple[str, str, str]
    ) -> None:
        """A load's throughput, p50 and p99 (no baseline), with their targets."""
        rate, p50, p99 = targets
        self.add(f"{name}: throughput", unit, load.rate, target=rate)
        self.add(f"{name}: p50", "ms", load.ms(50), target=p50, higher_is_better=False)
        self.add(f"{name}: p99", "ms", load.ms(99), target=p99, higher_is_better=False)

    def figures(self) -> list[Figure]:
        return list(self._figures.values())
