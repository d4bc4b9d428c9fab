"""Cost of DSD's mask enforcement: a masked training step against the same step dense.

Measured in one run on one model, interleaving the variants so machine load affects them alike:
  dense   -- forward, CTC loss, backward, Adam step
  dsd     -- the same plus masked gradients and in-place re-masking of all pruned tensors (dsd_seq)
  prune   -- the same model pruned with torch.nn.utils.prune (forward pre-hooks), the usual alternative
Also times the threshold computation (one kthvalue per layer) for a large DeepSpeech 2.
Run: python benchmarks/mask_overhead.py [--steps 20] [--hidden 256]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn.utils import prune

from dsd_seq import DSD, MaskSet, select_prunable
from models.ctc import ctc_loss
from models.deepspeech2 import DeepSpeech2, DeepSpeech2Config


def _model(hidden: int, layers: int) -> DeepSpeech2:
    torch.manual_seed(0)
    return DeepSpeech2(
        DeepSpeech2Config(num_features=40, rnn_hidden=hidden, rnn_layers=layers, conv_channels=(16, 16))
    )


def _batch(batch: int, frames: int):
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(batch, frames, 40, generator=g)
    lengths = torch.full((batch,), frames, dtype=torch.int64)
    labels = torch.randint(1, 29, (batch, frames // 8), generator=g)
    return feats, lengths, labels, torch.full((batch,), frames // 8, dtype=torch.int64)


def _step_fn(model, optimizer, batch, dsd: DSD | None):
    feats, lengths, labels, label_lengths = batch

    def step():
        optimizer.zero_grad(set_to_none=True)
        log_probs, out_lengths = model(feats, lengths)
        ctc_loss(log_probs, out_lengths, labels, label_lengths).backward()
        if dsd is not None:
            dsd.step()
        else:
            optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = tuple(t.to(device) for t in _batch(args.batch, args.frames))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    steps = {}
    dense_model = _model(args.hidden, args.layers).to(device)
    steps["dense"] = _step_fn(dense_model, torch.optim.Adam(dense_model.parameters(), 1e-4), batch, None)
    dsd_model = _model(args.hidden, args.layers).to(device)
    dsd_opt = torch.optim.Adam(dsd_model.parameters(), 1e-4)
    dsd = DSD(dsd_model, dsd_opt)
    dsd.prune(0.5)
    steps["dsd"] = _step_fn(dsd_model, dsd_opt, batch, dsd)
    prune_model = _model(args.hidden, args.layers).to(device)
    for name in select_prunable(prune_model):
        module_name, _, param = name.rpartition(".")
        prune.l1_unstructured(prune_model.get_submodule(module_name), param, amount=0.5)
    steps["prune"] = _step_fn(prune_model, torch.optim.Adam(prune_model.parameters(), 1e-4), batch, None)

    times = {k: [] for k in steps}
    for step in steps.values():  # warm-up
        step()
    for _ in range(args.steps):
        for name, step in steps.items():
            sync()
            start = time.perf_counter()
            step()
            sync()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{device.type}: DeepSpeech 2, hidden {args.hidden} x {args.layers} BiGRU, batch {args.batch} x {args.frames} frames, "
        f"{args.threads} threads, {args.steps} steps each (median):"
    )
    for name in steps:
        print(f"  {name:6s} {1000 * med[name]:8.1f} ms/step   ratio to dense {med[name] / med['dense']:.3f}")

    big = _model(896, 7).to(device)  # 7 BiGRU layers, about 67M parameters
    params = select_prunable(big)
    n = sum(p.numel() for p in big.parameters())
    sync()
    start = time.perf_counter()
    MaskSet.from_magnitude(params, 0.5)
    sync()
    print(
        f"threshold + masks for a {n / 1e6:.0f}M-parameter DeepSpeech 2: {time.perf_counter() - start:.2f} s"
    )


if __name__ == "__main__":
    main()
