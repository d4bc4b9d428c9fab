"""Beam search with an n-gram LM (torchaudio's flashlight decoder, extra [lm]) reads an ARPA bigram made
by data_prep.text.ngram_lm and corrects a spelling the acoustics alone get wrong, for characters and pieces."""

import math
from collections import defaultdict

import pytest
import torch

from data_prep.text.ngram_lm import write_bigram_arpa
from data_prep.text.subword_units import train_units
from data_prep.text.vocab import CharVocab
from models.speech.ctc import greedy_decode

pytest.importorskip("flashlight.lib.text", reason="needs the [lm] extra (flashlight-text)")
from models.speech.ctc_lm_decoder import LanguageModelDecoderError, LMDecoder  # noqa: E402

TEXTS = ["push the red cup", "pull the green box", "lift two red lamps", "push the green cup"] * 5


def _arpa_sections(path):
    sections, current = defaultdict(list), None
    for line in path.read_text().splitlines():
        if line.endswith("-grams:"):
            current = int(line[1])
        elif line.strip() and current and not line.startswith("\\"):
            sections[current].append(line.split("\t"))
    return sections


def test_bigram_arpa_is_normalised(tmp_path):
    sections = _arpa_sections(write_bigram_arpa(TEXTS, tmp_path / "lm.arpa"))
    unigrams = {row[1]: row for row in sections[1]}
    assert math.fsum(10 ** float(r[0]) for w, r in unigrams.items() if w != "<s>") == pytest.approx(
        1.0, abs=1e-4
    )
    mass = defaultdict(float)
    for logp, pair in sections[2]:
        mass[pair.split()[0]] += 10 ** float(logp)
    for word, total in mass.items():  # seen bigrams + the backoff share = 1 for every history
        assert total + 10 ** float(unigrams[word][2]) == pytest.approx(1.0, abs=1e-4)


def _emissions(vocab, ids, confusion):
    """Frames: label, blank, label, blank...; at ``confusion`` the wrong label is slightly preferred."""
    frames = torch.full((2 * len(ids) + 1, len(vocab)), -8.0)
    frames[0::2, 0] = 0.0
    for i, label in enumerate(ids):
        frames[2 * i + 1, label] = 0.0
    position, wrong = confusion
    frames[2 * position + 1, wrong] = 0.2
    return frames.log_softmax(-1).unsqueeze(0)


def test_the_language_model_corrects_a_character_the_acoustics_get_wrong(tmp_path):
    vocab = CharVocab.default()
    lm = write_bigram_arpa(TEXTS, tmp_path / "lm.arpa")
    text = "push the red cup"
    emissions = _emissions(vocab, vocab.encode(text), (text.index("red") + 1, vocab.encode("a")[0]))
    lengths = torch.tensor([emissions.shape[1]])
    assert vocab.decode(greedy_decode(emissions, lengths)[0]) == "push the rad cup"
    decoder = LMDecoder(vocab, [w for t in TEXTS for w in t.split()], lm, beam_size=16, lm_weight=1.0)
    assert decoder.lexicon_size == 10
    assert decoder(emissions, lengths) == [text]


def test_the_language_model_decodes_sentencepiece_units(tmp_path):
    vocab = train_units(TEXTS, tmp_path / "units.model", "bpe", vocab_size=30)
    lm = write_bigram_arpa(TEXTS, tmp_path / "lm.arpa")
    ids = vocab.encode("lift two red lamps")
    emissions = _emissions(vocab, ids, (0, ids[0]))
    decoder = LMDecoder(vocab, [w for t in TEXTS for w in t.split()], lm, beam_size=16)
    assert decoder(emissions, torch.tensor([emissions.shape[1]])) == ["lift two red lamps"]


def test_a_missing_language_model_is_refused_naming_the_file(tmp_path):
    with pytest.raises(LanguageModelDecoderError, match="nope.arpa does not exist"):
        LMDecoder(CharVocab.default(), ["push"], tmp_path / "nope.arpa")


def test_the_lm_command_reads_a_kaldi_text_file_and_names_a_bad_one(tmp_path, capsys):
    from data_prep.text.ngram_lm import main

    text = tmp_path / "text"
    text.write_text("utt1 push the red box\nutt2 push the blue box\n", encoding="utf-8")
    assert main(["--text", str(text), "--out", str(tmp_path / "lm.arpa")]) == 0
    arpa = (tmp_path / "lm.arpa").read_text()
    assert "\tpush the" in arpa and "utt1" not in arpa  # the utterance ids are not words
    assert main(["--text", str(tmp_path / "missing"), "--out", str(tmp_path / "x.arpa")]) == 1
    assert "missing: cannot read the transcripts" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.write_text("utt1\n", encoding="utf-8")
    assert main(["--text", str(empty), "--out", str(tmp_path / "y.arpa")]) == 1
    assert "no non-empty transcript" in capsys.readouterr().err
