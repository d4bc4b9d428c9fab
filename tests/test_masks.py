import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from dsd_seq.core.masking_config import MaskingConfig
from dsd_seq.core.masks import MaskSet, kept_count, top_k_mask
from dsd_seq.core.selection import select_prunable
from tests.toy_task import ToyRecurrentNet


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.25, 0.5, 0.8, 0.93])
def test_each_layer_keeps_exactly_k_weights(sparsity):
    torch.manual_seed(0)
    params = select_prunable(ToyRecurrentNet())
    masks = MaskSet.from_criterion(params, sparsity)
    for name, p in params.items():
        assert int(masks.masks[name].sum()) == p.numel() - round(sparsity * p.numel()), name


def test_ties_are_broken_deterministically_by_lowest_index():
    scores = torch.tensor([1.0, 3.0, 2.0, 2.0, 2.0, 0.5])
    keep = top_k_mask(scores, 3)
    assert keep.tolist() == [False, True, True, True, False, False]
    all_equal = torch.ones(10)
    assert top_k_mask(all_equal, 4).tolist() == [True] * 4 + [False] * 6


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.75])
def test_masks_agree_with_torch_prune_l1_unstructured(sparsity):
    torch.manual_seed(1)
    for shape in [(37, 11), (64, 48), (5, 3, 7)]:
        weight = torch.randn(shape)
        reference = nn.Linear(1, 1)
        reference.weight = nn.Parameter(weight.clone())
        prune.l1_unstructured(reference, "weight", amount=sparsity)
        ours = MaskSet.from_criterion({"w": nn.Parameter(weight.clone())}, sparsity).masks["w"]
        assert torch.equal(ours, reference.weight_mask.bool())


def test_global_scope_keeps_k_in_total_with_one_threshold():
    torch.manual_seed(0)
    params = {"a": nn.Parameter(torch.randn(50, 20)), "b": nn.Parameter(3 * torch.randn(30, 10))}
    masks = MaskSet.from_criterion(params, 0.6, MaskingConfig(scope="global"))
    kept = sum(int(m.sum()) for m in masks.masks.values())
    assert kept == kept_count(1300, 0.6)
    smallest_kept = min(params[n].detach().abs()[m].min() for n, m in masks.masks.items())
    largest_pruned = max(params[n].detach().abs()[~m].max() for n, m in masks.masks.items())
    assert smallest_kept >= largest_pruned
    assert int(masks.masks["b"].sum()) / 300 > int(masks.masks["a"].sum()) / 1000


def test_per_layer_overrides():
    torch.manual_seed(0)
    params = select_prunable(ToyRecurrentNet())
    masks = MaskSet.from_criterion(params, 0.5, MaskingConfig(overrides={"out.weight": 0.25}))
    assert int(masks.masks["out.weight"].sum()) == kept_count(params["out.weight"].numel(), 0.25)
    assert int(masks.masks["fc.weight"].sum()) == kept_count(params["fc.weight"].numel(), 0.5)
    with pytest.raises(ValueError, match="matches no prunable"):
        MaskSet.from_criterion(params, 0.5, MaskingConfig(overrides={"lstm.*": 0.1}))


def test_sparsity_outside_range_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        kept_count(10, 1.0)


def test_masking_leaves_excluded_tensors_untouched():
    torch.manual_seed(0)
    model = ToyRecurrentNet()
    params = select_prunable(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n not in params}
    MaskSet.from_criterion(params, 0.9).apply_()
    for name, value in before.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name


def test_rnn_flat_weights_keep_their_storage_across_pruning_and_enforcement():
    torch.manual_seed(0)
    model = ToyRecurrentNet()
    ptrs = [w.data_ptr() for w in model.gru._flat_weights]
    masks = MaskSet.from_criterion(select_prunable(model), 0.5)
    masks.apply_()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    masks.mask_grads_()
    masks.apply_()
    assert [w.data_ptr() for w in model.gru._flat_weights] == ptrs
    assert all(isinstance(p, nn.Parameter) for p in model.gru._flat_weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.randn(2, 5, 6), torch.zeros(2, 5, dtype=torch.long))
    assert float(model.gru.weight_hh_l1_reverse.detach().eq(0).float().mean()) == pytest.approx(0.5, abs=0.01)


def test_mask_state_round_trip_is_boolean():
    params = select_prunable(ToyRecurrentNet())
    masks = MaskSet.from_criterion(params, 0.5)
    state = masks.state_dict()
    assert all(v.dtype == torch.bool for v in state.values())
    again = MaskSet(params, state)
    assert all(torch.equal(again.masks[n], masks.masks[n]) for n in params)


def test_top_k_mask_matches_a_stable_sort_with_ties_negatives_and_zeros():
    """The radix select keeps exactly the entries a stable descending sort puts first (ties: lower index)."""
    g = torch.Generator().manual_seed(0)
    cases = [
        torch.randn(1000, generator=g),
        torch.randn(999, generator=g).abs(),
        torch.randint(-3, 4, (777,), generator=g).float(),  # many ties, negatives, +0.0 and -0.0
        torch.tensor([0.0, -0.0, 0.0, -0.0, 1e-40, -1e-40, float("inf"), 3.0]),  # denormals, inf
        torch.tensor([-0.0, 1.0, 0.0, 2.0, -0.0]),  # -0.0 without any negative value (a masked weight)
        torch.tensor([-0.0, 1.0, 0.0, 2.0]).half(),
        torch.randn(300, generator=g, dtype=torch.float64),
        torch.randn(64, 48, generator=g).to(torch.bfloat16),
    ]
    for scores in cases:
        flat = scores.reshape(-1).double()
        order = torch.sort(-flat, stable=True).indices
        for k in (0, 1, 2, flat.numel() // 3, flat.numel() // 2, flat.numel() - 1, flat.numel()):
            expected = torch.zeros(flat.numel(), dtype=torch.bool)
            expected[order[:k]] = True
            assert torch.equal(top_k_mask(scores, k).reshape(-1), expected), (scores.dtype, k)
            if bool((scores.float().view(torch.int32) >= 0).all()):  # no sign bit set (-0.0 has one)
                assert torch.equal(top_k_mask(scores, k, nonnegative=True).reshape(-1), expected)
