"""The on-disk feature store: same utterances, problems and (within lilcom's 2^-6) features as the cache;
a missing or truncated chunk file is named when read; training skips and counts unreadable utterances up to
the threshold; the speech task trains from a store as from a cache, reading each batch on demand."""

import json
import os
import shutil

import pytest
import torch

from data_prep.batch_sampler import LazyBatches, SkippedUtterances, TooManyUnreadableError
from data_prep.feature_store import CHUNKS, MANIFEST, FeatureStore, FeatureStoreError
from data_prep.features import FeatureConfig, build_feature_cache, load_feature_cache, main
from data_prep.stored_speech_dataset import StoredFeatureDataset
from data_prep.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.vocab import CharVocab
from models.speech_task import build_task

TINY_DS2 = {
    "conv_channels": [4],
    "conv_kernels": [[5, 11]],
    "conv_strides": [[2, 2]],
    "rnn_layers": 1,
    "rnn_hidden": 16,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    dirs = generate_corpus(
        out, SynthSpeechConfig(num_train=12, num_dev=3, num_test=3, seed=5, jobs=1), progress=False
    )
    caches, stores = {}, {}
    for split, data_dir in dirs.items():
        caches[split] = str(out / f"{split}.pt")
        stores[split] = str(out / "feats" / split)
        build_feature_cache(data_dir, caches[split], FeatureConfig(), CharVocab.default(), progress=False)
        assert main(["--data-dir", str(data_dir), "--out", stores[split], "--store"]) == 0
    return {"dirs": dirs, "caches": caches, "stores": stores, "root": out}


def test_store_holds_the_caches_utterances_within_lilcoms_precision(corpus):
    cache = load_feature_cache(corpus["caches"]["train"])
    store = FeatureStore(corpus["stores"]["train"])
    assert store.utt_ids == cache["utt_ids"] and store.texts == cache["texts"]
    assert store.num_frames.tolist() == [f.shape[0] for f in cache["features"]]
    assert (
        store.manifest["vocab"] == cache["vocab"]
        and store.manifest["feature_config"] == cache["feature_config"]
    )
    for i, features in enumerate(cache["features"]):
        error = (store.read(i) - features).abs().max().item()
        assert 0 < error <= 2**-6 + 1e-6, store.utt_ids[i]  # lossy, but only by half a 2^-5 step


def test_store_is_incomplete_until_its_manifest_is_written(corpus, tmp_path):
    store = tmp_path / "train"
    shutil.copytree(corpus["stores"]["train"], store)
    (store / MANIFEST).unlink()
    with pytest.raises(FeatureStoreError, match=rf"{MANIFEST}: no manifest.*--store"):
        FeatureStore(store)


def test_missing_and_truncated_chunk_files_are_named_when_read(corpus, tmp_path):
    store = tmp_path / "train"
    shutil.copytree(corpus["stores"]["train"], store)
    reader = FeatureStore(store)
    last = len(reader) - 1
    size = os.path.getsize(store / CHUNKS)
    with open(store / CHUNKS, "r+b") as f:
        f.truncate(size - 50)
    reader.read(0)  # the first utterance is intact
    with pytest.raises(FeatureStoreError, match=rf"{CHUNKS}: utterance {reader.utt_ids[last]} .*truncated"):
        reader.read(last)
    (store / CHUNKS).unlink()
    with pytest.raises(FeatureStoreError, match=rf"{CHUNKS}: chunk file missing .*{reader.utt_ids[0]}"):
        reader.read(0)


def test_training_skips_and_counts_unreadable_utterances_up_to_the_threshold(corpus, tmp_path):
    store = tmp_path / "train"
    shutil.copytree(corpus["stores"]["train"], store)
    data = StoredFeatureDataset(store, CharVocab.default().encode)
    with open(store / CHUNKS, "r+b") as f:
        f.truncate(os.path.getsize(store / CHUNKS) - 50)  # the last utterance is cut
    last = len(data) - 1
    data.skipped = SkippedUtterances(limit=1)
    batch = data.collate([0, last, 1])
    assert batch.utt_ids == [data.utt_ids[0], data.utt_ids[1]] and data.skipped.names == [data.utt_ids[last]]
    with pytest.raises(
        TooManyUnreadableError, match=r"2 unreadable training utterances, more than the 1 allowed"
    ):
        data.collate([last])
    data.skipped = None  # evaluation: never skipped
    with pytest.raises(FeatureStoreError, match=data.utt_ids[last]):
        data.collate([last])


def test_a_failed_quality_check_leaves_no_store(corpus, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(corpus["dirs"]["dev"], bad)
    (bad / "text").write_text(
        "".join(f"{line.split()[0]}\n" for line in (bad / "text").read_text().splitlines())
    )
    assert main(["--data-dir", str(bad), "--out", str(tmp_path / "store"), "--store"]) == 1
    assert not (tmp_path / "store" / MANIFEST).exists() and not (tmp_path / "store" / CHUNKS).exists()
    problems = json.loads((tmp_path / "store.problems.json").read_text())
    assert len(problems["empty_transcript"]) == 3


def test_speech_task_from_a_store_batches_like_the_cache_and_reads_on_demand(corpus, monkeypatch):
    from_cache = build_task(data=corpus["caches"], model_args=TINY_DS2, batch_size=4)
    from_store = build_task(data=corpus["stores"], model_args=TINY_DS2, batch_size=4)
    assert from_store.data_summary()["utterances"] == from_cache.data_summary()["utterances"]
    reads = []
    real_read = FeatureStore.read
    monkeypatch.setattr(
        FeatureStore, "read", lambda self, i: (reads.append(self.utt_ids[i]), real_read(self, i))[1]
    )
    batches = [from_store.train_batches(torch.Generator().manual_seed(7), epoch=1) for _ in range(2)]
    cached = from_cache.train_batches(torch.Generator().manual_seed(7), epoch=1)
    assert isinstance(batches[0], LazyBatches) and reads == [], "nothing is read before a batch is asked for"
    second = batches[0][1::2]  # a rank's share, as distributed.shard takes it: still lazy
    assert isinstance(second, LazyBatches) and reads == []
    batch = second[0]
    assert reads == batch.utt_ids == cached[1].utt_ids
    assert torch.allclose(batch.features, cached[1].features, atol=2**-6)
    assert torch.equal(batch.labels, cached[1].labels)
    assert [b.utt_ids for b in batches[0]] == [b.utt_ids for b in batches[1]], "a function of the generator"
    from_store.model.train()
    loss = from_store.loss(batch, torch.device("cpu"), from_store.model)
    assert torch.isfinite(loss)
    _, refs, hyps = from_store.transcribe("dev", torch.device("cpu"))
    assert len(refs) == len(hyps) == 3


def test_loader_workers_give_the_same_batches_in_order_and_after_a_jump(corpus):
    task = build_task(data=corpus["stores"], model_args=TINY_DS2, batch_size=2)
    plain = task.train_batches(torch.Generator().manual_seed(3), epoch=1)
    task.config.num_workers = 1
    ahead = task.train_batches(torch.Generator().manual_seed(3), epoch=1)
    order = [0, 1, 2, 4, 5]  # 3 skipped: the loader restarts at 4, as after a resume
    for i in order:
        batch = ahead[i]
        assert torch.equal(batch.features, plain[i].features) and batch.utt_ids == plain[i].utt_ids


def test_on_the_fly_features_from_a_kaldi_data_dir_equal_the_caches(corpus):
    from data_prep.onthefly_features import OnTheFlyFeatureDataset

    cache = load_feature_cache(corpus["caches"]["train"])
    data = OnTheFlyFeatureDataset(corpus["dirs"]["train"], FeatureConfig(), CharVocab.default().encode)
    assert data.utt_ids == cache["utt_ids"] and data.texts == cache["texts"]
    assert data.frame_lengths() == [f.shape[0] for f in cache["features"]], "frame counts from the headers"
    for i in (0, len(data) - 1):
        assert torch.equal(data[i]["features"], cache["features"][i]) and torch.equal(
            data[i]["labels"], cache["labels"][i]
        )
    perturbed = OnTheFlyFeatureDataset(
        corpus["dirs"]["train"], FeatureConfig(), CharVocab.default().encode, [0.9]
    )
    assert len(perturbed) == 2 * len(data) and perturbed.utt_ids[1] == f"sp0.9-{data.utt_ids[0]}"
    assert perturbed[1]["features"].shape[0] == perturbed.frame_lengths()[1] > data.frame_lengths()[0]


def test_speech_task_trains_from_kaldi_data_dirs_without_a_store(corpus, tmp_path):
    dirs = {split: str(path) for split, path in corpus["dirs"].items()}
    task = build_task(data=dirs, model_args=TINY_DS2, batch_size=4, speed_perturb=[1.1])
    summary = task.data_summary()
    assert summary["utterances"] == {"train": 24, "dev": 3, "test": 3}  # train: originals and 1.1x copies
    batch = task.train_batches(torch.Generator().manual_seed(0), epoch=0)[0]
    assert batch.features.shape[0] == 4 and batch.features.shape[2] == 40
    task.model.train()
    assert torch.isfinite(task.loss(batch, torch.device("cpu"), task.model))
    broken = tmp_path / "train"
    shutil.copytree(corpus["dirs"]["train"], broken)
    lines = (broken / "wav.scp").read_text().splitlines()
    utt, wav = lines[0].split(maxsplit=1)
    shutil.copy(wav, tmp_path / "gone.wav")
    (broken / "wav.scp").write_text("\n".join([f"{utt} {tmp_path / 'gone.wav'}", *lines[1:]]) + "\n")
    data = build_task(
        data={**dirs, "train": str(broken)}, model_args=TINY_DS2, max_bad_fraction=0.2
    ).datasets["train"]
    (tmp_path / "gone.wav").unlink()  # vanishes after the task was built: found when it is read
    index = data.utt_ids.index(utt)
    batch = data.collate([index, (index + 1) % len(data)])
    assert data.skipped.names == [data.utt_ids[index]] and len(batch.utt_ids) == 1


def test_export_reads_the_training_transcripts_and_feature_config_from_any_source(corpus):
    from dsd_seq.training.config import from_dict
    from models.speech_task import SpeechTaskConfig, split_metadata

    config = from_dict(SpeechTaskConfig, {"data": corpus["caches"]}, "task_args")
    sources = [corpus["caches"]["train"], corpus["stores"]["train"], str(corpus["dirs"]["train"])]
    found = [split_metadata(path, config) for path in sources]
    for metadata in found[1:]:
        assert metadata["texts"] == found[0]["texts"] and metadata["vocab"] == found[0]["vocab"]
        assert metadata["feature_config"] == found[0]["feature_config"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(texts=m["texts"][:-1]), "its lists differ in length"),
        (lambda m: m.update(num_frames=5), "num_frames is not a list"),
        (lambda m: m["num_frames"].__setitem__(0, "12"), r"num_frames\[0\] is '12'"),
        (lambda m: m["storage_keys"].__setitem__(1, "x,y"), "storage key 'x,y'"),
        (lambda m: m.update(num_features=0), "num_features is 0"),
        (lambda m: m.update(chunks="../elsewhere.lca"), "chunks is '../elsewhere.lca'"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused_when_the_store_is_opened(corpus, tmp_path, edit, message):
    store = tmp_path / "train"
    shutil.copytree(corpus["stores"]["train"], store)
    manifest = json.loads((store / MANIFEST).read_text())
    edit(manifest)
    (store / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FeatureStoreError, match=rf"damaged manifest: {message}"):
        FeatureStore(store)


def test_every_flipped_byte_is_caught_by_the_checksum(corpus, tmp_path):
    store = tmp_path / "train"
    shutil.copytree(corpus["stores"]["train"], store)
    data = bytearray((store / CHUNKS).read_bytes())
    missed = 0
    for position in range(0, len(data), max(1, len(data) // 200)):  # 200 flips across the file
        flipped = bytearray(data)
        flipped[position] ^= 0x10
        (store / CHUNKS).write_bytes(bytes(flipped))
        reader = FeatureStore(store)
        for i in range(len(reader)):
            try:
                reader.read(i)
            except FeatureStoreError:
                break
        else:
            missed += 1
    assert missed == 0
