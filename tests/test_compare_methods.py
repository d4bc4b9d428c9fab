"""``dsd-seq compare --arms``: gradual pruning, RigL, SET and AC/DC on DSD's protocol (its dense phase
shared, equal epochs, the same seeds), their schedules, the store and the report's method sections."""

import json

import pytest

from dsd_seq.cli import main
from dsd_seq.core.comparators import arm_schedule
from dsd_seq.core.schedule import Schedule, ScheduleError
from dsd_seq.experiments.compare import parse_arms
from dsd_seq.training.config import ConfigError
from tests.toy_cli_runs import toy_config_file

DSD = Schedule.parse("D2:0.01,S2@0.5:0.01,D2:0.001~0.5")


def test_each_arm_trains_dsd_s_epochs_and_learning_rates_after_its_dense_phase():
    arms = {name: arm_schedule(name, DSD) for name in ("gmp", "rigl", "set", "acdc")}
    assert arms["gmp"].compact() == "D2:0.01,G2@0.5:0.01,S2@0.5:0.001~0.5"
    assert arms["rigl"].compact() == "D2:0.01,R2@0.5:0.01,S2@0.5:0.001~0.5"
    assert arms["set"].compact() == "D2:0.01,R2@0.5:0.01/grow=random,S2@0.5:0.001~0.5"
    # AC/DC over DSD's 4 epochs after the dense phase: blocks of 1, the last 2 compressed, split at
    # DSD's phase boundaries with DSD's learning rate at each epoch (0.001, then 0.001 * 0.5)
    assert arms["acdc"].compact() == "D2:0.01,S1@0.5:0.01,D1:0.01,S2@0.5:0.001~0.5"
    for arm in arms.values():
        assert arm.total_epochs == DSD.total_epochs and arm[0] == DSD[0]
    assert (
        arm_schedule("rigl/every=5/drop=0.5", DSD).compact()
        == "D2:0.01,R2@0.5:0.01/every=5/drop=0.5,S2@0.5:0.001~0.5"
    )
    two = Schedule.parse("D2:0.1,S2@0.5:0.1,D2:0.1,S2@0.75:0.01,D2:0.01")
    assert (
        arm_schedule("gmp", two).compact()
        == "D2:0.1,G2@0.5:0.1,S2@0.5:0.1,G2@0.75:0.01/from=0.5,S2@0.75:0.01"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("llr,gmp", "dsd is missing"),
        ("dsd,prune", "unknown prune"),
        ("dsd,rigl/every=0", "every=0"),
        ("dsd,rigl/shape=cubic", "not a setting of the rigl arm"),
        ("dsd,llr/every=2", "llr takes no settings"),
        ("dsd,rigl/every=50,rigl/every=100", "rigl named more than once"),
        ("dsd,llr,dsd", "dsd named more than once"),
    ],
)
def test_bad_arms_are_refused_naming_what(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_arms(text, "per-seed")
    with pytest.raises(ScheduleError, match="accepted"):
        arm_schedule("magnitude", DSD)


def test_compare_runs_the_methods_against_dsd_and_reports_them(tmp_path, monkeypatch, capsys):
    config = toy_config_file(tmp_path, monkeypatch)
    out = tmp_path / "cmp"
    arms = "dsd,llr,gmp/every=2,rigl/every=2/drop=0.5,set/every=2,acdc"
    argv = ["compare", "--config", config, "--seeds", "2", "--arms", arms, "--out", str(out)]
    settings = ["--set", "schedule=D2:0.01,S2@0.5:0.01,D2:0.001", "--set", "train.eval_splits=[dev, test]"]
    settings += ["--set", "train.select_on=dev_error"]
    assert main([*argv, *settings]) == 0
    printed = capsys.readouterr().out
    assert "1 dense phase + 6 continuations" in printed
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    kinds = ("dsd", "llr", "gmp", "rigl", "set", "acdc")
    assert sorted((r["seed"], r["kind"]) for r in records) == sorted((s, k) for s in (0, 1) for k in kinds)
    report = json.loads((out / "report.json").read_text())
    dsd = report["schedules"]["DSD"]
    schedules = report["schedules"]
    assert schedules["Gradual"].startswith(dsd.split(",")[0]) and "G" in schedules["Gradual"]
    assert "/every=2/drop=0.5" in schedules["RigL"] and "grow=random" in schedules["SET"]
    for seed in (0, 1):  # every arm continues the seed's one dense phase
        dense = {k: json.loads((out / f"seed{seed}" / k / "results.json").read_text())["phases"][0]["metrics"]
                 for k in kinds}  # fmt: skip
        assert all(d == dense["dsd"] for d in dense.values())
        acdc = json.loads((out / f"seed{seed}" / "acdc" / "results.json").read_text())["phases"]
        assert [(p["kind"], p["cumulative_epochs"]) for p in acdc] == [
            ("dense", 2), ("sparse", 3), ("dense", 4), ("sparse", 6)
        ]  # fmt: skip
    # the main table has a column per arm and compares DSD with each at equal epochs
    markdown = (out / "report.md").read_text()
    for label in ("Gradual", "RigL", "SET", "AC/DC"):
        assert f"| DSD vs {label} | yes |" in markdown
    methods = report["methods"]
    assert [m["model"] for m in methods["sparse"]["models"]] == [
        "DSD sparse phase", "Gradual", "RigL", "SET", "AC/DC sparse end"
    ]  # fmt: skip
    assert all(m["sparsity"] == [0.5] and m["n"] == 2 for m in methods["sparse"]["models"])
    dense_models = [m["model"] for m in methods["dense"]["models"]]
    assert dense_models[:3] == ["DSD", "AC/DC dense end", "LLR (fine-tuning)"]
    assert "Early-stopped dense" in dense_models
    assert (
        "## Sparse models at equal sparsity" in markdown and "## Models of the dense architecture" in markdown
    )
    # AC/DC has more phases than DSD: its stage cells are the phases ending at DSD's epochs
    stages = report["stages"]
    assert [s["cumulative_epochs"] for s in stages] == [2, 4, 6]
    assert stages[1]["AC/DC"]["n"] == 2 and stages[2]["AC/DC"]["n"] == 2


def test_compare_arms_on_a_tiny_captioner(tmp_path):
    """The captions recipe's model (NeuralTalk's LSTM, its Linear layers) under every method, one seed."""
    from data_prep.corpora.synth_captions import SynthCaptionsConfig
    from tests.caption_fixtures import train_tiny_captioner

    _, conf = train_tiny_captioner(
        tmp_path, SynthCaptionsConfig(num_train=40, num_val=6, num_test=8, seed=2), pretrain_images=64,
        model_args="{embed_dim: 16, hidden: 16}", batch_size=8, schedule="D1:1e-2,S2@0.8:1e-2,D1:1e-3",
    )  # fmt: skip
    out = tmp_path / "cmp"
    arms = "dsd,llr,gmp/every=3,rigl/every=3,set/every=3,acdc"
    assert main(["compare", "--config", str(conf), "--seeds", "1", "--arms", arms, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["schedules"]) == {"DSD", "LLR", "Gradual", "RigL", "SET", "AC/DC"}
    for kind in ("gmp", "rigl", "set", "acdc"):
        rows = json.loads((out / "seed0" / kind / "results.json").read_text())["phases"]
        assert rows[-1]["kind"] == "sparse" and rows[-1]["cumulative_epochs"] == 4
        for name, sparsity in rows[-1]["layer_sparsity"].items():  # every Linear and LSTM matrix
            assert sparsity >= 0.8 - 1e-3, (kind, name)  # N - round(0.8 N) kept: within rounding
    assert [m["n"] for m in report["methods"]["sparse"]["models"]] == [1] * 5


def test_train_runs_one_arm_by_hand_with_its_settings(tmp_path, monkeypatch, capsys):
    config = toy_config_file(tmp_path, monkeypatch)
    dense = tmp_path / "dsd"
    assert main(["train", "--config", config, "--exp-dir", str(dense), "--until-phase", "1"]) == 0
    start = str(dense / "checkpoints" / "phase1-end.pt")
    store = tmp_path / "runs.jsonl"
    argv = ["train", "--config", config, "--exp-dir", str(tmp_path / "rigl"), "--init-from", start]
    assert main([*argv, "--baseline", "rigl/every=2/drop=0.5", "--store", str(store)]) == 0
    (record,) = [json.loads(line) for line in store.read_text().splitlines()]
    assert (
        record["kind"] == "rigl" and record["schedule"] == "D2:0.01,R1@0.5:0.01/every=2/drop=0.5,S1@0.5:0.001"
    )
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*argv, "--baseline", "prune"])
    assert "invalid choice: 'prune'" in capsys.readouterr().err
    assert main([*argv, "--baseline", "rigl/shape=cubic"]) == 2
    assert "not a setting of the rigl arm" in capsys.readouterr().err


def test_compare_refuses_an_arm_whose_folder_ran_other_settings(tmp_path, monkeypatch, capsys):
    # rigl/every=100 finished in OUT/seed0/rigl; rigl/every=50 into the same --out must not reuse it
    config = toy_config_file(tmp_path, monkeypatch)
    out = tmp_path / "cmp"
    schedule = "D2:0.01,S2@0.5:0.01,D2:0.001"
    old = arm_schedule("rigl/every=100", Schedule.parse(schedule)).compact()
    (out / "seed0" / "rigl").mkdir(parents=True)
    (out / "seed0" / "rigl" / "results.json").write_text(json.dumps({"schedule": old, "phases": []}))
    argv = ["compare", "--config", config, "--seeds", "1", "--out", str(out), "--set", f"schedule={schedule}"]
    assert main([*argv, "--arms", "dsd,rigl/every=50"]) == 2
    err = capsys.readouterr().err
    new = arm_schedule("rigl/every=50", Schedule.parse(schedule)).compact()
    assert old in err and new in err and "another --out" in err
    assert not (out / "seed0" / "dsd").exists()  # refused before anything trained


def test_an_arm_that_trained_dsd_s_realized_epochs_is_compared_by_its_settings(tmp_path):
    # DSD's sparse phase ends at convergence: the arm's folder holds the epochs DSD realized, which is
    # the same arm; other method settings are still refused
    from pathlib import Path

    from dsd_seq.experiments.compare import PlannedRun, check_arm_settings
    from dsd_seq.training.run import TrainRequest

    converging = Schedule.from_config(
        [
            {"kind": "dense", "epochs": 4, "lr": 0.01},
            {"kind": "sparse", "epochs": 4, "lr": 0.01, "sparsity": 0.5, "until": {"patience": 1}},
            {"kind": "dense", "epochs": 2, "lr": 0.001},
        ]
    )
    realized = converging.realized([2, 3])
    folder = tmp_path / "rigl"
    folder.mkdir()
    request = TrainRequest(config=Path("c.yaml"), exp_dir=folder, baseline="rigl/every=50")
    runs = [PlannedRun(0, "rigl", request, None)]
    ran = arm_schedule("rigl/every=50", realized).compact()
    (folder / "results.json").write_text(json.dumps({"schedule": ran, "phases": []}))
    check_arm_settings(runs, converging)  # accepted
    (folder / "results.json").write_text(
        json.dumps({"schedule": arm_schedule("rigl/every=20", realized).compact(), "phases": []})
    )
    with pytest.raises(ConfigError, match="R3@0.5:0.01/every=20.*another --out"):
        check_arm_settings(runs, converging)
