"""Two gloo processes train the speech task from an on-disk feature store: each rank reads the features of
its own batches and no others, a run stopped mid-phase and resumed ends bit-identical, and the sparse
phase's masks are the ones a single process computes from the same dense weights."""

from pathlib import Path

import pytest
import torch

from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import FeatureConfig, build_feature_store
from data_prep.features.store import FeatureStore
from data_prep.text.vocab import CharVocab
from dsd_seq.core.masks import MaskSet
from dsd_seq.core.schedule import Schedule
from dsd_seq.core.selection import select_prunable
from dsd_seq.safe_io import load_safely
from dsd_seq.training import distributed
from dsd_seq.training.config import load_config
from dsd_seq.training.epoch_order import epoch_seed
from dsd_seq.training.trainer import Trainer
from models.speech.speech_task import build_task
from tests.gloo_ranks import become_rank, save_rank_result, spawn_ranks

# 16 utterances, 2 a batch: 8 batches an epoch, 4 per rank; 2 epochs a phase -> 8 steps per phase a rank
SCHEDULE = "D2:2e-3,S2@0.5:2e-3,D2:2e-4"
OPTIONS = [
    "task=models.speech.speech_task:build_task",
    f"schedule={SCHEDULE}",
    "train.optimizer=adam",
    "train.grad_clip=5.0",
    "train.num_threads=1",
    "train.checkpoint_every_steps=3",
    "train.progress=false",
    "train.tensorboard=false",
    "train.eval_splits=[dev]",
]
TINY_DS2 = {
    "conv_channels": [2],
    "conv_kernels": [[5, 11]],
    "conv_strides": [[2, 2]],
    "rnn_layers": 1,
    "rnn_hidden": 8,
}


def _task(stores: dict):
    return build_task(data=stores, model_args=TINY_DS2, batch_size=2)


def _trainer(stores: dict, exp: Path) -> Trainer:
    torch.manual_seed(0)
    config = load_config(None, OPTIONS)
    return Trainer(_task(stores), Schedule.parse(SCHEDULE), config, exp)


def _expected_reads(stores: dict, rank: int, world: int) -> list[str]:
    """The training utterances of this rank's batches, epoch by epoch, from the index lists alone."""
    task, schedule, seed = _task(stores), Schedule.parse(SCHEDULE), load_config(None, OPTIONS).train.seed
    data, ids, epoch = task.datasets["train"], [], 0
    for phase_index, phase in enumerate(schedule.phases):
        for k in range(phase.epochs):
            generator = torch.Generator().manual_seed(epoch_seed(seed, phase_index, k))
            batches = distributed.shard(task.train_batches(generator, epoch), rank, world)
            ids += [data.utt_ids[i] for batch in batches.index_batches for i in batch]
            epoch += 1
    return ids


def _worker(rank: int, world: int, port: int, tmp: Path, stores: dict) -> None:
    become_rank(rank, world, port)
    reads: list[str] = []
    real_read = FeatureStore.read

    def counted_read(self, index):
        if self.directory == Path(stores["train"]):
            reads.append(self.utt_ids[index])
        return real_read(self, index)

    FeatureStore.read = counted_read
    out = {"expected_reads": _expected_reads(stores, rank, world)}
    full = _trainer(stores, tmp / "a")
    full.run(until_phase=2)
    out["masks_a"] = {n: m.clone() for n, m in full.dsd.masks.masks.items()}
    full.run(resume=True)
    out["reads_a"] = list(reads)
    out["params_a"] = {n: p.detach().clone() for n, p in full.model.named_parameters()}
    _trainer(stores, tmp / "b").run(stop_after_steps=11)  # mid sparse phase
    resumed = _trainer(stores, tmp / "b")
    resumed.run(resume=True)
    out["resumed_from"] = str(resumed.resumed_from)
    out["params_b"] = {n: p.detach().clone() for n, p in resumed.model.named_parameters()}
    save_rank_result(out, tmp, rank)
    distributed.destroy()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp_store")
    dirs = generate_corpus(
        tmp / "corpus",
        SynthSpeechConfig(num_train=16, num_dev=2, num_test=2, seed=11, jobs=1),
        progress=False,
    )
    stores = {}
    for split in ("train", "dev"):
        stores[split] = str(tmp / "feats" / split)
        build_feature_store(dirs[split], stores[split], FeatureConfig(), CharVocab.default(), progress=False)
    return tmp, stores, spawn_ranks(_worker, tmp, stores)


def test_each_rank_reads_the_features_of_its_own_batches_only(two_ranks):
    _, stores, ranks = two_ranks
    for r in ranks:
        assert r["reads_a"] == r["expected_reads"] and len(r["reads_a"]) == 3 * 2 * 8  # 3 phases x 2 epochs
    per_epoch = 8  # utterances a rank reads in an epoch: the ranks' shares of an epoch do not overlap
    for start in range(0, len(ranks[0]["reads_a"]), per_epoch):
        assert not set(ranks[0]["reads_a"][start : start + per_epoch]) & set(
            ranks[1]["reads_a"][start : start + per_epoch]
        )


def test_masks_and_weights_agree_across_ranks_and_resume_is_bit_identical(two_ranks):
    _, _, (r0, r1) = two_ranks
    assert "step-000000011.pt" in r0["resumed_from"]
    for name, value in r0["params_a"].items():
        assert torch.equal(value, r1["params_a"][name]), name
        assert torch.equal(value, r0["params_b"][name]), name
    for name, mask in r0["masks_a"].items():
        assert torch.equal(mask, r1["masks_a"][name]), name


def test_sparse_masks_are_the_single_process_masks_of_the_dense_weights(two_ranks):
    tmp, stores, (r0, _) = two_ranks
    task = _task(stores)
    task.model.load_state_dict(load_safely(tmp / "a" / "checkpoints" / "phase1-end.pt")["model"])
    config = load_config(None, OPTIONS)
    params = select_prunable(task.model, config.selection)
    single = MaskSet.from_criterion(params, 0.5, config.masking)
    assert single.masks.keys() == r0["masks_a"].keys()
    for name, mask in single.masks.items():
        assert torch.equal(mask, r0["masks_a"][name]), name
        assert 0 < int(mask.sum()) < mask.numel(), name
