"""BLEU: known values, all references, and agreement with sacrebleu on the same tokens."""

import pytest

from dsd_seq.experiments.bleu import corpus_bleu_1_to_4

# nltk's documented corpus_bleu example (nltk.translate.bleu_score.corpus_bleu docstring): 0.5920778868801042
HYP1 = [
    "It",
    "is",
    "a",
    "guide",
    "to",
    "action",
    "which",
    "ensures",
    "that",
    "the",
    "military",
    "always",
    "obeys",
    "the",
    "commands",
    "of",
    "the",
    "party",
]
REF1 = [
    [
        "It",
        "is",
        "a",
        "guide",
        "to",
        "action",
        "that",
        "ensures",
        "that",
        "the",
        "military",
        "will",
        "forever",
        "heed",
        "Party",
        "commands",
    ],
    [
        "It",
        "is",
        "the",
        "guiding",
        "principle",
        "which",
        "guarantees",
        "the",
        "military",
        "forces",
        "always",
        "being",
        "under",
        "the",
        "command",
        "of",
        "the",
        "Party",
    ],
    [
        "It",
        "is",
        "the",
        "practical",
        "guide",
        "for",
        "the",
        "army",
        "always",
        "to",
        "heed",
        "the",
        "directions",
        "of",
        "the",
        "party",
    ],
]
HYP2 = ["he", "read", "the", "book", "because", "he", "was", "interested", "in", "world", "history"]
REF2 = [["he", "was", "interested", "in", "world", "history", "because", "he", "read", "the", "book"]]


def test_nltk_documented_corpus_value():
    assert corpus_bleu_1_to_4([REF1, REF2], [HYP1, HYP2])["bleu4"] == pytest.approx(59.20778868801042)


def test_identical_caption_scores_100_and_every_reference_counts():
    refs = [[["a", "red", "circle", "in", "the", "top", "left"], ["a", "small", "red", "disk"]]]
    assert corpus_bleu_1_to_4(refs, [refs[0][0]])["bleu4"] == pytest.approx(100.0)
    # matching only the second reference is as good as matching the first
    assert corpus_bleu_1_to_4(refs, [["a", "small", "red", "disk"]])["bleu4"] == pytest.approx(100.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 reference sets for 1 hypotheses"):
        corpus_bleu_1_to_4([[["a"]], [["b"]]], [["a"]])
    with pytest.raises(ValueError, match="image #1 has no non-empty reference"):
        corpus_bleu_1_to_4([[["a", "b"]], []], [["a"], ["b"]])


def test_agrees_with_sacrebleu_except_for_hypotheses_shorter_than_four_tokens():
    sacrebleu = pytest.importorskip("sacrebleu")
    refs = [REF1, REF2 + REF2 + REF2]
    hyps = [HYP1, HYP2]

    def sacre(hyps, refs):
        streams = [[" ".join(r[k]) for r in refs] for k in range(3)]
        return sacrebleu.corpus_bleu([" ".join(h) for h in hyps], streams, tokenize="none", force=True).score

    assert corpus_bleu_1_to_4(refs, hyps)["bleu4"] == pytest.approx(sacre(hyps, refs), abs=1e-6)
    # a 3-token hypothesis: nltk counts max(1, #4-grams) = 1 in the 4-gram denominator, sacrebleu 0,
    # so nltk is slightly lower (on 500 synthetic captions: 51.48 against 51.58); within 1 BLEU here
    short = [HYP1, ["he", "read", "history"]]
    ours, theirs = corpus_bleu_1_to_4(refs, short)["bleu4"], sacre(short, refs)
    assert ours < theirs and theirs - ours < 1.0
