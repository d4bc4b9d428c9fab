import pytest

from data_prep.text.vocab import CharVocab, OutOfVocabularyError


def test_default_vocab_is_deepspeechs_29_characters_with_blank_first():
    v = CharVocab.default()
    assert len(v) == 29
    assert v.blank == 0
    assert v.symbols[0] == ""
    assert v.symbols[1:3] == (" ", "'")


def test_encode_decode_round_trip():
    v = CharVocab.default()
    text = v.normalize("  Don't   PUSH the\tred cup ")
    assert text == "don't push the red cup"
    ids = v.encode(text)
    assert 0 not in ids
    assert v.decode(ids) == text
    assert v.decode([0, *ids, 0]) == text


def test_normalize_keeps_unknown_characters_so_they_can_be_reported():
    v = CharVocab.default()
    assert v.normalize("Cup ½") == "cup ½"
    assert v.unknown_chars("cup ½ 3") == {"½", "3"}


def test_encode_names_out_of_vocabulary_characters():
    v = CharVocab.default()
    with pytest.raises(OutOfVocabularyError) as info:
        v.encode("push the cup ½ 3")
    assert info.value.chars == {"½", "3"}
    assert "'½'" in str(info.value) and "'3'" in str(info.value)


def test_to_dict_from_dict_round_trip():
    v = CharVocab.default()
    assert CharVocab.from_dict(v.to_dict()) == v
    with pytest.raises(ValueError, match="not a saved CharVocab"):
        CharVocab.from_dict({"kind": "bpe"})
