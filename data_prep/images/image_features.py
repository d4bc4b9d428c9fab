"""Fixed CNN image features, extracted once and cached: Karpathy split file + images -> one ``.pt`` file.

Why cached: the paper (Sec. 4.3) keeps the CNN fixed and trains only the captioner, so every DSD phase
reads the same features; computing them once makes each epoch a pass over the LSTM alone.

Encoders: ``small_cnn`` (the built-in one, :mod:`data_prep.images.small_cnn_encoder`, needs ``--encoder-checkpoint``),
``vgg16`` (fc7, 4096-d, as in the paper) and ``resnet50`` (pooled, 2048-d) from torchvision, which is an
optional extra (``pip install dsd-seq[vision]``) and needs the weights on disk.

Missing or unreadable images are skipped and counted (``problems`` in the cache, and printed); if more
than ``max_bad_fraction`` of the images are bad the data is probably wrong and nothing is written. The
cache is written and checked as :mod:`data_prep.images.feature_cache` says.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from data_prep.corpora.karpathy import load_karpathy
from data_prep.images import small_cnn_encoder as small_cnn
from data_prep.images.feature_cache import CacheFormat

CACHE_KIND = "caption_features"
IMAGE_FEATURE_CACHE = CacheFormat(
    kind=CACHE_KIND,
    version=1,
    what="image feature cache",
    rebuild="python -m data_prep.images.image_features --dataset <dataset_*.json> --out {path}",
    legacy_header={"kind": CACHE_KIND},  # caches written before they had a version
)
ENCODERS = ("small_cnn", "vgg16", "resnet50")


class ImageDataError(ValueError):
    """Too many images of a data set are missing or unreadable."""


def build_encoder(name: str, checkpoint: str | Path | None):
    """Returns (a function [PIL images] -> [N, D] features, a description)."""
    if name == "small_cnn":
        if checkpoint is None:
            raise ValueError(
                "--encoder small_cnn needs --encoder-checkpoint (made by python -m data_prep.images.small_cnn_encoder)"
            )
        model = small_cnn.load(checkpoint)
        return (lambda images: model.features(torch.stack([small_cnn.to_tensor(im) for im in images]))), (
            f"small_cnn ({checkpoint})"
        )
    if name in ("vgg16", "resnet50"):
        from data_prep.images.torchvision_encoders import load_torchvision_encoder

        return load_torchvision_encoder(name, checkpoint), f"{name} ({checkpoint or 'torch hub cache'})"
    raise ValueError(f"--encoder {name!r}; accepted: {', '.join(ENCODERS)}")


def extract_features(
    json_path: str | Path,
    out_path: str | Path,
    encoder: str = "small_cnn",
    encoder_checkpoint: str | Path | None = None,
    image_root: str | Path | None = None,
    batch_size: int = 64,
    max_bad_fraction: float = 0.05,
) -> dict:
    """Features of every image the split file lists; returns the cache written to ``out_path``."""
    data = load_karpathy(json_path, image_root)
    encode, description = build_encoder(encoder, encoder_checkpoint)
    ids, feats, problems = [], [], {}
    batch_ids, batch_images = [], []

    def flush() -> None:
        if batch_images:
            with torch.no_grad():
                feats.append(encode(batch_images).float())
            ids.extend(batch_ids)
            batch_ids.clear()
            batch_images.clear()

    for image in data.images:
        try:
            with Image.open(image.path) as im:
                batch_images.append(im.convert("RGB"))
            batch_ids.append(image.image_id)
        except FileNotFoundError:
            problems.setdefault("missing_image", []).append(f"{image.image_id} ({image.path})")
        except (UnidentifiedImageError, OSError) as err:
            problems.setdefault("unreadable_image", []).append(f"{image.image_id} ({image.path}: {err})")
        if len(batch_images) >= batch_size:
            flush()
    flush()
    bad = sum(len(v) for v in problems.values())
    for kind, items in problems.items():
        print(f"skipped {len(items)} image(s): {kind}, e.g. {items[:3]}")
    if not ids or bad / max(len(data.images), 1) > max_bad_fraction:
        raise ImageDataError(
            f"{json_path}: {bad} of {len(data.images)} images are missing or unreadable "
            f"({ {k: v[:3] for k, v in problems.items()} }); check the image folder "
            f"({image_root or Path(json_path).parent / 'images'}) or raise --max-bad-fraction"
        )
    contents = {"encoder": description, "image_ids": ids, "features": torch.cat(feats), "problems": problems}
    return IMAGE_FEATURE_CACHE.save(contents, out_path)


def load_feature_cache(path: str | Path) -> dict:
    """A cache written by extract_features; FeatureCacheError says how to rebuild a bad one."""
    return IMAGE_FEATURE_CACHE.load(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="Karpathy split file (dataset_*.json)")
    parser.add_argument("--images", type=Path, help="image folder (default: images/ beside the JSON)")
    parser.add_argument("--out", type=Path, required=True, help="feature cache to write (.pt)")
    parser.add_argument("--encoder", default="small_cnn", choices=ENCODERS)
    parser.add_argument(
        "--encoder-checkpoint", type=Path, help="small_cnn: its .pt; vgg16/resnet50: weights .pth"
    )
    parser.add_argument("--max-bad-fraction", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cache = extract_features(
        args.dataset, args.out, args.encoder, args.encoder_checkpoint, args.images,
        max_bad_fraction=args.max_bad_fraction,
    )  # fmt: skip
    print(
        f"{len(cache['image_ids'])} images x {cache['features'].shape[1]} features ({cache['encoder']}) -> {args.out}"
    )


if __name__ == "__main__":
    main()
