"""RigL and SET (``R`` phases): drop by |w|, grow by |gradient| (or at random), with the drop fraction's
cosine decay; exact counts and indices on a 4x4 matrix with a known gradient, and the optimizer state at
dropped and grown positions."""

import math

import pytest
import torch
from torch import nn

from dsd_seq.core.dsd import DSD
from dsd_seq.core.redraw import Redraw, redraw_mask
from dsd_seq.core.schedule import Schedule, ScheduleError

WEIGHT = torch.tensor(
    [[3.0, -16.0, 7.0, 1.0], [-9.0, 12.0, -2.0, 14.0], [5.0, -11.0, 8.0, -4.0], [15.0, 6.0, -13.0, 10.0]]
)
# at 50% the 8 weights of magnitude 9..16 are active; the gradient is largest at inactive positions
# (magnitudes 1..8) in the order of this table, and small at the active ones
GRADIENT = torch.tensor(
    [[0.9, 0.1, 0.3, 0.8], [0.1, 0.1, 0.7, 0.1], [0.2, 0.1, 0.5, 0.6], [0.1, 0.4, 0.1, 0.1]]
)


def _redraw_setup(schedule="R3@0.5:0.1/every=1/drop=0.5/end=1", momentum=0.9):
    model = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(WEIGHT)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    dsd = DSD(model, opt, seed=3)
    (phase,) = Schedule.parse(schedule)
    dsd.enter(phase)
    dsd.plan_steps(3)
    dsd.set_lr(0.0)  # the weights move only by the masks: every kept set can be read off the table
    return model, opt, dsd


def _step(model, opt, dsd, gradient=GRADIENT):
    model.weight.grad = gradient.clone()
    dsd.step()


def test_drop_fraction_decays_as_a_cosine():
    r = Redraw(drop=0.5, end=1.0)
    # f = 0.5 / 2 * (1 + cos(pi k / 3)): 0.375 at k=1, 0.125 at k=2
    assert r.drop_fraction(1, 3) == pytest.approx(0.375)
    assert r.drop_fraction(2, 3) == pytest.approx(0.125)
    assert [k for k in range(1, 10) if Redraw(every=2, end=0.75).updates_at(k, 10)] == [2, 4, 6]


def test_rigl_drops_the_smallest_active_and_grows_the_largest_gradient_by_hand():
    model, opt, dsd = _redraw_setup()
    active = WEIGHT.abs() > 8
    assert torch.equal(dsd.masks.masks["weight"], active)
    _step(model, opt, dsd)
    # k=1: floor(0.375 * 8) = 3 dropped: |w| 9, 10, 11; grown: the 3 largest |g| outside the 5 kept:
    # 0.9 (w=3), 0.8 (w=1), 0.7 (w=-2)
    assert dsd.last_redraw == {"weight": 3}
    dropped = (WEIGHT.abs() >= 9) & (WEIGHT.abs() <= 11)
    grown = torch.zeros(4, 4, dtype=torch.bool)
    grown[0, 0] = grown[0, 3] = grown[1, 2] = True
    expected = (active & ~dropped) | grown
    assert torch.equal(dsd.masks.masks["weight"], expected)
    assert torch.all(model.weight[grown] == 0)  # grown weights start at exactly zero
    assert torch.all(model.weight[dropped] == 0)
    assert torch.equal(model.weight[expected & ~grown], WEIGHT[expected & ~grown])
    momentum = opt.state[model.weight]["momentum_buffer"]
    assert torch.all(momentum[~expected] == 0) and torch.all(momentum[grown] == 0)  # fresh state
    assert torch.all(momentum[expected & ~grown] != 0)  # the survivors keep theirs
    # k=2: floor(0.125 * 8) = 1 dropped: the smallest active |w|, a grown 0 of lowest index (0, 0);
    # grown: the largest |g| outside the 7 kept and not active: (0, 0) itself comes back (0.9)
    before = dsd.masks.masks["weight"].clone()
    _step(model, opt, dsd)
    assert dsd.last_redraw == {"weight": 1}
    assert torch.equal(dsd.masks.masks["weight"], before)  # dropped and grown again: kept as it was
    # k=3 = end * steps: no redraw
    _step(model, opt, dsd)
    assert torch.equal(dsd.masks.masks["weight"], before)


def test_redraw_mask_counts_and_ties():
    mask = torch.tensor([True, True, True, True, False, False, False, False])
    weight = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    scores = torch.zeros(8)  # no gradient anywhere: ties keep the lowest indices
    new, count = redraw_mask(mask, weight, scores, 0.5)
    assert count == 2
    # survivors: |w| 4, 3; grown: the 2 lowest indices outside them (2, 3: the just-dropped come back)
    assert new.tolist() == [True, True, True, True, False, False, False, False]
    new, count = redraw_mask(mask, weight, torch.tensor([0.0, 0, 0, 0, 0, 1, 2, 0]), 0.5)
    assert new.tolist() == [True, True, False, False, False, True, True, False]
    assert redraw_mask(mask, weight, scores, 0.2)[1] == 0  # floor(0.8) = 0: nothing moves


def test_set_grows_at_random_reproducibly_with_adam_state_fresh():
    runs = []
    for _ in range(2):
        model = nn.Linear(4, 4, bias=False)
        with torch.no_grad():
            model.weight.copy_(WEIGHT)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        dsd = DSD(model, opt, seed=7)
        (phase,) = Schedule.parse("R6@0.5:0.01/every=2/drop=0.5/grow=random/end=1")
        dsd.enter(phase)
        dsd.plan_steps(6)
        masks = []
        for _ in range(6):
            old = dsd.masks.masks["weight"].clone()
            model.weight.grad = GRADIENT.clone()
            dsd.step()
            new = dsd.masks.masks["weight"]
            grown = new & ~old
            assert int(new.sum()) == 8  # the sparsity does not change
            assert torch.all(model.weight[~new] == 0) and torch.all(model.weight[grown] == 0)
            for key in ("exp_avg", "exp_avg_sq"):
                assert torch.all(opt.state[model.weight][key][grown] == 0)
            masks.append(new.clone())
        runs.append(masks)
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
    # k=2: f = 0.25 * (1 + cos(pi/3)) = 0.375 -> 3 dropped; at least one mask changed
    assert any(not torch.equal(a, b) for a, b in zip(runs[0], runs[0][1:], strict=False))


def test_rigl_exact_counts_per_layer_while_training_a_gru():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, bidirectional=True)
    opt = torch.optim.SGD(gru.parameters(), lr=0.05, momentum=0.9)
    dsd = DSD(gru, opt)
    (phase,) = Schedule.parse("R10@0.6:0.05/every=2/drop=0.4/end=1")
    dsd.enter(phase)
    dsd.plan_steps(10)
    x = torch.randn(5, 2, 3)
    for step in range(1, 11):
        opt.zero_grad()
        gru(x)[0].pow(2).sum().backward()
        dsd.step()
        fraction = 0.2 * (1 + math.cos(math.pi * step / 10))
        for name, p in dsd.params.items():
            kept = p.numel() - round(0.6 * p.numel())
            assert int(dsd.masks.masks[name].sum()) == kept
            assert torch.all(p[~dsd.masks.masks[name]] == 0)
            if step % 2 == 0 and step < 10:
                assert dsd.last_redraw[name] == math.floor(fraction * kept), (step, name)


@pytest.mark.parametrize(
    "text, message",
    [
        ("R4@0.5:0.1/drop=0", "drop=0.0"),
        ("R4@0.5:0.1/grow=magnitude", "grow='magnitude'"),
        ("R4@0.5:0.1/every=-1", "every=-1"),
        ("R4@0.5:0.1/end=0", "end=0.0"),
        ("R4:0.1", "needs @<sparsity>"),
        ("R4@0.5:0.1/from=0.1", "'from' is not a setting"),
    ],
)
def test_bad_redraw_settings_name_the_setting(text, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(text)


def test_yaml_rigl_and_set_match_the_compact_form():
    assert Schedule.from_config(
        [{"kind": "set", "epochs": 4, "lr": 0.1, "sparsity": 0.9, "every": 50}]
    ) == Schedule.parse("R4@0.9:0.1/every=50/grow=random")
    assert Schedule.from_config(
        [{"kind": "rigl", "epochs": 4, "lr": 0.1, "sparsity": 0.9, "drop": 0.5, "end": 0.5}]
    ) == Schedule.parse("R4@0.9:0.1/drop=0.5/end=0.5")
    with pytest.raises(ScheduleError, match="kind set grows at random"):
        Schedule.from_config([{"kind": "set", "epochs": 4, "lr": 0.1, "sparsity": 0.9, "grow": "gradient"}])
    s = Schedule.parse("D1:0.1,R4@0.9:0.1/grow=random")
    assert (s.label(1), s[1].method) == ("SET", "set")


@pytest.mark.parametrize(
    "schedule, message",
    [
        ("D1:0.1,R2@0.5:0.1/drop=2", "drop=2.0"),
        ("D1:0.1,G2@0.5:0.1/shape=steep", "shape='steep'"),
        ("D1:0.1,A4@0.5:0.1/period=0", "period=0"),
        ("[{kind: rigl, epochs: 2, lr: 0.1, sparsity: 0.5, every: ten}]", "every must be an integer"),
    ],
)
def test_method_settings_are_checked_where_the_config_is_read(schedule, message):
    from dsd_seq.training.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=message):
        load_config(None, ["task=tests.toy_task:build_toy_task", f"schedule={schedule}"])


def test_rigl_under_hooks_that_mask_gradients_during_backward_grows_by_the_unmasked_gradient():
    from dsd_seq.core.mask_hooks import MaskHooks

    model, opt, dsd = _redraw_setup()
    MaskHooks(dsd, opt, during_backward=True)  # as the Hugging Face integration registers them
    opt.zero_grad()
    (model.weight * GRADIENT).sum().backward()  # the gradient is GRADIENT, masked as it accumulates
    opt.step()
    grown = torch.zeros(4, 4, dtype=torch.bool)
    grown[0, 0] = grown[0, 3] = grown[1, 2] = True
    assert torch.all(dsd.masks.masks["weight"][grown]) and dsd.last_redraw == {"weight": 3}


@pytest.mark.parametrize("text", ["R8@0.6:0.05/every=2/grow=random/end=1", "R8@0.6:0.05/every=2/end=1"])
def test_a_masked_optimizer_restored_mid_redraw_continues_bit_identical(text):
    from dsd_seq.core.masked_optimizer import dsd_optimizer

    def build():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2))
        return model, dsd_optimizer(model, torch.optim.Adam(model.parameters(), lr=0.05), text, unit="step")

    x, y = torch.randn(8, 5), torch.randint(0, 2, (8,))

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    model, opt = build()
    train(model, opt, 8)
    first, first_opt = build()
    train(first, first_opt, 5)  # stopped after the redraw at step 4, before the one at 6
    saved = {"model": first.state_dict(), "opt": first_opt.state_dict()}
    resumed, resumed_opt = build()
    resumed.load_state_dict(saved["model"])
    resumed_opt.load_state_dict(saved["opt"])
    train(resumed, resumed_opt, 3)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for name, mask in opt.dsd.masks.masks.items():
        assert torch.equal(mask, resumed_opt.dsd.masks.masks[name]), name


def _masked_rigl(text="R8@0.6:0.05/every=2/end=1"):
    from dsd_seq.core.masked_optimizer import dsd_optimizer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2))
    return model, dsd_optimizer(model, torch.optim.SGD(model.parameters(), lr=0.05), text, unit="step")


def test_rigl_with_mask_gradients_before_clipping_redraws_as_a_plain_step():
    # the documented clipping pattern calls mask_gradients() twice in a step (here, then in step()): the
    # second call must not replace the kept dense gradient by the masked one (growth would re-pick the
    # weights just dropped, and RigL would silently keep its masks)
    x, y = torch.randn(8, 5), torch.randint(0, 2, (8,))
    runs = []
    for clip in (False, True):
        model, opt = _masked_rigl()
        start = {n: m.clone() for n, m in opt.dsd.masks.masks.items()} if opt.dsd.masks else None
        for _ in range(2):  # the redraw is after step 2
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            if clip:
                opt.mask_gradients()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1e6)  # changes nothing but is there
            opt.step()
        runs.append(
            (start, {n: m.clone() for n, m in opt.dsd.masks.masks.items()}, dict(opt.dsd.last_redraw))
        )
    (_, plain, plain_counts), (_, clipped, clipped_counts) = runs
    assert sum(plain_counts.values()) > 0 and plain_counts == clipped_counts
    for name, mask in plain.items():
        assert torch.equal(mask, clipped[name]), name


def test_rigl_never_grows_by_the_gradient_of_a_step_that_was_skipped():
    # a GradScaler skips opt.step() after mask_gradients() kept the dense gradient: the next step's
    # redraw grows by its own gradient, whether zero_grad sets the gradients to None or zeroes them
    def step(m, o, gradient):
        o.zero_grad()
        m[0].weight.grad, m[2].weight.grad = gradient[0].clone(), gradient[1].clone()
        o.step()

    torch.manual_seed(1)
    first, second, stale = ([torch.rand(6, 5), torch.rand(2, 6)] for _ in range(3))
    for set_to_none in (True, False):
        model, opt = _masked_rigl("R4@0.5:0.05/every=2/drop=0.5/end=1")
        reference, ref_opt = _masked_rigl("R4@0.5:0.05/every=2/drop=0.5/end=1")
        step(model, opt, first)
        step(reference, ref_opt, first)
        opt.zero_grad(set_to_none=set_to_none)
        model[0].weight.grad, model[2].weight.grad = stale[0].clone(), stale[1].clone()
        opt.mask_gradients()  # kept for the redraw after step 2; then the step is skipped
        opt.zero_grad(set_to_none=set_to_none)
        step(model, opt, second)
        step(reference, ref_opt, second)
        assert sum(ref_opt.dsd.last_redraw.values()) > 0
        for name, mask in ref_opt.dsd.masks.masks.items():
            assert torch.equal(mask, opt.dsd.masks.masks[name]), (set_to_none, name)


def test_the_trainer_logs_each_redraw_with_the_weights_each_layer_dropped(tmp_path):
    import json

    from tests.toy_task import toy_trainer

    trainer = toy_trainer(tmp_path / "run", Schedule.parse("D1:0.01,R2@0.5:0.01/every=4/end=1"))
    trainer.run()
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    redraws = [e for e in events if e["event"] == "mask_update"]
    assert [e["phase_step"] for e in redraws] == [4, 8, 12]  # 16 steps: redraws while t < 16
    for e in redraws:
        assert e["method"] == "rigl" and e["phase"] == 1 and e["dropped"] == sum(e["layers"].values())
    assert redraws[0]["dropped"] > 0
