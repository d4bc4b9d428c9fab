"""The models, synthetic batches and training step the benchmarks time; torch is their only dependency
(the GPU machine has no jiwer, soundfile or sentencepiece), so they import nothing that needs more.

A step is the trainer's order (dsd_seq.training.trainer): forward under autocast -> (scaled) backward -> mask
gradients -> unscale -> clip -> optimizer step -> re-apply masks, with the masking left out for the dense
variant and done by forward pre-hooks for the ``torch.nn.utils.prune`` variant.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from dsd_seq import DSD, select_prunable
from dsd_seq.training.precision import Precision
from models.captioning.neuraltalk import NeuralTalk, NeuralTalkConfig
from models.speech.ctc import ctc_loss
from models.speech.deepspeech2 import DeepSpeech2, DeepSpeech2Config

#: DeepSpeech 2 with 67M parameters (7 BiGRU x 912, the 2-layer 2-D conv front end): the size of the
#: DeepSpeech 2 the DSD paper prunes (Table 8, 67M), on 40 fbank bins.
PAPER_DS2 = {"rnn_hidden": 912, "rnn_layers": 7}
#: NeuralTalk as in the paper's Flickr8k setting (Table 5): VGG-16 fc7 in, 256/256, ~2,538 words.
PAPER_NEURALTALK = {"feature_dim": 4096, "vocab_size": 2538, "embed_dim": 256, "hidden": 256}


def deepspeech2(hidden: int, layers: int) -> DeepSpeech2:
    torch.manual_seed(0)
    return DeepSpeech2(DeepSpeech2Config(num_features=40, rnn_hidden=hidden, rnn_layers=layers))


def neuraltalk(hidden: int, embed: int = 256, vocab: int = 2538, feature_dim: int = 4096) -> NeuralTalk:
    torch.manual_seed(0)
    return NeuralTalk(
        NeuralTalkConfig(feature_dim=feature_dim, vocab_size=vocab, embed_dim=embed, hidden=hidden)
    )


def speech_batch(
    batch: int,
    frames: int,
    device: torch.device,
    bins: int = 40,
    spread: float = 0.0,
    lengths_on_cpu: bool = False,
) -> tuple[torch.Tensor, ...]:
    """One length bucket of utterances of ``bins`` features, labels of a character per 8 frames (~12 per
    second): lengths evenly from ``frames`` down to ``frames * (1 - spread)``, so that with ``spread > 0``
    the batch has padding. ``lengths_on_cpu`` keeps lengths and labels on the CPU, as the speech task's
    batches can be, and moves only the features."""
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(batch, frames, bins, generator=g).to(device)
    lengths = torch.linspace(frames, frames * (1 - spread), batch).round().long()
    labels = torch.randint(1, 29, (batch, frames // 8), generator=g)
    label_lengths = lengths // 8
    if not lengths_on_cpu:
        lengths, labels, label_lengths = (t.to(device) for t in (lengths, labels, label_lengths))
    return feats, lengths, labels, label_lengths


def caption_batch(batch: int, words: int, vocab: int, feature_dim: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(batch, feature_dim, generator=g)
    tokens = torch.randint(3, vocab, (batch, words + 1), generator=g)
    return feats.to(device), tokens.to(device)


def speech_loss(model: nn.Module, batch) -> torch.Tensor:
    feats, lengths, labels, label_lengths = batch
    log_probs, out_lengths = model(feats, lengths)
    return ctc_loss(log_probs, out_lengths, labels, label_lengths)


def caption_loss(model: nn.Module, batch) -> torch.Tensor:
    feats, tokens = batch
    logits = model(feats, tokens[:, :-1])
    return nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())


@dataclass
class Variant:
    """One way of training the same model: ``dense``, ``dsd`` (dsd_seq masks) or ``prune`` (torch)."""

    name: str
    model: nn.Module
    step: Callable[[], float]


#: torch.optim.Adam's implementations: "default" (torch's choice: per tensor on the CPU, foreach on CUDA),
#: "foreach" (one kernel per operation over all tensors) and "fused" (one kernel for the whole update).
ADAM_IMPLEMENTATIONS = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def training_step(
    model: nn.Module,
    loss_fn,
    precision: str,
    dsd_sparsity: float | None,
    clip: float = 5.0,
    adam: str = "default",
    dense_steps: int = 0,
    dense_batch: Any = None,
) -> Callable[[Any], float]:
    """A function running one Adam step on a batch; with ``dsd_sparsity`` the model is pruned by DSD first,
    after ``dense_steps`` dense steps on ``dense_batch`` (a dense phase: Adam's state at the weights DSD
    prunes is then positive, as in DSD's sparse phase, instead of exactly zero as in a fresh optimizer)."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), 1e-4, **ADAM_IMPLEMENTATIONS[adam])
    amp = Precision(precision, device)
    dsd = None

    def step(batch) -> float:
        optimizer.zero_grad(set_to_none=True)
        with amp.autocast():
            loss = loss_fn(model, batch)
        amp.backward(loss)
        if dsd is not None:
            dsd.mask_gradients()
        amp.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        amp.step(optimizer)
        if dsd is not None:
            dsd.apply_masks()
        return float(loss.detach())

    for _ in range(dense_steps):
        step(dense_batch)
    if dsd_sparsity is not None:
        dsd = DSD(model, optimizer)
        dsd.prune(dsd_sparsity)
    return step


def variants(
    build: Callable[[], nn.Module],
    loss_fn,
    batch,
    precision: str,
    sparsity: float,
    device,
    adam: str = "default",
    dense_steps: int = 0,
) -> list[Variant]:
    """The dense, DSD-masked and torch-pruned versions of one model, each with its own copy; the pruned
    ones are pruned after ``dense_steps`` dense steps (see ``training_step``)."""
    dense = build().to(device)
    masked = build().to(device)
    pruned = build().to(device)
    warm = {"adam": adam, "dense_steps": dense_steps, "dense_batch": batch}
    steps = {
        "dense": (dense, training_step(dense, loss_fn, precision, None, **warm)),
        "dsd": (masked, training_step(masked, loss_fn, precision, sparsity, **warm)),
        "prune": (pruned, training_step(pruned, loss_fn, precision, None, **warm)),
    }
    for name in select_prunable(pruned):  # after its dense steps; the optimizer keeps the same Parameter
        module_name, _, param = name.rpartition(".")
        prune.l1_unstructured(pruned.get_submodule(module_name), param, amount=sparsity)
    return [Variant(name, model, functools.partial(step, batch)) for name, (model, step) in steps.items()]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device, threads: bool = True) -> str:
    """One line naming the hardware, torch version and load, for the results tables; ``threads=False``
    leaves out the torch thread count, for tables whose rows name their own."""
    if device.type == "cuda":
        what = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})"
    else:
        model = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        what = f"{model}, {os.cpu_count()} cores" + (
            f", {torch.get_num_threads()} torch threads" if threads else ""
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{what}; torch {torch.__version__}; load average {load:.1f} at the start"


def append_markdown(path: str | None, title: str, header: list[str], rows: list[list[str]]) -> None:
    """Append a titled markdown table to ``path`` (if given): the scripts' results files."""
    if not path:
        return
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n\n")
