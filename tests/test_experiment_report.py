"""dsd-seq report EXP_DIR on a tiny DSD run and its LLR baseline: tables, the three figures, and Figure 2's
panels as the paper draws them (a gap around zero after pruning, a spike at zero at re-dense)."""

from pathlib import Path

import pytest

from dsd_seq.cli import main
from dsd_seq.experiments.figures import FigureError, weight_panels
from dsd_seq.experiments.run_store import read_store

ROOT = Path(__file__).resolve().parents[1]
TOY = (
    "task: tests.toy_task:build_toy_task\nschedule: D2:1e-2,S1@0.5:1e-2,D1:1e-2\n"
    "train: {progress: false, tensorboard: false, eval_splits: [test], num_threads: 1}\n"
)
FIGURES = ("weight_distribution.png", "training_curves.png", "layer_sparsity.png")


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """A recipe-style exp folder: dsd/ (Dense, Sparse 50%, Re-dense) and llr/ from its dense phase."""
    exp = tmp_path_factory.mktemp("report") / "exp"
    config = exp.parent / "toy.yaml"
    config.write_text(TOY)
    train = ["train", "--config", str(config)]
    assert main([*train, "--exp-dir", str(exp / "dsd"), "--store", str(exp / "runs-of-train.jsonl")]) == 0
    init = ["--init-from", str(exp / "dsd" / "checkpoints" / "phase1-end.pt")]
    assert main([*train, "--exp-dir", str(exp / "llr"), "--baseline", "llr", *init]) == 0
    return exp


def test_report_of_a_recipe_exp_folder_writes_the_table_report_and_figures(exp, capsys):
    assert main(["report", str(exp)]) == 0
    assert "results table:" in capsys.readouterr().out
    assert "| DSD | Sparse |" in (exp / "results.md").read_text()
    report = (exp / "report.md").read_text()
    assert "| LLR | Dense (LLR) |" in report and f"dsd-seq report {exp}" in report
    for name in FIGURES:
        png = (exp / "figures" / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
        assert f"](figures/{name})" in report


def test_train_appends_its_record_to_a_store_when_asked(exp):
    (record,) = read_store(exp / "runs-of-train.jsonl")
    assert (
        record["kind"] == "dsd"
        and record["seed"] == 0
        and record["schedule"] == "D2:0.01,S1@0.5:0.01,D1:0.01"
    )
    assert [row["label"] for row in record["phases"]] == ["Dense", "Sparse", "Re-dense"]


def test_report_of_a_single_run_folder(exp):
    assert main(["report", str(exp / "dsd")]) == 0
    assert "| DSD | Re-dense |" in (exp / "dsd" / "report.md").read_text()
    assert all((exp / "dsd" / "figures" / name).stat().st_size > 5000 for name in FIGURES)


def test_figure_2_panels_gap_after_pruning_spike_at_redense(exp):
    name, panels = weight_panels(exp / "dsd")
    assert "weight_hh" in name  # the default: the largest recurrent matrix
    (_, dense), (_, kept), (_, retrained), (_, redense_start), (_, redensed) = panels
    pruned = dense.numel() - kept.numel()
    assert pruned == dense.numel() // 2
    assert kept.abs().min() >= dense.abs().sort().values[pruned - 1]  # (b): nothing left near zero
    assert int((retrained != 0).sum()) == kept.numel() == retrained[retrained != 0].numel()
    assert int((redense_start == 0).sum()) == pruned  # (d): the pruned weights restart at exactly zero
    assert int((redensed == 0).sum()) < pruned // 10  # (e): and then train
    fc, _ = weight_panels(exp / "dsd", layer="fc.*")
    assert fc == "fc.weight"
    with pytest.raises(FigureError, match=r"'nothing\*' matches no pruned tensor; pruned: \['gru"):
        weight_panels(exp / "dsd", layer="nothing*")


def test_a_figure_that_cannot_be_drawn_is_named_in_the_report(exp, tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text(TOY)
    run = tmp_path / "dense-only"
    assert main(["train", "--config", str(config), "--exp-dir", str(run), "--until-phase", "1"]) == 0
    assert main(["report", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "not drawn" in report and "no sparse phase finished yet" in report
    assert (run / "figures" / "training_curves.png").stat().st_size > 5000
    assert main(["report", str(tmp_path / "nothing")]) == 2


def _damaged_copy(exp, tmp_path, damage):
    import shutil

    copy = tmp_path / "exp"
    shutil.copytree(exp, copy, ignore=shutil.ignore_patterns("figures"))  # drawn by the tests above
    damage(copy / "dsd")
    return copy


def _tear_last_line(run):
    with (run / "metrics.jsonl").open("ab") as f:
        f.write(b'{"event": "train", "step": 99, "lo')


def _damage_a_middle_line(run):
    lines = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    lines[2] = b"{not json\n"
    (run / "metrics.jsonl").write_bytes(b"".join(lines))


def test_a_torn_last_metrics_line_is_skipped_and_the_curves_are_drawn(exp, tmp_path):
    copy = _damaged_copy(exp, tmp_path, _tear_last_line)
    with pytest.warns(UserWarning, match="torn last line"):
        assert main(["report", str(copy)]) == 0
    assert "not drawn" not in (copy / "report.md").read_text()
    for name in FIGURES:
        assert (copy / "figures" / name).stat().st_size > 5000


@pytest.mark.parametrize(
    ("damage", "missing", "reason"),
    [
        (_damage_a_middle_line, "training_curves.png", r"metrics\.jsonl:3: not a metrics record"),
        (
            lambda run: (run / "checkpoints" / "phase2-end.pt").write_bytes(b""),
            "weight_distribution.png",
            r"phase2-end\.pt is empty",
        ),
        (
            lambda run: __import__("torch").save([1, 2], run / "checkpoints" / "phase3-end.pt"),
            "weight_distribution.png",
            r"phase3-end\.pt holds a list",
        ),
    ],
)
def test_one_unreadable_input_costs_its_figure_not_the_report(exp, tmp_path, damage, missing, reason):
    copy = _damaged_copy(exp, tmp_path, damage)
    assert main(["report", str(copy)]) == 0
    report = (copy / "report.md").read_text()
    assert "not drawn" in report
    assert any(
        "not drawn" in line and __import__("re").search(reason, line) for line in report.splitlines()
    ), report
    for name in FIGURES:
        assert (copy / "figures" / name).is_file() == (name != missing), name
