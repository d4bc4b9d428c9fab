"""DSD on models people train: torchaudio's DeepSpeech, Conformer and Emformer RNN-T, hand-written
LSTMCell/GRUCell loops, tied weights, weight_norm, torch.compile. For each: what the selection rule
prunes, and that a few dense, sparse and re-dense steps keep pruned weights at exactly 0.

The selection rule (the paper prunes FC and recurrent matrices only, Sec. 2): every ``nn.Linear`` weight
(also attention's ``out_proj`` and torchaudio's Linear-based attention and LSTM), ``nn.RNN/GRU/LSTM``
matrices and RNN/GRU/LSTM cells. Not pruned: ``nn.MultiheadAttention.in_proj_weight`` (a bare parameter,
add it with ``include``), convolutions (add them with ``types``; the first is never pruned), embeddings,
biases and norms."""

import warnings

import pytest
import torch
import torchaudio
from torch import nn

from dsd_seq.core.masked_optimizer import dsd_optimizer
from dsd_seq.core.selection import SelectionConfig, select_prunable


def _dsd_steps(model, loss_fn, selection=None, steps=2):
    """``steps`` optimizer steps per phase of D-S-D at 50%; checks the zeros after every sparse step."""
    schedule = f"D{steps}:1e-2,S{steps}@0.5:1e-2,D{steps}:1e-3"
    opt = dsd_optimizer(
        model, torch.optim.Adam(model.parameters()), schedule, unit="step", selection=selection
    )
    sparsity = []
    for _ in range(3 * steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
        if opt.dsd.is_sparse:
            for name, p in opt.dsd.params.items():
                assert torch.all(p.detach()[~opt.dsd.masks.masks[name]] == 0), name
        sparsity.append(opt.dsd.sparsity()[1])
    assert sparsity[steps] == pytest.approx(0.5, abs=0.01) and sparsity[-1] < sparsity[steps]
    return opt


def test_torchaudio_deepspeech():
    torch.manual_seed(0)
    model = torchaudio.models.DeepSpeech(n_feature=8, n_hidden=16, n_class=5)
    x = torch.randn(2, 1, 10, 8)
    opt = _dsd_steps(model, lambda: model(x).logsumexp(-1).mean())
    assert set(opt.dsd.params) == {
        "fc1.fc.weight",
        "fc2.fc.weight",
        "fc3.fc.weight",
        "bi_rnn.weight_ih_l0",
        "bi_rnn.weight_hh_l0",
        "bi_rnn.weight_ih_l0_reverse",
        "bi_rnn.weight_hh_l0_reverse",
        "fc4.fc.weight",
        "out.weight",
    }


def test_conformer_attention_and_convolution():
    torch.manual_seed(0)
    model = torchaudio.models.Conformer(
        input_dim=8, num_heads=2, ffn_dim=16, num_layers=1, depthwise_conv_kernel_size=3
    )
    x, lengths = torch.randn(2, 6, 8), torch.tensor([6, 5])
    names = list(select_prunable(model))
    assert "conformer_layers.0.self_attn.out_proj.weight" in names  # a Linear subclass
    assert not any("in_proj_weight" in n or "conv_module" in n for n in names)
    assert all(n.endswith(".weight") and "norm" not in n for n in names)
    with_attention = SelectionConfig(types=("Linear", "Conv1d"), include=["*.in_proj_weight"])
    chosen = select_prunable(model, with_attention)
    assert "conformer_layers.0.self_attn.in_proj_weight" in chosen
    conv = "conformer_layers.0.conv_module.sequential"  # 0: pointwise, 2: depthwise, 5: pointwise Conv1d
    assert f"{conv}.2.weight" in chosen and f"{conv}.5.weight" in chosen
    assert f"{conv}.0.weight" not in chosen, "the model's first convolution is never pruned"
    _dsd_steps(model, lambda: model(x, lengths)[0].square().mean(), selection=with_attention)


def test_emformer_rnnt():
    torch.manual_seed(0)
    model = torchaudio.models.emformer_rnnt_model(
        input_dim=8,
        encoding_dim=8,
        num_symbols=5,
        segment_length=4,
        right_context_length=0,
        time_reduction_input_dim=8,
        time_reduction_stride=2,
        transformer_num_heads=2,
        transformer_ffn_dim=8,
        transformer_num_layers=1,
        transformer_dropout=0.0,
        transformer_activation="relu",
        transformer_left_context_length=0,
        transformer_max_memory_size=0,
        transformer_weight_init_scale_strategy="depthwise",
        transformer_tanh_on_mem=True,
        symbol_embedding_dim=8,
        num_lstm_layers=1,
        lstm_layer_norm=True,
        lstm_layer_norm_epsilon=1e-5,
        lstm_dropout=0.0,
    )
    x, lengths = torch.randn(2, 8, 8), torch.tensor([8, 8])
    targets, target_lengths = torch.tensor([[1, 2], [3, 4]]), torch.tensor([2, 2])

    def loss():
        logits, out_lengths, _, _ = model(x, lengths, nn.functional.pad(targets, (1, 0)), target_lengths + 1)
        return torchaudio.functional.rnnt_loss(
            logits, targets.int(), out_lengths.int(), target_lengths.int(), blank=0
        )

    opt = _dsd_steps(model, loss)
    names = list(opt.dsd.params)
    assert any("lstm_layers.0.x2g" in n for n in names) and any(
        "p2g" in n for n in names
    )  # the LSTM's Linears
    assert not any("embedding" in n for n in names)


class CellLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.gru, self.out = nn.LSTMCell(4, 6), nn.GRUCell(6, 6), nn.Linear(6, 3)

    def forward(self, x):
        h = c = g = x.new_zeros(x.shape[0], 6)
        for t in range(x.shape[1]):
            h, c = self.lstm(x[:, t], (h, c))
            g = self.gru(h, g)
        return self.out(g)


def test_lstm_and_gru_cells_in_a_hand_written_loop():
    torch.manual_seed(0)
    model, x = CellLoop(), torch.randn(3, 5, 4)
    opt = _dsd_steps(model, lambda: model(x).square().mean())
    assert list(opt.dsd.params) == [
        "lstm.weight_ih",
        "lstm.weight_hh",
        "gru.weight_ih",
        "gru.weight_hh",
        "out.weight",
    ]


class TiedLM(nn.Module):
    def __init__(self, output_first):
        super().__init__()
        if output_first:
            self.out = nn.Linear(8, 10, bias=False)
            self.embed = nn.Embedding(10, 8)
            self.embed.weight = self.out.weight
        else:
            self.embed = nn.Embedding(10, 8)
            self.out = nn.Linear(8, 10, bias=False)
            self.out.weight = self.embed.weight
        self.rnn = nn.GRU(8, 8, batch_first=True)

    def forward(self, tokens):
        return self.out(self.rnn(self.embed(tokens))[0])


@pytest.mark.parametrize("output_first", [False, True])
def test_an_output_layer_tied_to_the_embedding_is_never_pruned(output_first):
    torch.manual_seed(0)
    model, tokens = TiedLM(output_first), torch.randint(0, 10, (2, 5))
    with pytest.warns(UserWarning, match="'out.weight' shares its tensor with an embedding"):
        names = list(select_prunable(model))
    assert names == ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _dsd_steps(model, lambda: nn.functional.cross_entropy(model(tokens).flatten(0, 1), tokens.flatten()))
    assert torch.count_nonzero(model.embed.weight) == model.embed.weight.numel()


def test_weight_norm_is_reported_and_its_direction_can_be_pruned():
    torch.manual_seed(0)
    model = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Linear(6, 6)), nn.Tanh(), nn.Linear(6, 2))
    with pytest.warns(UserWarning, match="0.weight is parametrized"):
        assert list(select_prunable(model)) == ["2.weight"]
    x = torch.randn(4, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = _dsd_steps(
            model,
            lambda: model(x).square().mean(),
            selection=SelectionConfig(include=["0.parametrizations.weight.original1"]),
        )
    assert "0.parametrizations.weight.original1" in opt.dsd.params
    # zeros in weight_norm's direction v are zeros of the weight the layer uses (w = g v / |v|)
    assert torch.count_nonzero(model[0].weight) == torch.count_nonzero(
        model[0].parametrizations.weight.original1
    )


def test_a_torch_compiled_model():
    """``aot_eager`` traces forward and backward like inductor but skips code generation, which takes
    minutes on a small CPU; the in-place mask updates must reach the compiled graph's inputs."""
    torch.manual_seed(0)
    eager = CellLoop()
    model, x = torch.compile(eager, backend="aot_eager"), torch.randn(3, 5, 4)
    opt = _dsd_steps(model, lambda: model(x).square().mean())
    assert list(opt.dsd.params)[0] == "_orig_mod.lstm.weight_ih"
    assert torch.equal(model(x), eager(x))
