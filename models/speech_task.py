"""The CTC speech-recognition task for the DSD trainer: feature caches in, WER/CER out.

Utterances whose labels CTC cannot align at the model's output frame rate are never dropped silently:
they are counted, named in the log, and the run stops if more than ``max_bad_fraction`` of a split is
affected (a too-strided model or a broken corpus should not train on a remnant).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from data_prep.features import load_feature_cache
from data_prep.speech_dataset import FeatureDataset, SpeechBatch, collate_speech, length_sorted_batches
from data_prep.vocab import CharVocab
from dsd_seq.config import from_dict
from models.ctc import ctc_loss, greedy_decode, infeasible_utterances
from models.deepspeech1 import DeepSpeech1, DeepSpeech1Config
from models.deepspeech2 import DeepSpeech2, DeepSpeech2Config
from models.scoring import cer, wer

MODELS = {"deepspeech1": (DeepSpeech1, DeepSpeech1Config), "deepspeech2": (DeepSpeech2, DeepSpeech2Config)}


class SpeechDataError(ValueError):
    """Too many utterances of a split cannot be used; the message counts them and names examples."""


@dataclass
class SpeechTaskConfig:
    data: dict[str, str]  # split name -> feature cache path (data_prep.features); needs "train"
    model: str = "deepspeech2"
    model_args: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16
    eval_batch_size: int = 64
    max_bad_fraction: float = 0.05


def build_model(name: str, model_args: dict[str, Any], num_features: int, num_classes: int) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"task_args.model={name!r}; accepted: {sorted(MODELS)}")
    model_cls, config_cls = MODELS[name]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(model_args) - known)
    if unknown:
        raise ValueError(
            f"task_args.model_args: unknown key(s) {unknown} for {name}; accepted: {sorted(known)}"
        )
    args = {k: _tuples(v) for k, v in model_args.items()}  # YAML lists -> the configs' tuples
    return model_cls(config_cls(**{**args, "num_features": num_features, "num_classes": num_classes}))


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class SpeechTask:
    metric = "wer"
    higher_is_better = False

    def __init__(self, config: SpeechTaskConfig):
        if "train" not in config.data:
            raise ValueError("task_args.data must name a 'train' feature cache")
        self.config = config
        caches = {split: load_feature_cache(path) for split, path in config.data.items()}
        self.vocab = CharVocab.from_dict(caches["train"]["vocab"])
        for split, cache in caches.items():
            if CharVocab.from_dict(cache["vocab"]).to_dict() != self.vocab.to_dict():
                raise ValueError(
                    f"{config.data[split]}: its vocabulary differs from the train cache's; rebuild it"
                )
        datasets = {split: FeatureDataset(cache) for split, cache in caches.items()}
        self.model = build_model(
            config.model, config.model_args, datasets["train"].feature_dim, len(self.vocab)
        )
        self.problems: dict[str, dict[str, Any]] = {
            split: {"cache_problems": {k: len(v) for k, v in cache.get("problems", {}).items()}}
            for split, cache in caches.items()
        }
        self._infeasible = {split: self._count_infeasible(split, ds) for split, ds in datasets.items()}
        # Only training drops what CTC cannot align; held-out splits keep every utterance, so their WER
        # counts the errors such utterances must have.
        train = datasets["train"]
        dropped = set(self._infeasible["train"])
        datasets["train"] = train.subset([i for i, utt in enumerate(train.utt_ids) if utt not in dropped])
        self.datasets = datasets
        self.splits = tuple(datasets)

    def _count_infeasible(self, split: str, dataset: FeatureDataset) -> list[str]:
        frames = self.model.output_lengths(torch.tensor(dataset.frame_lengths(), dtype=torch.int64)).tolist()
        labels = [lab.tolist() for lab in dataset.labels]
        dropped = [utt for utt, _, _ in infeasible_utterances(dataset.utt_ids, labels, frames)]
        self.problems[split]["ctc_infeasible"] = len(dropped)
        self.problems[split]["ctc_infeasible_examples"] = dropped[:5]
        fraction = len(dropped) / max(len(dataset), 1)
        if len(dropped) == len(dataset) or fraction > self.config.max_bad_fraction:
            raise SpeechDataError(
                f"{self.config.data[split]}: {len(dropped)} of {len(dataset)} utterances have labels too long "
                f"for CTC at this model's frame rate (e.g. {dropped[:5]}); reduce the model's time stride, "
                f"or raise task_args.max_bad_fraction (now {self.config.max_bad_fraction}) to go on without them"
            )
        return dropped

    # Task interface -----------------------------------------------------------------------------------
    def train_batches(self, generator: torch.Generator) -> list[SpeechBatch]:
        data = self.datasets["train"]
        order = length_sorted_batches(data.frame_lengths(), self.config.batch_size, generator)
        return [collate_speech([data[i] for i in batch]) for batch in order]

    def loss(self, batch: SpeechBatch, device: torch.device) -> torch.Tensor:
        batch = batch.to(device)
        log_probs, lengths = self.model(batch.features, batch.feature_lengths)
        return ctc_loss(log_probs, lengths, batch.labels, batch.label_lengths, utt_ids=batch.utt_ids)

    def transcribe(self, split: str, device: torch.device) -> tuple[list[str], list[str], list[str]]:
        """Greedy (max) decoding as in the paper; returns utt ids, references, hypotheses."""
        data = self.datasets[split]
        ids, refs, hyps = [], [], []
        for batch_ids in length_sorted_batches(data.frame_lengths(), self.config.eval_batch_size):
            batch = collate_speech([data[i] for i in batch_ids]).to(device)
            log_probs, lengths = self.model(batch.features, batch.feature_lengths)
            ids += batch.utt_ids
            refs += batch.texts
            hyps += [self.vocab.decode(seq) for seq in greedy_decode(log_probs, lengths)]
        return ids, refs, hyps

    def evaluate(self, split: str, device: torch.device) -> dict[str, float]:
        if split not in self.datasets:
            raise ValueError(
                f"train.eval_splits names {split!r}, but task_args.data has only {sorted(self.datasets)}"
            )
        _, refs, hyps = self.transcribe(split, device)
        return {"wer": wer(refs, hyps), "cer": cer(refs, hyps)}

    def data_summary(self) -> dict[str, Any]:
        return {
            "utterances": {split: len(ds) for split, ds in self.datasets.items()},
            "problems": self.problems,
        }


def build_task(**task_args: Any) -> SpeechTask:
    """Factory named in recipe configs as ``models.speech_task:build_task``."""
    return SpeechTask(from_dict(SpeechTaskConfig, task_args, "task_args"))
