"""The results table says which direction of the change against Dense is better: BLEU up, WER down."""

from dsd_seq.experiments.report import build_table, to_markdown


def _results(higher_is_better, values):
    phases = [{"phase": i, "label": label, "epochs": 1, "cumulative_epochs": i + 1, "lr": 1e-3,
               "measured_sparsity": 0.0, "metrics": {"test": {"m": v}}}
              for i, (label, v) in enumerate(zip(["Dense", "Sparse", "Re-dense"], values, strict=True))]  # fmt: skip
    results = {"schedule": "D1:1e-3,S1@0.8:1e-3,D1:1e-4", "metric": "m", "phases": phases}
    if higher_is_better is not None:
        results["higher_is_better"] = higher_is_better
    return results


def test_change_column_names_the_better_direction():
    bleu = to_markdown(build_table(_results(True, [16.8, 15.1, 18.5])))
    assert "test m vs Dense (higher is better)" in bleu and "| +1.70 |" in bleu
    wer = to_markdown(build_table(_results(False, [20.0, 21.0, 19.0])))
    assert "test m vs Dense (lower is better)" in wer and "| -1.00 |" in wer
    # results.json written before the field existed: no direction claimed
    assert "test m vs Dense |" in to_markdown(build_table(_results(None, [1.0, 2.0, 3.0])))
