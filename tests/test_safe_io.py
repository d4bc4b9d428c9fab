"""Files that are not what they claim are refused with a message naming the file, and a pickle payload
is never answered with torch's advice to load it with ``weights_only=False``."""

import pickle

import pytest
import torch

from data_prep.images.feature_cache import FeatureCacheError
from data_prep.images.image_features import load_feature_cache
from dsd_seq.safe_io import (
    CheckpointError,
    load_checkpoint_dict,
    load_safely,
    read_json_manifest,
    save_checkpoint,
)


class _Payload:
    """Pickles to a call of ``open(marker, "w")``: what a tampered file would run on an unsafe load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_files(tmp_path):
    marker = tmp_path / "pwned"
    plain = tmp_path / "plain-pickle.pt"
    plain.write_bytes(pickle.dumps({"model": _Payload(marker)}, protocol=2))
    zipped = tmp_path / "torch-save.pt"
    torch.save({"model": _Payload(marker)}, zipped)
    enveloped = tmp_path / "enveloped.pt"  # a valid header and checksum around a hostile payload
    save_checkpoint({"model": _Payload(marker)}, enveloped)
    return marker, [plain, zipped, enveloped]


def test_a_pickle_payload_is_called_not_a_checkpoint_and_torchs_advice_is_not_repeated(tmp_path):
    marker, files = _hostile_files(tmp_path)
    for path in files:
        with pytest.raises(CheckpointError) as caught:
            load_safely(path)
        message = str(caught.value)
        assert str(path) in message and "is not a dsd-seq checkpoint" in message, message
        assert "weights_only" not in message and "trusted" not in message, message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no torch text below
    assert not marker.exists()


def test_a_pickle_payload_feature_cache_is_called_not_a_cache(tmp_path):
    marker, files = _hostile_files(tmp_path)
    for path in files[:2]:
        with pytest.raises(FeatureCacheError) as caught:
            load_feature_cache(path)
        message = str(caught.value)
        assert str(path) in message and "not a dsd-seq image feature cache" in message, message
        assert "weights_only" not in message, message
    assert not marker.exists()


def test_an_empty_file_says_it_is_empty(tmp_path):
    empty = tmp_path / "step-000000010.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"step-000000010\.pt is empty \(0 bytes\)"):
        load_safely(empty)
    with pytest.raises(
        FeatureCacheError, match=r"unreadable image feature cache .* is empty \(0 bytes\).*rebuild it"
    ):
        load_feature_cache(empty)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2, 3], "holds a list, not a dsd-seq checkpoint"),
        (torch.zeros(3), "holds a Tensor, not a dsd-seq checkpoint"),
        (
            {"rnn.weight": torch.zeros(2), "fc.bias": torch.zeros(1)},
            r"lacks 'model' \(its keys: 'rnn.weight'",
        ),
    ],
)
def test_a_torch_file_that_is_not_a_checkpoint_is_named_as_such(tmp_path, content, message):
    for save in (torch.save, save_checkpoint):
        path = tmp_path / f"foreign-{save.__name__}.pt"
        save(content, path)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint_dict(path)


def test_a_real_checkpoint_loads_and_keys_are_checked_only_when_asked(tmp_path):
    path = tmp_path / "ok.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "position": {"step": 3}}, path)
    assert torch.equal(load_checkpoint_dict(path)["model"]["w"], torch.ones(2))
    save_checkpoint({"kind": "small_cnn"}, path)
    assert load_safely(path) == {"kind": "small_cnn"}
    with pytest.raises(CheckpointError, match="lacks 'model'"):
        load_safely(path, expect_keys=("model",))


class _ManifestError(ValueError):
    """Stands for a caller's own error class (FeatureStoreError, PackageError)."""


def test_a_json_manifest_is_read_as_the_object_it_holds(tmp_path):
    (tmp_path / "manifest.json").write_text('{"version": 1, "files": {"a": "00"}}', encoding="utf-8")
    manifest = read_json_manifest(tmp_path / "manifest.json", _ManifestError, "missing", "rebuild it")
    assert manifest == {"version": 1, "files": {"a": "00"}}


def test_a_missing_manifest_raises_the_callers_error_with_the_callers_message(tmp_path):
    with pytest.raises(_ManifestError, match=r"^store: no manifest; build it$"):
        read_json_manifest(tmp_path / "manifest.json", _ManifestError, "store: no manifest; build it", "x")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b'{"version": 1', "Expecting"),  # cut short
        (b"\xff\xfe{}", "utf-8"),  # not UTF-8
        (b"[1, 2]", "a JSON list, not an object"),
        (b'"text"', "a JSON str, not an object"),
    ],
)
def test_an_unreadable_manifest_names_the_file_why_and_what_to_do(tmp_path, content, reason):
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    with pytest.raises(_ManifestError) as caught:
        read_json_manifest(path, _ManifestError, "missing", "export the model again")
    message = str(caught.value)
    assert message.startswith(f"{path}: unreadable manifest (") and reason in message
    assert message.endswith("; export the model again")
