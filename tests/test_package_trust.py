"""A model package never runs code it names: its inference entry must be one of the project's model
families, its manifest is validated and its file names stay inside the folder, all before any import, and
a stored sparse shape is bounded by the bits stored for it."""

import importlib
import json

import numpy as np
import pytest
import torch

from dsd_seq.export import load_model, register_inference_entry
from dsd_seq.export.manifest_schema import INFERENCE_ENTRIES
from dsd_seq.export.package import MANIFEST, PackageError, sha256, write_package

GOOD = "models.speech.speech_recognizer:from_package"


def _package(tmp_path, inference=GOOD, weights=None, edit=None):
    folder = tmp_path / "pkg"
    manifest = {"inference": inference, "settings": {}, "weights": {"file": "weights.pt"}}
    write_package(folder, manifest, {"model": weights or {"w": torch.zeros(2)}}, {})
    if edit is not None:
        data = json.loads((folder / MANIFEST).read_text())
        edit(data, folder)
        (folder / MANIFEST).write_text(json.dumps(data))
    return folder


@pytest.fixture
def imports(monkeypatch):
    """Every module name imported through importlib from here on."""
    seen = []
    real = importlib.import_module

    def recording(name, *args, **kwargs):
        seen.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", recording)
    return seen


@pytest.mark.parametrize(
    "entry",
    ["os:system", "subprocess:getoutput", "builtins:exec", "models.speech.speech_recognizer:build_model"],
)
def test_an_entry_outside_the_registry_is_refused_by_name_before_any_import(tmp_path, imports, entry):
    folder = _package(tmp_path, inference=entry)
    with pytest.raises(PackageError, match=f"'inference' names '{entry}'.*not imported"):
        load_model(folder)
    assert imports == []


def test_a_hand_edited_entry_runs_nothing(tmp_path):
    payload = tmp_path / "payload-ran"
    folder = _package(
        tmp_path, inference="os:system", edit=lambda d, f: d["settings"].update(cmd=f"touch {payload}")
    )
    with pytest.raises(PackageError):
        load_model(folder)
    assert not payload.exists()


def _set_files(name):
    def edit(data, folder):
        data["files"][name] = "0" * 64

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set_files("../outside.txt"), "leaves the package folder"),
        (_set_files("/etc/passwd"), "leaves the package folder"),
        (_set_files("a\\b"), "not a plain relative name"),
        (lambda d, f: d.update(settings=[1, 2]), "settings: the model's settings must be an object"),
        (lambda d, f: d.pop("weights"), "'weights' is missing"),
        (lambda d, f: d["files"].update({"weights.pt": "not-a-digest"}), "SHA-256"),
        (lambda d, f: d.update(weights={"file": "elsewhere.pt"}), "weights.file must be .weights.pt."),
        (lambda d, f: d.update(deployment={"onnx": [{"file": "../x.onnx"}]}), "not among the checksummed"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused_naming_the_key(tmp_path, imports, edit, message):
    folder = _package(tmp_path, edit=edit)
    with pytest.raises(PackageError, match=message):
        load_model(folder)
    assert imports == []


def test_a_link_out_of_the_package_is_refused(tmp_path, imports):
    (tmp_path / "secret").write_text("x")

    def edit(data, folder):
        (folder / "vocab.txt").symlink_to(tmp_path / "secret")
        data["files"]["vocab.txt"] = sha256(folder / "vocab.txt")

    with pytest.raises(PackageError, match="resolves outside the package folder"):
        load_model(_package(tmp_path, edit=edit))


def test_a_claimed_sparse_shape_is_bounded_by_its_stored_bits(tmp_path):
    huge = {
        "sparse": "bitmask", "shape": [200000, 200000], "dtype": "float32",
        "bitmask": torch.from_numpy(np.packbits(np.ones(16, dtype=bool))), "values": torch.ones(16),
    }  # fmt: skip
    folder = _package(tmp_path, weights={"w": huge})
    with pytest.raises(PackageError, match="claims 40000000000 weights, but the bitmask covers 16"):
        load_model(folder)
    for bad, message in (
        ({**huge, "dtype": "int64"}, "dtype"),
        ({**huge, "shape": [4, 4], "values": torch.ones(3)}, "3 values"),
    ):
        with pytest.raises(PackageError, match=message):
            load_model(_package(tmp_path / bad["dtype"] / str(len(bad["values"])), weights={"w": bad}))


def test_code_you_run_may_register_your_own_family(tmp_path, monkeypatch):
    monkeypatch.setattr("dsd_seq.export.manifest_schema.INFERENCE_ENTRIES", set(INFERENCE_ENTRIES))
    register_inference_entry("tests.test_package_trust:_toy_family")
    assert load_model(_package(tmp_path, inference="tests.test_package_trust:_toy_family")) == "built"
    with pytest.raises(ValueError, match="module:function"):
        register_inference_entry("no-function")


def _toy_family(settings, weights, assets, device):
    return "built"


def test_settings_that_do_not_fit_the_weights_are_a_package_error(tmp_path):
    folder = _package(tmp_path)  # a registered family, but settings it cannot build from
    with pytest.raises(PackageError, match="settings do not build a model that fits its weights"):
        load_model(folder)


def test_settings_claiming_a_larger_model_than_the_weights_are_refused_before_it_is_built(
    tmp_path, monkeypatch
):
    from models.captioning import image_captioner

    built = []
    real = image_captioner.NeuralTalk

    def counting(*args, **kwargs):
        model = real(*args, **kwargs)
        built.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(image_captioner, "NeuralTalk", counting)
    settings = {
        "model_config": {"feature_dim": 8, "vocab_size": 4, "embed_dim": 100_000, "hidden": 100_000},
        "words": ["a"],
    }
    folder = _package(tmp_path, inference="models.captioning.image_captioner:from_package",
                      edit=lambda d, f: d.update(settings=settings))  # fmt: skip
    with pytest.raises(PackageError, match=r"describe a model of [\d,]+ values, but the weights hold 2"):
        load_model(folder)
    assert built == ["meta"]  # counted on the meta device, never allocated


def test_the_weights_file_is_always_the_checksummed_weights_pt(tmp_path, imports):
    def edit(data, folder):
        (folder / "other.bin").write_bytes(b"x")
        data["files"]["other.bin"] = sha256(folder / "other.bin")
        data["weights"] = {"file": "other.bin"}
        del data["files"]["weights.pt"]

    with pytest.raises(PackageError, match="weights.file must be 'weights.pt'"):
        load_model(_package(tmp_path, edit=edit))
    assert imports == []
