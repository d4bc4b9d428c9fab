"""Corpus-level WER and CER in percent, of lists of references and hypotheses (a task's evaluation)."""

import pytest

from dsd_seq.experiments.score import ErrorCounts, cer, error_counts, wer


def test_one_substitution_in_three_words_is_33_percent():
    assert wer(["a b c"], ["a x c"]) == pytest.approx(100 / 3)


def test_wer_is_corpus_level_not_a_mean_of_utterance_rates():
    # utterance rates 0% and 100% would average 50%; corpus level is 1 error / 4 words
    assert wer(["a b c", "d"], ["a b c", "x"]) == pytest.approx(25.0)


def test_empty_hypothesis_counts_every_reference_word_as_deleted():
    assert error_counts(["a b", "c d e"], ["a b", ""]) == ErrorCounts(
        0, 3, 0, 2, sentences=2, sentence_errors=1
    )
    assert wer(["a b", "c d e"], ["a b", ""]) == pytest.approx(60.0)


def test_cer_counts_characters_including_spaces():
    assert cer(["ab cd"], ["ab cx"]) == pytest.approx(20.0)
    assert cer(["abc"], [""]) == pytest.approx(100.0)


def test_insertions_are_counted_and_can_push_wer_over_100():
    assert error_counts(["a"], ["a b c"]) == ErrorCounts(0, 0, 2, 1, sentences=1, sentence_errors=1)
    assert wer(["a"], ["x y z"]) == pytest.approx(300.0)


def test_mismatched_or_empty_inputs_raise_errors():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="every reference is empty"):
        wer([""], ["a"])


def test_an_empty_reference_makes_every_hypothesis_word_an_insertion():
    # jiwer 3 refuses empty references; the scorer counts them itself, the same in both units
    counts = error_counts(["a b", ""], ["a b", "x y"])
    assert counts == ErrorCounts(0, 0, 2, 2, sentences=2, sentence_errors=1)
    assert error_counts(["ab", ""], ["ab", " xy "], "char").insertions == 2
    assert error_counts(["ab", ""], ["ab", ""]).sentence_errors == 0


def test_the_summary_lines_of_an_in_memory_scoring_are_compute_wers():
    assert error_counts(["a b c", "d"], ["a x c", "d"]).kaldi_lines() == [
        "%WER 25.00 [ 1 / 4, 0 ins, 0 del, 1 sub ]",
        "%SER 50.00 [ 1 / 2 ]",
        "Scored 2 sentences, 0 not present in hyp.",
    ]
