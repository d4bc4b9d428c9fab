"""Caption files in and out of ``dsd-seq score --captions``: a Karpathy split file's references, the
``<image> <caption>`` lines ``dsd-seq caption`` prints, and their scores with every caption metric.

Every image of the split must be captioned once and every caption must name an image of the split; a
mismatch is an error naming the file and examples, so a score is never of a silently different set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from nltk.translate.bleu_score import brevity_penalty, closest_ref_length

from dsd_seq.experiments.bleu import SMOOTHING
from dsd_seq.experiments.caption_metrics import MeteorScorer, caption_scores, meteor_skip_reason
from dsd_seq.safe_io import read_utf8


class CaptionScoreError(ValueError):
    """A caption file or reference file that cannot be scored; the message names the file and images."""


#: Karpathy split names accepted by ``--split`` (the task calls "val" "dev")
KARPATHY_SPLITS = {"train": ("train", "restval"), "dev": ("val",), "val": ("val",), "test": ("test",)}


class References(NamedTuple):
    """The references of a split, by image name."""

    tokens: dict[str, list[list[str]]]  # lowercased tokens, as the captioning task reads them (BLEU's input)
    texts: dict[str, list[str]]  # each sentence's ``raw`` text where it has one, else its tokens joined


def read_karpathy_references(path: str | Path, split: str | None) -> References:
    """The references of ``split`` (all images if None). An image is known by its ``filename`` and by
    ``filepath/filename``. BLEU scores the tokens; the COCO metrics the raw texts, as coco-caption does."""
    path = Path(path)
    try:
        data = json.loads(read_utf8(path, "Karpathy split file", CaptionScoreError))
    except (OSError, ValueError) as err:
        raise CaptionScoreError(f"{path}: not a readable Karpathy split file ({err})") from None
    images = _check_karpathy(path, data)
    if split is not None and split not in KARPATHY_SPLITS:
        raise CaptionScoreError(f"--split {split!r}; accepted: {', '.join(KARPATHY_SPLITS)}")
    refs: dict[str, list[list[str]]] = {}
    texts: dict[str, list[str]] = {}
    for entry in images:
        if split is not None and entry.get("split") not in KARPATHY_SPLITS[split]:
            continue
        captions, raw = [], []
        for sentence in entry.get("sentences", []):
            tokens = sentence.get("tokens")
            if not isinstance(tokens, list):
                tokens = "".join(
                    c if c.isalnum() or c in " '" else " " for c in str(sentence.get("raw", ""))
                ).split()
            tokens = [str(t).lower() for t in tokens if str(t).strip()]
            if tokens:
                captions.append(tokens)
                raw.append(sentence["raw"] if isinstance(sentence.get("raw"), str) else " ".join(tokens))
        names = [str(entry.get("filename"))]
        if entry.get("filepath"):
            names.append(f"{entry['filepath']}/{entry['filename']}")
        for name in names:
            refs[name], texts[name] = captions, raw
    if not refs:
        raise CaptionScoreError(f"{path}: no images in split {split!r}")
    return References(refs, texts)


def _check_karpathy(path: Path, data: object) -> list[dict]:
    """``data["images"]``, after checking the shape this reader relies on; the error names the place in
    the JSON (``images[3].sentences[1].tokens``)."""

    def fail(where: str, expected: str, value: object) -> CaptionScoreError:
        return CaptionScoreError(
            f"{path}: {where} must be {expected}, got {type(value).__name__}; a Karpathy split file is "
            '{"images": [{"filename": ..., "split": ..., "sentences": [{"tokens": [...], "raw": ...}]}]}'
        )

    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise fail("images", "a list", data.get("images") if isinstance(data, dict) else data)
    for i, entry in enumerate(data["images"]):
        if not isinstance(entry, dict):
            raise fail(f"images[{i}]", "an object", entry)
        if not isinstance(entry.get("filename"), str):
            raise fail(f"images[{i}].filename", "a string", entry.get("filename"))
        for key in ("split", "filepath"):
            if key in entry and not isinstance(entry[key], str):
                raise fail(f"images[{i}].{key}", "a string", entry[key])
        sentences = entry.get("sentences", [])
        if not isinstance(sentences, list):
            raise fail(f"images[{i}].sentences", "a list", sentences)
        for j, sentence in enumerate(sentences):
            where = f"images[{i}].sentences[{j}]"
            if not isinstance(sentence, dict):
                raise fail(where, "an object", sentence)
            tokens = sentence.get("tokens")
            if tokens is not None and not (
                isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)
            ):
                raise fail(f"{where}.tokens", "a list of strings", tokens)
            if "raw" in sentence and not isinstance(sentence["raw"], str):
                raise fail(f"{where}.raw", "a string", sentence["raw"])
    return data["images"]


def read_caption_lines(path: str | Path) -> dict[str, list[str]]:
    """``<image> <caption>`` lines (what ``dsd-seq caption`` prints) -> image -> lowercased tokens."""
    path = Path(path)
    out: dict[str, list[str]] = {}
    for number, line in enumerate(read_utf8(path, "caption file", CaptionScoreError).splitlines(), 1):
        if not line.strip():
            continue
        name, _, text = line.strip().partition(" ")
        if name in out:
            raise CaptionScoreError(f"{path}:{number}: image {name!r} is captioned twice")
        out[name] = text.lower().split()
    if not out:
        raise CaptionScoreError(f"{path}: no caption lines ('<image> <caption>')")
    return out


#: the COCO caption evaluation's names of the metrics beside BLEU, in its order
COCO_LABELS = {"meteor": "METEOR", "rouge_l": "ROUGE-L", "cider_d": "CIDEr-D"}


def score_caption_file(
    hyp: str | Path, refs: str | Path, split: str | None = "test", meteor: str = "auto"
) -> list[str]:
    """Every caption metric of a caption file against all references of each image (METEOR as
    ``meteor``: off, auto or on); the printed summary lines."""
    skipped = meteor_skip_reason(meteor)
    hyps = read_caption_lines(hyp)
    references, reference_texts = read_karpathy_references(refs, split)
    unknown = sorted(set(hyps) - set(references))
    if unknown:
        raise CaptionScoreError(
            f"{hyp}: {len(unknown)} image(s) not in split {split!r} of {refs} (e.g. {unknown[:3]}); "
            "check --split and that the file names match the 'filename' entries"
        )
    by_file = {name for name in references if "/" not in name} or set(references)
    missing = sorted(n for n in by_file if n not in hyps and not any(k.endswith("/" + n) for k in hyps))
    if missing:
        raise CaptionScoreError(
            f"{hyp}: no caption for {len(missing)} image(s) of split {split!r} of {refs} (e.g. {missing[:3]}); "
            "caption every image of the split (e.g. dsd-seq caption MODEL images/... > HYP)"
        )
    names = sorted(hyps)
    empty = [n for n in names if not references[n]]
    if empty:
        raise CaptionScoreError(f"{refs}: image(s) {empty[:3]} have no non-empty reference caption")
    ref_lists, hyp_lists = [references[n] for n in names], [hyps[n] for n in names]
    scores = caption_scores(
        ref_lists, hyp_lists, None if skipped else MeteorScorer(), [reference_texts[n] for n in names]
    )
    hyp_len = sum(len(h) for h in hyp_lists)
    ref_len = sum(closest_ref_length(r, len(h)) for r, h in zip(ref_lists, hyp_lists, strict=True))
    bp = brevity_penalty(ref_len, hyp_len)
    coco = [f"{label} {scores[key]:.2f}" for key, label in COCO_LABELS.items() if key in scores]
    return [
        " ".join(f"BLEU-{n} {scores[f'bleu{n}']:.2f}" for n in range(1, 5)),
        " ".join(coco),
        *([skipped] if skipped else []),
        f"brevity penalty {bp:.4f} (hypothesis {hyp_len} words, closest references {ref_len} words)",
        f"scored {len(names)} images, {sum(len(r) for r in ref_lists)} references; BLEU: nltk on the split "
        f"file's tokens, smoothing: {SMOOTHING}; METEOR, ROUGE-L, CIDEr-D: coco-caption's scorers on PTB tokens "
        "(CIDEr-D's document frequencies from this split's references); all on 0-100",
    ]
