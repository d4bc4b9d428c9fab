"""DSDTrainerCallback under Hugging Face's Trainer: D-S-D on a tiny recurrent model with gradient
clipping (zeros after every sparse step, re-dense from exact zeros, phase LRs, sparsity logged) and an
interrupted run resumed from its checkpoint equal to an uninterrupted one."""

import pytest
import torch
from torch import nn

transformers = pytest.importorskip(
    "transformers", reason="Hugging Face is an optional extra: pip install -e '.[huggingface]'"
)

from dsd_seq.integrations.huggingface import DSDTrainerCallback  # noqa: E402
from tests.toy_task import ToyRecurrentNet  # noqa: E402

SCHEDULE = "D1:0.02,S2@0.5:0.01,D1:0.002"


class ToyForTrainer(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = ToyRecurrentNet()

    def forward(self, x, tokens, labels):
        logits = self.net(x, tokens)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


class ToyData(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x, self.tokens = torch.randn(16, 5, 6, generator=g), torch.randint(0, 4, (16, 5), generator=g)
        self.y = (self.x[:, :, 0].sum(1) > 0).long()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "tokens": self.tokens[i], "labels": self.y[i]}


def _args(out, epochs=4, **kwargs):
    options = dict(
        output_dir=str(out),
        num_train_epochs=epochs,
        per_device_train_batch_size=8,
        learning_rate=1.0,
        lr_scheduler_type="constant",
        max_grad_norm=0.5,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        logging_steps=1,
        remove_unused_columns=False,
        seed=0,
        dataloader_num_workers=0,
    )
    return transformers.TrainingArguments(**{**options, **kwargs})


class Observer(transformers.TrainerCallback):
    def __init__(self, dsd_callback):
        self.cb, self.lrs, self.pruned, self.sparse_steps, self.redense_checked = (
            dsd_callback,
            [],
            None,
            0,
            False,
        )

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        dsd = self.cb.dsd
        if self.pruned is not None and not dsd.is_sparse and not self.redense_checked:
            for name, p in dsd.params.items():
                assert torch.all(p.detach()[self.pruned[name]] == 0), f"re-dense must start at 0: {name}"
            self.redense_checked = True

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append(optimizer.param_groups[0]["lr"])

    def on_step_end(self, args, state, control, **kwargs):
        dsd = self.cb.dsd
        if dsd.is_sparse:
            for name, p in dsd.params.items():
                assert torch.all(p.detach()[~dsd.masks.masks[name]] == 0), name
            self.pruned = {n: ~m for n, m in dsd.masks.masks.items()}
            self.sparse_steps += 1


def test_dense_sparse_redense_under_the_trainer(tmp_path):
    dsd = DSDTrainerCallback(SCHEDULE)
    observer = Observer(dsd)
    trainer = transformers.Trainer(
        model=ToyForTrainer(), args=_args(tmp_path), train_dataset=ToyData(), callbacks=[dsd, observer]
    )
    trainer.train()
    assert observer.sparse_steps == 4 and observer.redense_checked
    assert observer.lrs == [0.02] * 2 + [0.01] * 4 + [0.002] * 2
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["dsd/phase"] for h in logged] == [0, 0, 1, 1, 1, 1, 2, 2]
    assert logged[2]["dsd/sparsity"] == pytest.approx(0.5, abs=0.01)
    assert [h["learning_rate"] for h in logged] == observer.lrs  # the scheduler reports the phase LR


def test_gradients_are_masked_before_the_trainer_clips_them(tmp_path):
    norms = []

    class NormSpy(transformers.TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            if (
                dsd.dsd.is_sparse
            ):  # after clipping: the pruned gradients were already 0 when the norm was taken
                grads = [p.grad for p in dsd.dsd.params.values()]
                assert all(
                    torch.all(g[~m] == 0) for g, m in zip(grads, dsd.dsd.masks.masks.values(), strict=True)
                )
                norms.append(1)

    dsd = DSDTrainerCallback("D1:0.02,S1@0.5:0.01")
    trainer = transformers.Trainer(
        model=ToyForTrainer(),
        args=_args(tmp_path, epochs=2),
        train_dataset=ToyData(),
        callbacks=[dsd, NormSpy()],
    )
    trainer.train()
    assert norms == [1, 1]


def test_resume_from_a_trainer_checkpoint_equals_an_uninterrupted_run(tmp_path):
    whole = ToyForTrainer()
    transformers.Trainer(
        model=whole,
        args=_args(tmp_path / "a"),
        train_dataset=ToyData(),
        callbacks=[DSDTrainerCallback(SCHEDULE)],
    ).train()

    class StopAfterTwoEpochs(transformers.TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.epoch >= 2

    args = _args(tmp_path / "b", save_strategy="epoch")
    first = ToyForTrainer()
    callbacks = [DSDTrainerCallback(SCHEDULE), StopAfterTwoEpochs()]
    transformers.Trainer(model=first, args=args, train_dataset=ToyData(), callbacks=callbacks).train()
    assert (tmp_path / "b" / "checkpoint-4" / "dsd_state.pt").is_file()

    resumed, callback = ToyForTrainer(seed=7), DSDTrainerCallback(SCHEDULE)
    trainer = transformers.Trainer(model=resumed, args=args, train_dataset=ToyData(), callbacks=[callback])
    trainer.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-4"))
    assert callback.phases.phase_index == 2
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_resume_without_the_dsd_state_names_the_missing_file(tmp_path):
    args = _args(tmp_path, epochs=1, save_strategy="epoch")
    transformers.Trainer(model=ToyForTrainer(), args=args, train_dataset=ToyData()).train()  # no DSD
    trainer = transformers.Trainer(
        model=ToyForTrainer(),
        args=_args(tmp_path, epochs=2),
        train_dataset=ToyData(),
        callbacks=[DSDTrainerCallback("D1:0.02,S1@0.5:0.01")],
    )
    with pytest.raises(FileNotFoundError, match="dsd_state.pt"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
