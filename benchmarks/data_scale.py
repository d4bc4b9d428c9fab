"""Memory and speed of training from a lilcom feature store as the corpus grows, against a lossless one.

Builds synthetic stores of 1x, 4x and 16x ``--base-utts`` utterances (40-bin utterance-normalised random
features, ``--min-frames``..``--max-frames`` long, random character transcripts at ~1 character per 8
frames), then trains a tiny DeepSpeech 2 for ``--steps`` steps on each, every run in a fresh process, the
trainer's data path exactly (``task.train_batches`` -> ``distributed.shard`` -> ``batches[i]`` ->
``task.loss``). Each run prints its peak resident memory (``ru_maxrss``) and the part of it above the
process's memory once torch and Lhotse are loaded ("data": the model, its training buffers and the data),
its steps/s after 10 warm-up steps and the loader's share of that time (fetching ``batches[i]``: reading
and padding). A separate process measures the memory a store's manifest and an epoch's index lists hold
per utterance. The lossless store (Lhotse numpy files holding the same decoded features, the built-in corpora's
storage) runs at 1x (interleaved with the lilcom store, for the steps/s ratio) and at 4x. (Before every speech
split was a store, this path was a ``.pt`` cache loaded whole; benchmarks/RESULTS.md keeps those rows.)

``--formats`` instead compares storage formats on real fbank features of synthetic audio: bytes per frame,
random-access read throughput and the largest error (Lhotse lilcom-chunky, Lhotse HDF5, kaldiio ark fp32
and Kaldi's compressed matrix).

Run: PYTHONPATH=. python benchmarks/data_scale.py [--base-utts 500] [--steps 200] [--markdown RESULTS.md]
     PYTHONPATH=. python benchmarks/data_scale.py --formats
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from data_prep.batching.speech_dataset import SpeechDataset
from data_prep.features.store import STORAGES, FeatureStore, FeatureStoreWriter
from data_prep.text.vocab import CharVocab

ROOT = Path(__file__).resolve().parents[1]
MODEL = {
    "conv_channels": [4],
    "conv_kernels": [[5, 11]],
    "conv_strides": [[2, 2]],
    "rnn_layers": 1,
    "rnn_hidden": 32,
}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_store(directory: Path, count: int, args: argparse.Namespace, seed: int) -> None:
    """``count`` synthetic utterances written one at a time (the writer's memory stays flat)."""
    vocab = CharVocab.default()
    letters = [s for s in vocab.symbols[1:] if s.isalpha()]
    rng = np.random.default_rng(seed)
    writer = FeatureStoreWriter(directory, "lilcom")
    for i in range(count):
        frames = int(rng.integers(args.min_frames, args.max_frames + 1))
        words = ["".join(rng.choice(letters, size=int(rng.integers(2, 7)))) for _ in range(frames // 48)]
        writer.add(
            f"utt{seed}-{i:07d}",
            " ".join(words),
            torch.from_numpy(rng.standard_normal((frames, 40), np.float32)),
        )
    writer.commit(feature_config={}, speed_factors=[], vocab=vocab.to_dict(), problems={}, resampled=[])


def store_to_numpy(directory: Path, out: Path) -> None:
    """A lossless (numpy files) store of a lilcom store's decoded features: the same numbers."""
    store = FeatureStore(directory)
    writer = FeatureStoreWriter(out, "numpy")
    for i, (utt_id, text) in enumerate(zip(store.utt_ids, store.texts, strict=True)):
        writer.add(utt_id, text, store.read(i))
    writer.commit(
        feature_config={}, speed_factors=[], vocab=store.manifest["vocab"], problems={}, resampled=[]
    )


def train_child(args: argparse.Namespace) -> None:
    """One measured run (in its own process): JSON with peak RSS, data RSS and steps/s on stdout."""
    import lhotse  # noqa: F401  (loaded before the baseline, as any store run loads it)

    from dsd_seq.training import distributed
    from models.speech.speech_task import build_task

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = json.loads(args.child)
    baseline = _rss_mb()
    task = build_task(
        data=data, model_args=MODEL, batch_frames=args.batch_frames, num_buckets=8, num_workers=args.workers
    )
    optimizer = torch.optim.Adam(task.model.parameters(), lr=1e-3)
    device = torch.device("cpu")
    task.model.train()
    steps, epoch, start, warm = 0, 0, None, 10
    while steps < args.steps + warm:
        batches = distributed.shard(task.train_batches(torch.Generator().manual_seed(epoch), epoch), 0, 1)
        for i in range(len(batches)):
            if steps == warm:
                start, loading = time.perf_counter(), 0.0
            fetch = time.perf_counter()
            batch = batches[i]
            if start is not None:
                loading += time.perf_counter() - fetch
            optimizer.zero_grad(set_to_none=True)
            task.loss(batch, device, task.model).backward()
            optimizer.step()
            steps += 1
            if steps == args.steps + warm:
                break
        epoch += 1
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    result = {"peak_mb": peak, "data_mb": peak - baseline, "steps_per_s": args.steps / elapsed}
    print(json.dumps({**result, "loader_share": loading / elapsed, "minor_faults": usage.ru_minflt}))


def manifest_child(directory: str) -> None:
    """Memory held for a store's manifest and an epoch's index lists: JSON with bytes per utterance."""
    import lhotse  # noqa: F401

    from data_prep.batching.bucketing import frame_budget_batches

    baseline = _rss_mb()
    data = SpeechDataset(FeatureStore(directory), CharVocab.default().encode)
    data = data.subset(range(len(data)))  # as the task keeps the CTC-feasible training utterances
    order = frame_budget_batches(data.frame_lengths(), 3200, torch.Generator().manual_seed(0), 8)
    held = (_rss_mb() - baseline) * 2**20
    print(json.dumps({"utterances": len(data), "batches": len(order), "bytes_per_utt": held / len(data)}))


def run_child(data: dict, args: argparse.Namespace, workers: int = 0) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(data), "--steps", str(args.steps)]
    command += ["--batch-frames", str(args.batch_frames), "--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if "manifest" in data:
        command = [sys.executable, __file__, "--manifest-of", data["manifest"]]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scale(args: argparse.Namespace) -> str:
    root = Path(args.dir or tempfile.mkdtemp(prefix="data_scale_"))
    root.mkdir(parents=True, exist_ok=True)
    dev = root / "dev"
    if not (dev / "manifest.json").is_file():
        build_store(dev, 16, args, seed=99)
    rows, sizes = [], {}
    for factor in (1, 4, 16):
        directory = root / f"train_{factor}x"
        started = time.perf_counter()
        if not (directory / "manifest.json").is_file():  # --dir keeps the stores of an earlier run
            build_store(directory, args.base_utts * factor, args, seed=factor)
        store = FeatureStore(directory)
        frames = int(store.num_frames.sum())
        size = os.path.getsize(directory / STORAGES["lilcom"].chunks)
        sizes[factor] = (directory, frames, size)
        print(f"{factor}x: {len(store)} utterances, {frames} frames, {size / 1e6:.0f} MB on disk "
              f"({size / frames:.1f} B/frame), written in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    for source, lossless in ((sizes[1][0], "numpy_1x"), (sizes[4][0], "numpy_4x"), (dev, "numpy_dev")):
        if not (root / lossless / "manifest.json").is_file():
            store_to_numpy(source, root / lossless)
    manifest = run_child({"manifest": str(sizes[16][0])}, args)
    print(f"manifest and index lists of 16x: {json.dumps(manifest)}", flush=True)
    results: dict[str, list[dict]] = {}

    def measure(name: str, data: dict, workers: int = 0) -> None:
        result = run_child(data, args, workers)
        results.setdefault(name, []).append(result)
        print(f"{name}: {json.dumps(result)}", flush=True)

    for _ in range(args.repeats):  # interleaved, so the machine's load affects both paths alike
        measure("numpy 1x", {"train": str(root / "numpy_1x"), "dev": str(root / "numpy_dev")})
        measure("store 1x", {"train": str(sizes[1][0]), "dev": str(dev)})
    for factor in (4, 16):
        measure(f"store {factor}x", {"train": str(sizes[factor][0]), "dev": str(dev)})
    measure("numpy 4x", {"train": str(root / "numpy_4x"), "dev": str(root / "numpy_dev")})
    if args.workers:
        measure(
            f"store 16x, {args.workers} workers", {"train": str(sizes[16][0]), "dev": str(dev)}, args.workers
        )
    base_speed = statistics.median(r["steps_per_s"] for r in results["numpy 1x"])
    for name, runs in results.items():
        factor = int(name.split()[1].rstrip("x,"))
        _, frames, size = sizes[factor]
        on_disk = (
            f"{size / 1e6:.0f} MB lilcom"
            if name.startswith("store")
            else f"{frames * 160 / 1e6:.0f} MB fp32 files"
        )
        speed = statistics.median(r["steps_per_s"] for r in runs)
        rows.append(
            f"| {name} | {frames:,} | {on_disk} | {max(r['peak_mb'] for r in runs):.0f} | "
            f"{max(r['data_mb'] for r in runs):.0f} | {speed:.2f} | {speed / base_speed:.2f} | "
            f"{100 * statistics.median(r['loader_share'] for r in runs):.1f}% |"
        )
    if not args.dir:
        shutil.rmtree(root)
    bytes_per_frame = sizes[16][2] / sizes[16][1]
    return "\n".join(
        [
            f"Tiny DeepSpeech 2 ({MODEL}), batch_frames {args.batch_frames}, {args.steps} steps after 10 warm-up, "
            f"1 torch thread; utterances {args.min_frames}-{args.max_frames} frames x 40 bins; "
            f"lilcom store: {bytes_per_frame:.1f} bytes/frame; numpy runs interleaved with the 1x lilcom run "
            f"({args.repeats} each, median steps/s).",
            "",
            "| run | frames | data | peak RSS MB | data RSS MB | steps/s | / numpy 1x | loader share |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Manifest and one epoch's index lists held in memory (16x store, {manifest['utterances']} utterances): "
            f"{manifest['bytes_per_utt']:.0f} bytes per utterance.",
        ]
    )


def formats() -> str:
    """Bytes/frame, random read throughput and largest error of four storage formats on real fbank."""
    import kaldiio
    import lhotse
    from lhotse import LilcomChunkyWriter, NumpyHdf5Writer
    from lhotse.features.io import LilcomChunkyReader, NumpyHdf5Reader

    from data_prep.features.extraction import FeatureConfig, compute_features

    lhotse.set_caching_enabled(False)
    rng = np.random.default_rng(0)
    feats = []
    for _ in range(300):  # 2-6 s of a vibrato tone, amplitude-modulated, in noise: fbank with structure
        n = int(rng.integers(32000, 96000))
        t = np.arange(n) / 16000
        wave = np.sin(2 * np.pi * rng.uniform(100, 300) * t * (1 + 0.3 * np.sin(np.pi * t)))
        wave = wave * (0.5 + 0.5 * np.sin(6 * np.pi * t)) + 0.05 * rng.standard_normal(n)
        feats.append(compute_features(torch.from_numpy(wave.astype(np.float32)), FeatureConfig()).numpy())
    frames = sum(len(f) for f in feats)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in (
            "Lhotse lilcom-chunky",
            "Lhotse NumPy HDF5",
            "kaldiio ark (fp32)",
            "kaldiio ark (Kaldi compressed)",
        ):
            d = Path(tmp) / str(len(rows))
            d.mkdir()
            started = time.perf_counter()
            if name.startswith("Lhotse"):
                lilcom = "lilcom" in name
                writer_cls = LilcomChunkyWriter if lilcom else NumpyHdf5Writer
                with writer_cls(d / ("f.lca" if lilcom else "f")) as writer:
                    keys = [
                        writer.write(str(i), f.copy()) for i, f in enumerate(feats)
                    ]  # lilcom writes in place
                reader = LilcomChunkyReader(d / "f.lca") if lilcom else NumpyHdf5Reader(d / "f.h5")

                def read(i, reader=reader, keys=keys):
                    return reader.read(keys[i])
            else:
                options = {"compression_method": 2} if "compressed" in name else {}
                with kaldiio.WriteHelper(f"ark,scp:{d}/f.ark,{d}/f.scp", **options) as writer:
                    for i, f in enumerate(feats):
                        writer(str(i), f.copy())
                scp = dict(line.split() for line in (d / "f.scp").read_text().splitlines())

                def read(i, scp=scp):
                    return kaldiio.load_mat(scp[str(i)])

            write_s = time.perf_counter() - started
            size = sum(p.stat().st_size for p in d.iterdir() if not p.name.endswith(".scp"))
            order, error = rng.permutation(len(feats)), 0.0
            started = time.perf_counter()
            for _ in range(3):
                for i in order:
                    error = max(error, float(np.abs(read(int(i)) - feats[i]).max()))
            read_s = time.perf_counter() - started
            rows.append(
                f"| {name} | {size / frames:.1f} | {frames / write_s / 1e3:.0f} | {3 * frames / read_s / 1e3:.0f} | {error:.4f} |"
            )
    return "\n".join(
        [
            f"{len(feats)} utterances, {frames} frames of 40-bin fbank (utterance-normalised), read 3 times in "
            "random order (read time includes the error check).",
            "",
            "| format | bytes/frame | write kframes/s | random read kframes/s | max abs error |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-utts", type=int, default=500, help="utterances of the 1x store")
    parser.add_argument("--min-frames", type=int, default=200)
    parser.add_argument("--max-frames", type=int, default=1600)
    parser.add_argument("--batch-frames", type=int, default=3200, help="padded frames a batch")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved 1x runs of each path")
    parser.add_argument("--workers", type=int, default=0, help="also a 16x run with this many loader workers")
    parser.add_argument("--dir", help="keep the stores here (default: a temporary folder, removed)")
    parser.add_argument("--formats", action="store_true", help="compare storage formats instead")
    parser.add_argument("--markdown", help="append the table to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--manifest-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.manifest_of:
        manifest_child(args.manifest_of)
        return
    if args.child:
        train_child(args)
        return
    table = formats() if args.formats else scale(args)
    print(table)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as f:
            f.write(f"\n{table}\n")


if __name__ == "__main__":
    main()
