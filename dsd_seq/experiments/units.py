"""The unit of analysis of a comparison, and the test that fits it.

Runs that continue the same dense model are not independent draws of "a DSD run": their spread is
retraining noise only. So each comparison says what it counts as one observation:

- ``per-seed``: the seed. Every seed trains its own dense model, so a seed's continuations and its dense
  model belong together, and a comparison with that dense model is a paired t-test over seeds.
- ``shared-baseline`` with one dense baseline (the paper's Appendix A): the seed. Every continuation starts
  from the one model; set against that model's one value, the seeds are tested with a one-sample t-test.
- ``shared-baseline`` with K dense baselines (``compare --baselines``): the baseline. A baseline's seeds
  are averaged, and the K per-baseline values are paired with that baseline's own (a paired t-test over
  baselines, K - 1 degrees of freedom), so the variance includes the dense model's.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from dsd_seq.experiments.significance import (
    ONE_SAMPLE,
    PAIRED,
    PAIRED_BASELINES,
    Comparison,
    compare,
    one_sample_t_test,
    paired_t_test,
)

#: How a record is read: a value of it, or None when it has none.
Reader = Callable[[dict[str, Any]], float | None]


def unit_key(record: dict[str, Any], design: str) -> Any:
    """What a record counts towards: its seed (per-seed), or the dense baseline it continued."""
    return record["seed"] if design == "per-seed" else record.get("baseline_seed")


def run_name(record: dict[str, Any]) -> str:
    """A run's name in per-run tables: its seed, or ``baseline seed/seed`` under several baselines."""
    baseline = record.get("baseline_seed")
    return str(record["seed"]) if baseline is None else f"{baseline}/{record['seed']}"


def by_unit(records: list[dict[str, Any]], design: str, read: Reader) -> dict[Any, list[float]]:
    """The values ``read`` finds in each unit's records, in the records' order."""
    grouped: dict[Any, list[float]] = {}
    for record in records:
        value = read(record)
        if value is not None:
            grouped.setdefault(unit_key(record, design), []).append(value)
    return grouped


def several_baselines(records: list[dict[str, Any]], design: str) -> bool:
    return design != "per-seed" and len({r.get("baseline_seed") for r in records}) > 1


def describe_unit(records: list[dict[str, Any]], design: str) -> str:
    """One sentence: what a comparison counts as one observation."""
    if design == "per-seed":
        return "the unit of analysis is the seed (each seed trains its own dense model)"
    if several_baselines(records, design):
        count = len({r.get("baseline_seed") for r in records})
        return (
            f"the unit of analysis is the dense baseline ({count} baselines, each trained from its own "
            "seed; a baseline's continuations are averaged, so the variance includes the dense model's)"
        )
    return (
        "the unit of analysis is the retraining seed: every seed continues one dense model, so the spread "
        "says nothing about the variance of dense training"
    )


def against_reference(
    method: str,
    values: dict[Any, list[float]],
    reference: str,
    reference_values: dict[Any, float],
    higher_is_better: bool,
    design: str,
) -> Comparison:
    """``method``'s runs against one reference value per unit (e.g. each dense model's early-stopped
    score): paired over seeds (per-seed), one-sample against the one value (one shared baseline), or
    paired over baselines with each baseline's runs averaged (several)."""
    units = [u for u in values if u in reference_values]
    if design == "per-seed":
        method_values = [v for u in units for v in values[u]]
        base = [reference_values[u] for u in units for _ in values[u]]
        return compare(method, method_values, reference, base, higher_is_better, paired_t_test, PAIRED)
    if len(units) == 1:
        method_values, value = values[units[0]], reference_values[units[0]]
        return compare(
            method, method_values, reference, [value], higher_is_better,
            lambda m, b: one_sample_t_test(m, b[0]), ONE_SAMPLE,
        )  # fmt: skip
    means = [statistics.fmean(values[u]) for u in units]
    base = [reference_values[u] for u in units]
    return compare(method, means, reference, base, higher_is_better, paired_t_test, PAIRED_BASELINES)


def between_arms(
    method: str,
    values: dict[Any, list[float]],
    baseline: str,
    baseline_values: dict[Any, list[float]],
    higher_is_better: bool,
    design: str,
) -> Comparison:
    """Two arms that continue the same dense models: paired over baselines (their per-baseline means)
    when there are several; otherwise Welch's unpaired test over the runs, as the paper's Table 10."""
    if design != "per-seed" and len(values) > 1:
        units = [u for u in values if u in baseline_values]
        method_means = [statistics.fmean(values[u]) for u in units]
        baseline_means = [statistics.fmean(baseline_values[u]) for u in units]
        return compare(
            method, method_means, baseline, baseline_means, higher_is_better, paired_t_test, PAIRED_BASELINES
        )
    flat = [v for vs in values.values() for v in vs]
    base = [v for vs in baseline_values.values() for v in vs]
    return compare(method, flat, baseline, base, higher_is_better)
