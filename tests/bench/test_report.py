"""The bench's table and report, on figures made up for the purpose."""

from pathlib import Path

import pytest

from bench.baselines import Load, percentile
from bench.harness import Figure
from bench.report import Failure, document, judge, number, row, table
from bench.run import DOCS, parse


def figure(
    samples: list[float], target: str = "", baseline: list[float] | None = None
) -> Figure:
    return Figure(
        scenario="demo",
        name="GetArea: throughput",
        unit="req/s",
        samples=samples,
        target=target,
        baseline_name="echo" if baseline else "",
        baseline_samples=baseline or [],
    )


def test_row_shows_median_spread_baseline_and_ratio() -> None:
    cells = row(figure([900, 1200, 1000], "≥ 0.5× baseline", [2000, 1900, 2100]))

    assert cells == [
        "demo",
        "GetArea: throughput",
        "1,000 req/s",
        "900–1,200",
        "echo",
        "2,000 req/s",
        "0.500×",
        "≥ 0.5× baseline",
        "yes",
    ]


def test_row_without_baseline_or_target_shows_dashes() -> None:
    cells = row(figure([3.0, 1.0, 2.0]))

    assert cells[2:] == ["2.00 req/s", "1.00–3.00", "—", "—", "—", "—", "—"]


@pytest.mark.parametrize(
    ("target", "met"),
    [
        ("≥ 1000", True),
        (">= 1,001", False),
        ("≤ 1000", True),
        ("< 1000", False),
        ("> 999.5", True),
        ("≥ 0.6× baseline", False),
        ("<= 0.5x baseline", True),
        ("≤ 0.6 baseline", True),
        ("fast enough", None),
        ("", None),
    ],
)
def test_target_is_judged_on_the_median_or_the_ratio(
    target: str, met: bool | None
) -> None:
    assert judge(figure([1000, 900, 1100], target, [2000])) is met


def test_target_against_a_missing_baseline_is_not_judged() -> None:
    assert judge(figure([1.0], "≥ 0.5× baseline")) is None


def test_unmet_target_stands_out() -> None:
    assert row(figure([10.0], "≥ 20"))[-1] == "**no**"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(2460.3, "2,460"), (20.13, "20.1"), (0.3449, "0.345"), (5.0, "5.00"), (0, "0")],
)
def test_numbers_keep_three_significant_figures(value: float, shown: str) -> None:
    assert number(value) == shown


def test_table_lists_figures_then_failed_scenarios() -> None:
    text = table([figure([1.0])], [Failure("broken", "ValueError: a | b")])
    lines = text.splitlines()

    assert lines[0].startswith("| scenario | figure | median | spread")
    assert len(lines) == 4
    assert lines[3].startswith("| broken | **failed**: ValueError: a \\| b |")


def test_document_names_the_machine_and_the_command() -> None:
    text = document([figure([1.0])], [], "make bench", repeats=5, minutes=1.5)

    assert "- Command: `make bench`" in text
    assert "cores" in text
    assert "Python 3." in text
    assert "| demo | GetArea: throughput |" in text


def test_only_a_full_run_writes_docs_benchmarks() -> None:
    assert parse([]).output == DOCS
    assert parse([]).command == "make bench"
    assert parse(["--quick"]).output is None
    assert parse(["--only", "baselines"]).output is None
    assert parse(["--quick", "--output", "x.md"]).output == Path("x.md")


def test_quick_run_takes_one_short_repeat() -> None:
    options = parse(["--quick"])

    assert (options.repeats, options.seconds) == (1, 0.3)
    assert parse([]).repeats == 5


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse(["--only", "no-such-scenario"])


def test_percentile_interpolates_between_samples() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert Load(10, 2.0, [0.001, 0.003]).ms(50) == pytest.approx(2.0)
    assert Load(10, 2.0).rate == 5.0
