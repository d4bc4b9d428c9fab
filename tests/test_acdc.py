"""AC/DC (``A`` elements): the alternation it expands into, by hand, its defaults, and the masks it
recomputes by magnitude at every compression."""

import pytest
import torch
from torch import nn

from dsd_seq.core.acdc import AcDc
from dsd_seq.core.masked_optimizer import dsd_optimizer
from dsd_seq.core.masks import kept_count
from dsd_seq.core.schedule import DENSE, SPARSE, Schedule, ScheduleError


def _parts(text):
    return [(p.kind, p.epochs) for p in Schedule.parse(text)]


def test_defaults_follow_the_paper_scaled_to_the_element():
    # 100 epochs: 10 dense warm-up, 5-epoch compressed/decompressed blocks, the last 10 compressed
    parts = AcDc(100, 0.9, 0.1).parts()
    assert parts[0] == (DENSE, 10) and parts[-1] == (SPARSE, 10)
    assert parts[1:-1] == [(SPARSE, 5), (DENSE, 5)] * 8
    assert sum(e for _, e in parts) == 100


def test_expansion_by_hand():
    assert _parts("A8@0.9:0.05") == [
        (DENSE, 2), (SPARSE, 1), (DENSE, 1), (SPARSE, 1), (DENSE, 1), (SPARSE, 2)
    ]  # fmt: skip
    # warmup 1, blocks of 2 over 10 - 1 - 3 = 6 middle epochs: C2 D2 C2, which runs on into the final 3
    assert _parts("A10@0.5:0.1/warmup=1/period=2/finetune=3") == [
        (DENSE, 1), (SPARSE, 2), (DENSE, 2), (SPARSE, 5)
    ]  # fmt: skip
    assert _parts("A5@0.5:0.1/warmup=0/period=2/finetune=1") == [(SPARSE, 2), (DENSE, 2), (SPARSE, 1)]


def test_learning_rate_decays_across_the_element_and_the_compact_form_round_trips():
    s = Schedule.parse("D2:0.1,A6@0.5:0.1~0.5/warmup=0/period=2/finetune=2")
    assert [p.lr for p in s] == [0.1, 0.1, 0.025, 0.00625]  # 0.1 * 0.5**offset at each part's start
    assert s.compact() == "D2:0.1,A6@0.5:0.1~0.5/warmup=0/period=2/finetune=2"
    assert Schedule.parse(s.compact()) == s
    assert s.to_list()[1]["acdc"]["element"]["epochs"] == 6
    yaml = Schedule.from_config(
        [{"kind": "dense", "epochs": 2, "lr": 0.1},
         {"kind": "acdc", "epochs": 6, "lr": 0.1, "lr_decay": 0.5, "sparsity": 0.5, "warmup": 0, "period": 2,
          "finetune": 2}]
    )  # fmt: skip
    assert yaml == s
    assert s.llr().compact() == "D2:0.1,D2:0.1~0.5,D2:0.025~0.5,D2:0.00625~0.5"
    alone = Schedule.parse("A8@0.9:0.05")  # the controls of a schedule that starts with the element
    assert alone.final_lr_control().compact() == "D2:0.05,D1:0.05,D1:0.05,D1:0.05,D1:0.05,D2:0.05"
    assert Schedule.parse(alone.llr().compact()) == alone.llr()
    from dsd_seq.core.comparators import arm_schedule

    assert (
        arm_schedule("gmp", alone).compact()
        == "D2:0.05,G1@0.9:0.05,S1@0.9:0.05,S1@0.9:0.05,S1@0.9:0.05,S2@0.9:0.05"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("A4@0.5:0.1/warmup=3", "exceed the element's 4 epochs"),
        ("A4@0.5:0.1/period=0", "period=0"),
        ("A4@0.5:0.1/finetune=0", "finetune=0"),
        ("A4@0.5:0.1/warmup=-1", "warmup=-1"),
        ("A4@0.5:0.1/every=1", "'every' is not a setting"),
        ("A4:0.1", "needs @<sparsity>"),
        ("A..4@0.5:0.1", "fixed length"),
    ],
)
def test_bad_acdc_settings_name_the_setting(text, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(text)


def test_each_compression_recomputes_the_masks_by_magnitude_and_decompression_lifts_them():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = dsd_optimizer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), "A7@0.75:0.1/warmup=1/period=2/finetune=2",
        unit="step",
    )  # fmt: skip
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    masks_seen = []
    for step in range(7):
        phase = opt.phases.locate(step)[0]
        before = {n: p.detach().clone() for n, p in opt.dsd.params.items()}
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        entering = opt.phases.phase_index != phase
        opt.step()
        kind = opt.phases.phase.kind
        if kind == DENSE:
            assert opt.dsd.masks is None
            if masks_seen:  # decompressed: the pruned weights train again, from zero
                for p in opt.dsd.params.values():
                    assert int(torch.count_nonzero(p)) > kept_count(p.numel(), 0.75)
            continue
        for name, p in opt.dsd.params.items():
            mask = opt.dsd.masks.masks[name]
            assert int(mask.sum()) == kept_count(p.numel(), 0.75)
            assert torch.all(p[~mask] == 0)
            if entering:  # the new masks keep the largest |w| of the weights the phase started from
                k = kept_count(p.numel(), 0.75)
                threshold = before[name].abs().flatten().kthvalue(p.numel() - k + 1).values
                assert torch.equal(mask, before[name].abs() >= threshold), name
        if entering:
            masks_seen.append({n: m.clone() for n, m in opt.dsd.masks.masks.items()})
    assert len(masks_seen) == 2  # parts: D1, S2, D2, S2
