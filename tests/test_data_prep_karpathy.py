"""The Karpathy split-file reader on fixtures in the real format: splits, tokens, vocabulary, truncation,
and bad input named by image."""

import json

import pytest

from data_prep.corpora.karpathy import KarpathyFormatError, WordVocab, load_karpathy


def _write(tmp_path, images):
    path = tmp_path / "dataset_flickr8k.json"
    path.write_text(json.dumps({"dataset": "flickr8k", "images": images}))
    return path


def _image(name, split, *raws):
    return {"filename": name, "imgid": 0, "split": split, "sentids": [],
            "sentences": [{"tokens": r.split(), "raw": r} for r in raws]}  # fmt: skip


def test_reads_splits_captions_and_paths(tmp_path):
    path = _write(tmp_path, [
        _image("1.jpg", "train", "A dog runs", "a dog runs fast"), _image("2.jpg", "restval", "a cat"),
        _image("3.jpg", "val", "a dog"), _image("4.jpg", "test", "a cat sits"),
    ])  # fmt: skip
    data = load_karpathy(path)
    assert [im.image_id for im in data.split("train")] == ["1.jpg", "2.jpg"]
    assert data.split("train")[0].captions == [["a", "dog", "runs"], ["a", "dog", "runs", "fast"]]
    assert data.split("dev")[0].path == tmp_path / "images" / "3.jpg"
    vocab = WordVocab.build([c for im in data.split("train") for c in im.captions], min_count=2)
    assert vocab.words == ("<pad>", "<bos>", "<eos>", "<unk>", "a", "dog", "runs")
    ids, cut = vocab.encode(["a", "dog", "runs", "fast"], max_length=3)
    assert ids == [4, 5, 6] and cut
    assert vocab.decode([4, 3, 5, 2, 6]) == ["a", "<unk>", "dog"]


def test_empty_captions_are_skipped_and_counted(tmp_path):
    path = _write(tmp_path, [_image("1.jpg", "train", "a dog", " "), _image("2.jpg", "train", "", "")])
    data = load_karpathy(path)
    assert [im.image_id for im in data.images] == ["1.jpg"]
    assert data.problems == {"empty_caption": 3, "image_without_captions": 1}
    assert data.examples["image_without_captions"] == ["2.jpg"]


@pytest.mark.parametrize("missing", ["filename", "split", "sentences"])
def test_missing_field_is_named_with_the_image(tmp_path, missing):
    image = _image("7.jpg", "train", "a dog")
    del image[missing]
    path = _write(tmp_path, [_image("1.jpg", "train", "a cat"), image])
    with pytest.raises(KarpathyFormatError, match=rf"image #1.*no '{missing}' field"):
        load_karpathy(path)


def test_not_a_split_file_is_refused(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2")
    with pytest.raises(KarpathyFormatError, match="not valid JSON"):
        load_karpathy(tmp_path / "x.json")
    with pytest.raises(FileNotFoundError, match="prepare the corpus"):
        load_karpathy(tmp_path / "none.json")
