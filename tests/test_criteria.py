"""Pruning criteria chosen by name (masking.criterion): a new one is a function and a registry line."""

import pytest
import torch

from dsd_seq.core.criteria import CRITERIA, Criterion, magnitude
from dsd_seq.core.dsd import DSD
from dsd_seq.core.masking_config import MaskingConfig, MaskingError
from dsd_seq.core.masks import MaskSet, kept_count
from dsd_seq.core.schedule import Schedule
from dsd_seq.core.selection import select_prunable
from dsd_seq.training.config import ConfigError, load_config
from tests.toy_task import ToyRecurrentNet, toy_trainer


def _top_k_by_stable_sort(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: the first k entries of a stable descending sort (ties: lower index first)."""
    order = torch.sort(-scores.reshape(-1).double(), stable=True).indices
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[order[:k]] = True
    return keep.view_as(scores)


def test_magnitude_is_the_default_criterion_and_keeps_the_largest_absolute_values():
    assert MaskingConfig().criterion == "magnitude" and CRITERIA["magnitude"].score is magnitude
    torch.manual_seed(0)
    params = select_prunable(ToyRecurrentNet())
    masks = MaskSet.from_criterion(params, 0.6)
    for name, p in params.items():
        expected = _top_k_by_stable_sort(p.detach().abs(), kept_count(p.numel(), 0.6))
        assert torch.equal(masks.masks[name], expected), name


def test_a_registered_random_criterion_runs_a_dsd_schedule_through_the_trainer(tmp_path, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    scored: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def random_scores(name: str, weight: torch.Tensor) -> torch.Tensor:
        scores = torch.rand(weight.shape, generator=generator)
        scored[name] = (scores, weight.detach().clone())
        return scores

    monkeypatch.setitem(CRITERIA, "random", Criterion(random_scores, nonnegative=True))
    trainer = toy_trainer(
        tmp_path / "exp", Schedule.parse("D1:0.01,S1@0.5:0.01"), ["masking.criterion=random"]
    )
    rows = trainer.run()  # 8 dense steps, then pruning and 8 sparse steps
    assert rows[1]["measured_sparsity"] == pytest.approx(0.5, abs=1e-3)
    masks = trainer.dsd.masks.masks
    trained = set()
    assert set(scored) == set(masks) == set(trainer.dsd.params)
    for name, p in trainer.dsd.params.items():
        scores, weight_when_pruned = scored[name]
        k = p.numel() - round(0.5 * p.numel())
        assert int(masks[name].sum()) == k, name
        assert torch.equal(masks[name], _top_k_by_stable_sort(scores, k)), name
        assert not torch.equal(masks[name], _top_k_by_stable_sort(weight_when_pruned.abs(), k)), name
        assert bool((p.detach()[~masks[name]] == 0).all()), f"{name}: a pruned weight moved"
        if not torch.equal(p.detach()[masks[name]], weight_when_pruned[masks[name]]):
            trained.add(name)
    assert {"fc.weight", "out.weight", "gru.weight_ih_l0"} <= trained  # the sparse steps did train


def test_a_criterion_with_negative_scores_keeps_its_highest_scores_per_layer_and_globally(monkeypatch):
    monkeypatch.setitem(CRITERIA, "smallest", Criterion(lambda name, weight: -weight.detach().abs()))
    torch.manual_seed(0)
    params = select_prunable(ToyRecurrentNet())
    for scope in ("layer", "global"):
        masks = MaskSet.from_criterion(params, 0.7, MaskingConfig(criterion="smallest", scope=scope)).masks
        assert sum(int(m.sum()) for m in masks.values()) == (
            sum(kept_count(p.numel(), 0.7) for p in params.values())
            if scope == "layer"
            else kept_count(sum(p.numel() for p in params.values()), 0.7)
        )
        magnitudes = {n: params[n].detach().abs() for n in params}
        if scope == "global":  # one threshold: no kept weight is larger than a pruned one, in any layer
            largest_kept = max(float(magnitudes[n][m].max()) for n, m in masks.items() if m.any())
            assert largest_kept <= min(float(magnitudes[n][~m].min()) for n, m in masks.items() if (~m).any())
        else:
            for name, m in masks.items():
                assert float(magnitudes[name][m].max()) <= float(magnitudes[name][~m].min()), name


def test_an_unknown_criterion_is_a_config_error_naming_the_key_and_the_registered_names(monkeypatch):
    monkeypatch.setitem(CRITERIA, "random", Criterion(lambda name, weight: torch.rand(weight.shape)))
    with pytest.raises(ConfigError, match=r"masking.criterion='taylor'.*registered: magnitude, random"):
        load_config(None, ["task=m:f", "schedule=D1:1e-3", "masking.criterion=taylor"])
    model = ToyRecurrentNet()
    with pytest.raises(MaskingError, match=r"masking.criterion='taylor'.*registered: magnitude, random"):
        DSD(model, torch.optim.SGD(model.parameters()), criterion="taylor")


def test_a_criterion_must_score_every_weight(monkeypatch):
    monkeypatch.setitem(CRITERIA, "per_row", Criterion(lambda name, weight: weight.detach().abs().sum(1)))
    params = select_prunable(ToyRecurrentNet())
    with pytest.raises(MaskingError, match=r"masking.criterion='per_row' scored 'gru.weight_ih_l0'.*shape"):
        MaskSet.from_criterion(params, 0.5, MaskingConfig(criterion="per_row"))
