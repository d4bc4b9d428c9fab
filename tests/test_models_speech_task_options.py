"""The speech task's options on a tiny generated corpus: SentencePiece units (recorded in checkpoints,
WER on words), SortaGrad and frame-budget batches, SpecAugment in training only, decoding modes, and the
RNN transducer through the real trainer."""

import pytest
import torch

from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import FeatureConfig, build_feature_store
from data_prep.features.store import FeatureStore
from data_prep.text.subword_units import train_units
from data_prep.text.vocab import CharVocab
from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import CheckpointError
from dsd_seq.training.config import load_config
from dsd_seq.training.metrics_log import read_metrics
from dsd_seq.training.trainer import Trainer
from models.speech.ctc_decoding import DecodingConfig, ctc_text_decoder
from models.speech.speech_task import SpeechDataError, build_task
from tests.test_models_speech_task import TINY_DS2

TINY_TRANSDUCER = {"encoder": TINY_DS2, "embed_dim": 8, "predictor_hidden": 16, "joiner_dim": 16}


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    out = tmp_path_factory.mktemp("speech")
    cfg = SynthSpeechConfig(num_train=16, num_dev=4, num_test=4, seed=5, jobs=1)
    paths = {}
    for split, data_dir in generate_corpus(out, cfg, progress=False).items():
        paths[split] = str(out / split)
        build_feature_store(data_dir, paths[split], FeatureConfig(), CharVocab.default(), progress=False)
    return paths


@pytest.fixture(scope="module")
def units(caches, tmp_path_factory):
    """Two unit models of the same size learnt differently (BPE and unigram)."""
    out = tmp_path_factory.mktemp("lang")
    texts = FeatureStore(caches["train"]).texts
    return {
        kind: str(train_units(texts, out / f"{kind}.model", kind, 30).source) for kind in ("bpe", "unigram")
    }


def _config(*extra):
    return load_config(
        None, ["task=models.speech.speech_task:build_task", "schedule=D1:1e-3", "train.progress=false",
               "train.tensorboard=false", "train.eval_splits=[dev]", *extra],
    )  # fmt: skip


def test_subword_units_shorten_labels_and_decode_to_words(caches, units):
    chars = build_task(data=caches, model_args=TINY_DS2)
    task = build_task(data=caches, model_args=TINY_DS2, units=units["bpe"])
    assert task.model.output.out_features == 31 and task.data_summary()["units"].endswith("bpe.model")
    pieces, letters = task.datasets["train"].labels, chars.datasets["train"].labels
    assert sum(len(p) for p in pieces) < sum(len(c) for c in letters)
    # WER is scored on words: a perfect emission of the pieces decodes to the transcript itself
    text = task.datasets["dev"].texts[0]
    frames = [i for piece in task.vocab.encode(text) for i in (piece, 0)]  # a blank after each piece
    emissions = torch.nn.functional.one_hot(torch.tensor(frames), 31).float().mul(20).log_softmax(-1)
    decode = ctc_text_decoder(DecodingConfig(), task.vocab, [])
    assert decode(emissions.unsqueeze(0), torch.tensor([len(frames)])) == [text]


def test_resuming_with_other_units_is_refused_naming_them(caches, units, tmp_path):
    torch.manual_seed(0)
    task = build_task(data=caches, model_args=TINY_DS2, units=units["bpe"])
    Trainer(task, Schedule.parse("D1:1e-3,S1@0.5:1e-3"), _config(), tmp_path / "exp").run(until_phase=1)
    other = build_task(data=caches, model_args=TINY_DS2, units=units["unigram"])
    trainer = Trainer(other, Schedule.parse("D1:1e-3,S1@0.5:1e-3"), _config(), tmp_path / "exp")
    with pytest.raises(
        CheckpointError, match=r"output units mismatch: the checkpoint has 31 units.*task_args.units"
    ):
        trainer.run(resume=True)


def test_sorta_grad_orders_the_run_first_epoch_by_length_then_shuffles(caches):
    task = build_task(data=caches, model_args=TINY_DS2, sorta_grad=True, batch_frames=1500)
    lengths = task.datasets["train"].frame_lengths()
    index = {u: i for i, u in enumerate(task.datasets["train"].utt_ids)}

    def flat(batches):
        return [lengths[index[u]] for b in batches for u in b.utt_ids]

    first = task.train_batches(torch.Generator().manual_seed(0), epoch=0)
    assert flat(first) == sorted(lengths)
    assert all(b.features.shape[0] * b.features.shape[1] <= 1500 for b in first)
    later = task.train_batches(torch.Generator().manual_seed(0), epoch=1)
    assert flat(later) != sorted(lengths) and sorted(flat(later)) == sorted(lengths)
    again = task.train_batches(torch.Generator().manual_seed(0), epoch=1)
    assert [b.utt_ids for b in later] == [b.utt_ids for b in again]


def test_a_frame_budget_below_the_longest_utterance_is_refused_naming_it(caches):
    with pytest.raises(SpeechDataError, match=r"utterance synth-train-\S+ has \d+ frames.*batch_frames=50"):
        build_task(data=caches, model_args=TINY_DS2, batch_frames=50)


def test_spec_augment_changes_training_losses_only(caches):
    task = build_task(data=caches, model_args=TINY_DS2, spec_augment={"freq_masks": 2, "freq_mask_bins": 10,
                      "time_masks": 2, "time_mask_frames": 20})  # fmt: skip
    batch = task.train_batches(torch.Generator().manual_seed(0))[0]
    device = torch.device("cpu")

    def loss(seed):
        torch.manual_seed(seed)
        return task.loss(batch, device, task.model).item()

    task.model.train()
    assert loss(0) == loss(0) and loss(0) != loss(1)
    task.model.eval()
    assert loss(0) == loss(1)
    with pytest.raises(ValueError, match="spec_augment.freq_masks"):
        build_task(data=caches, model_args=TINY_DS2, spec_augment={"freq_masks": -1})


def test_decoding_modes_are_selectable_and_checked(caches):
    task = build_task(data=caches, model_args=TINY_DS2, decoding={"mode": "beam", "beam_size": 4})
    device = torch.device("cpu")
    task.model.eval()
    with torch.no_grad():
        beam = task.evaluate("dev", device)
        greedy = task.evaluate("dev", device, DecodingConfig("greedy"))
    assert set(beam) == set(greedy) == {"wer", "cer", "loss"}
    assert beam["loss"] == greedy["loss"] > 0  # the dev CTC loss does not depend on the decoder
    with pytest.raises(ValueError, match="decoding.mode='viterbi'"):
        build_task(data=caches, model_args=TINY_DS2, decoding={"mode": "viterbi"})
    with pytest.raises(ValueError, match="needs task_args.decoding.lm"):
        build_task(data=caches, model_args=TINY_DS2, decoding={"mode": "lm"})


def test_transducer_trains_under_dsd_and_reports_its_loss_backend(caches, tmp_path):
    torch.manual_seed(0)
    task = build_task(data=caches, model="transducer", model_args=TINY_TRANSDUCER, batch_size=8)
    rows = Trainer(task, Schedule.parse("D2:3e-3,S1@0.5:3e-3"), _config(), tmp_path / "exp").run()
    assert [r["label"] for r in rows] == ["Dense", "Sparse"]
    assert rows[1]["layer_sparsity"]["predictor.weight_hh_l0"] == pytest.approx(0.5, abs=0.01)
    assert "embedding.weight" not in rows[1]["layer_sparsity"]
    assert set(rows[1]["metrics"]["dev"]) == {"wer", "cer"}
    events = read_metrics(tmp_path / "exp" / "metrics.jsonl")
    assert events[0]["transducer_loss"] == "torchaudio.functional.rnnt_loss"
    assert events[0]["objective"] == "transducer"
    losses = [e["loss"] for e in events if e["event"] == "train"]
    assert losses[3] < losses[0]  # epoch 2 below the first step
    with pytest.raises(ValueError, match="transducer decodes greedily only"):
        build_task(data=caches, model="transducer", model_args=TINY_TRANSDUCER, decoding={"mode": "beam"})
