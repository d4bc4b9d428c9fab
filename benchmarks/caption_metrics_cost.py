"""What scoring every caption metric costs an evaluation, against BLEU alone, in one run.

The built-in captioning set's test split (500 images, 5 references each; written to a temporary folder),
each image "captioned" with the first reference of the next image, so hypotheses look like a model's.
Interleaved rounds of three variants, so machine load affects them alike:
  bleu    nltk BLEU-1..4 (what the caption task scored before)
  coco    BLEU + ROUGE-L + CIDEr-D (the PTB tokenisation in Python, pycocoevalcap's scorers)
  meteor  coco + METEOR through one warm Java process (skipped, said so, without Java)
and, once, the start of METEOR's Java process (paid once per run's process by the caption task).
Run: python benchmarks/caption_metrics_cost.py [--images 500] [--rounds 7] [--markdown RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from data_prep.corpora.synth_captions import SynthCaptionsConfig, generate
from dsd_seq.experiments.bleu import corpus_bleu_1_to_4
from dsd_seq.experiments.caption_metrics import MeteorScorer, caption_scores, meteor_skip_reason


def test_split(images: int) -> tuple[list[list[list[str]]], list[list[str]]]:
    """References and neighbour-caption hypotheses of the synthetic test split."""
    with tempfile.TemporaryDirectory() as tmp:
        config = SynthCaptionsConfig(num_train=0, num_val=0, num_test=images)
        data = json.loads(generate(tmp, config).read_text())
    refs = [[s["tokens"] for s in im["sentences"]] for im in data["images"] if im["split"] == "test"]
    return refs, [refs[(i + 1) % len(refs)][0] for i in range(len(refs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--markdown", type=Path, help="append the table to this file")
    args = parser.parse_args()
    refs, hyps = test_split(args.images)
    skipped = meteor_skip_reason("auto")
    meteor = None if skipped else MeteorScorer()
    start = time.perf_counter()
    if meteor is not None:
        caption_scores(refs[:1], hyps[:1], meteor)  # starts the Java process
    jvm_start = time.perf_counter() - start
    variants = {
        "bleu": lambda: corpus_bleu_1_to_4(refs, hyps),
        "coco": lambda: caption_scores(refs, hyps),
        **({"meteor": lambda: caption_scores(refs, hyps, meteor)} if meteor is not None else {}),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, score in variants.items():
            start = time.perf_counter()
            score()
            times[name].append(time.perf_counter() - start)
    base = times["bleu"]
    lines = [
        f"Scoring {len(refs)} images x 5 references, {args.rounds} interleaved rounds (median, "
        "interquartile range of per-round ratios to BLEU alone)",
        "",
        "| variant | median s | ratio to bleu | IQR of ratio |",
        "|---|---|---|---|",
    ]
    for name, values in times.items():
        ratios = sorted(v / b for v, b in zip(values, base, strict=True))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        lines.append(
            f"| {name} | {statistics.median(values):.3f} | {statistics.median(ratios):.2f}x "
            f"| {q[0]:.2f}-{q[2]:.2f} |"
        )
    lines += ["", f"METEOR's Java process start: {jvm_start:.1f} s" if meteor else skipped]
    print("\n".join(lines))
    if args.markdown:
        with args.markdown.open("a") as out:
            out.write("\n## caption_metrics_cost.py\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
