import pytest
import torch
import torchaudio

from data_prep.espeak import EspeakSynthesizer
from data_prep.features import FeatureConfig, compute_features
from data_prep.speech_dataset import FeatureDataset, collate_speech, length_sorted_batches
from data_prep.vocab import CharVocab

TEXTS = ["push", "lift the box", "pull two green balls to the red lamp", "three one four"]


@pytest.fixture(scope="module")
def dataset() -> FeatureDataset:
    synth, vocab, cfg = EspeakSynthesizer(), CharVocab.default(), FeatureConfig()
    feats, labels = [], []
    for text in TEXTS:
        wave, rate = synth.synthesize(text)
        wave16 = torchaudio.functional.resample(torch.from_numpy(wave), rate, cfg.sample_rate)
        feats.append(compute_features(wave16, cfg))
        labels.append(torch.tensor(vocab.encode(text), dtype=torch.int64))
    return FeatureDataset(
        {"utt_ids": [f"u{i}" for i in range(len(TEXTS))], "texts": TEXTS, "features": feats, "labels": labels}
    )


def test_items_hold_features_labels_and_text(dataset: FeatureDataset):
    item = dataset[2]
    assert item["utt_id"] == "u2" and item["text"] == TEXTS[2]
    assert item["features"].shape[1] == 40
    assert CharVocab.default().decode(item["labels"].tolist()) == TEXTS[2]


def test_collate_pads_with_zeros_and_keeps_lengths(dataset: FeatureDataset):
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


def test_subset_keeps_the_chosen_items_in_order(dataset: FeatureDataset):
    kept = dataset.subset([3, 0, 1])
    assert kept.utt_ids == ["u3", "u0", "u1"] and len(kept) == 3
    assert kept[0]["text"] == TEXTS[3] and torch.equal(kept[1]["features"], dataset[0]["features"])


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
