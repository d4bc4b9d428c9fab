"""The speech task on a tiny generated corpus: CTC-infeasible labels are counted, never silently dropped;
DeepSpeech 1 and 2 train under DSD through the real trainer."""

import json
import shutil

import pytest
import torch

from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import FeatureConfig, build_feature_store
from data_prep.text.vocab import CharVocab
from dsd_seq.core.schedule import Schedule
from dsd_seq.core.selection import select_prunable
from dsd_seq.training.config import load_config
from dsd_seq.training.metrics_log import read_metrics
from dsd_seq.training.trainer import Trainer, TrainingError
from models.speech.speech_task import SpeechDataError, build_task

TINY_DS2 = {
    "conv_channels": [4],
    "conv_kernels": [[5, 11]],
    "conv_strides": [[2, 2]],
    "rnn_layers": 1,
    "rnn_hidden": 24,
}
# a time stride of 6 (60 ms a frame) is too coarse for most transcripts: CTC cannot align them
STRIDED_DS2 = {**TINY_DS2, "conv_strides": [[6, 2]]}
TINY_DS1 = {"context": 2, "hidden": 24}


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    out = tmp_path_factory.mktemp("speech")
    dirs = generate_corpus(
        out, SynthSpeechConfig(num_train=16, num_dev=4, num_test=4, seed=3, jobs=1), progress=False
    )
    paths = {}
    for split, data_dir in dirs.items():
        paths[split] = str(out / split)
        build_feature_store(data_dir, paths[split], FeatureConfig(), CharVocab.default())
    return paths


def test_labels_too_long_for_ctc_stop_the_run_naming_examples(caches):
    with pytest.raises(SpeechDataError, match=r"too long\s+for CTC.*synth-train-"):
        build_task(data=caches, model_args=STRIDED_DS2)


def test_labels_too_long_for_ctc_are_dropped_from_training_only_and_counted(caches):
    task = build_task(data=caches, model_args=STRIDED_DS2, max_bad_fraction=0.9)
    summary = task.data_summary()
    dropped = summary["problems"]["train"]["ctc_infeasible"]
    assert dropped > 0 and summary["utterances"]["train"] == 16 - dropped
    assert len(summary["problems"]["train"]["ctc_infeasible_examples"]) == min(dropped, 5)
    # held-out splits keep every utterance: their WER must count what the model cannot transcribe
    assert summary["utterances"]["test"] == 4 and summary["utterances"]["dev"] == 4


def test_eval_split_missing_from_the_task_is_refused_before_training(caches, tmp_path):
    task = build_task(data=caches, model_args=TINY_DS2)
    config = load_config(None, ["task=m:f", "schedule=D1:1e-3", "train.eval_splits=[dev, tset]"])
    with pytest.raises(TrainingError, match=r"\['tset'\]"):
        Trainer(task, Schedule.parse("D1:1e-3"), config, tmp_path / "exp")


def test_vocabulary_mismatch_between_stores_is_refused(caches, tmp_path):
    dev = tmp_path / "dev"
    shutil.copytree(caches["dev"], dev)
    manifest = json.loads((dev / "manifest.json").read_text())
    symbols = manifest["vocab"]["symbols"]
    manifest["vocab"] = {**manifest["vocab"], "symbols": [symbols[0], *reversed(symbols[1:])]}
    (dev / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="vocabulary differs"):
        build_task(data={**caches, "dev": str(dev)}, model_args=TINY_DS2)


def test_unknown_task_and_model_keys_are_refused(caches):
    with pytest.raises(ValueError, match="task_args: unknown key"):
        build_task(data=caches, batchsize=3)
    with pytest.raises(ValueError, match=r"task_args: missing key\(s\) \['data'\]"):
        build_task(model_args=TINY_DS2)
    with pytest.raises(ValueError, match="rnn_hiden"):
        build_task(data=caches, model_args={"rnn_hiden": 3})
    with pytest.raises(ValueError, match="accepted"):
        build_task(data=caches, model="wav2vec")


@pytest.mark.parametrize(
    "model, model_args, custom",
    [("deepspeech2", TINY_DS2, None), ("deepspeech1", TINY_DS1, "birnn.weight_hh_backward")],
)
def test_dsd_schedule_trains_speech_models(caches, tmp_path, model, model_args, custom):
    torch.manual_seed(0)
    task = build_task(data=caches, model=model, model_args=model_args, batch_size=8)
    names = list(select_prunable(task.model))
    if custom:
        assert any(n.endswith(custom) for n in names), names
    config = load_config(
        None,
        [
            "task=models.speech.speech_task:build_task",
            "schedule=D1:1e-3",
            "train.progress=false",
            "train.tensorboard=false",
        ],
    )
    rows = Trainer(task, Schedule.parse("D1:3e-3,S1@0.5:3e-3,D1:3e-4"), config, tmp_path / "exp").run()
    assert [r["label"] for r in rows] == ["Dense", "Sparse", "Re-dense"]
    assert rows[1]["measured_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert all(set(r["metrics"]["test"]) == {"wer", "cer", "loss"} for r in rows)
    assert all(r["layer_sparsity"][n] == pytest.approx(0.5, abs=1e-2) for n in names for r in rows[1:2])
    events = read_metrics(tmp_path / "exp" / "metrics.jsonl")
    assert events[0]["event"] == "data" and events[0]["utterances"]["train"] == 16
    losses = [e["loss"] for e in events if e["event"] == "train"]
    assert len(losses) == 6 and losses[-1] < losses[0]  # 2 batches x 3 epochs, and it learns
