"""The feature caches' convention (image features; speech features moved to the store): a kind + version
header, checked on load; caches written before the header existed still load; every refusal names the file
and the command that rebuilds it."""

import re

import pytest
import torch

from data_prep.images.feature_cache import CacheFormat, FeatureCacheError
from data_prep.images.image_features import IMAGE_FEATURE_CACHE
from dsd_seq.safe_io import save_atomic, save_checkpoint

# A second kind beside the image cache, with the half header ("version" alone) that the whole-split speech
# caches had before the header named its kind: the checks between kinds and of legacy headers need two.
SPEECH_FEATURE_CACHE = CacheFormat(
    kind="speech_features",
    version=1,
    what="feature cache",
    rebuild="python -m data_prep.features --data-dir <data dir> --out {path}",
    legacy_header={"version": 1},
)
SPEECH_REBUILD = re.escape("python -m data_prep.features --data-dir <data dir> --out")
IMAGE_REBUILD = re.escape("python -m data_prep.images.image_features --dataset <dataset_*.json> --out")


def test_a_saved_cache_has_the_header_and_loads_back(tmp_path):
    path = tmp_path / "feats.pt"
    written = SPEECH_FEATURE_CACHE.save({"texts": ["a b"], "features": [torch.ones(3, 2)]}, path)
    assert (written["kind"], written["version"]) == ("speech_features", 1)
    loaded = SPEECH_FEATURE_CACHE.load(path)
    assert loaded["texts"] == ["a b"] and torch.equal(loaded["features"][0], torch.ones(3, 2))
    assert torch.load(path, weights_only=True)["kind"] == "speech_features"  # plain torch reads it too
    assert not list(tmp_path.glob(".*tmp*"))


def test_caches_written_before_the_header_still_load(tmp_path):
    speech, image = tmp_path / "speech.pt", tmp_path / "image.pt"
    torch.save({"version": 1, "texts": ["old"]}, speech)  # what the speech caches were before
    save_atomic({"kind": "caption_features", "image_ids": ["a.jpg"]}, image)  # image_features before
    assert SPEECH_FEATURE_CACHE.load(speech)["texts"] == ["old"]
    assert IMAGE_FEATURE_CACHE.load(image)["image_ids"] == ["a.jpg"]


def test_an_enveloped_cache_is_verified_and_loads(tmp_path):
    path = tmp_path / "feats.pt"
    save_checkpoint({**IMAGE_FEATURE_CACHE.header, "image_ids": ["a.jpg"]}, path)
    assert IMAGE_FEATURE_CACHE.load(path)["image_ids"] == ["a.jpg"]
    path.write_bytes(path.read_bytes()[:-10])  # a copy cut short
    with pytest.raises(
        FeatureCacheError, match=r"unreadable image feature cache \(.*truncated.*rebuild it with"
    ):
        IMAGE_FEATURE_CACHE.load(path)


def test_a_cache_of_another_kind_or_version_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    speech, image = tmp_path / "speech.pt", tmp_path / "image.pt"
    SPEECH_FEATURE_CACHE.save({"texts": []}, speech)
    IMAGE_FEATURE_CACHE.save({"image_ids": []}, image)
    with pytest.raises(
        FeatureCacheError,
        match=rf"speech.pt: its header .* not that of a version-1 image feature cache .*`{IMAGE_REBUILD} \S*speech.pt`",
    ):
        IMAGE_FEATURE_CACHE.load(speech)
    with pytest.raises(
        FeatureCacheError,
        match=r"image.pt: its header \{'kind': 'caption_features'.* version-1 feature cache",
    ):
        SPEECH_FEATURE_CACHE.load(image)
    newer = CacheFormat("speech_features", 2, "feature cache", "rebuild {path}")
    with pytest.raises(FeatureCacheError, match=r"'version': 1.*rebuild it with `rebuild \S*speech.pt`"):
        newer.load(speech)  # no legacy header: a version-1 cache is not accepted by a version-2 reader
    torch.save({"texts": []}, tmp_path / "bare.pt")  # a dict without any header is no feature cache
    with pytest.raises(FeatureCacheError, match=r"its header \{\} is not"):
        SPEECH_FEATURE_CACHE.load(tmp_path / "bare.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(
        FeatureCacheError, match=r"holds a list, not a dsd-seq feature cache.*rebuild it with"
    ):
        SPEECH_FEATURE_CACHE.load(tmp_path / "list.pt")


def test_a_missing_cache_says_how_to_build_it(tmp_path):
    with pytest.raises(
        FeatureCacheError, match=rf"image feature cache not found; build it with `{IMAGE_REBUILD} "
    ):
        IMAGE_FEATURE_CACHE.load(tmp_path / "none.pt")
    with pytest.raises(
        FeatureCacheError, match=rf"feature cache not found; build it with `{SPEECH_REBUILD} "
    ):
        SPEECH_FEATURE_CACHE.load(tmp_path / "none.pt")
