"""The synthetic captioning set: deterministic, every caption names a shape, held-out pairs stay out of
training, written in the Karpathy layout the real corpora use."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from data_prep.corpora.karpathy import load_karpathy
from data_prep.corpora.synth_captions import SHAPE_WORDS, SynthCaptionsConfig, generate

ROOT = Path(__file__).resolve().parents[1]
SHAPE_TOKENS = {w.split()[0] for words in SHAPE_WORDS.values() for w in words}


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_generation_is_identical_under_another_hash_seed(tmp_path):
    generate(tmp_path / "a", SynthCaptionsConfig(num_train=12, num_val=3, num_test=3, seed=4))
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "data_prep.corpora.synth_captions", "--out", str(tmp_path / "b"),
               "--num-train", "12", "--num-val", "3", "--num-test", "3", "--seed", "4"]  # fmt: skip
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_five_distinct_captions_each_naming_a_shape_and_held_out_pairs_only_in_dev_and_test(tmp_path):
    path = generate(tmp_path, SynthCaptionsConfig(num_train=60, num_val=10, num_test=10))
    raw = json.loads(path.read_text())
    held_out = {tuple(p) for p in raw["held_out_pairs"]}
    for image in raw["images"]:
        captions = [" ".join(s["tokens"]) for s in image["sentences"]]
        assert len(captions) == 5 and len(set(captions)) == 5
        assert all(SHAPE_TOKENS & set(c.split()) for c in captions), captions
        pairs = {(o["shape"], o["colour"]) for o in image["objects"]}
        assert not pairs & held_out if image["split"] == "train" else pairs & held_out
    data = load_karpathy(path)
    assert [len(data.split(s)) for s in ("train", "dev", "test")] == [60, 10, 10]
    assert all(im.path.is_file() for im in data.images) and not data.problems
