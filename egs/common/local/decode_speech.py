"""Decode a split with a speech checkpoint into Kaldi-style ``ref.txt`` and ``hyp.txt`` files.

Why files: ``dsd-seq score`` (like Kaldi's compute-wer) then scores them, and a person can diff them to see
which utterances went wrong, or score them with another tool.

Run: python egs/common/local/decode_speech.py --config CONF --checkpoint exp/dsd/checkpoints/phase3-end.pt
     --split dev --split test --out-dir exp/dsd [--set key=value ...] [--set-str key=text ...]
writes OUT_DIR/decode_<split>/{ref,hyp}.txt and their scores wer.txt and cer.txt (as ``dsd-seq score``
prints them), in one process, so the model and the features load once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from dsd_seq.experiments.score import score_files
from dsd_seq.safe_io import CheckpointError, load_checkpoint_dict
from dsd_seq.training.config import load_config
from dsd_seq.training.task import build_task


def decode_and_score(config_path: Path, checkpoint: Path, splits: list[str], out_dir: Path,
                     overrides: list[str], literal_overrides: list[str]) -> dict[str, list[str]]:  # fmt: skip
    """Decode and score each split into ``out_dir/decode_<split>``; returns split -> compute-wer lines."""
    config = load_config(config_path, overrides, literal_overrides)
    state = load_checkpoint_dict(checkpoint)  # before the (slow) task: a bad file is named at once
    task = build_task(config.task, config.task_args)
    unknown = [split for split in splits if split not in task.datasets]
    if unknown:
        raise ValueError(f"--split {unknown}: the config's task_args.data has only {sorted(task.datasets)}")
    try:
        task.model.load_state_dict(state["model"])
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"{checkpoint}: cannot load into this config's model ({err})") from None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    task.model.to(device).eval()
    scores = {}
    for split in splits:
        with torch.no_grad():
            ids, refs, hyps = task.transcribe(split, device)
        folder = out_dir / f"decode_{split}"
        folder.mkdir(parents=True, exist_ok=True)
        order = sorted(range(len(ids)), key=ids.__getitem__)
        for name, texts in (("ref.txt", refs), ("hyp.txt", hyps)):
            lines = "".join(f"{ids[i]} {texts[i]}".rstrip() + "\n" for i in order)
            (folder / name).write_text(lines, encoding="utf-8")
        scores[split] = []
        for name, unit in (("wer.txt", "word"), ("cer.txt", "char")):
            lines = score_files(folder / "ref.txt", folder / "hyp.txt", unit=unit).kaldi_lines()
            (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
            scores[split] += lines[:1]
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python egs/common/local/decode_speech.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--split", action="append", required=True, help="a split named in the config's task_args.data"
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="writes OUT_DIR/decode_<split>/")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--set-str", action="append", default=[], metavar="KEY=TEXT", help="verbatim (paths)")
    args = parser.parse_args(argv)
    try:
        scores = decode_and_score(
            args.config, args.checkpoint, args.split, args.out_dir, args.set, args.set_str
        )
    except (ValueError, OSError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for split, lines in scores.items():
        print(f"{args.checkpoint} {split}: " + "  ".join(lines) + f"  ({args.out_dir / f'decode_{split}'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
