"""Decoding cost (prefix beam search / greedy) and, on CUDA, the transducer loss backends side by side.

CPU: greedy vs our CTC prefix beam search (beam 4, 8) on DeepSpeech-sized outputs (29 classes), interleaved.
CUDA (``--device cuda``, for the lead's GPU check): warp-rnnt (if installed, extra [gpu]) against
torchaudio's rnnt_loss on the same joiner logits: loss and gradient agreement, and the time ratio.
Run: python benchmarks/decoding_and_transducer_loss.py [--device cuda] [--markdown RESULTS.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import torch
import torchaudio.functional
import workloads as w
from torch.nn import functional as F

from models.speech.ctc import greedy_decode
from models.speech.ctc_beam_search import beam_decode


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def decoding(repeats: int) -> list[list[str]]:
    torch.manual_seed(0)
    log_probs = (torch.randn(16, 150, 29) * 3).log_softmax(-1)  # 16 utterances, 150 output frames
    lengths = torch.full((16,), 150)
    greedy = _median_seconds(lambda: greedy_decode(log_probs, lengths), repeats)
    print(f"greedy: {greedy * 1000 / 16:.2f} ms/utterance")
    rows = [["greedy", f"{greedy * 1000 / 16:.2f}", "1"]]
    for beam in (4, 8):
        seconds = _median_seconds(lambda b=beam: beam_decode(log_probs, lengths, b), repeats)
        print(f"beam {beam}: {seconds * 1000 / 16:.1f} ms/utterance, {seconds / greedy:.0f}x greedy")
        rows.append(
            [f"prefix beam search, beam {beam}", f"{seconds * 1000 / 16:.1f}", f"{seconds / greedy:.0f}"]
        )
    return rows


def transducer_backends(repeats: int) -> list[list[str]]:
    if importlib.util.find_spec("warp_rnnt") is None:
        print("warp_rnnt not installed (pip install -e '.[gpu]'); nothing to compare")
        return []
    import warp_rnnt

    torch.manual_seed(0)
    batch, frames, labels_max, classes = 16, 200, 60, 101
    logits = torch.randn(batch, frames, labels_max + 1, classes, device="cuda", requires_grad=True)
    labels = torch.randint(1, classes, (batch, labels_max), device="cuda", dtype=torch.int32)
    frame_lengths = torch.full((batch,), frames, device="cuda", dtype=torch.int32)
    label_lengths = torch.full((batch,), labels_max, device="cuda", dtype=torch.int32)

    def run_warp():
        return warp_rnnt.rnnt_loss(F.log_softmax(logits, -1), labels, frame_lengths, label_lengths, blank=0)

    def run_torchaudio():
        return torchaudio.functional.rnnt_loss(
            logits, labels, frame_lengths, label_lengths, blank=0, reduction="none"
        )

    grads = []
    for fn in (run_warp, run_torchaudio):
        logits.grad = None
        costs = fn()
        costs.sum().backward()
        grads.append((costs.detach(), logits.grad.clone()))
    loss_diff = float((grads[0][0] - grads[1][0]).abs().max())
    grad_diff = float((grads[0][1] - grads[1][1]).abs().max())
    print(f"max |loss difference|: {loss_diff:.2e}")
    print(f"max |gradient difference|: {grad_diff:.2e}")

    def timed(fn):
        def step():
            fn().sum().backward()
            torch.cuda.synchronize()

        return step

    warp = _median_seconds(timed(run_warp), repeats)
    audio = _median_seconds(timed(run_torchaudio), repeats)
    print(
        f"forward+backward: warp-rnnt {warp * 1000:.1f} ms, torchaudio {audio * 1000:.1f} ms, ratio {audio / warp:.2f}"
    )
    return [
        [
            f"{warp * 1000:.1f}",
            f"{audio * 1000:.1f}",
            f"{audio / warp:.2f}",
            f"{loss_diff:.1e}",
            f"{grad_diff:.1e}",
        ]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", help="append the result as a markdown table to this file")
    args = parser.parse_args()
    if args.device == "cuda":
        rows = transducer_backends(args.repeats)
        header = ["warp-rnnt ms", "torchaudio ms", "torchaudio / warp-rnnt", "max loss diff", "max grad diff"]
        title = "Transducer loss, 16 x 200 frames x 61 labels x 101 classes, forward+backward"
    else:
        rows = decoding(args.repeats)
        header = ["decoder", "ms per utterance", "x greedy"]
        title = "CTC decoding, 16 utterances x 150 frames x 29 classes"
    if rows:
        w.append_markdown(args.markdown, f"{title}: {w.machine(torch.device(args.device))}", header, rows)


if __name__ == "__main__":
    main()
