"""The comparison rows against the early-stopped dense model and between dev-selected arms, and the test
each design calls for, checked against scipy on fixture stores of each design."""

import pytest
from scipy import stats

from dsd_seq.experiments.comparison_table import build_comparison, comparison_markdown


def _row(phase, kind, final, best, best_epoch=2):
    return {
        "phase": phase, "label": ["Dense", "Sparse", "Re-dense"][phase], "kind": kind, "epochs": 4,
        "cumulative_epochs": 4 * (phase + 1),
        "metrics": {"dev": {"loss": 1.0, "bleu4": final}, "test": {"loss": 1.0, "bleu4": final}},
        "best": {"epoch": best_epoch, "monitor": "dev_loss", "value": 0.9,
                 "metrics": {"dev": {"bleu4": best}, "test": {"bleu4": best}}},
    }  # fmt: skip


def _record(kind, seed, dense, dense_best, final, final_best, design, baseline_seed=None):
    phases = [
        _row(0, "dense", dense, dense_best),
        _row(1, "sparse" if kind == "dsd" else "dense", final - 1, final - 1),
        _row(2, "dense", final, final_best),
    ]
    record = {
        "config_hash": "abc", "seed": seed, "kind": kind, "design": design, "metric": "bleu4",
        "higher_is_better": True, "schedule": "D4:1,S4@0.5:1,D4:1", "phases": phases,
    }  # fmt: skip
    if baseline_seed is not None:
        record["baseline_seed"] = baseline_seed
    return record


def _comparison(table, method, baseline, section="practitioner"):
    rows = table[section]["comparisons"] if section else table["comparisons"]
    return next(c for c in rows if c["method"] == method and c["baseline"] == baseline)


def _check(row, expected):
    assert row["t"] == pytest.approx(expected.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert row["df"] == pytest.approx(expected.df, rel=1e-12)


DSD = [30.0, 31.5, 29.0, 32.0, 30.5]
DSD_BEST = [30.5, 31.0, 29.5, 32.5, 31.0]
LLR = [29.0, 30.0, 29.5, 31.0, 29.0]
DENSE = [28.0, 29.0, 27.5, 29.5, 28.5]
DENSE_BEST = [30.0, 30.5, 29.0, 31.0, 30.0]


def test_per_seed_rows_pair_each_seed_with_its_own_dense_model():
    records = []
    for seed in range(5):
        common = dict(dense=DENSE[seed], dense_best=DENSE_BEST[seed], design="per-seed")
        records.append(_record("dsd", seed, final=DSD[seed], final_best=DSD_BEST[seed], **common))
        records.append(_record("llr", seed, final=LLR[seed], final_best=LLR[seed] + 0.2, **common))
    table = build_comparison(records)
    _check(_comparison(table, "DSD", "Early-stopped dense"), stats.ttest_rel(DSD, DENSE_BEST))
    _check(
        _comparison(table, "DSD (dev-selected)", "Early-stopped dense"), stats.ttest_rel(DSD_BEST, DENSE_BEST)
    )
    _check(_comparison(table, "LLR", "Early-stopped dense"), stats.ttest_rel(LLR, DENSE_BEST))
    # the paper's rows stay: Welch's unpaired test between the arms
    _check(_comparison(table, "DSD", "LLR", section=None), stats.ttest_ind(DSD, LLR, equal_var=False))
    models = {m["model"]: m for m in table["practitioner"]["models"]}
    assert models["Early-stopped dense"]["mean"] == pytest.approx(sum(DENSE_BEST) / 5)
    assert "the seed" in table["unit"]
    text = comparison_markdown(table)
    assert (
        "## Against the early-stopped dense model" in text
        and "| DSD (dev-selected) vs Early-stopped dense |" in text
    )


def test_one_shared_baseline_is_a_one_sample_test_against_its_one_value():
    records = []
    for seed in range(5):
        common = dict(dense=28.0, dense_best=30.25, design="shared-baseline")
        records.append(_record("dsd", seed, final=DSD[seed], final_best=DSD_BEST[seed], **common))
        records.append(_record("llr", seed, final=LLR[seed], final_best=LLR[seed], **common))
    table = build_comparison(records)
    row = _comparison(table, "DSD", "Early-stopped dense")
    _check(row, stats.ttest_1samp(DSD, 30.25))
    assert row["baseline_n"] == 1 and "one-sample" in row["test"]
    _check(_comparison(table, "LLR (dev-selected)", "Early-stopped dense"), stats.ttest_1samp(LLR, 30.25))
    assert "says nothing about the variance of dense training" in table["unit"]


def test_several_baselines_are_the_unit_and_each_is_paired_with_its_own_continuations():
    dense = {10: 28.0, 11: 29.5, 12: 27.0}
    dense_best = {10: 30.0, 11: 31.5, 12: 29.0}
    dsd = {10: [30.0, 31.0], 11: [32.5, 32.0], 12: [29.0, 30.5]}
    llr = {10: [29.5, 30.0], 11: [31.0, 31.5], 12: [29.5, 29.0]}
    records = []
    for b in dense:
        for i, seed in enumerate((200, 201)):
            common = dict(dense=dense[b], dense_best=dense_best[b], design="shared-baseline", baseline_seed=b)
            records.append(_record("dsd", seed, final=dsd[b][i], final_best=dsd[b][i] + 0.1, **common))
            records.append(_record("llr", seed, final=llr[b][i], final_best=llr[b][i], **common))
    table = build_comparison(records)
    mean = {b: sum(v) / 2 for b, v in dsd.items()}
    mean_llr = {b: sum(v) / 2 for b, v in llr.items()}
    order = sorted(dense)
    _check(
        _comparison(table, "DSD", "LLR", section=None),
        stats.ttest_rel([mean[b] for b in order], [mean_llr[b] for b in order]),
    )
    _check(
        _comparison(table, "DSD", "Dense", section=None),
        stats.ttest_rel([mean[b] for b in order], [dense[b] for b in order]),
    )
    row = _comparison(table, "DSD", "Early-stopped dense")
    _check(row, stats.ttest_rel([mean[b] for b in order], [dense_best[b] for b in order]))
    assert row["method_n"] == 3 and "over dense baselines" in row["test"]
    assert table["baselines"] == [10, 11, 12]
    assert set(table["runs"]) == {f"{b}/{s}" for b in order for s in (200, 201)}
    text = comparison_markdown(table)
    assert "over 3 dense baselines x 2 seeds" in text and "| 11/201 |" in text


def test_records_from_before_best_epochs_have_no_such_section():
    records = [_record("dsd", s, 28.0, 30.0, DSD[s], DSD_BEST[s], "per-seed") for s in range(3)]
    for record in records:
        for row in record["phases"]:
            del row["best"]
    table = build_comparison(records)
    assert "practitioner" not in table
    assert "early-stopped" not in comparison_markdown(table)


def test_an_averaged_last_phase_is_a_row_against_the_early_stopped_dense_model():
    averaged = [31.0, 31.5, 30.0, 32.0, 31.5]
    records = []
    for seed in range(5):
        record = _record("dsd", seed, DENSE[seed], DENSE_BEST[seed], DSD[seed], DSD_BEST[seed], "per-seed")
        record["phases"][2]["average"] = {
            "rule": "last:3", "epochs": [2, 3, 4], "metrics": {"test": {"bleu4": averaged[seed]}},
        }  # fmt: skip
        records.append(record)
    table = build_comparison(records)
    _check(
        _comparison(table, "DSD (average last:3)", "Early-stopped dense"),
        stats.ttest_rel(averaged, DENSE_BEST),
    )
    assert "| DSD (average last:3) |" in comparison_markdown(table)


def test_the_dense_models_last_epoch_is_its_last_even_when_it_handed_on_its_best():
    records = []
    for seed in range(3):
        record = _record(
            "dsd", seed, DENSE_BEST[seed], DENSE_BEST[seed], DSD[seed], DSD_BEST[seed], "per-seed"
        )
        record["phases"][0]["last"] = {"epoch": 4, "metrics": {"test": {"bleu4": DENSE[seed]}}}
        records.append(record)
    models = {m["model"]: m for m in build_comparison(records)["practitioner"]["models"]}
    assert models["Dense, last epoch"]["mean"] == pytest.approx(sum(DENSE[:3]) / 3)
    assert models["Early-stopped dense"]["mean"] == pytest.approx(sum(DENSE_BEST[:3]) / 3)


def test_one_and_several_shared_baselines_do_not_mix_in_one_report():
    from dsd_seq.experiments.comparison_table import ComparisonError

    one = _record("dsd", 0, 28.0, 30.0, 31.0, 31.0, "shared-baseline")
    several = _record("dsd", 1, 28.0, 30.0, 31.0, 31.0, "shared-baseline", baseline_seed=5)
    with pytest.raises(ComparisonError, match="mix one shared dense baseline with several"):
        build_comparison([one, several])
