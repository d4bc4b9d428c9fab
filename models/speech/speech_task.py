"""The speech-recognition task for the DSD trainer (CTC or transducer): feature stores in, WER/CER out.

Output units are the store's characters or, with ``task_args.units`` naming a SentencePiece model, subword
pieces (labels encoded from the stored transcripts); WER is always scored on the decoded words. The
units are recorded in the model's checkpoints (``models.speech.units_guard``), so resuming with other units fails.

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

from data_prep.batching.batch_sampler import LazyBatches, SkippedUtterances
from data_prep.batching.bucketing import frame_budget_batches
from data_prep.batching.speech_dataset import (
    SpeechBatch,
    SpeechDataset,
    collate_speech,
    length_sorted_batches,
)
from data_prep.features.extraction import FeatureConfig
from data_prep.features.sources import FeatureSource, open_features
from data_prep.text.subword_units import SentencePieceVocab
from data_prep.text.vocab import CharVocab
from dsd_seq.experiments.score import cer, wer
from dsd_seq.training.config import check_number, from_dict
from models.speech.ctc import ctc_loss, infeasible_utterances
from models.speech.ctc_decoding import DecodingConfig, ctc_text_decoder
from models.speech.deepspeech1 import DeepSpeech1, DeepSpeech1Config
from models.speech.deepspeech2 import DeepSpeech2, DeepSpeech2Config
from models.speech.deepspeech2_table8 import DeepSpeech2Table8, DeepSpeech2Table8Config
from models.speech.spec_augment import SpecAugmentConfig, spec_augment
from models.speech.transducer import Transducer, TransducerConfig
from models.speech.transducer_loss import loss_backend, transducer_loss
from models.speech.units_guard import attach_units

MODELS = {
    "deepspeech1": (DeepSpeech1, DeepSpeech1Config),
    "deepspeech2": (DeepSpeech2, DeepSpeech2Config),
    "deepspeech2_table8": (DeepSpeech2Table8, DeepSpeech2Table8Config),
    "transducer": (Transducer, TransducerConfig),
}


#: the inference module of this task (``dsd-seq export``, ``dsd_seq.load_model``)
INFERENCE = "models.speech.speech_recognizer"


class SpeechDataError(ValueError):
    """Too many utterances of a split cannot be used; the message counts them and names examples."""


@dataclass
class SpeechTaskConfig:
    # split -> feature store directory (python -m data_prep.features) or Kaldi data dir (on the fly); needs "train"
    data: dict[str, str]
    model: str = "deepspeech2"
    model_args: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16  # utterances per training batch (when batch_frames is 0)
    batch_frames: int = 0  # >0: training batches hold at most this many padded frames, from length buckets
    num_buckets: int = 8  # with batch_frames: utterances are shuffled within this many length buckets
    sorta_grad: bool = False  # the run's first epoch in increasing length (DeepSpeech 2, Sec. 3.1)
    eval_batch_size: int = 64
    max_bad_fraction: float = 0.05
    num_workers: int = 0  # >0: loader processes read and pad batches ahead of training
    prefetch_factor: int = 2  # batches each loader worker reads ahead
    pin_memory: bool = True  # with workers on a GPU: page-locked batches copy to the device faster
    features: FeatureConfig = field(default_factory=FeatureConfig)  # for Kaldi data dirs (on the fly)
    # for a Kaldi train data dir: one copy of every utterance per factor, e.g. [0.9, 1.1]
    speed_perturb: list[float] = field(default_factory=list)
    units: str = "char"  # "char" (the store's characters) or a SentencePiece .model file
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)  # training only; off
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

    def __post_init__(self) -> None:
        """Ranges checked when the config is read, before any store is opened, naming the key."""
        for key, low in (("batch_size", 1), ("batch_frames", 0), ("num_buckets", 1), ("eval_batch_size", 1)):
            check_number(f"task_args.{key}", getattr(self, key), low, 2**63, high_open=True, integer=True)
        check_number("task_args.max_bad_fraction", self.max_bad_fraction, 0.0, 1.0)
        check_number("task_args.num_workers", self.num_workers, 0, 1025, high_open=True, integer=True)
        check_number("task_args.prefetch_factor", self.prefetch_factor, 1, 1025, high_open=True, integer=True)
        for factor in self.speed_perturb:
            check_number("task_args.speed_perturb", factor, 0.5, 2.0)


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


def _open_split(split: str, path: str, config: SpeechTaskConfig) -> FeatureSource:
    """The split's store, or its Kaldi data dir computed on the fly as ``task_args.features`` says (speed
    perturbed copies for training only)."""
    return open_features(path, config.features, config.speed_perturb if split == "train" else ())


def split_metadata(path: str, config: SpeechTaskConfig) -> dict:
    """Transcripts (``texts``), ``feature_config`` and ``vocab`` of a split, whatever holds it: a store's
    manifest, or a Kaldi data dir read on the fly (its features as ``task_args.features`` says)."""
    return open_features(path, config.features).manifest


class SpeechTask:
    metric = "wer"
    higher_is_better = False
    #: settings used only when scoring: a resumed run may change them (the Task protocol's option)
    resumable_changes = ("task_args.decoding", "task_args.eval_batch_size")

    def __init__(self, config: SpeechTaskConfig):
        if "train" not in config.data:
            raise ValueError("task_args.data must name a 'train' feature store")
        self.config = config
        # Only the manifests are held: features are read on demand (data_prep.features.store), so a
        # process's memory does not grow with the corpus.
        sources = {split: _open_split(split, path, config) for split, path in config.data.items()}
        chars = CharVocab.from_dict(sources["train"].manifest["vocab"])
        for split, source in sources.items():
            if CharVocab.from_dict(source.manifest["vocab"]).to_dict() != chars.to_dict():
                raise ValueError(
                    f"{config.data[split]}: its vocabulary differs from the train store's; rebuild it"
                )
        self.vocab: CharVocab | SentencePieceVocab = chars
        if config.units != "char":
            self.vocab = SentencePieceVocab.load(config.units)
        datasets = {split: SpeechDataset(source, self.vocab.encode) for split, source in sources.items()}
        self.model = build_model(
            config.model, config.model_args, datasets["train"].feature_dim, len(self.vocab)
        )
        attach_units(self.model, list(self.vocab.symbols))
        self.transducer = isinstance(self.model, Transducer)
        if self.transducer and config.decoding.mode != "greedy":
            raise ValueError(
                f"task_args.decoding.mode={config.decoding.mode!r}: the transducer decodes greedily only"
            )
        self.problems: dict[str, dict[str, Any]] = {
            split: {"cache_problems": {k: len(v) for k, v in ds.metadata.get("problems", {}).items()}}
            for split, ds in datasets.items()
        }
        # A transducer may emit several labels on one frame: only CTC has labels too long for the audio.
        self._infeasible = {
            split: [] if self.transducer else self._count_infeasible(split, ds)
            for split, ds in datasets.items()
        }
        # Only training drops what CTC cannot align; held-out splits keep every utterance, so their WER
        # counts the errors such utterances must have.
        train = datasets["train"]
        dropped = set(self._infeasible["train"])
        datasets["train"] = train.subset([i for i, utt in enumerate(train.utt_ids) if utt not in dropped])
        limit = int(config.max_bad_fraction * len(datasets["train"]))  # unreadable in training: skip, count
        datasets["train"].skipped = SkippedUtterances(limit)
        self.datasets = datasets
        self.splits = tuple(datasets)
        self._check_frame_budget()

    def _check_frame_budget(self) -> None:
        data = self.datasets["train"]
        if not self.config.batch_frames or not len(data):
            return
        lengths = data.frame_lengths()
        longest = max(range(len(lengths)), key=lengths.__getitem__)
        if lengths[longest] > self.config.batch_frames:
            raise SpeechDataError(
                f"{self.config.data['train']}: utterance {data.utt_ids[longest]} has {lengths[longest]} frames, "
                f"more than task_args.batch_frames={self.config.batch_frames}; raise batch_frames to at least "
                "the longest training utterance"
            )

    def _count_infeasible(self, split: str, dataset: SpeechDataset) -> list[str]:
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
    def train_batches(self, generator: torch.Generator, epoch: int | None = None) -> LazyBatches:
        """Batches by utterance count or frame budget; SortaGrad presents the run's epoch 0 in length order.

        Lazy: only the index lists are built here; a batch's features are read (from a store) and padded
        when the trainer asks for it, so each rank reads only its own batches."""
        data = self.datasets["train"]
        lengths = data.frame_lengths()
        order_from = None if self.config.sorta_grad and epoch == 0 else generator
        if self.config.batch_frames:
            order = frame_budget_batches(
                lengths, self.config.batch_frames, order_from, self.config.num_buckets
            )
        else:
            order = length_sorted_batches(lengths, self.config.batch_size, order_from)
        return LazyBatches(
            order,
            data.collate,
            num_workers=self.config.num_workers,
            prefetch_factor=self.config.prefetch_factor,
            pin_memory=self.config.pin_memory and torch.cuda.is_available(),
        )

    def loss(self, batch: SpeechBatch, device: torch.device, model: nn.Module) -> torch.Tensor:
        batch = batch.to(device)
        features = batch.features
        if model.training:
            features = spec_augment(features, batch.feature_lengths, self.config.spec_augment)
        if self.transducer:
            logits, lengths = model(features, batch.feature_lengths, batch.labels)
            return transducer_loss(logits, lengths, batch.labels, batch.label_lengths)
        log_probs, lengths = model(features, batch.feature_lengths)
        return ctc_loss(log_probs, lengths, batch.labels, batch.label_lengths, utt_ids=batch.utt_ids)

    def check_evaluation(self) -> None:
        """Build the decoder (opening the language model of ``decoding: {mode: lm}``) before training, so
        a missing LM file stops the run now, not after the first epoch."""
        if not self.transducer:
            words = (w for text in self.datasets["train"].texts for w in text.split())
            ctc_text_decoder(self.config.decoding, self.vocab, words)

    def transcribe(
        self, split: str, device: torch.device, decoding: DecodingConfig | None = None
    ) -> tuple[list[str], list[str], list[str]]:
        """Utt ids, references and hypotheses of ``split``; ``decoding`` overrides task_args.decoding."""
        decoding = decoding or self.config.decoding
        data = self.datasets[split]
        if not self.transducer:
            words = (w for text in self.datasets["train"].texts for w in text.split())
            decode = ctc_text_decoder(decoding, self.vocab, words)
        ids, refs, hyps = [], [], []
        self._eval_loss: list[tuple[float, int]] = []  # (mean loss, utterances) of each batch scored
        for batch_ids in length_sorted_batches(data.frame_lengths(), self.config.eval_batch_size):
            batch = collate_speech([data[i] for i in batch_ids]).to(device)
            ids += batch.utt_ids
            refs += batch.texts
            if self.transducer:
                sequences = self.model.greedy_decode(batch.features, batch.feature_lengths)
                hyps += [self.vocab.decode(seq) for seq in sequences]
            else:
                log_probs, lengths = self.model(batch.features, batch.feature_lengths)
                hyps += decode(log_probs, lengths)
                self._score_ctc_loss(split, batch, log_probs, lengths)
        return ids, refs, hyps

    def _score_ctc_loss(
        self, split: str, batch: SpeechBatch, log_probs: torch.Tensor, lengths: torch.Tensor
    ) -> None:
        """The batch's CTC loss (the training objective, without SpecAugment) from the decoder's own
        forward pass: the dev loss a phase that ends at convergence monitors, at no extra forward.
        Utterances CTC cannot align (counted in data_summary) are left out."""
        skip = set(self._infeasible.get(split, []))
        keep = [i for i, utt in enumerate(batch.utt_ids) if utt not in skip]
        if not keep:
            return
        rows = torch.tensor(keep, device=log_probs.device)
        loss = ctc_loss(
            log_probs[rows], lengths[rows], batch.labels[rows], batch.label_lengths[rows],
            utt_ids=[batch.utt_ids[i] for i in keep],
        )  # fmt: skip
        self._eval_loss.append((float(loss), len(keep)))

    def evaluate(
        self, split: str, device: torch.device, decoding: DecodingConfig | None = None
    ) -> dict[str, float]:
        if split not in self.datasets:
            raise ValueError(
                f"train.eval_splits names {split!r}, but task_args.data has only {sorted(self.datasets)}"
            )
        _, refs, hyps = self.transcribe(split, device, decoding)
        scores = {"wer": wer(refs, hyps), "cer": cer(refs, hyps)}
        scored = sum(n for _, n in self._eval_loss)
        if scored:  # CTC models; per-utterance mean, as in training (the loss per label)
            scores["loss"] = sum(loss * n for loss, n in self._eval_loss) / scored
        return scores

    def data_summary(self) -> dict[str, Any]:
        device = next(self.model.parameters()).device
        summary = {
            "utterances": {split: len(ds) for split, ds in self.datasets.items()},
            "problems": self.problems,
            "units": "char" if self.config.units == "char" else f"sentencepiece:{self.config.units}",
            "num_classes": len(self.vocab),
            "objective": "transducer" if self.transducer else "ctc",
            "decoding": self.config.decoding.mode,
            "spec_augment": self.config.spec_augment.enabled,
        }
        if self.transducer:
            summary["transducer_loss"] = loss_backend(device)
        return summary


def build_task(**task_args: Any) -> SpeechTask:
    """Factory named in recipe configs as ``models.speech.speech_task:build_task``."""
    return SpeechTask(from_dict(SpeechTaskConfig, task_args, "task_args"))
