"""DSD as a PyTorch Lightning callback (``pip install dsd-seq[lightning]``).

    trainer = L.Trainer(max_epochs=6, callbacks=[DSDCallback("D2:1e-3,S2@0.5:1e-3,D2:1e-4")])

Hook order (Lightning 2.x, automatic optimization): ``optimizer.step(closure)`` runs the closure
(training_step, backward, then ``on_before_optimizer_step``, then Lightning's gradient clipping) inside
the torch optimizer's ``step``. So the gradients are masked in ``on_before_optimizer_step`` (after the
backward pass and the AMP unscale, before clipping); a step pre-hook would run before the closure, too
early. The masks are re-applied by a step post-hook on the torch optimizer, right after the update (also
under gradient accumulation and manual optimization). Phases start in ``on_train_epoch_start`` by
``trainer.current_epoch``. Masks and the phase position travel in Lightning checkpoints (this callback's
``state_dict``), which Lightning restores before ``on_fit_start``: they are kept until the optimizer exists.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

try:
    import lightning.pytorch as pl
except ImportError:  # the standalone package has the same API
    import pytorch_lightning as pl

from dsd_seq.core.dsd import DSD
from dsd_seq.core.mask_hooks import MaskHooks
from dsd_seq.core.phase_driver import PhaseDriver
from dsd_seq.core.schedule import Schedule
from dsd_seq.core.selection import SelectionConfig


class DSDCallback(pl.Callback):
    """Dense -> Sparse -> Re-dense by ``schedule`` (epochs) on the LightningModule's FC and recurrent
    matrices. Logs ``dsd/phase`` (index), ``dsd/lr`` and ``dsd/sparsity`` (measured exact zeros) per epoch."""

    def __init__(
        self,
        schedule: Schedule | str,
        selection: SelectionConfig | None = None,
        scope: str = "layer",
        overrides: Mapping[str, float] | None = None,
    ):
        self.schedule = Schedule.parse(schedule) if isinstance(schedule, str) else schedule
        changing = [(i, p) for i, p in enumerate(self.schedule.phases) if p.masks_change]
        if changing:
            i, phase = changing[0]
            raise ValueError(
                f"DSDCallback: phase {i + 1} ({phase.compact()}) is a {self.schedule.label(i)} phase. The "
                "Lightning callback counts epochs; gradual and RigL/SET phases need step counts: use "
                "`dsd-seq train`, or in your own loop dsd_optimizer(model, optimizer, schedule, unit='step') "
                "(or steps_per_epoch=...); the callback runs dense, sparse (S) and AC/DC phases"
            )
        self.selection, self.scope, self.overrides = selection, scope, overrides
        self.dsd: DSD | None = None
        self.phases: PhaseDriver | None = None
        self._hooks: MaskHooks | None = None
        self._restored: Mapping | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise ValueError(
                f"DSDCallback: configure_optimizers returned {len(trainer.optimizers)} optimizers; "
                "DSD needs exactly one that holds the pruned weights"
            )
        optimizer = trainer.optimizers[0]
        self.dsd = DSD(pl_module, optimizer, self.selection, self.scope, self.overrides)
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        self.phases = PhaseDriver(self.dsd, self.schedule, "epoch", schedulers)
        if self._restored is not None:
            self.dsd.load_state_dict(self._restored["dsd"])
            self.phases.load_state_dict(self._restored["phases"])
            self._restored = None
        self._hooks = MaskHooks(self.dsd, optimizer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        entered = self.phases.advance(trainer.current_epoch)
        if entered is not None and self.dsd.masks is not None:
            _check_ranks_agree(self.dsd, f"phase {self.phases.phase_index + 1} ({entered.compact()})")

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.dsd.mask_gradients()  # inside the closure: after backward and unscale, before clipping

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _, sparsity = self.dsd.sparsity()
        values = {
            "dsd/phase": float(self.phases.phase_index),
            "dsd/lr": float(self.dsd.optimizer.param_groups[0]["lr"]),
            "dsd/sparsity": sparsity,
        }
        pl_module.log_dict(values, on_step=False, on_epoch=True, sync_dist=False, rank_zero_only=True)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._hooks is not None:
            self._hooks.remove()
            self._hooks = None

    def state_dict(self) -> dict:
        if self.dsd is None:
            return dict(self._restored or {})
        return {"dsd": self.dsd.state_dict(), "phases": self.phases.state_dict()}

    def load_state_dict(self, state_dict: Mapping) -> None:
        self._restored = state_dict  # the optimizer does not exist yet: applied in on_fit_start


def _check_ranks_agree(dsd: DSD, what: str) -> None:
    """Masks are computed on every rank from identical weights; a mismatch would desynchronise DDP."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    sums = []
    for mask in dsd.masks.masks.values():  # kept count and an index-weighted sum per tensor
        flat = mask.reshape(-1)
        weights = torch.arange(flat.numel(), dtype=torch.float32, device=flat.device).remainder_(9973)
        sums += [flat.sum(dtype=torch.float64), (flat * weights).sum(dtype=torch.float64)]
    checksum = torch.stack(sums)
    low, high = checksum.clone(), checksum.clone()
    torch.distributed.all_reduce(low, torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(high, torch.distributed.ReduceOp.MAX)
    if not torch.equal(low, high):
        raise RuntimeError(
            f"DSDCallback: the masks of {what} differ between ranks (kept-weight checksums {low.tolist()} vs "
            f"{high.tolist()}); the ranks' weights diverged before pruning"
        )
