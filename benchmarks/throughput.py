"""DeepSpeech 2 training throughput (utterances/s, frames/s) in the DSD sparse phase, with data loading.

Each step collates a length-bucketed batch of variable-length utterances on the CPU (the speech task's
own ``collate_speech`` / ``length_sorted_batches``), copies it to the device (pinned memory, non-blocking)
and takes a masked training step (DSD at 50%, Adam, clip 5). The loader share is the part of the step's
wall time spent collating and copying: it is what the device waits for, as the speech task does not
overlap loading with compute. Frames are input feature frames (100 per second of audio).
Run: python benchmarks/throughput.py [--device cuda] [--precision fp32,bf16,fp16] [--hidden 912 --layers 7]
     [--batch 32] [--steps 20] [--markdown RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import workloads as w

from data_prep.batching.speech_dataset import collate_speech, length_sorted_batches


def utterances(count: int, min_seconds: float, max_seconds: float) -> list[dict]:
    """Synthetic fbank-like utterances of uniform random duration, ~10 characters per second."""
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(int(100 * min_seconds), int(100 * max_seconds) + 1, (count,), generator=g).tolist()
    return [
        {
            "utt_id": f"utt{i:06d}",
            "features": torch.randn(n, 40, generator=g),
            "labels": torch.randint(1, 29, (max(n // 10, 1),), generator=g),
            "text": "",
        }
        for i, n in enumerate(frames)
    ]


def run(args: argparse.Namespace, precision: str, data: list[dict]) -> dict[str, float]:
    device = torch.device(args.device)
    model = w.deepspeech2(args.hidden, args.layers).to(device)
    step = w.training_step(model, w.speech_loss, precision, dsd_sparsity=0.5)
    order = length_sorted_batches(
        [len(u["features"]) for u in data], args.batch, torch.Generator().manual_seed(1)
    )
    loader, compute, utts, frames = [], [], 0, 0
    for i, indices in enumerate(order[: args.steps + args.warmup]):
        w.synchronize(device)
        t0 = time.perf_counter()
        batch = collate_speech([data[j] for j in indices])
        tensors = (batch.features, batch.feature_lengths, batch.labels, batch.label_lengths)
        if device.type == "cuda":
            tensors = tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)
        w.synchronize(device)
        t1 = time.perf_counter()
        step(tensors)
        w.synchronize(device)
        t2 = time.perf_counter()
        if i >= args.warmup:
            loader.append(t1 - t0)
            compute.append(t2 - t1)
            utts += len(indices)
            frames += int(batch.feature_lengths.sum())
    total = sum(loader) + sum(compute)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {
        "utt_per_s": utts / total,
        "frames_per_s": frames / total,
        "step_ms": 1000 * statistics.median(compute),
        "loader_share": sum(loader) / total,
        "peak_gib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="comma-separated: fp32,bf16,fp16")
    parser.add_argument("--hidden", type=int, default=w.PAPER_DS2["rnn_hidden"])
    parser.add_argument("--layers", type=int, default=w.PAPER_DS2["rnn_layers"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=2.0, help="shortest utterance")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="longest utterance")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", help="append the results as a markdown table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = utterances(args.batch * (args.steps + args.warmup), args.min_seconds, args.max_seconds)
    params = sum(p.numel() for p in w.deepspeech2(args.hidden, args.layers).parameters()) / 1e6
    what = (
        f"DeepSpeech 2 {params:.0f}M ({args.layers} x BiGRU {args.hidden}), DSD 50% sparse, batch {args.batch}, "
        f"{args.min_seconds:g}-{args.max_seconds:g} s utterances"
    )
    device = torch.device(args.device)
    print(f"{w.machine(device)}\n{what}, {args.steps} steps:")
    rows = []
    for precision in args.precision.split(","):
        r = run(args, precision, data)
        print(
            f"  {precision}: {r['utt_per_s']:8.1f} utt/s {r['frames_per_s']:10.0f} frames/s  step {r['step_ms']:7.1f} ms"
            f"  loader {100 * r['loader_share']:4.1f}%  peak {r['peak_gib']:.1f} GiB"
        )
        rows.append(
            [
                what,
                args.device,
                precision,
                f"{r['utt_per_s']:.1f}",
                f"{r['frames_per_s']:.0f}",
                f"{r['step_ms']:.1f}",
                f"{100 * r['loader_share']:.1f}%",
            ]  # fmt: skip
        )
    header = ["model", "device", "precision", "utt/s", "frames/s", "step ms (median)", "loader share"]
    w.append_markdown(args.markdown, f"Training throughput: {w.machine(device)}", header, rows)


if __name__ == "__main__":
    main()
