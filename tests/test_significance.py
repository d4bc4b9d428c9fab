"""Welch's t-test against scipy and against the formula by hand; improvement signed by the metric's direction."""

import math
import statistics

import pytest
from scipy import stats

from dsd_seq.experiments.significance import compare, welch_t_test

DSD_WER = [4.31, 4.52, 4.08, 4.61, 4.40]
LLR_WER = [4.83, 4.58, 5.02, 4.91, 4.66, 4.75]


def test_welch_t_test_matches_scipy_and_the_formula():
    result = welch_t_test(DSD_WER, LLR_WER)
    reference = stats.ttest_ind(DSD_WER, LLR_WER, equal_var=False)
    assert result.t == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    # by hand: t = (m1 - m2) / sqrt(v1/n1 + v2/n2), Welch-Satterthwaite degrees of freedom
    v1, v2 = statistics.variance(DSD_WER) / 5, statistics.variance(LLR_WER) / 6
    t = (statistics.fmean(DSD_WER) - statistics.fmean(LLR_WER)) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / 4 + v2**2 / 5)
    assert result.t == pytest.approx(t, rel=1e-12)
    assert result.df == pytest.approx(df, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert result.p_value < 0.01  # these two samples are far apart for their spread


def test_improvement_is_positive_when_lower_wer_or_higher_bleu():
    wer = compare("DSD", DSD_WER, "LLR", LLR_WER, higher_is_better=False)
    gain = statistics.fmean(LLR_WER) - statistics.fmean(DSD_WER)
    assert wer.improvement == pytest.approx(gain) and wer.improvement > 0
    assert wer.relative_improvement == pytest.approx(gain / statistics.fmean(LLR_WER))
    bleu = compare("DSD", [18.5, 18.9, 18.1], "Dense", [16.8, 17.0, 16.5], higher_is_better=True)
    assert bleu.improvement == pytest.approx(18.5 - 16.7667, abs=1e-3) and bleu.improvement > 0
    worse = compare("DSD", [16.0, 16.2], "Dense", [16.8, 17.0], higher_is_better=True)
    assert worse.improvement < 0 and worse.relative_improvement < 0
    row = wer.to_dict()
    assert row["method_std"] == pytest.approx(statistics.stdev(DSD_WER))  # sample std, as the t-test uses
    assert row["test"] == "Welch's unpaired t-test, two-sided"


def test_no_test_without_two_seeds_a_side_or_without_spread():
    assert welch_t_test([4.0], [4.5, 4.6]).p_value is None
    assert welch_t_test([4.0, 4.0], [4.0, 4.0]).t is None
    one = compare("DSD", [4.0], "LLR", [4.5], higher_is_better=False)
    assert one.improvement == pytest.approx(0.5) and one.method_sample.std is None
