"""DeepSpeech 2: config validation, strides, padding invariance, gradients, in-place masking, overfitting."""

import math
import warnings

import pytest
import torch
from torch.nn.utils import prune

from models.speech.ctc import ctc_loss, greedy_decode
from models.speech.deepspeech2 import DeepSpeech2, DeepSpeech2Config

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def tiny_config(**overrides):
    fields = {
        "num_features": 8,
        "conv_channels": (3, 4),
        "conv_kernels": ((5, 5), (3, 3)),
        "conv_strides": ((2, 2), (1, 2)),
        "rnn_layers": 2,
        "rnn_hidden": 12,
        "num_classes": 6,
    }
    return DeepSpeech2Config(**{**fields, **overrides})


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rnn_type": "transformer"}, "rnn_type"),
        ({"bidirectional_merge": "mean"}, "bidirectional_merge"),
        ({"conv_strides": ((2, 2),)}, "conv_strides"),
        ({"conv_kernels": ((4, 5), (3, 3))}, "conv_kernels"),
        ({"rnn_layers": 0}, "rnn_layers"),
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_invalid_config_raises_value_error_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"DeepSpeech2Config.{field}"):
        tiny_config(**overrides)


@pytest.mark.parametrize("frames", [1, 2, 7, 10, 13])
@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("merge", ["sum", "concat"])
def test_shapes_and_output_lengths_are_ceil_of_frames_over_time_stride(frames, rnn_type, merge):
    model = DeepSpeech2(tiny_config(rnn_type=rnn_type, bidirectional_merge=merge))
    lengths = torch.tensor([frames, max(1, frames - 4)])
    log_probs, out_lengths = model(torch.randn(2, frames, 8), lengths)
    expected = [math.ceil(n / 2) for n in lengths.tolist()]
    assert out_lengths.tolist() == model.output_lengths(lengths).tolist() == expected
    assert log_probs.shape == (2, math.ceil(frames / 2), 6)
    assert torch.allclose(log_probs[0].exp().sum(-1), torch.ones(expected[0]))


def test_default_config_builds_and_runs():
    model = DeepSpeech2()
    log_probs, lengths = model(torch.randn(2, 9, 40), torch.tensor([9, 4]))
    assert log_probs.shape == (2, 5, 29) and lengths.tolist() == [5, 2]


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_utterance_gives_same_log_probs_alone_and_batched_with_longer_one(rnn_type):
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config(rnn_type=rnn_type, dropout=0.2))
    model(torch.randn(4, 20, 8), torch.tensor([20, 15, 9, 4]))  # one training step's worth of BN statistics
    model.eval()
    short, long = torch.randn(1, 7, 8), torch.randn(1, 19, 8)
    batch = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 12), value=3.0), long])  # non-zero padding
    alone, alone_lengths = model(short, torch.tensor([7]))
    batched, lengths = model(batch, torch.tensor([7, 19]))
    assert lengths.tolist() == [4, 10] and alone_lengths.tolist() == [4]
    torch.testing.assert_close(batched[0, :4], alone[0])


def test_padding_is_excluded_from_batch_norm_statistics_in_training():
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config())
    features = torch.randn(2, 10, 8)
    a, _ = model(features, torch.tensor([10, 6]))
    padded = torch.cat([features, torch.full((2, 6, 8), 7.0)], dim=1)
    b, _ = model(padded, torch.tensor([10, 6]))
    torch.testing.assert_close(a[0], b[0, :5])
    torch.testing.assert_close(a[1, :3], b[1, :3])


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config(rnn_layers=3, rnn_type="lstm", bidirectional_merge="concat"))
    log_probs, lengths = model(torch.randn(3, 16, 8), torch.tensor([16, 11, 6]))
    labels = torch.tensor([[1, 2, 3], [4, 5, 0], [2, 0, 0]])
    ctc_loss(log_probs, lengths, labels, torch.tensor([3, 2, 1])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("device", DEVICES)
def test_masking_gru_weights_in_place_keeps_storage_and_flat_weights(device):
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config()).to(device)
    features, lengths = torch.randn(2, 10, 8, device=device), torch.tensor([10, 7], device=device)
    model(features, lengths)
    gru_weights = {n: p for n, p in model.named_parameters() if ".rnn.weight_" in n}
    assert len(gru_weights) == 2 * 2 * 2  # 2 layers x (ih, hh) x 2 directions
    pointers = {n: p.data_ptr() for n, p in gru_weights.items()}
    for p in gru_weights.values():
        p.data.mul_(torch.rand_like(p) > 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "RNN module weights are not part of single contiguous chunk"
        model(features, lengths)[0].sum().backward()
    assert {n: p.data_ptr() for n, p in gru_weights.items()} == pointers


def test_tiny_model_overfits_two_utterances_and_greedy_decoding_recovers_them():
    torch.manual_seed(0)
    model = DeepSpeech2(
        tiny_config(conv_channels=(4,), conv_kernels=((3, 3),), conv_strides=((2, 2),), rnn_hidden=32)
    )
    features, lengths = torch.randn(2, 24, 8), torch.tensor([24, 18])
    labels = torch.tensor([[1, 3, 3, 5], [4, 2, 1, 0]])
    label_lengths = torch.tensor([4, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        log_probs, out_lengths = model(features, lengths)
        ctc_loss(log_probs, out_lengths, labels, label_lengths).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        log_probs, out_lengths = model(features, lengths)
    assert greedy_decode(log_probs, out_lengths) == [[1, 3, 3, 5], [4, 2, 1]]


def reference_time_freq_front_end(model: DeepSpeech2, features: torch.Tensor, lengths: torch.Tensor):
    """The conv front end as first written (before orientations): ``[B, C, T, F]``, ``nn.Conv2d`` as
    stored, batch norm over ``x[valid]`` by a boolean mask; ``[B, T', C * F']`` out."""
    valid = torch.arange(features.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    x = (features * valid.unsqueeze(-1).to(features.dtype)).unsqueeze(1)
    for block in model.convs:
        y = block.conv(x)
        lengths = (lengths + block.time_stride - 1) // block.time_stride
        valid = torch.arange(y.shape[2]).unsqueeze(0) < lengths.unsqueeze(1)
        y = y.transpose(1, 2)
        normed = y.new_zeros(y.shape)
        normed[valid] = block.norm(y[valid].unsqueeze(-1)).squeeze(-1)
        x = torch.nn.functional.hardtanh(normed.transpose(1, 2), 0.0, 20.0)
    return x.transpose(1, 2).flatten(2), lengths


def front_end(model: DeepSpeech2, features: torch.Tensor, lengths: torch.Tensor, orientation: str):
    """The model's own front end in ``orientation``, flattened to ``[B, T', C * F']`` like the RNNs read it."""
    x = features.unsqueeze(1) if orientation == "time_freq" else features.transpose(1, 2).unsqueeze(1)
    for block in model.convs:
        x, lengths = block(x, lengths, orientation)
    return (x.transpose(1, 2) if orientation == "time_freq" else x.permute(0, 3, 1, 2)).flatten(2), lengths


@pytest.mark.parametrize(
    ("frames", "out_frames"),
    [((17, 12, 5), [9, 6, 3]), ((17, 17, 17), [9, 9, 9])],
    ids=["padded", "no-padding"],
)
def test_conv_orientations_match_the_original_layout_in_outputs_gradients_and_statistics(frames, out_frames):
    """Both orientations compute the front end as first written: outputs, input and weight gradients and
    batch-norm running statistics agree within 1e-5 relative (only summation orders differ), with and
    without padded frames, and the parameters and state_dict are the same tensors in both."""
    config = tiny_config(num_features=21, conv_kernels=((5, 9), (3, 5)))
    torch.manual_seed(0)
    features = torch.randn(3, 17, 21)
    lengths = torch.tensor(frames)
    results = {}
    for name in ("reference", "time_freq", "freq_time"):
        torch.manual_seed(1)
        model = DeepSpeech2(config)
        x = features.clone().requires_grad_(True)
        if name == "reference":
            out, out_lengths = reference_time_freq_front_end(model, x, lengths)
        else:
            out, out_lengths = front_end(
                model, x * (torch.arange(17) < lengths[:, None])[..., None], lengths, name
            )
        assert out_lengths.tolist() == out_frames
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        state = {k: v.clone() for k, v in model.state_dict().items()}
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[name] = (out.detach(), x.grad, grads, state)
    reference = results.pop("reference")
    for name, (out, x_grad, grads, state) in results.items():
        torch.testing.assert_close(out, reference[0], rtol=1e-5, atol=1e-5, msg=f"{name}: output")
        torch.testing.assert_close(x_grad, reference[1], rtol=1e-5, atol=1e-5, msg=f"{name}: input grad")
        assert (
            grads.keys() == reference[2].keys() and len(grads) == 6
        )  # 2 conv weights, 2 BN weights and biases
        for key in grads:
            torch.testing.assert_close(grads[key], reference[2][key], rtol=1e-5, atol=1e-5, msg=key)
        assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in reference[3].items()}
        for key in state:
            torch.testing.assert_close(state[key], reference[3][key], rtol=1e-5, atol=1e-6, msg=key)


def test_orientation_changes_neither_the_model_function_nor_its_checkpoint():
    """A state_dict saved by a model in one orientation loads into the other and gives the same outputs."""
    torch.manual_seed(0)
    old = DeepSpeech2(tiny_config(), conv_orientation="time_freq")
    features, lengths = torch.randn(3, 14, 8), torch.tensor([14, 9, 3])
    expected, _ = old(features, lengths)
    new = DeepSpeech2(tiny_config(), conv_orientation="freq_time")
    new.load_state_dict(old.state_dict())
    got, got_lengths = new(features, lengths)
    assert got_lengths.tolist() == [7, 5, 2]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert DeepSpeech2(tiny_config()).conv_orientation is None  # the measured default per device
    with pytest.raises(ValueError, match="conv_orientation"):
        DeepSpeech2(tiny_config(), conv_orientation="time_first")


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_recurrent_paths_give_the_same_outputs_and_gradients(rnn_type):
    """The packed path and the padded one (models.speech.rnn_by_direction) are the same model: one state_dict,
    equal log-probabilities and parameter gradients on a batch with padding."""
    features, lengths = torch.randn(3, 14, 8), torch.tensor([9, 14, 3])
    results = []
    for path in ("packed", "padded"):
        torch.manual_seed(0)
        model = DeepSpeech2(tiny_config(rnn_type=rnn_type), recurrent_path=path)
        log_probs, _ = model(features, lengths)
        (log_probs * torch.linspace(-1, 1, log_probs.numel()).reshape(log_probs.shape)).sum().backward()
        results.append((log_probs.detach(), {k: p.grad for k, p in model.named_parameters()}))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-5)
    for key, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][key], grad, rtol=1e-4, atol=1e-5, msg=key)
    assert DeepSpeech2(tiny_config()).recurrent_path is None  # the measured default per device
    with pytest.raises(ValueError, match="recurrent_path"):
        DeepSpeech2(tiny_config(), recurrent_path="cudnn")


def count_padded_calls(monkeypatch):
    """Count the recurrent layers that run on the padded path."""
    import models.speech.deepspeech2 as ds2

    calls = []
    real = ds2.rnn_by_direction
    monkeypatch.setattr(ds2, "rnn_by_direction", lambda rnn, packed: calls.append(rnn) or real(rnn, packed))
    return calls


def test_the_padded_path_runs_in_cpu_training_steps_and_packed_elsewhere(monkeypatch):
    """The CPU default trains on the padded path; "packed", passes without gradients, traced graphs and ReLU
    RNNs run packed; a module with forward hooks (torch.nn.utils.prune) still trains."""
    from models.speech.deepspeech2 import recurrent_path_for

    calls = count_padded_calls(monkeypatch)
    features, lengths = torch.randn(3, 14, 8), torch.tensor([14, 9, 3])
    torch.manual_seed(0)
    model = DeepSpeech2(tiny_config())
    assert recurrent_path_for(torch.device("cpu")) == "padded"
    model(features, lengths)
    assert len(calls) == 2  # both recurrent layers
    calls.clear()
    with torch.no_grad():
        model(features, lengths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values
        torch.jit.trace(model, (features, lengths), check_trace=False)
    DeepSpeech2(tiny_config(), recurrent_path="packed")(features, lengths)
    DeepSpeech2(tiny_config(rnn_type="rnn"))(features, lengths)
    assert calls == []
    prune.l1_unstructured(model.rnns[0].rnn, "weight_hh_l0", amount=0.5)
    for _ in range(
        2
    ):  # the prune hook recomputes the weight every call: a stale one fails the second backward
        model(features, lengths)[0].sum().backward()
    assert len(calls) == 4


def test_dsd_masks_hold_on_the_padded_path_and_training_matches_the_packed_one():
    """Pruned 50% by DSD, three Adam steps on a padded batch: pruned weights stay exactly zero, and the
    weights follow the packed path's to float rounding."""
    from dsd_seq import DSD

    features, lengths = torch.randn(3, 14, 8), torch.tensor([14, 9, 3])
    labels, label_lengths = torch.tensor([[1, 2, 3], [4, 5, 0], [2, 0, 0]]), torch.tensor([3, 2, 1])
    weights = []
    for path in ("packed", "padded"):
        torch.manual_seed(0)
        model = DeepSpeech2(tiny_config(), recurrent_path=path)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        dsd = DSD(model, optimizer)
        dsd.prune(0.5)
        pruned = {
            name: p == 0 for name, p in model.rnns.named_parameters() if "weight" in name and p.dim() == 2
        }
        for _ in range(3):
            optimizer.zero_grad()
            ctc_loss(*model(features, lengths), labels, label_lengths).backward()
            dsd.mask_gradients()
            optimizer.step()
            dsd.apply_masks()
        params = dict(model.rnns.named_parameters())
        for name, zero in pruned.items():
            assert zero.float().mean() > 0.4 and params[name][zero].abs().sum() == 0, name
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    for key, want in weights[0].items():
        torch.testing.assert_close(weights[1][key], want, rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("time_dim", [2, 3])
def test_valid_frame_norm_by_copies_equals_the_traceable_index_version(time_dim):
    """The copy-based batch norm the training step uses and the index-based one traced graphs use give
    the same outputs, gradients and running statistics, with zeros on padded frames."""
    from models.speech.deepspeech2 import _norm_valid_frames, _norm_valid_frames_by_index

    torch.manual_seed(0)
    shape = [3, 4, 6, 6]
    shape[time_dim] = 7
    lengths = torch.tensor([7, 4, 2])
    results = []
    for fn in (_norm_valid_frames, _norm_valid_frames_by_index):
        norm = torch.nn.BatchNorm2d(4)
        y = (torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 3 + 1).requires_grad_(True)
        out = fn(norm, y, lengths, time_dim)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        results.append((out.detach(), y.grad, norm.running_mean.clone(), norm.running_var.clone()))
    for got, want in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    padded = torch.arange(7).unsqueeze(0) >= lengths.unsqueeze(1)  # [B, T]
    by_frame = results[0][0].movedim(time_dim, 1)
    assert by_frame[padded].abs().sum() == 0 and by_frame[~padded].abs().sum() > 0
