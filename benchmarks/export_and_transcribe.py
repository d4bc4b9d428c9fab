"""Size and load time of exported models, dense vs compressed sparse (dsd_seq.export.sparse_storage),
for the paper's 67M DeepSpeech 2 at 50% and NeuralTalk at 80% (Tables 5 and 8); CPU transcription speed
(real-time factor) of the 67M DeepSpeech 2, and a dense vs ``torch.sparse`` matmul at its sparsity.

Weights are random and pruned by magnitude per matrix, as DSD's sparse phase does: sizes depend only on
the sparsity, speed only on the shapes. Run: ``python benchmarks/export_and_transcribe.py [--threads 2]``.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import workloads as w  # noqa: E402
from dsd_seq.export.sparse_storage import compress_state, expand_state  # noqa: E402


def prune(model: torch.nn.Module, sparsity: float) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and "embed" not in name:
                k = int(sparsity * p.numel())
                threshold = p.abs().flatten().kthvalue(k).values
                p[p.abs() <= threshold] = 0.0


def sizes(model: torch.nn.Module) -> dict[str, float]:
    out = {}
    state = model.state_dict()
    for label, stored in (("dense", state), ("sparse", compress_state(state)), ("sparse_fp16", compress_state(state, fp16=True))):  # fmt: skip
        buffer = io.BytesIO()
        torch.save(stored, buffer)
        out[f"{label}_MB"] = buffer.getbuffer().nbytes / 1e6
        buffer.seek(0)
        start = time.perf_counter()
        loaded = torch.load(buffer, weights_only=True)
        if label != "dense":
            loaded = expand_state(loaded)
        out[f"{label}_load_s"] = time.perf_counter() - start
    return out


@torch.no_grad()
def real_time_factor(model, seconds: float = 10.0, repeats: int = 3) -> float:
    model.eval()
    frames = int(seconds * 100)  # 10 ms frames
    feats = torch.randn(1, frames, 40, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([frames])
    model(feats, lengths)  # warm up
    start = time.perf_counter()
    for _ in range(repeats):
        model(feats, lengths)
    return (time.perf_counter() - start) / repeats / seconds


def sparse_matmul(hidden: int, sparsity: float, frames: int = 500) -> tuple[float, float]:
    weight = torch.randn(3 * hidden, hidden)
    weight[weight.abs() < weight.abs().flatten().kthvalue(int(sparsity * weight.numel())).values] = 0
    x = torch.randn(hidden, frames)
    csr = weight.to_sparse_csr()
    out = []
    for f in (lambda: weight @ x, lambda: csr @ x):
        f()
        start = time.perf_counter()
        for _ in range(5):
            f()
        out.append((time.perf_counter() - start) / 5)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ds2 = w.deepspeech2(w.PAPER_DS2["rnn_hidden"], w.PAPER_DS2["rnn_layers"])
    params = sum(p.numel() for p in ds2.parameters()) / 1e6
    rtf_dense = real_time_factor(ds2)
    prune(ds2, 0.5)
    print(f"DeepSpeech 2 ({params:.1f}M) at 50%: " + ", ".join(f"{k} {v:.3f}" for k, v in sizes(ds2).items()))
    print(f"DeepSpeech 2 real-time factor on {args.threads} CPU threads (10 s of audio, dense kernels): "
          f"{rtf_dense:.3f} before pruning, {real_time_factor(ds2):.3f} pruned")  # fmt: skip
    dense_s, sparse_s = sparse_matmul(w.PAPER_DS2["rnn_hidden"], 0.5)
    print(f"GRU input projection {3 * 912}x912 @ 912x500 at 50%: dense {1e3 * dense_s:.2f} ms, "
          f"torch.sparse CSR {1e3 * sparse_s:.2f} ms")  # fmt: skip
    nt = w.neuraltalk(w.PAPER_NEURALTALK["hidden"])
    prune(nt, 0.8)
    print("NeuralTalk at 80%: " + ", ".join(f"{k} {v:.3f}" for k, v in sizes(nt).items()))
    dense_s, sparse_s = sparse_matmul(256, 0.8)
    print(
        f"LSTM 768x256 @ 256x500 at 80%: dense {1e3 * dense_s:.2f} ms, torch.sparse CSR {1e3 * sparse_s:.2f} ms"
    )


if __name__ == "__main__":
    main()
