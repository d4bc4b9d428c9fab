"""Is a gain more than seed noise? Mean, spread and the unpaired t-test of the paper's Appendix A (Table 10).

The test of two independent samples is Welch's unpaired t-test (``scipy.stats.ttest_ind(equal_var=False)``, two-sided): DSD passes
through a sparse phase its baselines never see, so the seed-to-seed spread of the two need not be equal;
Welch's test does not assume it and loses little when the spreads happen to be equal. Where the
samples belong together, the test says so: a paired t-test when each value of one side has its own
partner on the other (the same seed's dense model, or the same dense baseline's continuations), and a
one-sample t-test when every seed continues one dense model and is set against that model's one value.
Standard deviations are sample ones (ddof=1), as the t statistic uses them.

"Improvement" is signed so that positive means the method is better than the baseline, whichever way the
metric points: ``baseline - method`` for WER/CER (lower is better), ``method - baseline`` for BLEU.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Sample:
    """Values of one metric over seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n >= 2 else None


@dataclass(frozen=True)
class TTest:
    """Welch's t statistic (method minus baseline), its degrees of freedom and the two-sided p-value."""

    t: float | None
    df: float | None
    p_value: float | None


def welch_t_test(method: Sequence[float], baseline: Sequence[float]) -> TTest:
    """Welch's unpaired two-sided t-test; all None when either side has fewer than 2 values or neither
    varies (the statistic is then undefined, not significant)."""
    if len(method) < 2 or len(baseline) < 2:
        return TTest(None, None, None)
    if len(set(method)) == 1 and len(set(baseline)) == 1:
        return TTest(None, None, None)  # no spread on either side: the statistic is 0/0 or x/0
    return _finite(stats.ttest_ind(list(method), list(baseline), equal_var=False))


WELCH = "Welch's unpaired t-test, two-sided"
PAIRED = "paired t-test, two-sided"
PAIRED_BASELINES = "paired t-test over dense baselines, two-sided"
ONE_SAMPLE = "one-sample t-test against the one baseline value, two-sided"


def paired_t_test(method: Sequence[float], baseline: Sequence[float]) -> TTest:
    """The paired two-sided t-test (``scipy.stats.ttest_rel``) of equally long samples whose i-th values
    belong together (the same seed, or the same dense baseline); all None below 2 pairs or without spread
    in the differences."""
    if len(method) != len(baseline):
        raise ValueError(f"a paired test needs equal samples, got {len(method)} and {len(baseline)}")
    differences = [m - b for m, b in zip(method, baseline, strict=True)]
    if len(differences) < 2 or len(set(differences)) == 1:
        return TTest(None, None, None)
    return _finite(stats.ttest_rel(list(method), list(baseline)))


def one_sample_t_test(method: Sequence[float], value: float) -> TTest:
    """The one-sample two-sided t-test (``scipy.stats.ttest_1samp``) of ``method`` against one value:
    seeds that all continue one dense model, set against that model's own score."""
    if len(method) < 2 or len(set(method)) == 1:
        return TTest(None, None, None)
    return _finite(stats.ttest_1samp(list(method), value))


def _finite(result) -> TTest:
    """scipy's result as a TTest; all None when the statistic or the p-value is not finite."""
    t, df, p = float(result.statistic), float(result.df), float(result.pvalue)
    return TTest(t, df, p) if math.isfinite(t) and math.isfinite(p) else TTest(None, None, None)


@dataclass(frozen=True)
class Comparison:
    """One row of the Table-10 comparison: a method against a baseline on one metric."""

    method: str
    baseline: str
    method_sample: Sample
    baseline_sample: Sample
    higher_is_better: bool
    test: TTest
    test_name: str = WELCH

    @property
    def improvement(self) -> float | None:
        """Absolute improvement, positive when the method is better."""
        m, b = self.method_sample.mean, self.baseline_sample.mean
        if m is None or b is None:
            return None
        return m - b if self.higher_is_better else b - m

    @property
    def relative_improvement(self) -> float | None:
        """Improvement as a fraction of the baseline's mean (e.g. 0.046 for the paper's 4.66%)."""
        b, gain = self.baseline_sample.mean, self.improvement
        if gain is None or not b:
            return None
        return gain / abs(b)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "baseline": self.baseline,
            "higher_is_better": self.higher_is_better,
            "method_mean": self.method_sample.mean,
            "method_std": self.method_sample.std,
            "method_n": self.method_sample.n,
            "baseline_mean": self.baseline_sample.mean,
            "baseline_std": self.baseline_sample.std,
            "baseline_n": self.baseline_sample.n,
            "improvement": self.improvement,
            "relative_improvement": self.relative_improvement,
            "t": self.test.t,
            "df": self.test.df,
            "p_value": self.test.p_value,
            "test": self.test_name,
        }


def compare(
    method: str,
    method_values: Sequence[float],
    baseline: str,
    baseline_values: Sequence[float],
    higher_is_better: bool,
    test: Callable[[Sequence[float], Sequence[float]], TTest] = welch_t_test,
    test_name: str = WELCH,
) -> Comparison:
    return Comparison(
        method=method,
        baseline=baseline,
        method_sample=Sample(tuple(float(v) for v in method_values)),
        baseline_sample=Sample(tuple(float(v) for v in baseline_values)),
        higher_is_better=higher_is_better,
        test=test(method_values, baseline_values),
        test_name=test_name,
    )
