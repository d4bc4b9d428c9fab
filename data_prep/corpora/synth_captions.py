"""The built-in synthetic captioning data set: 64x64 images of one to three shapes, five captions each.

Why: the paper's captioning experiment (Sec. 4.3, Table 5) needs Flickr8k and VGG-16 weights, which not
everyone has; this set is made in seconds, offline, with no licence, and is hard enough that BLEU
separates a model that sees the image from one that does not (measured on 500 test images: an
image-blind LSTM scores BLEU-4 11.8, the best constant caption 15.6, and a sixth caption drawn from the
same grammar, scored against the five references, 57.6: an upper bound).

What is drawn: 1-3 non-overlapping objects (6 shapes x 8 colours x 2 sizes) in the cells of a 3x3 grid
with jitter, on one of 4 backgrounds, with clutter lines and colour jitter. Each image gets five distinct
references from a small grammar with paraphrases (circle/disk, big/large, ...), counts, positions,
relations and the background. Every caption names a shape: when captions could name none, one constant
caption scored BLEU-4 25.

Held-out combinations: a fixed set of (shape, colour) pairs never appears in training images; every dev
and test image holds at least one of them, so the captioner must compose words it learned apart.

Determinism: each image is drawn from ``numpy.random.default_rng([seed, split, index])``; candidate
captions are de-duplicated through a list, never a ``set`` (whose order depends on PYTHONHASHSEED).

On disk it is written in the layout of Karpathy's ``dataset_*.json`` (``images`` with ``filename``,
``split``, ``sentences`` of ``tokens`` and ``raw``) beside an ``images/`` folder of PNG files, so the same
reader (:mod:`data_prep.corpora.karpathy`) serves real and synthetic data. Each image entry also carries its
``objects`` (the labels the small CNN encoder is pretrained on).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
SHAPE_WORDS = {
    "circle": ("circle", "disk"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "cross": ("cross", "plus sign"),
    "ring": ("ring", "hoop"),
}
PLURAL = {"box": "boxes", "cross": "crosses", "plus sign": "plus signs", "rhombus": "rhombuses"}
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (40, 60, 230),
    "yellow": (235, 220, 30),
    "purple": (140, 40, 180),
    "orange": (245, 140, 20),
    "white": (245, 245, 245),
    "cyan": (30, 210, 220),
}
SIZES = {"small": 5, "big": 9}  # radius in pixels; cells are 21 px apart, so objects never overlap
SIZE_WORDS = {"small": ("small", "little", "tiny"), "big": ("big", "large")}
POSITIONS = (
    "top left",
    "top",
    "top right",
    "left",
    "centre",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
BACKGROUNDS = ("black", "grey", "dark blue", "brown")
BACKGROUND_RGB = {
    "black": (10, 10, 10),
    "grey": (110, 110, 110),
    "dark blue": (15, 20, 70),
    "brown": (80, 50, 25),
}
NUMBERS = {1: "one", 2: "two", 3: "three"}
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SynthCaptionsConfig:
    """Size and randomness of the synthetic captioning set."""

    num_train: int = 4000
    num_val: int = 300
    num_test: int = 500
    seed: int = 0
    clutter_lines: int = 3  # at most this many thin grey lines per image
    held_out_pairs: int = 6  # (shape, colour) pairs kept out of training


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    cell: int  # 0..8, row-major in the 3x3 grid
    x: int  # centre, pixels
    y: int

    def to_dict(self) -> dict:
        return {"shape": self.shape, "colour": self.colour, "size": self.size, "cell": self.cell,
                "x": self.x, "y": self.y}  # fmt: skip


def held_out_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """(shape, colour) pairs never drawn in training; a Latin-square pick so every shape and every colour
    still appears in training with other partners."""
    rng = np.random.default_rng([seed, 99])
    colours = list(COLOURS)
    offset = int(rng.integers(len(colours)))
    return [(shape, colours[(i * 3 + offset) % len(colours)]) for i, shape in enumerate(SHAPES)][:count]


def draw_scene(rng: np.random.Generator, held_out: list[tuple[str, str]], split: str, clutter: int):
    """One image and its objects. Training scenes avoid ``held_out`` pairs; dev/test scenes contain one."""
    n = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    cells = [int(c) for c in rng.permutation(9)[:n]]
    pairs = [(s, c) for s in SHAPES for c in COLOURS]
    allowed = [p for p in pairs if p not in held_out]
    chosen = []
    for i in range(n):
        pool = held_out if (split != "train" and i == 0) else allowed
        chosen.append(pool[int(rng.integers(len(pool)))])
    order = [int(i) for i in rng.permutation(n)]  # the held-out object is not always first
    objects = []
    for k, cell in enumerate(cells):
        shape, colour = chosen[order[k]]
        size = ("small", "big")[int(rng.integers(2))]
        cx = (cell % 3) * 21 + 11 + int(rng.integers(-1, 2))
        cy = (cell // 3) * 21 + 11 + int(rng.integers(-1, 2))
        objects.append(SceneObject(shape, colour, size, cell, cx, cy))
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    image = Image.new("RGB", (SIZE, SIZE), _jitter(BACKGROUND_RGB[background], rng, 10))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, clutter + 1))):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, SIZE, 4))
        draw.line((x0, y0, x1, y1), fill=_jitter((150, 150, 150), rng, 30), width=1)
    for obj in objects:
        _draw_object(draw, obj, _jitter(COLOURS[obj.colour], rng, 20))
    return image, objects, background


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, amount: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in rgb)


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, fill: tuple[int, int, int]) -> None:
    r, x, y = SIZES[obj.size], obj.x, obj.y
    if obj.shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif obj.shape == "ring":
        draw.ellipse((x - r, y - r, x + r, y + r), outline=fill, width=max(2, r // 3))
    elif obj.shape == "square":
        s = int(r * 0.85)
        draw.rectangle((x - s, y - s, x + s, y + s), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    elif obj.shape == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=fill)
    elif obj.shape == "cross":
        w = max(2, r // 3)
        draw.rectangle((x - r, y - w, x + r, y + w), fill=fill)
        draw.rectangle((x - w, y - r, x + w, y + r), fill=fill)


def _phrase(obj: SceneObject, rng: np.random.Generator, with_size: bool) -> str:
    words = SHAPE_WORDS[obj.shape]
    noun = words[int(rng.integers(len(words)))]
    size = SIZE_WORDS[obj.size][int(rng.integers(len(SIZE_WORDS[obj.size])))]
    return f"{size} {obj.colour} {noun}" if with_size else f"{obj.colour} {noun}"


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def candidate_captions(objects: list[SceneObject], background: str, rng: np.random.Generator) -> list[str]:
    """Many grammar-made descriptions of one scene (each names at least one shape), in a seeded order."""
    n = len(objects)
    ph = [_article(_phrase(o, rng, True)) for o in objects]
    short = [_article(_phrase(o, rng, False)) for o in objects]
    where = [f"in the {POSITIONS[o.cell]}" for o in objects]
    listing = ph[0] if n == 1 else ", ".join(ph[:-1]) + " and " + ph[-1]
    out = [
        listing,
        f"{listing} on a {background} background",
        f"there is {ph[0]} {where[0]}" + (f" and {short[1]} {where[1]}" if n > 1 else ""),
        f"{short[0]} {where[0]} of the picture",
        f"{ph[0]} {where[0]}",
    ]
    if n == 1:
        out += [f"a picture of {ph[0]}", f"a single {_phrase(objects[0], rng, False)} {where[0]}"]
    else:
        noun = "shapes" if rng.integers(2) else "objects"
        out += [f"{NUMBERS[n]} {noun} : {listing}", f"{NUMBERS[n]} {noun} on a {background} background"
                + f" , one of them is {short[0]}"]  # fmt: skip
        a, b = objects[0], objects[1]
        if a.cell % 3 < b.cell % 3:
            out.append(f"{short[0]} to the left of {short[1]}")
        elif a.cell % 3 > b.cell % 3:
            out.append(f"{short[0]} to the right of {short[1]}")
        if a.cell // 3 < b.cell // 3:
            out.append(f"{short[0]} above {short[1]}")
        elif a.cell // 3 > b.cell // 3:
            out.append(f"{short[0]} below {short[1]}")
    unique: list[str] = []
    for caption in out:
        if caption not in unique:
            unique.append(caption)
    return [unique[int(i)] for i in rng.permutation(len(unique))]


def tokenize(text: str) -> list[str]:
    """Lowercase whitespace tokens with punctuation split off (no downloaded tokenizer data needed)."""
    return "".join(c if c.isalnum() or c in " '" else f" {c} " for c in text.lower()).split()


def generate(out_dir: str | Path, config: SynthCaptionsConfig = SynthCaptionsConfig()) -> Path:
    """Write ``images/*.png`` and ``dataset_synth.json`` under ``out_dir``; returns the JSON path."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    held_out = held_out_pairs(config.held_out_pairs, config.seed)
    images, sentid = [], 0
    counts = {"train": config.num_train, "val": config.num_val, "test": config.num_test}
    for split_index, split in enumerate(SPLITS):
        for index in range(counts[split]):
            rng = np.random.default_rng([config.seed, split_index, index])
            image, objects, background = draw_scene(rng, held_out, split, config.clutter_lines)
            captions = candidate_captions(objects, background, rng)[:5]
            filename = f"{split}_{index:06d}.png"
            image.save(out_dir / "images" / filename)
            imgid = len(images)
            sentences = []
            for caption in captions:
                sentences.append(
                    {"raw": caption, "tokens": tokenize(caption), "imgid": imgid, "sentid": sentid}
                )
                sentid += 1
            images.append({
                "filename": filename, "imgid": imgid, "split": split,
                "sentids": [s["sentid"] for s in sentences], "sentences": sentences,
                "objects": [o.to_dict() for o in objects], "background": background,
            })  # fmt: skip
    path = out_dir / "dataset_synth.json"
    meta = {"dataset": "synth_captions", "held_out_pairs": [list(p) for p in held_out], "seed": config.seed}
    path.write_text(json.dumps({**meta, "images": images}) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (images/ and dataset_synth.json)"
    )
    parser.add_argument("--num-train", type=int, default=SynthCaptionsConfig.num_train)
    parser.add_argument("--num-val", type=int, default=SynthCaptionsConfig.num_val)
    parser.add_argument("--num-test", type=int, default=SynthCaptionsConfig.num_test)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = SynthCaptionsConfig(args.num_train, args.num_val, args.num_test, args.seed)
    path = generate(args.out, config)
    print(f"wrote {config.num_train}/{config.num_val}/{config.num_test} train/val/test images and {path}")


if __name__ == "__main__":
    main()
