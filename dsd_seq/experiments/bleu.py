"""Corpus BLEU-1..4 (Papineni et al. 2002) with nltk, as the paper's Table 5 reports BLEU for captioning.

Corpus level, every reference of an image. The common mistakes give very different numbers: on 500
captions of the synthetic set, corpus BLEU-4 with all five references was 51.5, the average of sentence
BLEU 46.3, and corpus BLEU against the first reference only 19.1. The brevity penalty uses the closest
reference length. Scores are on 0-100. Here in ``dsd_seq.experiments`` (nltk only) so that ``dsd-seq score
--captions`` scores caption files without importing ``models``; the captioning task imports it from here.

Smoothing: nltk's ``method1`` (a count of 0.1 for an n-gram order with no match). It changes a score only
when some order has no match at all, which happens on tiny corpora; otherwise the values are unsmoothed.

Difference from sacrebleu / coco-caption: nltk counts ``max(1, number of n-grams)`` in the denominator for
a hypothesis shorter than n tokens, the others count 0; with hypotheses of at least 4 tokens the values
agree (tests/test_experiments_bleu.py checks both).
"""

from __future__ import annotations

from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

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
