"""Flickr8k / Flickr30k / COCO preparation from archives the user downloaded (nothing is fetched here).

Inputs: the image archive (Flickr8k: ``Flickr8k_Dataset.zip`` with ``Flicker8k_Dataset/*.jpg``) and
Karpathy's ``caption_datasets.zip`` (or the bare ``dataset_flickr8k.json``). Output, the layout the
caption recipes read: ``OUT/dataset_<corpus>.json`` and ``OUT/images/<filename>``. Archives are verified
against ``--sha256`` values when given and extracted safely (:mod:`data_prep.corpora.archive`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from data_prep.corpora.archive import ArchiveError, extract_archive, verify_sha256
from data_prep.corpora.exit_status import exit_status
from data_prep.corpora.karpathy import KarpathyFormatError, load_karpathy

CORPORA = ("flickr8k", "flickr30k", "coco")


def prepare(corpus: str, images_archive: Path, captions: Path, out: Path, images_sha256: str | None = None,
            captions_sha256: str | None = None) -> Path:  # fmt: skip
    """Returns the path of the prepared ``dataset_<corpus>.json``."""
    if corpus not in CORPORA:
        raise ValueError(f"corpus {corpus!r}; accepted: {', '.join(CORPORA)}")
    json_name = f"dataset_{corpus}.json"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        tmp = Path(tmp)
        verify_sha256(captions, captions_sha256)
        if captions.suffix == ".json":
            shutil.copy(captions, out / json_name)
        else:
            found = list(extract_archive(captions, tmp / "captions").rglob(json_name))
            if not found:
                raise FileNotFoundError(
                    f"{captions} holds no {json_name}; is it Karpathy's caption_datasets.zip?"
                )
            shutil.copy(found[0], out / json_name)
        print(f"{images_archive}: sha256 {verify_sha256(images_archive, images_sha256)}")
        extract_archive(images_archive, tmp / "images")
        (out / "images").mkdir(exist_ok=True)
        for path in sorted((tmp / "images").rglob("*")):
            if path.is_file() and path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                path.replace(out / "images" / path.name)
    data = load_karpathy(out / json_name)
    missing = [im.image_id for im in data.images if not im.path.is_file()]
    print(
        f"{len(data.images)} images with captions; {len(missing)} listed but not in the archive {missing[:3]}"
    )
    return out / json_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=CORPORA, default="flickr8k")
    parser.add_argument("--images-archive", type=Path, required=True)
    parser.add_argument("--captions", type=Path, required=True, help="caption_datasets.zip or dataset_*.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images-sha256")
    parser.add_argument("--captions-sha256")
    args = parser.parse_args(argv)

    def work() -> None:
        path = prepare(
            args.corpus,
            args.images_archive,
            args.captions,
            args.out,
            args.images_sha256,
            args.captions_sha256,
        )
        print(f"prepared {path}")

    return exit_status(work, (ArchiveError, KarpathyFormatError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
