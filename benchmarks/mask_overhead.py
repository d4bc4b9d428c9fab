"""Cost of DSD's mask enforcement: a masked training step against the same step dense, in one run.

Three copies of one model, their steps interleaved so that machine load affects them alike:
  dense   forward, loss, backward, clip, Adam step
  dsd     the same plus masked gradients and in-place re-masking of every pruned tensor (dsd_seq)
  prune   the model pruned with torch.nn.utils.prune (forward pre-hooks), the usual alternative
The goal is dsd/dense <= 1.02. Sizes: DeepSpeech 2 (BiGRU, CTC) and NeuralTalk (LSTM captioner).
Run: python benchmarks/mask_overhead.py [--model ds2|neuraltalk] [--hidden 512] [--layers 3]
     [--device cpu|cuda] [--precision fp32|bf16|fp16] [--markdown RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import workloads as w


def measure(args: argparse.Namespace) -> dict[str, float]:
    """Median seconds per step of each variant."""
    device = torch.device(args.device)
    if args.model == "ds2":
        batch = w.speech_batch(args.batch, args.frames, device)
        build, loss_fn, sparsity = (lambda: w.deepspeech2(args.hidden, args.layers)), w.speech_loss, 0.5
    else:
        batch = w.caption_batch(args.batch, args.frames, 2538, 4096, device)
        build, loss_fn, sparsity = (lambda: w.neuraltalk(args.hidden)), w.caption_loss, 0.8  # Table 5: 80%
    variants = w.variants(
        build, loss_fn, batch, args.precision, sparsity, device, args.adam, args.dense_steps
    )
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prune's hooks make cuDNN warn about non-contiguous weights
        for v in variants:  # warm-up (cuDNN plans, allocator)
            v.step()
            v.step()
        for _ in range(args.steps):
            for v in variants:
                w.synchronize(device)
                start = time.perf_counter()
                v.step()
                w.synchronize(device)
                times[v.name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def describe(args: argparse.Namespace) -> str:
    if args.model == "ds2":
        size = f"DeepSpeech 2, {args.layers} x BiGRU {args.hidden}, 50% sparse"
        return f"{size}, batch {args.batch} x {args.frames} frames"
    return f"NeuralTalk, LSTM {args.hidden}, 4096-d image, 2538 words, 80% sparse, batch {args.batch} x {args.frames} words"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["ds2", "neuraltalk"], default="ds2")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3, help="BiGRU layers (DeepSpeech 2)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=300, help="frames (DeepSpeech 2) or words (NeuralTalk)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument(
        "--adam",
        default="default",
        choices=sorted(w.ADAM_IMPLEMENTATIONS),
        help="torch.optim.Adam's implementation",
    )
    parser.add_argument(
        "--dense-steps",
        type=int,
        default=0,
        help="dense steps before pruning (0: prune a fresh model, so Adam's state is exactly zero where pruned)",
    )
    parser.add_argument("--markdown", help="append the result as a markdown table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    med = measure(args)
    what = describe(args)
    print(
        f"{w.machine(torch.device(args.device))}\n{what}, {args.precision}, Adam {args.adam}, "
        f"{args.steps} steps each (median), pruned after {args.dense_steps} dense steps:"
    )
    for name, seconds in med.items():
        print(f"  {name:6s} {1000 * seconds:8.1f} ms/step   ratio to dense {seconds / med['dense']:.3f}")
    row = [
        what,
        args.device,
        f"{args.precision}, Adam {args.adam}",
        f"{1000 * med['dense']:.1f}",
        f"{med['dsd'] / med['dense']:.3f}",
        f"{med['prune'] / med['dense']:.3f}",
    ]
    header = ["model", "device", "precision", "dense ms/step", "DSD / dense", "nn.utils.prune / dense"]
    w.append_markdown(args.markdown, f"Mask overhead: {w.machine(torch.device(args.device))}", header, [row])


if __name__ == "__main__":
    main()
