"""DSDCallback under PyTorch Lightning: D-S-D on a tiny recurrent model (zeros after every sparse step,
re-dense from exact zeros, phase LRs, exact resume from a Lightning checkpoint), DeepSpeech 2 under
bf16-mixed, and 2-process DDP (gloo) with identical masks on both ranks."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

pl = pytest.importorskip(
    "lightning.pytorch", reason="Lightning is an optional extra: pip install -e '.[lightning]'"
)

from dsd_seq.integrations.lightning import DSDCallback  # noqa: E402
from models.speech.ctc import ctc_loss  # noqa: E402
from models.speech.deepspeech2 import DeepSpeech2, DeepSpeech2Config  # noqa: E402
from tests.toy_task import ToyRecurrentNet  # noqa: E402

SCHEDULE = "D1:0.02,S2@0.5:0.01,D1:0.002"
ROOT = Path(__file__).resolve().parent.parent


class ToyModule(pl.LightningModule):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = ToyRecurrentNet()

    def training_step(self, batch, _):
        x, tokens, y = batch
        return nn.functional.cross_entropy(self.net(x, tokens), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1.0)  # the schedule sets the LR


class SpeechModule(pl.LightningModule):
    """A tiny DeepSpeech 2 (2 conv layers, 2 bidirectional GRUs) on random features and labels."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        config = DeepSpeech2Config(
            num_features=8,
            conv_channels=(4, 4),
            conv_kernels=((3, 3), (3, 3)),
            rnn_layers=2,
            rnn_hidden=16,
            num_classes=6,
        )
        self.model = DeepSpeech2(config)

    def training_step(self, batch, _):
        features, lengths, labels, label_lengths = batch
        log_probs, out_lengths = self.model(features, lengths)
        return ctc_loss(log_probs.float(), out_lengths, labels, label_lengths)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1.0, momentum=0.9)


def _toy_loader():
    g = torch.Generator().manual_seed(1)
    x, tokens = torch.randn(16, 5, 6, generator=g), torch.randint(0, 4, (16, 5), generator=g)
    y = (x[:, :, 0].sum(1) > 0).long()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, tokens, y), batch_size=8)


def _speech_loader():
    g = torch.Generator().manual_seed(2)
    features = torch.randn(8, 24, 8, generator=g)
    lengths = torch.tensor([24, 20, 24, 18, 24, 22, 16, 24])
    labels = torch.randint(1, 6, (8, 3), generator=g)
    data = torch.utils.data.TensorDataset(features, lengths, labels, torch.full((8,), 3))
    return torch.utils.data.DataLoader(data, batch_size=4)


def _trainer(max_epochs, callbacks, **kwargs):
    options = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return pl.Trainer(callbacks=callbacks, **{**options, **kwargs})


class Observer(pl.Callback):
    """Checks the contract after DSDCallback's hooks: zeros after every sparse step, phase LRs,
    re-dense from exact zeros."""

    def __init__(self, dsd_callback):
        self.cb, self.lrs, self.pruned, self.sparse_steps, self.redense_checked = (
            dsd_callback,
            [],
            None,
            0,
            False,
        )

    def on_train_epoch_start(self, trainer, pl_module):
        if self.pruned is not None and not self.cb.dsd.is_sparse and not self.redense_checked:
            for name, p in self.cb.dsd.params.items():
                assert torch.all(p.detach()[self.pruned[name]] == 0), f"re-dense must start at 0: {name}"
            self.redense_checked = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.lrs.append((trainer.current_epoch, trainer.optimizers[0].param_groups[0]["lr"]))
        if self.cb.dsd.is_sparse:
            masks = self.cb.dsd.masks.masks
            for name, p in self.cb.dsd.params.items():
                assert torch.all(p.detach()[~masks[name]] == 0), name
            self.pruned = {n: ~m for n, m in masks.items()}
            self.sparse_steps += 1


def test_dense_sparse_redense_under_lightning_with_gradient_clipping():
    dsd = DSDCallback(SCHEDULE)
    observer = Observer(dsd)
    module = ToyModule()
    _trainer(4, [dsd, observer], gradient_clip_val=0.5).fit(module, _toy_loader())
    assert observer.sparse_steps == 4 and observer.redense_checked
    assert observer.lrs == [(0, 0.02)] * 2 + [(1, 0.01)] * 2 + [(2, 0.01)] * 2 + [(3, 0.002)] * 2
    revived = sum(int(torch.count_nonzero(p.detach()[observer.pruned[n]])) for n, p in dsd.dsd.params.items())
    assert revived > 0


def test_phase_lr_and_sparsity_are_logged():
    dsd = DSDCallback("D1:0.02,S1@0.5:0.01")
    trainer = _trainer(2, [dsd])
    trainer.fit(ToyModule(), _toy_loader())
    metrics = trainer.callback_metrics
    assert float(metrics["dsd/phase"]) == 1.0 and float(metrics["dsd/lr"]) == pytest.approx(0.01)
    assert float(metrics["dsd/sparsity"]) == pytest.approx(0.5, abs=0.01)


def test_resume_from_a_lightning_checkpoint_equals_an_uninterrupted_run(tmp_path):
    whole = ToyModule()
    _trainer(4, [DSDCallback(SCHEDULE)]).fit(whole, _toy_loader())

    first = ToyModule()
    trainer = _trainer(2, [DSDCallback(SCHEDULE)])  # stops in the middle of the sparse phase
    trainer.fit(first, _toy_loader())
    trainer.save_checkpoint(tmp_path / "mid.ckpt")

    resumed, callback = ToyModule(seed=7), DSDCallback(SCHEDULE)
    _trainer(4, [callback]).fit(resumed, _toy_loader(), ckpt_path=tmp_path / "mid.ckpt")
    assert callback.phases.phase_index == 2
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_deepspeech2_under_bf16_mixed_precision():
    dsd = DSDCallback("D1:0.05,S1@0.5:0.05,D1:0.01")
    observer = Observer(dsd)
    module = SpeechModule()
    _trainer(3, [dsd, observer], precision="bf16-mixed", gradient_clip_val=1.0).fit(module, _speech_loader())
    assert observer.sparse_steps == 2 and observer.redense_checked
    assert any(n.startswith("model.rnns.") and "weight_hh" in n for n in dsd.dsd.params)
    assert "model.convs.0.conv.weight" not in dsd.dsd.params


@pytest.mark.slow  # two fresh processes import torch and Lightning: ~45 s on a busy 2-core CPU
def test_deepspeech2_under_two_process_ddp_has_identical_masks_on_both_ranks(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.test_integration_lightning", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert ranks[0]["masks"].keys() == ranks[1]["masks"].keys() and ranks[0]["masks"]
    for name, mask in ranks[0]["masks"].items():
        assert torch.equal(mask, ranks[1]["masks"][name]), name
    for name, weight in ranks[0]["weights"].items():
        assert torch.equal(weight, ranks[1]["weights"][name]), name
    assert ranks[0]["sparsity"] == pytest.approx(0.5, abs=0.01)


class _SaveMasks(pl.Callback):
    def __init__(self, dsd, out):
        self.dsd, self.out = dsd, out

    def on_train_epoch_end(self, trainer, pl_module):
        if self.dsd.dsd.is_sparse:
            torch.save(
                {
                    "masks": self.dsd.dsd.masks.state_dict(),
                    "weights": {n: p.detach().clone() for n, p in self.dsd.dsd.params.items()},
                    "sparsity": self.dsd.dsd.sparsity()[1],
                },
                Path(self.out) / f"rank{trainer.global_rank}.pt",
            )


if __name__ == "__main__":  # the DDP run: Lightning starts rank 1 by running this module again
    dsd = DSDCallback("D1:0.05,S1@0.5:0.05")
    trainer = _trainer(2, [dsd, _SaveMasks(dsd, sys.argv[1])], devices=2, strategy="ddp")
    trainer.fit(SpeechModule(), _speech_loader())


@pytest.mark.parametrize("schedule", ["D1:1e-3,G2@0.5:1e-3", "D1:1e-3,R2@0.5:1e-3/grow=random"])
def test_gradual_and_rigl_phases_are_refused_saying_the_callback_counts_epochs(schedule):
    with pytest.raises(
        ValueError, match="counts epochs; gradual and RigL/SET phases need step counts"
    ) as err:
        DSDCallback(schedule)
    assert "phase 2" in str(err.value) and "dsd-seq train" in str(err.value)
