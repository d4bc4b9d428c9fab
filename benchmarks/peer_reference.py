"""Our DeepSpeech 2 training step against a peer reference: deepspeech.pytorch's published architecture.

The peer model is written here from deepspeech.pytorch's description (not its code): a spectrogram of 161
bins as ``[B, 1, freq, time]``; two 2-D convolutions with bias, (41 x 11) stride (2, 2) and (21 x 11)
stride (2, 1) in (freq, time), each followed by batch norm and a clipped ReLU (hardtanh 0..20), padded
frames zeroed after each; bidirectional RNN layers with their two directions summed, every layer but the
first preceded by batch norm over all (time, utterance) positions; batch norm and a bias-free linear layer
on top; CTC summed over the batch and divided by its size; AdamW (lr 1.5e-4, weight decay 1e-5) and
gradient clipping at norm 400.

Ours is ``models.speech.deepspeech2.DeepSpeech2`` at the same sizes (161 bins, DS2 Table 4's front end, which has
the same kernels and strides): the parameter counts differ only by the peer's conv biases and our output
bias (+64 - 29 = 35). Variants, each its own copy, timed in one process with the order rotated every round
so that machine load hits them alike:
  peer          the reference model
  ours          our model dense, its convolutions in the device's default orientation
  ours DSD      our model pruned 50% by dsd_seq (masked gradients, re-applied masks)
  ours <other>  our model dense, its convolutions in the other orientation (what the default is chosen by)
  ours <path>   our model dense, its recurrent layers on the other path (packed or padded, see
                models.speech.rnn_by_direction), the other choice the per-device default is measured by
Reported: per-round ratios to the peer (median and interquartile range) and step times. On CUDA each
precision (fp32, bf16, fp16) is measured, and ``--batch-sweep`` measures frames/s of the 67M DeepSpeech 2
against the batch size; both are skipped without a GPU.
Run: python benchmarks/peer_reference.py [--threads 1,2] [--rnn lstm:3:256,gru:3:512] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from dataclasses import dataclass

import torch
import workloads as w
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dsd_seq import DSD
from dsd_seq.training.precision import Precision
from models.speech.ctc import ctc_loss
from models.speech.deepspeech2 import (
    CONV_ORIENTATIONS,
    RECURRENT_PATHS,
    DeepSpeech2,
    DeepSpeech2Config,
    conv_orientation_for,
    recurrent_path_for,
)

BINS = 161  # deepspeech.pytorch: 20 ms windows at 16 kHz, n_fft 320 -> 161 spectrogram bins
_RNN = {"lstm": nn.LSTM, "gru": nn.GRU}


class PeerDeepSpeech2(nn.Module):
    """deepspeech.pytorch's DeepSpeech 2, from its description: input ``[B, F, T]``, output ``[T, B, C]``."""

    def __init__(self, rnn_type: str, hidden: int, layers: int, classes: int = 29, bins: int = BINS) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(1, 32, (41, 11), stride=(2, 2), padding=(20, 5)),
                nn.Conv2d(32, 32, (21, 11), stride=(2, 1), padding=(10, 5)),
            ]
        )
        self.conv_norms = nn.ModuleList([nn.BatchNorm2d(32), nn.BatchNorm2d(32)])
        bins = (bins + 2 * 20 - 41) // 2 + 1
        bins = (bins + 2 * 10 - 21) // 2 + 1
        sizes = [32 * bins] + [hidden] * (layers - 1)
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(size) if i else nn.Identity() for i, size in enumerate(sizes)
        )
        self.rnns = nn.ModuleList(_RNN[rnn_type](size, hidden, bidirectional=True) for size in sizes)
        self.hidden = hidden
        self.final_norm = nn.BatchNorm1d(hidden)
        self.fc = nn.Linear(hidden, classes, bias=False)

    def forward(self, spect: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = spect.unsqueeze(1)  # [B, 1, F, T]
        for conv, norm in zip(self.convs, self.conv_norms, strict=True):
            x = F.hardtanh(norm(conv(x)), 0.0, 20.0)
            lengths = (lengths + 2 * conv.padding[1] - conv.kernel_size[1]) // conv.stride[1] + 1
            padded = torch.arange(x.shape[3], device=x.device) >= lengths.to(x.device).unsqueeze(1)
            x = x.masked_fill(padded[:, None, None, :], 0.0)
        x = x.flatten(1, 2).permute(2, 0, 1)  # [T, B, C * F]
        for norm, rnn in zip(self.norms, self.rnns, strict=True):
            steps, batch = x.shape[:2]
            x = norm(x.flatten(0, 1)).view(steps, batch, -1)
            packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
            x, _ = pad_packed_sequence(rnn(packed)[0], total_length=steps)
            x = x.view(steps, batch, 2, self.hidden).sum(2)
        steps, batch = x.shape[:2]
        out = self.fc(self.final_norm(x.flatten(0, 1))).view(steps, batch, -1)
        return out.log_softmax(-1), lengths


def ours(
    rnn_type: str, hidden: int, layers: int, orientation: str | None, path: str | None = None
) -> DeepSpeech2:
    config = DeepSpeech2Config(num_features=BINS, rnn_type=rnn_type, rnn_hidden=hidden, rnn_layers=layers)
    return DeepSpeech2(config, conv_orientation=orientation, recurrent_path=path)


def peer_loss(model: nn.Module, batch) -> Tensor:
    feats, lengths, labels, label_lengths = batch
    log_probs, out_lengths = model(feats.transpose(1, 2), lengths)
    loss = F.ctc_loss(log_probs, labels, out_lengths, label_lengths, reduction="sum", zero_infinity=True)
    return loss / feats.shape[0]


def our_loss(model: nn.Module, batch) -> Tensor:
    feats, lengths, labels, label_lengths = batch
    return ctc_loss(*model(feats, lengths), labels, label_lengths)


def training_step(model: nn.Module, loss_fn, batch, precision: str, sparsity: float | None):
    """One AdamW step in the trainer's order; with ``sparsity`` the model is pruned by DSD first."""
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.5e-4, weight_decay=1e-5)
    amp = Precision(precision, device)
    dsd = None
    if sparsity is not None:
        dsd = DSD(model, optimizer)
        dsd.prune(sparsity)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with amp.autocast():
            loss = loss_fn(model, batch)
        amp.backward(loss)
        if dsd is not None:
            dsd.mask_gradients()
        amp.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 400.0)
        amp.step(optimizer)
        if dsd is not None:
            dsd.apply_masks()

    return step


@dataclass
class Run:
    name: str
    step: object
    times: list[float]


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def compare(rnn_type: str, hidden: int, layers: int, args, device: torch.device, precision: str) -> dict:
    """Step times of the five variants, rotated round by round; per-round ratios to the peer."""
    batch = w.speech_batch(args.batch, args.frames, device, BINS, args.spread, lengths_on_cpu=True)
    default = conv_orientation_for(device)
    other = next(o for o in CONV_ORIENTATIONS if o != default)
    other_path = next(o for o in RECURRENT_PATHS if o != recurrent_path_for(device))
    builders = {
        "peer": (lambda: PeerDeepSpeech2(rnn_type, hidden, layers), peer_loss, None),
        "ours": (lambda: ours(rnn_type, hidden, layers, None), our_loss, None),
        "ours DSD": (lambda: ours(rnn_type, hidden, layers, None), our_loss, 0.5),
        f"ours {other}": (lambda: ours(rnn_type, hidden, layers, other), our_loss, None),
        f"ours {other_path}": (lambda: ours(rnn_type, hidden, layers, None, other_path), our_loss, None),
    }
    runs, params = [], {}
    for name, (build, loss_fn, sparsity) in builders.items():
        torch.manual_seed(0)
        model = build().to(device)
        params[name] = sum(p.numel() for p in model.parameters())
        runs.append(Run(name, training_step(model, loss_fn, batch, precision, sparsity), []))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for run in runs:  # warm-up: oneDNN/cuDNN plans, the allocator
            for _ in range(args.warmup):
                run.step()
        for round_ in range(args.rounds):
            for run in runs[round_ % len(runs) :] + runs[: round_ % len(runs)]:
                w.synchronize(device)
                start = time.perf_counter()
                run.step()
                w.synchronize(device)
                run.times.append(time.perf_counter() - start)
    peer = runs[0].times
    return {
        "params": params,
        "times": {run.name: quartiles(run.times) for run in runs},
        "ratios": {
            run.name: quartiles([t / p for t, p in zip(run.times, peer, strict=True)]) for run in runs[1:]
        },
        "dsd_over_dense": quartiles([d / o for d, o in zip(runs[2].times, runs[1].times, strict=True)]),
        "default": default,
        "other": (f"ours {other}", f"ours {other_path}"),
    }


def batch_sweep(args, device: torch.device) -> None:
    """Frames/s of the 67M DeepSpeech 2 (dense, 40 bins) against the batch size, per precision (CUDA only)."""
    if device.type != "cuda":
        print("batch sweep: skipped, it needs a CUDA device")
        return
    rows = []
    for precision in args.precision.split(","):
        for size in (int(b) for b in args.batch_sweep.split(",")):
            torch.manual_seed(0)
            config = DeepSpeech2Config(num_features=40, **w.PAPER_DS2)
            model = DeepSpeech2(config).to(device)
            batch = w.speech_batch(size, args.frames, device, lengths_on_cpu=True)
            step = training_step(model, our_loss, batch, precision, None)
            try:
                for _ in range(args.warmup):
                    step()
                times = []
                for _ in range(args.rounds):
                    w.synchronize(device)
                    start = time.perf_counter()
                    step()
                    w.synchronize(device)
                    times.append(time.perf_counter() - start)
            except torch.OutOfMemoryError:
                print(f"  batch {size} {precision}: out of memory")
                break
            finally:
                del model, step
                torch.cuda.empty_cache()
            median = statistics.median(times)
            frames = size * args.frames
            print(
                f"  batch {size:4d} {precision}: {1000 * median:7.1f} ms/step, {frames / median:10,.0f} frames/s"
            )
            rows.append(
                [str(size), str(frames), precision, f"{1000 * median:.1f}", f"{frames / median:,.0f}"]
            )
    w.append_markdown(
        args.markdown,
        f"Batch size sweep, DeepSpeech 2 67M dense, {args.frames} frames per utterance: {w.machine(device)}",
        ["batch", "frames per batch", "precision", "step ms (median)", "frames/s"],
        rows,
    )


def fmt(q: tuple[float, float, float], scale: float = 1.0, digits: int = 3) -> str:
    return f"{scale * q[1]:.{digits}f} ({scale * q[0]:.{digits}f}-{scale * q[2]:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rnn", default="lstm:3:256,gru:3:512", help="type:layers:hidden, comma-separated")
    parser.add_argument("--threads", default="1,2", help="CPU thread counts to measure, in this process")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=300, help="frames per utterance (10 ms each)")
    parser.add_argument(
        "--spread",
        type=float,
        default=0.1,
        help="utterance lengths from frames down to frames * (1 - spread)",
    )
    parser.add_argument("--rounds", type=int, default=8, help="rounds; each times every variant once")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="fp32", help="comma-separated; bf16/fp16 only on CUDA")
    parser.add_argument("--batch-sweep", default="", help="CUDA: batch sizes for the 67M model's frames/s")
    parser.add_argument("--markdown", help="append the results as markdown tables to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = args.precision.split(",")
    if device.type != "cuda" and precisions != ["fp32"]:
        print("bf16/fp16: skipped, they are measured on CUDA only")
        precisions = ["fp32"]
    threads = [int(t) for t in args.threads.split(",")] if device.type == "cpu" else [torch.get_num_threads()]
    rows, started = [], w.machine(device, threads=False)
    for n in threads:
        torch.set_num_threads(n)
        print(w.machine(device))
        for spec in args.rnn.split(","):
            rnn_type, layers, hidden = spec.split(":")
            for precision in precisions:
                r = compare(rnn_type, int(hidden), int(layers), args, device, precision)
                what = f"{rnn_type.upper()} {layers} x {hidden}, batch {args.batch} x {args.frames}"
                if args.spread:
                    what += f" (lengths -{args.spread:.0%})"
                print(f"{what}, {precision}, {n} threads, {args.rounds} rounds: median (Q1-Q3)")
                print(f"  parameters: {r['params']}")
                for name, q in r["times"].items():
                    ratio = f"  ratio to peer {fmt(r['ratios'][name])}" if name in r["ratios"] else ""
                    print(f"  {name:16s} {fmt(q, 1000, 1)} ms/step{ratio}")
                print(f"  ours DSD / ours dense {fmt(r['dsd_over_dense'])}")
                other, other_path = r["other"]
                rows.append(
                    [
                        what,
                        f"{device.type} {n} thr" if device.type == "cpu" else device.type,
                        precision,
                        fmt(r["times"]["peer"], 1000, 1),
                        f"**{fmt(r['ratios']['ours'])}**",
                        fmt(r["ratios"]["ours DSD"]),
                        fmt(r["dsd_over_dense"]),
                        f"{other.split()[1]}: {fmt(r['ratios'][other])}",
                        f"{other_path.split()[1]}: {fmt(r['ratios'][other_path])}",
                    ]
                )
    header = ["model", "device", "precision", "peer ms/step", "ours / peer", "ours DSD / peer",
              "DSD / dense", "other orientation / peer", "other recurrent path / peer"]  # fmt: skip
    w.append_markdown(
        args.markdown,
        f"DeepSpeech 2 against the peer reference ({args.rounds} rounds, median (Q1-Q3)): {started}",
        header,
        rows,
    )
    if args.batch_sweep:
        batch_sweep(args, device)


if __name__ == "__main__":
    main()
