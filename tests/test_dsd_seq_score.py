"""`dsd-seq score`: compute-wer's output and modes on small reference/hypothesis files; the in-memory
WER/CER of the same scorer, which the speech task's evaluation uses, gives the same numbers."""

import pytest

from dsd_seq.cli import main
from dsd_seq.experiments.score import ScoreError, cer, score_files, wer

REF = {
    "utt1": "the cat sat on the mat",
    "utt2": "push the red cup",
    "utt3": "seven three one",
}
# utt1: one substitution (cat->hat), one deletion (the); utt2: one insertion (now); utt3: correct
HYP = {"utt1": "the hat sat on mat", "utt2": "push the red cup now", "utt3": "seven three one"}


def _write(path, table):
    path.write_text("".join(f"{utt} {text}\n" for utt, text in table.items()))
    return path


def test_counts_and_kaldi_lines_of_a_word_scoring(tmp_path, capsys):
    ref, hyp = _write(tmp_path / "ref.txt", REF), _write(tmp_path / "hyp.txt", HYP)
    result = score_files(ref, hyp)
    assert (result.insertions, result.deletions, result.substitutions) == (1, 1, 1)
    assert result.reference_length == 13 and result.sentence_errors == 2 and result.sentences == 3
    assert result.rate == pytest.approx(wer(list(REF.values()), list(HYP.values())))
    assert main(["score", "--ref", str(ref), "--hyp", str(hyp)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "%WER 23.08 [ 3 / 13, 1 ins, 1 del, 1 sub ]",
        "%SER 66.67 [ 2 / 3 ]",
        "Scored 3 sentences, 0 not present in hyp.",
    ]


def test_cer_counts_characters_with_spaces(tmp_path, capsys):
    ref, hyp = _write(tmp_path / "ref.txt", REF), _write(tmp_path / "hyp.txt", HYP)
    result = score_files(ref, hyp, unit="char")
    assert result.reference_length == sum(len(t) for t in REF.values())
    assert result.rate == pytest.approx(cer(list(REF.values()), list(HYP.values())))
    assert main(["score", "--ref", str(ref), "--hyp", str(hyp), "--cer"]) == 0
    assert capsys.readouterr().out.startswith(f"%CER {result.rate:.2f} [ {result.errors} / ")


def test_missing_hypotheses_per_mode(tmp_path, capsys):
    ref = _write(tmp_path / "ref.txt", REF)
    hyp = _write(tmp_path / "hyp.txt", {"utt1": HYP["utt1"], "utt3": HYP["utt3"]})
    with pytest.raises(ScoreError, match=r"no hypothesis for 1 of 3 .*'utt2'.*--mode present"):
        score_files(ref, hyp, "strict")
    present = score_files(ref, hyp, "present")
    assert (present.sentences, present.reference_length, present.errors, present.missing) == (2, 9, 2, 1)
    every = score_files(ref, hyp, "all")  # utt2's four words count as deleted
    assert (every.sentences, every.deletions, every.reference_length) == (3, 1 + 4, 13)
    assert main(["score", "--ref", str(ref), "--hyp", str(hyp)]) == 2
    assert "no hypothesis for 1 of 3" in capsys.readouterr().err


def test_an_empty_hypothesis_line_is_all_deletions(tmp_path):
    ref = _write(tmp_path / "ref.txt", {"a": "one two", "b": "three"})
    (tmp_path / "hyp.txt").write_text("a\nb three\n")
    result = score_files(ref, tmp_path / "hyp.txt")
    assert (result.deletions, result.errors, result.sentence_errors) == (2, 2, 1)


def test_extra_and_duplicate_ids_are_errors_naming_the_file(tmp_path):
    ref = _write(tmp_path / "ref.txt", REF)
    hyp = _write(tmp_path / "hyp.txt", {**HYP, "other": "words"})
    with pytest.raises(ScoreError, match=r"hyp.txt: 1 utterance\(s\) not in .*ref.txt.*'other'"):
        score_files(ref, hyp, "all")
    (tmp_path / "dup.txt").write_text("utt1 a\nutt2 b\nutt1 c\n")
    with pytest.raises(ScoreError, match=r"dup.txt:3: utterance 'utt1' appears twice \(first on line 1\)"):
        score_files(ref, tmp_path / "dup.txt")
    with pytest.raises(ScoreError, match="not found"):
        score_files(ref, tmp_path / "absent.txt")


def test_tab_separated_lines_score_as_compute_wer_reads_them(tmp_path, capsys):
    """compute-wer splits on any whitespace; ``<id>\\t<words>`` once read as the id 'utt1\\tthe'."""
    ref = tmp_path / "ref.txt"
    ref.write_text("".join(f"{utt}\t{text}\n" for utt, text in REF.items()))
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("".join(f"{utt} \t {text.replace(' ', chr(9))}\n" for utt, text in HYP.items()))
    spaced = score_files(_write(tmp_path / "r.txt", REF), _write(tmp_path / "h.txt", HYP))
    tabbed = score_files(ref, hyp)
    assert (tabbed.errors, tabbed.reference_length, tabbed.sentences) == (3, 13, 3)
    assert (tabbed.errors, tabbed.reference_length) == (spaced.errors, spaced.reference_length)


@pytest.mark.parametrize("which", ["ref", "hyp"])
def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path, which):
    ref, hyp = _write(tmp_path / "ref.txt", REF), _write(tmp_path / "hyp.txt", HYP)
    bad = ref if which == "ref" else hyp
    lines = bad.read_bytes().splitlines(keepends=True)
    lines[2] = b"utt3 caf\xe9 au lait\n"
    bad.write_bytes(b"".join(lines))
    with pytest.raises(ScoreError, match=rf"{bad.name}:3: not UTF-8 \(byte 0xe9 at column 9\)"):
        score_files(ref, hyp)


GOOD_IMAGE = {"filename": "a.png", "split": "test", "sentences": [{"tokens": ["a", "cat"], "raw": "a cat"}]}


@pytest.mark.parametrize(
    ("refs", "where"),
    [
        ({"images": {"a.png": 1}}, "images must be a list"),
        ({"images": ["a.png"]}, r"images\[0\] must be an object"),
        ({"images": [None]}, r"images\[0\] must be an object"),
        ({"images": [{**GOOD_IMAGE, "filename": None}]}, r"images\[0\].filename must be a string"),
        ({"images": [{**GOOD_IMAGE, "sentences": "a cat"}]}, r"images\[0\].sentences must be a list"),
        (
            {"images": [{**GOOD_IMAGE, "sentences": [{"tokens": [["a"]]}]}]},
            r"sentences\[0\].tokens must be a list of strings",
        ),
        (
            {"images": [{**GOOD_IMAGE, "sentences": [{"raw": {"deep": [1]}}]}]},
            r"sentences\[0\].raw must be a string",
        ),
        ([1, 2], "images must be a list"),
    ],
)
def test_caption_references_of_the_wrong_shape_name_the_place(tmp_path, capsys, refs, where):
    import json
    import re

    (tmp_path / "refs.json").write_text(json.dumps(refs))
    (tmp_path / "hyp.txt").write_text("a.png a cat\n")
    argv = ["score", "--bleu", "--hyp", str(tmp_path / "hyp.txt"), "--refs", str(tmp_path / "refs.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(where, err) and "Traceback" not in err


def test_files_that_are_not_utf8_are_named(tmp_path, capsys):
    (tmp_path / "hyp.txt").write_bytes(b"a.png a \xe9t\xe9\n")
    (tmp_path / "refs.json").write_text('{"images": []}')
    argv = ["score", "--bleu", "--hyp", str(tmp_path / "hyp.txt"), "--refs", str(tmp_path / "refs.json")]
    assert main(argv) == 2
    assert f"{tmp_path / 'hyp.txt'}:1: not UTF-8 (byte 0xe9)" in capsys.readouterr().err
    from dsd_seq.export.inputs import InputListError, collect_inputs

    (tmp_path / "wav.scp").write_bytes(b"utt1 a.wav\nutt2 \xff.wav\n")
    with pytest.raises(InputListError, match=r"wav.scp:2: not UTF-8 \(byte 0xff\)"):
        collect_inputs([tmp_path / "wav.scp"], (".wav",))


def test_score_captions_prints_every_metric_and_says_why_meteor_is_missing(tmp_path, capsys, monkeypatch):
    """`dsd-seq score --captions` on a caption file: BLEU, ROUGE-L and CIDEr-D (the fixture's reference
    values, tests/test_caption_metrics.py), and METEOR skipped with the reason where Java is absent."""
    import json
    from pathlib import Path

    from dsd_seq.experiments import caption_metrics

    fixtures = Path(__file__).parent / "fixtures"
    images = json.loads((fixtures / "coco_captions.json").read_text())["images"][:6]
    reference = json.loads((fixtures / "coco_reference_scores.json").read_text())["first_six"]["scores"]
    split = {"images": [{"filename": im["id"], "split": "test", "sentences": [{"raw": r} for r in im["references"]]}
                        for im in images]}  # fmt: skip
    (tmp_path / "refs.json").write_text(json.dumps(split))
    (tmp_path / "hyp.txt").write_text("".join(f"{im['id']} {im['hypothesis']}\n" for im in images))
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    argv = ["score", "--captions", "--hyp", str(tmp_path / "hyp.txt"), "--refs", str(tmp_path / "refs.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("BLEU-1 ") and "BLEU-4 " in out[0]
    cider, rouge = 100 * reference["cider_d"]["corpus"], 100 * reference["rouge_l"]["corpus"]
    assert out[1] == f"ROUGE-L {rouge:.2f} CIDEr-D {cider:.2f}"
    assert out[2].startswith("METEOR skipped: no Java runtime") and "install one" in out[2]
    assert main([*argv, "--meteor", "on"]) == 2
    assert "meteor: on, but METEOR cannot run" in capsys.readouterr().err
    assert main(["score", "--bleu", *argv[2:], "--meteor", "off"]) == 0  # the older name still works
    assert "CIDEr-D" in capsys.readouterr().out
