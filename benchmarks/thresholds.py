"""Time to compute DSD's masks (per-layer magnitude thresholds) for a 67M-parameter DeepSpeech 2.

Goal: under 1 s on the CPU. Reports wall and CPU seconds (on a shared machine the wall time includes
waiting for the CPU; the CPU time is what the computation itself costs), median of --repeats.
Run: python benchmarks/thresholds.py [--device cpu|cuda] [--threads 2] [--markdown RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import workloads as w

from dsd_seq import MaskSet, select_prunable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", help="append the result as a markdown table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = w.deepspeech2(**{"hidden": w.PAPER_DS2["rnn_hidden"], "layers": w.PAPER_DS2["rnn_layers"]}).to(
        device
    )
    params = select_prunable(model)
    total = sum(p.numel() for p in model.parameters())
    prunable = sum(p.numel() for p in params.values())
    MaskSet.from_criterion(params, args.sparsity)  # warm-up
    wall, cpu = [], []
    for _ in range(args.repeats):
        w.synchronize(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        MaskSet.from_criterion(params, args.sparsity)
        w.synchronize(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    what = (
        f"DeepSpeech 2, {total / 1e6:.1f}M parameters ({prunable / 1e6:.1f}M prunable in {len(params)} tensors), "
        f"{args.sparsity:.0%} per layer"
    )
    print(
        f"{w.machine(device)}\n{what}: masks in {statistics.median(wall):.3f} s wall, "
        f"{statistics.median(cpu):.3f} s CPU (median of {args.repeats})"
    )
    w.append_markdown(
        args.markdown,
        f"Thresholds and masks: {w.machine(device)}",
        ["model", "device", "wall s", "CPU s"],
        [[what, args.device, f"{statistics.median(wall):.3f}", f"{statistics.median(cpu):.3f}"]],
    )


if __name__ == "__main__":
    main()
