"""Gradual magnitude pruning (``G`` phases): the sparsity trajectory and the masks after every step of a
tiny model, against values computed by hand from Zhu & Gupta's cubic (and the linear) ramp."""

import pytest
import torch
from torch import nn

from dsd_seq.core.masked_optimizer import dsd_optimizer
from dsd_seq.core.masks import kept_count
from dsd_seq.core.ramp import Ramp
from dsd_seq.core.schedule import Schedule, ScheduleError

# a 4x4 matrix whose magnitudes are 1..16, signs mixed: the k kept weights are those of magnitude > 16-k
WEIGHT = torch.tensor(
    [[3.0, -16.0, 7.0, 1.0], [-9.0, 12.0, -2.0, 14.0], [5.0, -11.0, 8.0, -4.0], [15.0, 6.0, -13.0, 10.0]]
)


def _kept_set(k: int) -> torch.Tensor:
    return WEIGHT.abs() > 16 - k


def _tiny(schedule: str):
    torch.manual_seed(0)
    model = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(WEIGHT)
    opt = dsd_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.1), schedule, unit="step")
    return model, opt


def _zero_gradient_step(model, opt):
    """A step whose gradient is 0: the weights move only by the masks."""
    opt.zero_grad()
    (model(torch.ones(1, 4)) * 0.0).sum().backward()
    opt.step()


def test_the_ramp_formulas_by_hand():
    cubic = Ramp(start=0.0, every=2, end=1.0)
    # s_k = 0.75 + (0 - 0.75) * (1 - k/8)**3
    assert [cubic.sparsity_at(k, 8, 0.75) for k in (0, 2, 4, 6, 8)] == [
        0.0,
        0.43359375,
        0.65625,
        0.73828125,
        0.75,
    ]
    linear = Ramp(start=0.25, shape="linear", end=0.5)
    # ramp over ceil(0.5 * 8) = 4 steps: 0.25 + 0.5 * k/4, then held
    assert [linear.sparsity_at(k, 8, 0.75) for k in (0, 1, 2, 4, 6)] == [0.25, 0.375, 0.5, 0.75, 0.75]
    assert [k for k in range(1, 9) if Ramp(every=3, end=0.5).updates_at(k, 8)] == [3, 4]  # and the ramp's end


def test_cubic_ramp_masks_after_every_step_on_a_4x4_matrix():
    # one phase of 8 steps, masks every 2 steps over the whole phase (end=1)
    model, opt = _tiny("G8@0.75:0.1/every=2/end=1")
    # hand: pruned = round(16 * s): k=2: round(6.9375)=7, k=4: round(10.5)=10 (half to even), k=6,8: 12
    kept_after = {1: 16, 2: 9, 3: 9, 4: 6, 5: 6, 6: 4, 7: 4, 8: 4}
    for step in range(1, 9):
        _zero_gradient_step(model, opt)
        k = kept_after[step]
        assert torch.equal(opt.dsd.masks.masks["weight"], _kept_set(k)), step
        assert torch.equal(model.weight.detach(), WEIGHT * _kept_set(k)), step
    assert int(torch.count_nonzero(model.weight)) == kept_count(16, 0.75) == 4


def test_linear_ramp_from_a_starting_sparsity_then_held():
    # from 0.25 (4 pruned at entry) to 0.75 over the first half (4 steps), masks every step
    model, opt = _tiny("G8@0.75:0.1/from=0.25/every=1/shape=linear/end=0.5")
    _zero_gradient_step(model, opt)  # the phase is entered at its first step: 12 kept, then k=1: s=0.375
    assert torch.equal(opt.dsd.masks.masks["weight"], _kept_set(10))  # round(6) pruned
    for step, kept in ((2, 8), (3, 6), (4, 4), (5, 4), (8, 4)):
        while opt.dsd.updates.step < step:
            _zero_gradient_step(model, opt)
        assert torch.equal(opt.dsd.masks.masks["weight"], _kept_set(kept)), step


def test_exact_zeros_and_optimizer_state_after_every_step_while_training():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = dsd_optimizer(
        model, torch.optim.Adam(model.parameters(), lr=1e-2), "D3:1e-2,G12@0.8:1e-2/every=3", unit="step"
    )
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    seen = []
    for _ in range(15):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if opt.dsd.masks is None:
            continue
        for name, p in opt.dsd.params.items():
            mask = opt.dsd.masks.masks[name]
            assert torch.all(p[~mask] == 0)
            assert torch.all(opt.state[p]["exp_avg"][~mask] == 0)
        seen.append(opt.dsd.masks.mask_report()[0].sparsity)
    assert seen == sorted(seen)  # the sparsity only rises
    for name, p in opt.dsd.params.items():  # after the ramp's end (ceil(0.75 * 12) = 9 steps): 0.8 exactly
        assert int(torch.count_nonzero(p)) == kept_count(p.numel(), 0.8), name


@pytest.mark.parametrize(
    "text, message",
    [
        ("G4@0.5:0.1/from=0.6", "from=0.6"),
        ("G4@0.5:0.1/every=0", "every=0"),
        ("G4@0.5:0.1/shape=exponential", "shape='exponential'"),
        ("G4@0.5:0.1/end=1.5", "end=1.5"),
        ("G4@0.5:0.1/drop=0.3", "'drop' is not a setting"),
        ("G..4@0.5:0.1", "fixed length"),
    ],
)
def test_bad_gradual_settings_name_the_setting(text, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(text)


def test_compact_and_yaml_forms_are_the_same_phase():
    compact = Schedule.parse("D2:1e-3,G4@0.9:1e-3/from=0.1/every=50/shape=linear/end=0.5")
    yaml = Schedule.from_config(
        [
            {"kind": "dense", "epochs": 2, "lr": 1e-3},
            {"kind": "gradual", "epochs": 4, "lr": 1e-3, "sparsity": 0.9, "from": 0.1, "every": 50,
             "shape": "linear", "end": 0.5},
        ]
    )  # fmt: skip
    assert compact == yaml
    assert Schedule.parse(compact.compact()) == compact
    assert compact.label(1) == "Gradual"
    assert Schedule.parse("G4@0.9:1e-3").compact() == "G4@0.9:0.001"  # defaults are not written
    with pytest.raises(ScheduleError, match="unknown key"):
        Schedule.from_config([{"kind": "gradual", "epochs": 4, "lr": 1e-3, "sparsity": 0.9, "speed": 2}])


def test_a_schedule_counted_in_epochs_needs_the_steps_of_an_epoch():
    model = nn.Linear(4, 4, bias=False)
    opt = dsd_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.1), "D1:0.1,G2@0.5:0.1/every=1")
    opt.begin_epoch(0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        opt.begin_epoch(1)
    opt = dsd_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), "D1:0.1,G2@0.5:0.1/every=1", steps_per_epoch=3
    )
    opt.begin_epoch(0)
    opt.begin_epoch(1)
    assert opt.dsd.updates.steps == 6  # 2 epochs of 3 steps


def test_overridden_layers_rise_along_the_ramp_to_their_override():
    # masking.overrides {"0.weight": 0.8} in a gradual phase to 0.4 (linear from 0, every step, 4 steps):
    # the overridden layer is pruned to 0.8 * s / 0.4 at each sparsity s of the ramp, not 0.8 at entry
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10, bias=False), nn.Linear(10, 10, bias=False))
    opt = dsd_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), "G4@0.4:0.1/every=1/shape=linear/end=1",
        unit="step", overrides={"0.weight": 0.8},
    )  # fmt: skip

    def pruned(name):
        return int((~opt.dsd.masks.masks[name]).sum())

    for step, (overridden, other) in enumerate([(20, 10), (40, 20), (60, 30), (80, 40)], start=1):
        _zero_gradient_step_any(model, opt)
        assert (pruned("0.weight"), pruned("1.weight")) == (overridden, other), step


def _zero_gradient_step_any(model, opt):
    opt.zero_grad()
    (model(torch.ones(1, 10)) * 0.0).sum().backward()
    opt.step()


def test_a_gradual_phase_whose_later_epochs_have_fewer_batches_still_ends_at_its_sparsity(tmp_path):
    # frame-budget batching repacks every epoch: here the phase's first epoch has 8 batches and the
    # others 4, so the 3 x 8 = 24 steps planned are never taken (16 are); the phase end prunes to the
    # final sparsity, says so and logs it
    import json

    from tests.toy_task import ToyTask, toy_trainer

    class ShrinkingEpochs(ToyTask):
        def train_batches(self, generator, epoch=0):
            batches = super().train_batches(generator, epoch)
            return batches if epoch <= 1 else batches[:4]

    schedule = Schedule.parse("D1:0.01,G3@0.6:0.01/every=2/end=1")
    trainer = toy_trainer(tmp_path / "run", schedule, task=ShrinkingEpochs())
    with pytest.warns(UserWarning, match="pruned to its final sparsity 0.6"):
        rows = trainer.run()
    _, total = trainer.dsd.sparsity()
    assert total == pytest.approx(0.6, abs=0.01)
    assert rows[1]["measured_sparsity"] == pytest.approx(0.6, abs=0.01)
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    warned = [e for e in events if e["event"] == "warning"]
    assert len(warned) == 1 and "after 16 of its ramp's 24 planned step(s)" in warned[0]["message"]


@pytest.mark.parametrize(
    "schedule, words",
    [
        ("G4@0.5:0.1/every=4", "updated only once, at step 3: this is one-shot pruning"),
        ("R4@0.5:0.1/every=3", "never redrawn: this is fixed-mask sparse training, not rigl"),
        ("R4@0.5:0.1/every=3/grow=random", "not set; set every below 3"),
    ],
)
def test_a_phase_too_short_for_its_every_warns_when_planned_naming_every_and_end(schedule, words):
    model, opt = _tiny(schedule)
    with pytest.warns(UserWarning, match="every=") as caught:
        _zero_gradient_step(model, opt)
    (message,) = [str(w.message) for w in caught]
    assert words in message and "end=0.75 x 4 steps" in message
    _zero_gradient_step(model, opt)  # planned once: said once


def test_a_gradual_phase_that_counted_no_step_says_to_call_end_step():
    from dsd_seq.core.dsd import DSD

    model = nn.Linear(4, 4, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dsd = DSD(model, opt)
    gradual, dense = Schedule.parse("G2@0.5:0.1/every=1,D1:0.1")
    dsd.enter(gradual)
    dsd.plan_steps(2)
    for _ in range(2):  # the manual pattern without end_step()
        model(torch.ones(1, 4)).sum().backward()
        dsd.mask_gradients()
        opt.step()
        dsd.apply_masks()
    with pytest.warns(UserWarning, match=r"no optimizer step counted.*dsd.end_step\(\)"):
        dsd.enter(dense)


def test_planning_a_phase_with_no_step_names_the_phase_and_the_cause():
    from dsd_seq.core.mask_updates import MaskUpdates
    from dsd_seq.core.redraw import Redraw

    with pytest.raises(ValueError, match=r"a gradual phase \(to sparsity 0.5\).*planned with 0 \(an epoch"):
        MaskUpdates(Ramp(), 0.5).plan(0)
    with pytest.raises(ValueError, match=r"a set phase \(to sparsity 0.8\)"):
        MaskUpdates(Redraw(grow="random"), 0.8).plan(0)
