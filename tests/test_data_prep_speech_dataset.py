"""The one speech dataset over a feature store: exact features, labels, order, lengths, padding."""

import pytest
import torch
import torchaudio

from data_prep.batching.speech_dataset import SpeechDataset, collate_speech, length_sorted_batches
from data_prep.corpora.espeak import EspeakSynthesizer
from data_prep.features.extraction import FeatureConfig, compute_features
from data_prep.features.store import FeatureStore, FeatureStoreWriter
from data_prep.text.vocab import CharVocab

TEXTS = ["push", "lift the box", "pull two green balls to the red lamp", "three one four"]


@pytest.fixture(scope="module")
def computed() -> list[torch.Tensor]:
    synth, cfg = EspeakSynthesizer(), FeatureConfig()
    feats = []
    for text in TEXTS:
        wave, rate = synth.synthesize(text)
        wave16 = torchaudio.functional.resample(torch.from_numpy(wave), rate, cfg.sample_rate)
        feats.append(compute_features(wave16, cfg))
    return feats


@pytest.fixture(scope="module")
def dataset(computed, tmp_path_factory) -> SpeechDataset:
    writer = FeatureStoreWriter(tmp_path_factory.mktemp("dataset") / "train")  # numpy: lossless
    for i, (text, feats) in enumerate(zip(TEXTS, computed, strict=True)):
        writer.add(f"u{i}", text, feats)
    store = FeatureStore(writer.commit(vocab=CharVocab.default().to_dict()))
    return SpeechDataset(store, CharVocab.default().encode)


def test_items_hold_the_stored_features_exactly_labels_and_text(dataset: SpeechDataset, computed):
    item = dataset[2]
    assert item["utt_id"] == "u2" and item["text"] == TEXTS[2]
    assert item["features"].dtype == torch.float32 and torch.equal(item["features"], computed[2])
    assert CharVocab.default().decode(item["labels"].tolist()) == TEXTS[2]
    assert dataset.frame_lengths() == [f.shape[0] for f in computed] and dataset.feature_dim == 40
    assert dataset.metadata["vocab"] == CharVocab.default().to_dict()


def test_collate_pads_with_zeros_and_keeps_lengths(dataset: SpeechDataset):
    items = [dataset[i] for i in range(len(dataset))]
    batch = collate_speech(items)
    frames = [it["features"].shape[0] for it in items]
    label_lengths = [len(t) for t in TEXTS]
    assert batch.features.shape == (4, max(frames), 40)
    assert batch.feature_lengths.tolist() == frames and batch.feature_lengths.dtype == torch.int64
    assert batch.labels.shape == (4, max(label_lengths)) and batch.labels.dtype == torch.int64
    assert batch.label_lengths.tolist() == label_lengths
    for i, it in enumerate(items):
        assert torch.equal(batch.features[i, : frames[i]], it["features"])
        assert batch.features[i, frames[i] :].abs().sum() == 0
        assert torch.equal(batch.labels[i, : label_lengths[i]], it["labels"])
        assert batch.labels[i, label_lengths[i] :].abs().sum() == 0
    assert batch.utt_ids == ["u0", "u1", "u2", "u3"] and batch.texts == TEXTS
    by_method = dataset.collate(range(len(dataset)))  # what the task's lazy batches call
    assert torch.equal(by_method.features, batch.features) and torch.equal(by_method.labels, batch.labels)


def test_subset_keeps_the_chosen_items_in_order(dataset: SpeechDataset, computed):
    kept = dataset.subset([3, 0, 1])
    assert kept.utt_ids == ["u3", "u0", "u1"] and len(kept) == 3
    assert kept[0]["text"] == TEXTS[3] and torch.equal(kept[1]["features"], computed[0])
    assert kept.frame_lengths() == [computed[i].shape[0] for i in (3, 0, 1)]
    assert kept.subset([2])[0]["utt_id"] == "u1", "a subset of a subset indexes the subset"


def test_length_sorted_batches_group_similar_lengths_deterministically():
    lengths = [50, 10, 40, 20, 30, 60, 11, 41]
    batches = length_sorted_batches(lengths, 2, torch.Generator().manual_seed(3))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert sorted(batches, key=lambda b: lengths[b[0]]) == [[1, 6], [3, 4], [2, 7], [0, 5]]
    again = length_sorted_batches(lengths, 2, torch.Generator().manual_seed(3))
    assert batches == again
    orders = {
        tuple(map(tuple, length_sorted_batches(lengths, 2, torch.Generator().manual_seed(s))))
        for s in range(10)
    }
    assert len(orders) > 1
    assert length_sorted_batches(lengths, 3) == [[1, 6, 3], [4, 2, 7], [0, 5]]
