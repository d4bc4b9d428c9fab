"""SentencePiece units: trained on transcripts (BPE and unigram), index 0 left for the blank, text
round-trips, an impossible vocabulary size is refused with advice, and the CLI trains from a cache."""

import pytest
import torch

from data_prep.subword_units import SentencePieceVocab, SubwordUnitsError, main, train_units
from data_prep.synth_speech import COLOURS, DIGITS, OBJECTS, VERBS

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


def test_cli_trains_units_from_a_feature_cache(tmp_path, capsys):
    cache = {"version": 1, "utt_ids": [f"u{i}" for i in range(len(TEXTS))], "texts": TEXTS}
    torch.save(cache, tmp_path / "train.pt")
    out = tmp_path / "lang" / "bpe40.model"
    out.parent.mkdir()
    assert (
        main(
            ["--cache", str(tmp_path / "train.pt"), "--type", "bpe", "--vocab-size", "40", "--out", str(out)]
        )
        == 0
    )
    assert "40 bpe units" in capsys.readouterr().out
    assert len(SentencePieceVocab.load(out)) == 41
    assert main(["--cache", str(tmp_path / "nothing.pt"), "--out", str(out)]) == 1
    assert "feature cache not found" in capsys.readouterr().err
