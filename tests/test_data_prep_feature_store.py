"""The one feature store: the numpy writer keeps the computed features exactly, lilcom within 2^-6, and a
Kaldi data dir read on the fly gives the numpy store's features; a missing or truncated feature file is named
when read; training skips and counts unreadable utterances up to the threshold; the speech task trains from
any of them through the one dataset, reading each batch on demand; an old ``.pt`` cache is refused with
the command that writes its store."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from data_prep.audio.audio_io import read_audio
from data_prep.batching.batch_sampler import LazyBatches, SkippedUtterances, TooManyUnreadableError
from data_prep.batching.speech_dataset import SpeechDataset
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import FeatureConfig, compute_features, main
from data_prep.features.onthefly import OnTheFlyFeatures
from data_prep.features.sources import open_features
from data_prep.features.store import MANIFEST, STORAGES, FeatureStore, FeatureStoreError
from data_prep.text.vocab import CharVocab
from models.speech.speech_task import build_task

NUMPY, LILCOM = STORAGES["numpy"].chunks, STORAGES["lilcom"].chunks

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
    stores, lilcom = {}, {}
    for split, data_dir in dirs.items():
        stores[split] = str(out / "feats" / split)
        lilcom[split] = str(out / "lilcom" / split)
        assert main(["--data-dir", str(data_dir), "--out", stores[split]]) == 0  # numpy: the default
        assert main(["--data-dir", str(data_dir), "--out", lilcom[split], "--storage", "lilcom"]) == 0
    return {"dirs": dirs, "stores": stores, "lilcom": lilcom, "root": out}


def _file_of(store: Path, index: int) -> Path:
    """The file holding utterance ``index``'s features: its own ``.npy``, or lilcom's one chunk file."""
    manifest = json.loads((store / MANIFEST).read_text())
    if manifest["chunks"] == NUMPY:
        return store / NUMPY / manifest["storage_keys"][index]
    return store / LILCOM


def test_the_numpy_store_holds_the_computed_features_exactly(corpus):
    store = FeatureStore(corpus["stores"]["train"])
    utterances = read_data_dir(corpus["dirs"]["train"])
    assert store.utt_ids == [u.utt_id for u in utterances]
    assert store.texts == [CharVocab.normalize(u.text) for u in utterances]
    for i, utt in enumerate(utterances):
        computed = compute_features(read_audio(utt.wav_path, 16000), FeatureConfig())
        assert store.read(i).dtype == torch.float32 and torch.equal(store.read(i), computed), utt.utt_id
        assert store.num_frames[i] == computed.shape[0]
    assert store.manifest["vocab"] == CharVocab.default().to_dict()
    assert store.manifest["feature_config"] == FeatureConfig().to_dict()


def test_the_lilcom_store_holds_the_same_utterances_within_its_precision(corpus):
    exact, lossy = FeatureStore(corpus["stores"]["train"]), FeatureStore(corpus["lilcom"]["train"])
    assert lossy.utt_ids == exact.utt_ids and lossy.texts == exact.texts
    assert lossy.num_frames.tolist() == exact.num_frames.tolist()
    for i in range(len(exact)):
        error = (lossy.read(i) - exact.read(i)).abs().max().item()
        assert 0 < error <= 2**-6 + 1e-6, exact.utt_ids[i]  # lossy, but only by half a 2^-5 step


def test_the_flag_of_before_the_one_store_still_writes_a_lilcom_store(corpus, tmp_path):
    assert main(["--data-dir", str(corpus["dirs"]["dev"]), "--out", str(tmp_path / "dev"), "--store"]) == 0
    assert FeatureStore(tmp_path / "dev").storage == STORAGES["lilcom"]


def test_a_data_dir_read_on_the_fly_equals_the_numpy_store(corpus):
    store = FeatureStore(corpus["stores"]["train"])
    data = open_features(corpus["dirs"]["train"])
    assert isinstance(data, OnTheFlyFeatures)
    assert data.utt_ids == store.utt_ids and data.texts == store.texts
    assert data.num_frames.tolist() == store.num_frames.tolist(), "frame counts from the headers"
    for i in (0, len(data) - 1):
        assert torch.equal(data.read(i), store.read(i))
    perturbed = OnTheFlyFeatures(corpus["dirs"]["train"], FeatureConfig(), [0.9])
    assert len(perturbed) == 2 * len(data) and perturbed.utt_ids[1] == f"sp0.9-{data.utt_ids[0]}"
    assert perturbed.read(1).shape[0] == perturbed.num_frames[1] > data.num_frames[0]


@pytest.mark.parametrize("storage", ["stores", "lilcom"])
def test_store_is_incomplete_until_its_manifest_is_written(corpus, tmp_path, storage):
    store = tmp_path / "train"
    shutil.copytree(corpus[storage]["train"], store)
    (store / MANIFEST).unlink()
    with pytest.raises(FeatureStoreError, match=rf"{MANIFEST}: no manifest.*python -m data_prep.features"):
        FeatureStore(store)


@pytest.mark.parametrize("storage", ["stores", "lilcom"])
def test_missing_and_truncated_feature_files_are_named_when_read(corpus, tmp_path, storage):
    store = tmp_path / "train"
    shutil.copytree(corpus[storage]["train"], store)
    reader = FeatureStore(store)
    last = len(reader) - 1
    cut = _file_of(store, last)
    with open(cut, "r+b") as f:
        f.truncate(os.path.getsize(cut) - 50)
    reader.read(0)  # the first utterance is intact
    with pytest.raises(FeatureStoreError, match=rf"utterance {reader.utt_ids[last]} .*(truncated|checksum)"):
        reader.read(last)
    gone = _file_of(store, 0)
    gone.unlink()
    with pytest.raises(
        FeatureStoreError, match=rf"{reader.chunks}: feature file missing .*{reader.utt_ids[0]}"
    ):
        reader.read(0)


def test_training_skips_and_counts_unreadable_utterances_up_to_the_threshold(corpus, tmp_path):
    store = tmp_path / "train"
    shutil.copytree(corpus["stores"]["train"], store)
    data = SpeechDataset(FeatureStore(store), CharVocab.default().encode)
    last = len(data) - 1
    cut = _file_of(store, last)
    with open(cut, "r+b") as f:
        f.truncate(os.path.getsize(cut) - 50)  # the last utterance is cut
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
    assert main(["--data-dir", str(bad), "--out", str(tmp_path / "store")]) == 1
    assert not (tmp_path / "store").exists()
    problems = json.loads((tmp_path / "store.problems.json").read_text())
    assert len(problems["empty_transcript"]) == 3


def test_speech_task_batches_alike_from_every_source_and_reads_on_demand(corpus, monkeypatch):
    dirs = {split: str(path) for split, path in corpus["dirs"].items()}
    on_the_fly = build_task(data=dirs, model_args=TINY_DS2, batch_size=4)
    lossy = build_task(data=corpus["lilcom"], model_args=TINY_DS2, batch_size=4)
    from_store = build_task(data=corpus["stores"], model_args=TINY_DS2, batch_size=4)
    for task in (on_the_fly, lossy, from_store):
        assert {type(ds) for ds in task.datasets.values()} == {SpeechDataset}, "one dataset class"
    assert from_store.data_summary()["utterances"] == on_the_fly.data_summary()["utterances"]
    reads = []
    real_read = FeatureStore.read
    monkeypatch.setattr(
        FeatureStore, "read", lambda self, i: (reads.append(self.utt_ids[i]), real_read(self, i))[1]
    )
    batches = [from_store.train_batches(torch.Generator().manual_seed(7), epoch=1) for _ in range(2)]
    computed = on_the_fly.train_batches(torch.Generator().manual_seed(7), epoch=1)
    compact = lossy.train_batches(torch.Generator().manual_seed(7), epoch=1)
    assert isinstance(batches[0], LazyBatches) and reads == [], "nothing is read before a batch is asked for"
    second = batches[0][1::2]  # a rank's share, as distributed.shard takes it: still lazy
    assert isinstance(second, LazyBatches) and reads == []
    batch = second[0]
    assert reads == batch.utt_ids == computed[1].utt_ids == compact[1].utt_ids
    assert torch.equal(batch.features, computed[1].features), "lossless: the numbers computed on the fly"
    assert torch.allclose(batch.features, compact[1].features, atol=2**-6)
    assert torch.equal(batch.labels, computed[1].labels) and torch.equal(batch.labels, compact[1].labels)
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
    from models.speech.speech_task import SpeechTaskConfig, split_metadata

    config = from_dict(SpeechTaskConfig, {"data": corpus["stores"]}, "task_args")
    sources = [corpus["stores"]["train"], corpus["lilcom"]["train"], str(corpus["dirs"]["train"])]
    found = [split_metadata(path, config) for path in sources]
    for metadata in found[1:]:
        assert metadata["texts"] == found[0]["texts"] and metadata["vocab"] == found[0]["vocab"]
        assert metadata["feature_config"] == found[0]["feature_config"]


@pytest.mark.parametrize(
    ("storage", "edit", "message"),
    [
        ("lilcom", lambda m: m.update(texts=m["texts"][:-1]), "its lists differ in length"),
        ("lilcom", lambda m: m.update(num_frames=5), "num_frames is not a list"),
        ("lilcom", lambda m: m["num_frames"].__setitem__(0, "12"), r"num_frames\[0\] is '12'"),
        ("lilcom", lambda m: m["storage_keys"].__setitem__(1, "x,y"), "storage key 'x,y'"),
        ("lilcom", lambda m: m.update(num_features=0), "num_features is 0"),
        ("lilcom", lambda m: m.update(chunks="../elsewhere.lca"), "chunks is '../elsewhere.lca'"),
        # a numpy store's files stay inside it
        ("stores", lambda m: m["storage_keys"].__setitem__(0, "../x.npy"), "storage key '../x.npy'"),
        ("stores", lambda m: m["storage_keys"].__setitem__(0, "/abs/x.npy"), "storage key '/abs/x.npy'"),
        ("stores", lambda m: m.update(chunks="feats.lca"), "chunks is 'feats.lca'"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused_when_the_store_is_opened(
    corpus, tmp_path, storage, edit, message
):
    store = tmp_path / "train"
    shutil.copytree(corpus[storage]["train"], store)
    manifest = json.loads((store / MANIFEST).read_text())
    edit(manifest)
    (store / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FeatureStoreError, match=rf"damaged manifest: {message}"):
        FeatureStore(store)


@pytest.mark.parametrize("storage", ["stores", "lilcom"])
def test_every_flipped_byte_is_caught_by_the_checksum(corpus, tmp_path, storage):
    store = tmp_path / "train"
    shutil.copytree(corpus[storage]["train"], store)
    target = _file_of(store, len(FeatureStore(store)) - 1)
    data = bytearray(target.read_bytes())
    missed = 0
    for position in range(0, len(data), max(1, len(data) // 200)):  # 200 flips across the file
        flipped = bytearray(data)
        flipped[position] ^= 0x10
        target.write_bytes(bytes(flipped))
        reader = FeatureStore(store)
        for i in range(len(reader)):
            try:
                reader.read(i)
            except FeatureStoreError:
                break
        else:
            missed += 1
    assert missed == 0


def test_an_old_pt_cache_is_refused_with_the_command_that_writes_its_store(corpus, tmp_path):
    old = tmp_path / "train.pt"
    torch.save({"version": 1, "utt_ids": []}, old)
    with pytest.raises(
        FeatureStoreError,
        match=r"train\.pt: a whole-split feature cache.*no longer read.*"
        r"python -m data_prep\.features --data-dir <data dir> --out .*train`",
    ):
        build_task(data={"train": str(old)}, model_args=TINY_DS2)
    shutil.copytree(corpus["stores"]["train"], tmp_path / "train")  # the stage wrote the store beside it
    with pytest.raises(FeatureStoreError, match=r"name the store .*train the feature stage wrote instead"):
        open_features(old)
