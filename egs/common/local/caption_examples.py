"""A page of example captions, one column per DSD phase, like the paper's Figure 3 (baseline vs. DSD).

Run: python egs/common/local/caption_examples.py --config CONF --checkpoint Dense=exp/dsd/checkpoints/phase1-end.pt
     --checkpoint Sparse=... --out exp/examples.md [--set key=value ...] [--set-str key=text ...]
Writes the markdown page and, beside it, a PNG grid of the images (small images only).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from PIL import Image

from dsd_seq.safe_io import load_checkpoint_dict
from dsd_seq.training.config import load_config
from dsd_seq.training.task import build_task


def write_examples(config_path: Path, checkpoints: list[tuple[str, Path]], out: Path, overrides: list[str],
                   split: str = "test", num: int = 8, literal_overrides: list[str] | None = None) -> Path:  # fmt: skip
    config = load_config(config_path, overrides, literal_overrides)
    task = build_task(config.task, {**config.task_args, "max_eval_images": num})
    columns = []
    for label, path in checkpoints:
        try:
            task.model.load_state_dict(load_checkpoint_dict(path)["model"])
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        images, captions = task.caption(split, torch.device("cpu"))
        columns.append((label, captions))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = out.with_suffix(".png")
    with Image.open(images[0].path) as first:
        w, h = first.size
    if max(w, h) <= 128:
        sheet = Image.new("RGB", (w * len(images), h))
        for i, image in enumerate(images):
            with Image.open(image.path) as im:
                sheet.paste(im.convert("RGB"), (i * w, 0))
        sheet.save(grid)
    header = ["#", "image", *(label for label, _ in columns), "a reference"]
    lines = [f"# Example captions ({split} split)", ""]
    if grid.exists():
        lines += [f"![images 1-{len(images)} left to right]({grid.name})", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, image in enumerate(images):
        link = os.path.relpath(image.path, out.parent)
        cells = [str(i + 1), f"![{image.image_id}]({link})", *(" ".join(c[i]) for _, c in columns),
                 " ".join(image.captions[0])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--checkpoint", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--out", type=Path, required=True, help="markdown page to write")
    parser.add_argument("--split", default="test")
    parser.add_argument("--num", type=int, default=8)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--set-str", action="append", default=[], metavar="KEY=TEXT", help="verbatim (paths)")
    args = parser.parse_args(argv)
    checkpoints = []
    for item in args.checkpoint:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(
                f"--checkpoint {item!r}: expected LABEL=PATH, e.g. Dense=exp/dsd/checkpoints/phase1-end.pt"
            )
        checkpoints.append((label, Path(path)))
    page = write_examples(args.config, checkpoints, args.out, args.set, args.split, args.num, args.set_str)
    print(f"examples: {page}")


if __name__ == "__main__":
    main()
