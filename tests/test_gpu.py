"""On a CUDA device: masking keeps cuDNN's flattened GRU weights and pruned weights stay exactly zero.
Skipped where no GPU is visible (CI has none; run it on a GPU machine)."""

import warnings

import pytest
import torch

from dsd_seq import DSD
from models.speech.ctc import ctc_loss
from models.speech.deepspeech2 import DeepSpeech2, DeepSpeech2Config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("optimizer", ["nesterov", "adamw"])
def test_cudnn_gru_keeps_flat_weights_and_pruned_weights_stay_zero(optimizer):
    torch.manual_seed(0)
    model = DeepSpeech2(
        DeepSpeech2Config(conv_channels=(8,), conv_kernels=((5, 11),), conv_strides=((2, 2),), rnn_hidden=64)
    ).cuda()
    if optimizer == "nesterov":
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    dsd = DSD(model, opt)
    rnn = model.rnns[0].rnn
    ptrs = [w.data_ptr() for w in rnn._flat_weights]
    feats = torch.randn(4, 120, 40, device="cuda")
    lengths = torch.tensor([120, 100, 90, 60], device="cuda")
    labels = torch.randint(1, 29, (4, 12), device="cuda")
    label_lengths = torch.full((4,), 12, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "RNN module weights are not part of single contiguous chunk"
        for step in range(6):
            if step == 2:
                dsd.prune(0.5)
            opt.zero_grad()
            log_probs, out_lengths = model(feats, lengths)
            ctc_loss(log_probs, out_lengths, labels, label_lengths).backward()
            dsd.step()
            if dsd.masks is not None:
                for name, p in dsd.params.items():
                    assert torch.all(p.detach()[~dsd.masks.masks[name]] == 0), name
    assert [w.data_ptr() for w in rnn._flat_weights] == ptrs
    _, total = dsd.sparsity()
    assert total == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_trainer_steps_under_amp_on_cuda_keep_flat_weights_and_pruned_weights_zero(tmp_path, precision):
    pytest.importorskip("yaml")  # the trainer's config; the GPU machine may lack it
    pytest.importorskip("tqdm")
    from dsd_seq.core.schedule import Schedule
    from tests.toy_task import toy_trainer

    schedule = Schedule.parse("D1:0.01,S1@0.5:0.01")
    trainer = toy_trainer(tmp_path, schedule, ["train.device=cuda", f"train.precision={precision}"])
    gru = trainer.model.gru
    ptrs = [w.data_ptr() for w in gru._flat_weights]
    trainer.dsd.enter(schedule[1])
    taken = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "weights are not part of single contiguous chunk" re-flattening
        for batch in trainer.task.train_batches(torch.Generator().manual_seed(0)):
            result = trainer.train_step(batch)
            taken += result.loss is not None
            for name, p in trainer.dsd.params.items():
                assert torch.all(p.detach()[~trainer.dsd.masks.masks[name]] == 0), name
    assert taken >= 6, f"only {taken} of 8 steps updated the weights"
    assert [w.data_ptr() for w in gru._flat_weights] == ptrs


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP with NCCL needs two GPUs")
def test_ddp_with_nccl_on_two_gpus_keeps_masks_and_weights_identical(tmp_path):
    pytest.importorskip("yaml")
    pytest.importorskip("tqdm")
    from tests.test_distributed import assert_ranks_identical, run_two_ranks

    assert_ranks_identical(*run_two_ranks(tmp_path, precision="bf16", device="cuda"))
