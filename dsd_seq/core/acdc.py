"""AC/DC (Peste et al. 2021, "AC/DC: Alternating Compressed/DeCompressed Training of Deep Neural
Networks"): a dense warm-up, then compressed (sparse) and decompressed (dense) phases of equal length in
turn, ending with a longer compressed phase. Each compression recomputes the masks by magnitude at the
target sparsity; each decompression lifts them, and the pruned weights restart from zero, as DSD's
re-dense phase. It is the closest modern relative of DSDSD...

One schedule element ``A<epochs>@<sparsity>:<lr>/warmup=W/period=P/finetune=F`` expands into ordinary
dense and sparse phases (:meth:`AcDc.parts`). The defaults follow the paper's ImageNet recipe scaled to
the element's length: P = max(1, epochs // 20) (5 of 100 epochs), W = F = 2P (10 of 100). After the
warm-up, the ``epochs - W - F`` middle epochs alternate compressed and decompressed blocks of P epochs,
starting compressed (the last block may be shorter); the final F epochs are compressed, and a middle
that ends compressed runs on into them as one phase.
"""

from __future__ import annotations

from dataclasses import dataclass

DENSE, SPARSE = "dense", "sparse"


class AcDcError(ValueError):
    """AC/DC settings that do not fit the element; the message names the setting."""


@dataclass(frozen=True)
class AcDc:
    """One AC/DC element: its length, sparsity and learning rate, and the settings as written (None: the
    default for its length)."""

    epochs: int
    sparsity: float
    lr: float
    lr_decay: float = 1.0
    warmup: int | None = None
    period: int | None = None
    finetune: int | None = None

    @property
    def resolved(self) -> tuple[int, int, int]:
        """(warmup, period, finetune) in epochs, the defaults filled in."""
        period = self.period if self.period is not None else max(1, self.epochs // 20)
        warmup = self.warmup if self.warmup is not None else 2 * period
        finetune = self.finetune if self.finetune is not None else 2 * period
        return warmup, period, finetune

    def validate(self, where: str) -> None:
        for key, minimum in (("warmup", 0), ("period", 1), ("finetune", 1)):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < minimum
            ):
                raise AcDcError(f"{where}: {key}={value!r} must be a whole number of epochs >= {minimum}")
        warmup, period, finetune = self.resolved
        if warmup + finetune > self.epochs:
            raise AcDcError(
                f"{where}: warmup={warmup} + finetune={finetune} epochs exceed the element's {self.epochs} "
                "epochs; lengthen it or set smaller warmup/finetune"
            )

    def parts(self) -> list[tuple[str, int]]:
        """The (kind, epochs) of the phases it expands into, consecutive kinds merged."""
        warmup, period, finetune = self.resolved
        blocks = [(DENSE, warmup)] if warmup else []
        middle, kind = self.epochs - warmup - finetune, SPARSE
        while middle > 0:
            blocks.append((kind, min(period, middle)))
            middle -= period
            kind = DENSE if kind == SPARSE else SPARSE
        blocks.append((SPARSE, finetune))
        merged: list[tuple[str, int]] = []
        for kind, epochs in blocks:
            if merged and merged[-1][0] == kind:
                merged[-1] = (kind, merged[-1][1] + epochs)
            else:
                merged.append((kind, epochs))
        return merged


@dataclass(frozen=True)
class AcDcPart:
    """Which phase of an AC/DC element a schedule phase is (``index``, 0-based), so that the schedule
    writes the element back as it was given."""

    element: AcDc
    index: int
