"""A tiny end-to-end run of egs/flickr8k/run.sh on a fixture in the real Flickr8k download format.

The fixture is what a user has after downloading: ``Flickr8k_Dataset.zip`` (``Flicker8k_Dataset/*.jpg``,
the corpus's own misspelling, plus the ``__MACOSX/`` entries of the real zip and an image no split lists)
and Karpathy's ``caption_datasets.zip`` holding ``dataset_flickr8k.json`` (and the other corpora's files).
Images are drawn by the project's synthetic generator and saved as JPEG at a Flickr-like size; the small
CNN stands in for VGG-16 so the test needs neither torchvision nor 528 MB of weights.
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from data_prep.corpora import synth_captions as synth
from data_prep.corpora.archive import sha256_of
from data_prep.images import small_cnn_encoder as small_cnn
from dsd_seq.core.schedule import Schedule
from dsd_seq.training.config import load_config

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "flickr8k"
SPLITS = {"train": 24, "val": 4, "test": 4}


def _flickr_name(index: int) -> str:
    rng = np.random.default_rng([5, index])
    return f"{1000268201 + 7919 * index}_{rng.bytes(5).hex()}.jpg"


def write_flickr8k_archives(folder: Path, splits: dict[str, int] = SPLITS) -> tuple[Path, Path]:
    """Flickr8k_Dataset.zip and caption_datasets.zip, laid out as the downloads are."""
    folder.mkdir(parents=True, exist_ok=True)
    held_out = synth.held_out_pairs(6, 0)
    entries, sentid, index = [], 0, 0
    images_zip = folder / "Flickr8k_Dataset.zip"
    with zipfile.ZipFile(images_zip, "w") as z:
        z.writestr("Flicker8k_Dataset/", b"")
        for split, count in splits.items():
            for _ in range(count):
                rng = np.random.default_rng([0, index])
                image, objects, background = synth.draw_scene(rng, held_out, split, 3)
                name = _flickr_name(index)
                with z.open(f"Flicker8k_Dataset/{name}", "w") as f:
                    image.resize((250, 188)).save(f, format="JPEG", quality=90)
                z.writestr(f"__MACOSX/Flicker8k_Dataset/._{name}", b"\x00\x05\x16\x07AppleDouble")
                sentences = []
                for raw in synth.candidate_captions(objects, background, rng)[:5]:
                    raw = raw[0].upper() + raw[1:] + " ."
                    tokens = [t for t in synth.tokenize(raw) if t != "."]
                    sentences.append({"tokens": tokens, "raw": raw, "imgid": index, "sentid": sentid})
                    sentid += 1
                entries.append({"sentids": [s["sentid"] for s in sentences], "imgid": index, "split": split,
                                "sentences": sentences, "filename": name})  # fmt: skip
                index += 1
        with z.open(f"Flicker8k_Dataset/{_flickr_name(index)}", "w") as f:  # in the archive, in no split
            synth.draw_scene(np.random.default_rng([0, index]), held_out, "train", 3)[0].save(
                f, format="JPEG"
            )
    captions_zip = folder / "caption_datasets.zip"
    with zipfile.ZipFile(captions_zip, "w") as z:
        z.writestr("dataset_flickr8k.json", json.dumps({"images": entries, "dataset": "flickr8k"}))
        z.writestr("dataset_flickr30k.json", json.dumps({"images": [], "dataset": "flickr30k"}))
    return images_zip, captions_zip


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(RECIPE.parents[1])}
    return subprocess.run(["bash", str(RECIPE / "run.sh"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_recipe_runs_every_stage_on_the_real_flickr8k_layout(tmp_path):
    images_zip, captions_zip = write_flickr8k_archives(tmp_path / "downloads")
    encoder = tmp_path / "encoder.pt"
    small_cnn.save(small_cnn.SmallCNN().eval(), encoder, small_cnn.PretrainConfig(num_images=0, epochs=0))
    # relative paths, as a user types them: resolved from the caller's folder, not the recipe's
    common = ["--config", str(RECIPE / "conf" / "tiny.yaml"), "--data", "data", "--exp", "exp"]
    bad = _run(
        [*common, "--archives", "downloads", "--stop-stage", "0", "--images-sha256", "0" * 64], tmp_path
    )
    assert bad.returncode != 0 and "differs from the expected" in bad.stderr
    done = _run([*common, "--archives", "downloads", "--images-sha256", sha256_of(images_zip),
                 "--captions-sha256", sha256_of(captions_zip), "--encoder", "small_cnn",
                 "--encoder-checkpoint", str(encoder)], tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    corpus = tmp_path / "data" / "corpus"
    assert (corpus / ".done").is_file() and (tmp_path / "data" / "feats" / "small_cnn.done").is_file()
    assert len(list((corpus / "images").glob("*.jpg"))) >= sum(SPLITS.values())
    summary = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert [(r["run"], r["label"]) for r in summary["rows"]] == [
        ("DSD", "Dense"), ("DSD", "Sparse"), ("DSD", "Re-dense"), ("LLR", "Dense (LLR)"), ("LLR", "Dense (LLR)"),
    ]  # fmt: skip
    sparse = summary["rows"][1]
    assert 0.78 <= sparse["measured_sparsity"] <= 0.82
    assert not any(k.startswith("embed") for k in sparse["layer_sparsity"])
    assert {f"test bleu{n}" for n in range(1, 5)} <= set(summary["columns"])
    markdown = (tmp_path / "exp" / "results.md").read_text()
    assert "| DSD | Sparse |" in markdown and "| LLR |" in markdown
    assert (
        "| # | image | Dense | Sparse | Re-dense | LLR | a reference |"
        in (tmp_path / "exp" / "examples.md").read_text()
    )
    for figure in ("weight_distribution", "training_curves", "layer_sparsity"):  # the report stage's figures
        assert (tmp_path / "exp" / "figures" / f"{figure}.png").stat().st_size > 5000
    report = (tmp_path / "exp" / "report.md").read_text()  # the paper's Table 5 beside the run's phases
    assert "| Sparse | 80% | 10 | 0.001 |" in report and "| 58.40 | 39.70 | 26.30 | 17.50 |" in report
    assert "| DSD | 0% | 6 | 0.0001 |" in report and "| 59.20 | 40.70 | 27.40 | 18.50 |" in report
    # a second run finds the .done markers and the finished checkpoints: nothing is redone
    again = _run([*common, "--encoder", "small_cnn", "--encoder-checkpoint", str(encoder), "--stop-stage", "2"],
                 tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "already prepared" in again.stdout and "features already cached" in again.stdout
    # --init-from: start from a trained dense model (the paper started from a trained NeuralTalk), here
    # the first run's; a new --exp trains no dense phase and runs DSD, LLR and the report from it
    dense = tmp_path / "exp" / "dsd" / "checkpoints" / "phase1-end.pt"
    init = _run([*common[:-1], "exp2", "--encoder", "small_cnn", "--encoder-checkpoint", str(encoder),
                 "--init-from", str(dense)], tmp_path)  # fmt: skip
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
    assert "dense training skipped: the dense model is --init-from" in init.stdout
    exp2 = tmp_path / "exp2"
    assert not (exp2 / "dsd" / "checkpoints" / "phase1-end.pt").exists()
    for kind in ("dsd", "llr"):  # phases 2-3 trained here, phase 1 is the given model's
        started = [json.loads(line) for line in (exp2 / kind / "metrics.jsonl").read_text().splitlines()]
        assert [r["phase"] for r in started if r["event"] == "phase_start"] == [1, 2]
    first = json.loads((tmp_path / "exp" / "dsd" / "results.json").read_text())["phases"][0]
    assert json.loads((exp2 / "dsd" / "results.json").read_text())["phases"][0] == first
    assert (exp2 / "report.md").is_file() and (exp2 / "examples.md").is_file()
    assert "model: " in init.stdout and "prunable by DSD)" in init.stdout


def test_missing_vgg16_weights_stop_the_recipe_before_any_work(tmp_path):
    done = _run(["--archives", str(tmp_path / "nothing"), "--stage", "1", "--data", "data",
                 "--encoder-checkpoint", str(tmp_path / "vgg16.pth")], tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert "vgg16" in done.stderr and (
        "weights not found" in done.stderr or "needs torchvision" in done.stderr
    )
    assert not (tmp_path / "data").exists()


def test_config_retrains_with_neuraltalks_solver_at_table5s_schedule():
    """Sec. 4.4: NeuralTalk's own weight decay and batch size (and its RMSProp), Table 5's phases."""
    config = load_config(RECIPE / "conf" / "train.yaml")
    phases = [(p.kind, p.epochs, p.lr, p.sparsity) for p in Schedule.from_config(config.schedule)]
    assert phases == [("dense", 19, 1e-2, 0.0), ("sparse", 10, 1e-3, 0.8), ("dense", 6, 1e-4, 0.0)]
    assert (config.train.optimizer, config.train.weight_decay) == ("rmsprop", 1e-8)
    assert config.task_args["batch_size"] == 100
    assert "Embedding" not in config.selection.types  # Ws, the word embedding, is never pruned
