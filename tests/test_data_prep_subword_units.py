"""SentencePiece units: trained on transcripts (BPE and unigram), index 0 left for the blank, text
round-trips, an impossible vocabulary size is refused with advice, and the stage trains from a store."""

import pytest
import torch

from data_prep.corpora.synth_speech import COLOURS, DIGITS, OBJECTS, VERBS
from data_prep.features.learn_units import main
from data_prep.features.store import FeatureStoreWriter
from data_prep.text.subword_units import SentencePieceVocab, SubwordUnitsError, train_units

TEXTS = [f"{v} the {c} {o}" for v in VERBS for c in COLOURS for o in OBJECTS] + [" ".join(DIGITS)] * 5


@pytest.mark.parametrize("unit_type", ["bpe", "unigram"])
def test_units_round_trip_with_the_blank_at_index_zero(tmp_path, unit_type):
    vocab = train_units(TEXTS, tmp_path / "units.model", unit_type, vocab_size=40)
    assert len(vocab) == 41 and vocab.blank == 0 and vocab.symbols[0] == ""
    for text in ("push the red cup", "lift the yellow books", "three one four"):
        ids = vocab.encode(text)
        assert min(ids) >= 1 and vocab.decode(ids) == text
        assert len(ids) < len(text)  # pieces are shorter than the character sequence
        assert vocab.decode([0, *ids[:1], 0, *ids[1:], 0]) == text  # blanks are dropped
    again = SentencePieceVocab.load(tmp_path / "units.model")
    assert again.symbols == vocab.symbols and again.pieces("push") == vocab.pieces("push")


def test_too_many_units_or_no_text_is_refused_with_advice(tmp_path):
    with pytest.raises(SubwordUnitsError, match=r"cannot learn 5000 bpe units.*--vocab-size"):
        train_units(TEXTS, tmp_path / "u.model", "bpe", vocab_size=5000)
    with pytest.raises(SubwordUnitsError, match="no training transcripts"):
        train_units(["", " "], tmp_path / "u.model")
    assert not (tmp_path / "u.model").exists()
    with pytest.raises(SubwordUnitsError, match=r"does not exist; train it"):
        SentencePieceVocab.load(tmp_path / "missing.model")
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(SubwordUnitsError, match="not a SentencePiece model"):
        SentencePieceVocab.load(tmp_path / "junk.model")


def test_the_stage_trains_units_from_a_feature_stores_transcripts(tmp_path, capsys):
    writer = FeatureStoreWriter(tmp_path / "train")
    for i, text in enumerate(TEXTS):
        writer.add(f"u{i}", text, torch.zeros(3, 2))
    writer.commit()
    out = tmp_path / "lang" / "bpe40.model"
    out.parent.mkdir()
    args = ["--type", "bpe", "--vocab-size", "40", "--out", str(out)]
    assert main(["--store", str(tmp_path / "train"), *args]) == 0
    assert f"40 bpe units from {len(TEXTS)} transcripts" in capsys.readouterr().out
    assert len(SentencePieceVocab.load(out)) == 41
    assert main(["--cache", str(tmp_path / "train"), *args]) == 0, "the option's old name still works"
    capsys.readouterr()
    assert main(["--store", str(tmp_path / "nothing"), "--out", str(out)]) == 1
    assert "no manifest, so the feature store is missing" in capsys.readouterr().err
