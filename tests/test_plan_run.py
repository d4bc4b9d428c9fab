"""One plan of runs for compare and the recipes: ``dsd-seq plan-run`` trains one seed of compare's plan in
a recipe's layout (EXP/dsd, EXP/llr) and gets compare's results; a train request and its command line
(used for compare's parallel runs) are the same call."""

import json
from pathlib import Path

import pytest

from dsd_seq.cli import main, make_parser, train_request
from dsd_seq.training.run import TrainRequest
from tests.toy_cli_runs import toy_config_file


@pytest.fixture
def config(tmp_path, monkeypatch):
    return toy_config_file(tmp_path, monkeypatch, seed=1)


def _untimed(run_dir: Path) -> list[dict]:
    phases = json.loads((run_dir / "results.json").read_text())["phases"]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in phases]


def test_plan_run_trains_one_seed_of_compares_plan_in_the_recipe_layout(config, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(["plan-run", "llr", "--config", config, "--exp", str(exp)]) == 2
    assert "has not finished its dense phase: run `dsd-seq plan-run dense` first" in capsys.readouterr().err
    assert main(["plan-run", "dense", "--config", config, "--exp", str(exp)]) == 0
    assert "1 of 3 phases done" in capsys.readouterr().out
    assert len(_untimed(exp / "dsd")) == 1 and (exp / "dsd" / "checkpoints" / "phase1-end.pt").is_file()
    for kind in ("dsd", "llr"):
        assert main(["plan-run", kind, "--config", config, "--exp", str(exp)]) == 0
    assert sorted(p.name for p in exp.iterdir()) == ["dsd", "llr"]
    # compare's seed 1 follows the same plan: the same results, run for run
    out = tmp_path / "cmp"
    assert main(["compare", "--config", config, "--seeds", "2", "--out", str(out)]) == 0
    for kind in ("dsd", "llr"):
        assert _untimed(exp / kind) == _untimed(out / "seed1" / kind)
        assert (exp / kind / "config.yaml").read_text() == (out / "seed1" / kind / "config.yaml").read_text()
    llr = json.loads((exp / "llr" / "results.json").read_text())
    assert (llr["run"], llr["schedule"]) == ("LLR", "D2:0.01,D1:0.01,D1:0.001")
    # running a finished stage again trains nothing
    last = (exp / "dsd" / "checkpoints" / "last.pt").read_bytes()
    assert main(["plan-run", "dense", "--config", config, "--exp", str(exp)]) == 0
    assert (exp / "dsd" / "checkpoints" / "last.pt").read_bytes() == last


def test_a_train_request_and_its_command_line_are_the_same_call(tmp_path):
    request = TrainRequest(
        config=tmp_path / "a b.yaml",
        exp_dir=tmp_path / "exp",
        overrides=("train.seed=3", "task_args.x={a: 1}"),
        literal_overrides=("task_args.data.train=/p/it's = here.pt",),
        baseline="final_lr",
        resume=True,
        init_from=tmp_path / "phase1-end.pt",
        until_phase=2,
        stop_after_steps=5,
        dense_only=True,
        epochs_from=tmp_path / "dsd" / "results.json",
    )
    assert train_request(make_parser().parse_args(request.to_argv())) == request
    plain = TrainRequest(config=tmp_path / "c.yaml", exp_dir=tmp_path / "e")
    assert train_request(make_parser().parse_args(plain.to_argv())) == plain


def test_every_run_prints_its_parameter_count(config, tmp_path, capsys):
    from dsd_seq.core.selection import select_prunable
    from tests.toy_task import ToyRecurrentNet

    model = ToyRecurrentNet()
    total = sum(p.numel() for p in model.parameters())
    prunable = sum(p.numel() for p in select_prunable(model).values())
    assert 0 < prunable < total
    assert main(["plan-run", "dense", "--config", config, "--exp", str(tmp_path / "exp")]) == 0
    assert f"model: {total:,} parameters ({prunable:,} prunable by DSD)\n" in capsys.readouterr().out


def test_init_from_replaces_the_dense_run(config, tmp_path, capsys):
    """The Flickr8k recipe's --init-from: a trained dense model from elsewhere; nothing dense is trained."""
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["plan-run", "dense", "--config", config, "--exp", str(first)]) == 0
    start = ["--init-from", str(first / "dsd" / "checkpoints" / "phase1-end.pt")]
    assert main(["plan-run", "dense", "--config", config, "--exp", str(second), *start]) == 0
    assert "nothing to train" in capsys.readouterr().out and not second.exists()
    for kind in ("dsd", "llr"):
        assert main(["plan-run", kind, "--config", config, "--exp", str(second), *start]) == 0
        phases = json.loads((second / kind / "results.json").read_text())["phases"]
        assert (
            len(phases) == 3
            and phases[0] == json.loads((first / "dsd" / "results.json").read_text())["phases"][0]
        )
    assert not (second / "dsd" / "checkpoints" / "phase1-end.pt").exists()
    missing = ["--init-from", str(tmp_path / "nothing.pt")]
    assert main(["plan-run", "dsd", "--config", config, "--exp", str(second), *missing]) == 2
    assert "nothing.pt does not exist" in capsys.readouterr().err


def test_the_former_finetune_name_is_refused_naming_what_to_use(config, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(["train", "--config", config, "--exp-dir", str(exp), "--baseline", "finetune"]) == 2
    err = capsys.readouterr().err
    assert "renamed 'final_lr'" in err and "--design shared-baseline" in err
    assert main(["plan-run", "finetune", "--config", config, "--exp", str(exp)]) == 2
    assert "renamed 'final_lr'" in capsys.readouterr().err
    assert not exp.exists()
