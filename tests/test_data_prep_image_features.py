"""Image feature extraction on bad data: missing and unreadable images are skipped, counted and named;
more than ``max_bad_fraction`` of them stops the extraction and writes nothing."""

import io
import json

import pytest
from PIL import Image

from data_prep.images import small_cnn_encoder as small_cnn
from data_prep.images.image_features import ImageDataError, extract_features, load_feature_cache, main


def _fixture(tmp_path):
    """Six listed images: four good (PNG and JPEG), one missing, one unreadable (a truncated download)."""
    images = tmp_path / "images"
    images.mkdir()
    names = [f"good{i}.jpg" for i in range(3)] + ["good3.png", "missing.jpg", "truncated.jpg"]
    for i, name in enumerate(names[:4]):
        Image.new("RGB", (80, 60), (40 * i, 200, 90)).save(images / name)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (250, 10, 10)).save(buf, format="JPEG")
    (images / "truncated.jpg").write_bytes(buf.getvalue()[:300])
    entries = [
        {"filename": name, "split": "train", "sentences": [{"tokens": ["a", "red", "shape"]}]}
        for name in names
    ]
    dataset = tmp_path / "dataset_flickr8k.json"
    dataset.write_text(json.dumps({"images": entries}))
    encoder = tmp_path / "encoder.pt"
    small_cnn.save(small_cnn.SmallCNN().eval(), encoder, small_cnn.PretrainConfig(num_images=0, epochs=0))
    return dataset, encoder


def test_missing_and_unreadable_images_are_skipped_counted_and_named(tmp_path, capsys):
    dataset, encoder = _fixture(tmp_path)
    out = tmp_path / "feats.pt"
    cache = extract_features(dataset, out, "small_cnn", encoder, batch_size=2, max_bad_fraction=0.5)
    assert cache["image_ids"] == ["good0.jpg", "good1.jpg", "good2.jpg", "good3.png"]
    assert cache["features"].shape == (4, small_cnn.SmallCNN().feature_dim)
    assert {k: len(v) for k, v in cache["problems"].items()} == {"missing_image": 1, "unreadable_image": 1}
    assert cache["problems"]["missing_image"][0].startswith("missing.jpg (")
    assert cache["problems"]["unreadable_image"][0].startswith("truncated.jpg (")
    printed = capsys.readouterr().out
    assert "skipped 1 image(s): missing_image" in printed and "missing.jpg" in printed
    assert "skipped 1 image(s): unreadable_image" in printed and "truncated.jpg" in printed
    assert load_feature_cache(out)["problems"] == cache["problems"]  # the counts travel with the cache


def test_more_bad_images_than_the_maximum_fraction_stop_and_write_nothing(tmp_path):
    dataset, encoder = _fixture(tmp_path)
    out = tmp_path / "feats.pt"
    with pytest.raises(ImageDataError, match=r"2 of 6 images are missing or unreadable") as err:
        extract_features(dataset, out, "small_cnn", encoder, max_bad_fraction=0.25)
    assert "missing.jpg" in str(err.value) and "truncated.jpg" in str(err.value)
    assert "--max-bad-fraction" in str(err.value)
    assert not out.exists()
    # the command line: the same limit, the same refusal
    with pytest.raises(ImageDataError):
        main(["--dataset", str(dataset), "--encoder-checkpoint", str(encoder), "--out", str(out),
              "--max-bad-fraction", "0.3"])  # fmt: skip
    assert not out.exists()
    main(["--dataset", str(dataset), "--encoder-checkpoint", str(encoder), "--out", str(out),
          "--max-bad-fraction", "0.34"])  # fmt: skip
    assert len(load_feature_cache(out)["image_ids"]) == 4
