"""Corpus BLEU-1..4 (Papineni et al. 2002) with nltk, as the paper's Table 5 reports BLEU for captioning.

Corpus level, every reference of an image. The common mistakes give very different numbers: on 500
captions of the synthetic set, corpus BLEU-4 with all five references was 51.5, the average of sentence
BLEU 46.3, and corpus BLEU against the first reference only 19.1. The brevity penalty uses the closest
reference length. Scores are on 0-100. Here in ``dsd_seq.experiments`` (nltk only) so that ``dsd-seq score
--bleu`` scores caption files without importing ``models``; the captioning task imports it from here.

Smoothing: nltk's ``method1`` (a count of 0.1 for an n-gram order with no match). It changes a score only
when some order has no match at all, which happens on tiny corpora; otherwise the values are unsmoothed.

Difference from sacrebleu / coco-caption: nltk counts ``max(1, number of n-grams)`` in the denominator for
a hypothesis shorter than n tokens, the others count 0; with hypotheses of at least 4 tokens the values
agree (tests/test_experiments_bleu.py checks both).
"""

from __future__ import annotations

import json
from pathlib import Path

from nltk.translate.bleu_score import SmoothingFunction, brevity_penalty, closest_ref_length, corpus_bleu

from dsd_seq.safe_io import read_utf8

SMOOTHING = "nltk method1 (epsilon 0.1 for an n-gram order without matches)"


def corpus_bleu_1_to_4(references: list[list[list[str]]], hypotheses: list[list[str]]) -> dict[str, float]:
    """``references[i]`` holds the tokenised references of image i, ``hypotheses[i]`` its caption;
    returns {"bleu1": .., "bleu2": .., "bleu3": .., "bleu4": ..} on 0-100."""
    if len(references) != len(hypotheses):
        raise ValueError(f"BLEU: {len(references)} reference sets for {len(hypotheses)} hypotheses")
    if not hypotheses:
        raise ValueError("BLEU: no hypotheses to score")
    for i, refs in enumerate(references):
        if not refs or not any(refs):
            raise ValueError(f"BLEU: image #{i} has no non-empty reference")
    smooth = SmoothingFunction().method1
    scores = {}
    for n in range(1, 5):
        weights = tuple([1.0 / n] * n)
        scores[f"bleu{n}"] = 100.0 * corpus_bleu(
            references, hypotheses, weights=weights, smoothing_function=smooth
        )
    return scores


class CaptionScoreError(ValueError):
    """A caption file or reference file that cannot be scored; the message names the file and images."""


#: Karpathy split names accepted by ``--split`` (the task calls "val" "dev")
KARPATHY_SPLITS = {"train": ("train", "restval"), "dev": ("val",), "val": ("val",), "test": ("test",)}


def read_karpathy_references(path: str | Path, split: str | None) -> dict[str, list[list[str]]]:
    """Image name -> tokenised references (lowercased, as the captioning task reads them) of ``split``
    (all images if None). An image is known by its ``filename`` and by ``filepath/filename``."""
    path = Path(path)
    try:
        data = json.loads(read_utf8(path, "Karpathy split file", CaptionScoreError))
    except (OSError, ValueError) as err:
        raise CaptionScoreError(f"{path}: not a readable Karpathy split file ({err})") from None
    images = _check_karpathy(path, data)
    if split is not None and split not in KARPATHY_SPLITS:
        raise CaptionScoreError(f"--split {split!r}; accepted: {', '.join(KARPATHY_SPLITS)}")
    refs: dict[str, list[list[str]]] = {}
    for entry in images:
        if split is not None and entry.get("split") not in KARPATHY_SPLITS[split]:
            continue
        captions = []
        for sentence in entry.get("sentences", []):
            tokens = sentence.get("tokens")
            if not isinstance(tokens, list):
                tokens = "".join(
                    c if c.isalnum() or c in " '" else " " for c in str(sentence.get("raw", ""))
                ).split()
            tokens = [str(t).lower() for t in tokens if str(t).strip()]
            if tokens:
                captions.append(tokens)
        refs[str(entry.get("filename"))] = captions
        if entry.get("filepath"):
            refs[f"{entry['filepath']}/{entry['filename']}"] = captions
    if not refs:
        raise CaptionScoreError(f"{path}: no images in split {split!r}")
    return refs


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


def score_caption_file(hyp: str | Path, refs: str | Path, split: str | None = "test") -> list[str]:
    """BLEU-1..4 of a caption file against every reference of each image; the printed summary lines."""
    hyps = read_caption_lines(hyp)
    references = read_karpathy_references(refs, split)
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
    scores = corpus_bleu_1_to_4(ref_lists, hyp_lists)
    hyp_len = sum(len(h) for h in hyp_lists)
    ref_len = sum(closest_ref_length(r, len(h)) for r, h in zip(ref_lists, hyp_lists, strict=True))
    bp = brevity_penalty(ref_len, hyp_len)
    return [
        " ".join(f"BLEU-{n} {scores[f'bleu{n}']:.2f}" for n in range(1, 5)),
        f"brevity penalty {bp:.4f} (hypothesis {hyp_len} words, closest references {ref_len} words)",
        f"scored {len(names)} images, {sum(len(r) for r in ref_lists)} references; smoothing: {SMOOTHING}",
    ]
