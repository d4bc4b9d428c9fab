import pytest
import torch
from torch import nn

from dsd_seq.core.selection import SelectionConfig, SelectionError, select_prunable
from tests.toy_task import ToyRecurrentNet


def test_default_selects_fc_and_all_recurrent_matrices_both_directions():
    names = set(select_prunable(ToyRecurrentNet()))
    expected = {"fc.weight", "out.weight"}
    for layer in (0, 1):
        for kind in ("ih", "hh"):
            expected |= {f"gru.weight_{kind}_l{layer}", f"gru.weight_{kind}_l{layer}_reverse"}
    assert names == expected


def test_embeddings_first_conv_biases_and_norms_are_never_selected():
    names = set(select_prunable(ToyRecurrentNet(), SelectionConfig(types=("Linear", "GRU", "Conv1d"))))
    assert not any(
        n.startswith(("embed", "norm", "conv")) or n.endswith("bias") or "bias" in n for n in names
    )


def test_later_convolutions_are_selectable_but_not_the_first():
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.Flatten(), nn.Linear(8, 2))
    names = set(select_prunable(model, SelectionConfig(types=("Linear", "Conv1d"))))
    assert names == {"2.weight", "4.weight"}


def test_include_pattern_matching_nothing_lists_the_candidates():
    with pytest.raises(SelectionError) as err:
        select_prunable(ToyRecurrentNet(), SelectionConfig(include=["decoder.*"]))
    assert "decoder.*" in str(err.value) and "gru.weight_hh_l0" in str(err.value)


def test_exclude_pattern_removes_and_must_match():
    names = set(select_prunable(ToyRecurrentNet(), SelectionConfig(exclude=["gru.*_reverse"])))
    assert "gru.weight_ih_l0_reverse" not in names and "gru.weight_ih_l0" in names
    with pytest.raises(SelectionError, match="matches no parameter"):
        select_prunable(ToyRecurrentNet(), SelectionConfig(exclude=["lstm.*"]))


def test_including_an_embedding_is_refused():
    with pytest.raises(SelectionError, match="never prunes"):
        select_prunable(ToyRecurrentNet(), SelectionConfig(include=["embed.weight"]))


def test_unknown_module_type_is_refused():
    with pytest.raises(SelectionError, match="unknown module type"):
        select_prunable(ToyRecurrentNet(), SelectionConfig(types=("Linear", "Transformer")))


class _OwnRecurrence(nn.Module):
    dsd_prunable = ("weight_hh",)

    def __init__(self):
        super().__init__()
        self.weight_hh = nn.Parameter(torch.randn(4, 4))
        self.bias = nn.Parameter(torch.zeros(4))


def test_custom_recurrent_modules_declare_their_prunable_matrices():
    model = nn.ModuleDict({"rec": _OwnRecurrence(), "fc": nn.Linear(4, 2)})
    assert set(select_prunable(model)) == {"rec.weight_hh", "fc.weight"}


class _MyLinear(nn.Linear):
    pass


def test_subclasses_count_as_their_base_type():
    model = nn.ModuleDict({"mine": _MyLinear(4, 4), "attn": nn.MultiheadAttention(8, 2)})
    names = set(select_prunable(model))
    assert {"mine.weight", "attn.out_proj.weight"} <= names


class _Broken(nn.Module):
    dsd_prunable = ("weight_hh",)

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 2))


def test_dsd_prunable_naming_a_missing_parameter_is_a_clear_error():
    with pytest.raises(SelectionError, match="'weight_hh', which is not a parameter"):
        select_prunable(nn.Sequential(_Broken()))
