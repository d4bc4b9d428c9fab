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


def _finished_run(tmp_path):
    import torch

    from dsd_seq.core.schedule import Schedule
    from tests.toy_task import toy_trainer

    torch.manual_seed(0)
    exp = tmp_path / "exp"
    for kind in ("dsd", "llr"):
        toy_trainer(
            exp / kind, Schedule.parse("D1:0.01,S1@0.5:0.01"), ["train.eval_splits=[dev, test]"]
        ).run()
    return exp


import json  # noqa: E402

import pytest  # noqa: E402

DAMAGED = [
    ("[]", "a JSON list, not an object"),
    ('{"run": "DSD"}', "no list of phases"),
    (
        '{"phases": [{"label": "Dense", "epochs": 1, "cumulative_epochs": 1}]}',
        r"phases\[0\].metrics is missing",
    ),
    (
        '{"phases": [{"label": "Dense", "epochs": 1, "cumulative_epochs": 1, "metrics": {"test": 3}}]}',
        "not a mapping",
    ),
    ('{"phases": ["x"]}', r"phases\[0\] is not an object"),
]


@pytest.mark.parametrize(("text", "message"), DAMAGED)
def test_a_damaged_results_file_is_named_not_a_traceback(tmp_path, capsys, text, message):
    from dsd_seq.cli import main

    exp = _finished_run(tmp_path)
    good = (exp / "dsd" / "results.json").read_text()
    (exp / "dsd" / "results.json").write_text(text)
    assert main(["report", str(exp / "dsd")]) == 2
    err = capsys.readouterr().err
    assert "results.json is not a run's results" in err and "Traceback" not in err
    assert __import__("re").search(message, err)
    # a damaged baseline costs its rows only: the DSD run is still reported
    (exp / "dsd" / "results.json").write_text(good)
    (exp / "llr" / "results.json").write_text(text)
    assert main(["report", str(exp)]) == 0
    report = (exp / "report.md").read_text()
    assert "LLR: left out" in report and "| DSD | Dense |" in report
    json.loads((exp / "results.json").read_text())
