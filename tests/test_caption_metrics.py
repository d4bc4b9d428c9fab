"""Caption metrics against the coco-caption reference: the PTB tokenisation, CIDEr-D and ROUGE-L to 1e-6 on
fixtures whose scores the reference pipeline (Java tokenizer included) wrote, and METEOR's optional path.

The fixtures are tests/fixtures/coco_captions.json (raw captions) and coco_reference_scores.json (written by
tests/fixtures/make_coco_reference_scores.py with Java); ptb_captions.txt and ptb_captions.reference.txt
are caption lines and the Stanford PTBTokenizer's output for them (``java -cp stanford-corenlp-3.4.1.jar
edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase ptb_captions.txt``).
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dsd_seq.experiments import caption_metrics
from dsd_seq.experiments.caption_metrics import (
    NO_JAVA,
    MeteorScorer,
    MeteorUnavailable,
    caption_scores,
    coco_caption_scores,
    meteor_skip_reason,
)
from dsd_seq.experiments.ptb_caption_tokenizer import PUNCTUATIONS, ptb_tokens, tokenize_caption

FIXTURES = Path(__file__).parent / "fixtures"
IMAGES = json.loads((FIXTURES / "coco_captions.json").read_text())["images"]
REFERENCE = json.loads((FIXTURES / "coco_reference_scores.json").read_text())
SPLITS = {"all": IMAGES, "first_six": IMAGES[:6]}
HAS_JAVA = shutil.which("java") is not None


def _without_punctuation(line: str) -> list[str]:
    return [t for t in line.split() if t not in PUNCTUATIONS]


def test_tokenizer_matches_the_reference_output_on_the_fixture_lines():
    lines = (FIXTURES / "ptb_captions.txt").read_text().splitlines()
    expected = (FIXTURES / "ptb_captions.reference.txt").read_text().splitlines()
    assert len(lines) == len(expected) == 60
    for line, reference in zip(lines, expected, strict=True):
        assert tokenize_caption(line) == _without_punctuation(reference), line


def test_tokenizer_matches_the_tokens_coco_caption_scored():
    for split, images in SPLITS.items():
        refs, hyps = REFERENCE[split]["tokenized_references"], REFERENCE[split]["tokenized_hypotheses"]
        for image in images:
            assert [" ".join(tokenize_caption(r)) for r in image["references"]] == refs[image["id"]]
            assert [" ".join(tokenize_caption(image["hypothesis"]))] == hyps[image["id"]]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("A man's dog (fast)!", ["a", "man", "'s", "dog", "-lrb-", "fast", "-rrb-", "!"]),
        ("Kids can't go, gonna stay.", ["kids", "ca", "n't", "go", ",", "gon", "na", "stay", "."]),
        ('A "stop" sign at 5 p.m. on St. Louis', ["a", "``", "stop", "''", "sign", "at", "5", "p.m.", "on", "st.", "louis"]),
        ("wow?! 3.5 ft, 5,000 & 10:30", ["wow", "?!", "3.5", "ft", ",", "5,000", "&", "10:30"]),
    ],
)  # fmt: skip
def test_ptb_tokens_of_known_cases(text, tokens):
    assert ptb_tokens(text) == tokens


@pytest.mark.skipif(
    not HAS_JAVA, reason="no Java runtime on PATH: the live check against Stanford's tokenizer"
)
def test_tokenizer_matches_the_java_tokenizer_live(tmp_path):
    jar = Path(pytest.importorskip("pycocoevalcap.tokenizer.ptbtokenizer").__file__).parent
    lines = (FIXTURES / "ptb_captions.txt").read_text().splitlines()
    lines += [c for im in IMAGES for c in [im["hypothesis"], *im["references"]] if c]
    (tmp_path / "in.txt").write_text("\n".join(lines))
    out = subprocess.run(
        ["java", "-cp", str(jar / "stanford-corenlp-3.4.1.jar"), "edu.stanford.nlp.process.PTBTokenizer",
         "-preserveLines", "-lowerCase", str(tmp_path / "in.txt")],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.splitlines()  # fmt: skip
    assert len(out) == len(lines)
    for line, reference in zip(lines, out, strict=True):
        assert tokenize_caption(line) == _without_punctuation(reference), line


@pytest.mark.parametrize("split", list(SPLITS))
def test_cider_d_and_rouge_l_match_the_reference_to_1e_6(split):
    images = SPLITS[split]
    scores = coco_caption_scores([im["references"] for im in images], [im["hypothesis"] for im in images])
    expected = REFERENCE[split]["scores"]
    assert scores["cider_d"] == pytest.approx(100 * expected["cider_d"]["corpus"], abs=1e-6)
    assert scores["rouge_l"] == pytest.approx(100 * expected["rouge_l"]["corpus"], abs=1e-6)
    assert "meteor" not in scores  # no scorer given


def test_cider_d_document_frequencies_come_from_the_scored_split():
    """An image's CIDEr-D depends on which split it is scored in, as in coco-caption; the per-image
    reference values differ between the two splits and the corpus values are reproduced for both."""
    per_all = REFERENCE["all"]["scores"]["cider_d"]["per_image"][:6]
    per_six = REFERENCE["first_six"]["scores"]["cider_d"]["per_image"]
    assert all(abs(a - b) > 1e-3 for a, b in zip(per_all, per_six, strict=True))
    six = SPLITS["first_six"]
    alone = coco_caption_scores([im["references"] for im in six], [im["hypothesis"] for im in six])
    assert alone["cider_d"] == pytest.approx(100 * sum(per_six) / 6, abs=1e-6)


def test_caption_scores_keeps_nltk_bleu_on_the_given_tokens():
    refs = [[r.lower().replace(".", "").split() for r in im["references"]] for im in IMAGES[:3]]
    hyps = [im["hypothesis"].split() for im in IMAGES[:3]]
    scores = caption_scores(refs, hyps)
    assert list(scores) == ["bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider_d"]
    from dsd_seq.experiments.bleu import corpus_bleu_1_to_4

    assert {k: scores[k] for k in ("bleu1", "bleu4")} == {
        k: v for k, v in corpus_bleu_1_to_4(refs, hyps).items() if k in ("bleu1", "bleu4")
    }


def test_coco_scores_refuse_an_image_without_references():
    with pytest.raises(ValueError, match="image #1 has no non-empty reference"):
        coco_caption_scores([["a dog"], ["..."]], ["a dog", "a cat"])
    with pytest.raises(ValueError, match="2 reference sets for 1 hypotheses"):
        coco_caption_scores([["a"], ["b"]], ["a"])


def test_meteor_without_java_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    assert meteor_skip_reason("auto") == NO_JAVA
    assert "install one" in NO_JAVA
    assert "2 GB Java" in meteor_skip_reason("off")
    with pytest.raises(MeteorUnavailable, match="meteor: on, but METEOR cannot run"):
        meteor_skip_reason("on")
    with pytest.raises(ValueError, match="meteor must be one of off, auto, on"):
        meteor_skip_reason("yes")


@pytest.mark.skipif(not HAS_JAVA, reason="no Java runtime on PATH: METEOR 1.5 is a Java program")
def test_meteor_matches_the_reference_to_1e_6():
    assert meteor_skip_reason("auto") is None
    scorer = MeteorScorer()
    for split, images in SPLITS.items():
        scores = coco_caption_scores(
            [im["references"] for im in images], [im["hypothesis"] for im in images], scorer
        )
        assert scores["meteor"] == pytest.approx(
            100 * REFERENCE[split]["scores"]["meteor"]["corpus"], abs=1e-6
        )


def test_a_meteor_process_that_dies_is_an_error_saying_what_to_do(monkeypatch):
    class DeadMeteor:
        def compute_score(self, gts, res):
            return float(""), []  # what reading the score line of a dead process gives

    scorer = MeteorScorer()
    scorer._meteor = DeadMeteor()
    with pytest.raises(MeteorUnavailable, match="gave no score.*task_args.meteor: off"):
        coco_caption_scores([["a dog"]], ["a dog"], scorer)
    assert scorer._meteor is None  # the next call starts a fresh process
