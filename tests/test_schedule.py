import pytest

from dsd_seq.core.schedule import DENSE, SPARSE, Phase, Schedule, ScheduleError

TABLE7 = "D50:0.0008,S50@0.5:0.0005,D50:0.0003,S50@0.25:0.0001,D50:3e-05"


def test_compact_form_parses_the_paper_table7_schedule():
    s = Schedule.parse(TABLE7)
    assert [p.kind for p in s] == [DENSE, SPARSE, DENSE, SPARSE, DENSE]
    assert [p.sparsity for p in s] == [0, 0.5, 0, 0.25, 0]
    assert s.total_epochs == 250
    assert [s.label(i) for i in range(5)] == ["Dense", "Sparse", "Re-dense", "Sparse 2", "Re-dense 2"]
    assert Schedule.parse(s.compact()) == s


def test_llr_baseline_has_same_epochs_and_learning_rates_without_pruning():
    s = Schedule.parse(TABLE7)
    llr = s.llr()
    assert all(p.kind == DENSE and p.sparsity == 0 for p in llr)
    assert [(p.epochs, p.lr) for p in llr] == [(p.epochs, p.lr) for p in s]


def test_final_lr_control_keeps_the_dense_phase_then_trains_dense_at_the_final_lr():
    s = Schedule.parse("D50:8e-4~0.9,S50@0.5:5e-4,D50:3e-4,S50@0.25:1e-4,D50:3e-5~0.95")
    ft = s.final_lr_control()
    assert ft[0] == s[0]  # shared with DSD, so it can start from DSD's phase1-end.pt
    assert ft.compact() == "D50:0.0008~0.9,D50:3e-05,D50:3e-05,D50:3e-05,D50:3e-05"
    assert ft.total_epochs == s.total_epochs and not ft.has_sparse_phase


def test_yaml_list_form_and_lr_decay():
    s = Schedule.from_config(
        [
            {"kind": "dense", "epochs": 2, "lr": 1e-3, "lr_decay": 0.5},
            {"kind": "sparse", "epochs": 1, "lr": 1e-4, "sparsity": 0.5},
        ]
    )
    assert s[0].lr_at(1) == pytest.approx(5e-4)
    assert Schedule.parse("D2:1e-3~0.5,S1@0.5:1e-4") == s


@pytest.mark.parametrize(
    "text, message",
    [
        ("D10", "cannot parse"),
        ("S10:1e-3", "needs @<sparsity>"),
        ("D10@0.5:1e-3", "takes no"),
        ("S10@1.0:1e-3", "sparsity in"),
        ("D0:1e-3", "positive integer"),
        ("D1:0", "positive number"),
        ("", "cannot parse"),
    ],
)
def test_bad_schedules_are_refused_with_the_phase_named(text, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(text)


def test_yaml_phase_with_unknown_key_is_refused():
    with pytest.raises(ScheduleError, match="unknown key"):
        Schedule.from_config([{"kind": "dense", "epochs": 1, "lr": 1e-3, "sparsty": 0.5}])
    with pytest.raises(ScheduleError, match="not a number"):
        Schedule.from_config([{"kind": "dense", "epochs": 1, "lr": "fast"}])


def test_phase_compact():
    assert Phase(SPARSE, 3, 1e-4, 0.25).compact() == "S3@0.25:0.0001"
