"""Features computed from the audio when a batch needs them: a Kaldi data dir trains with no feature store.

Why: a store costs a preparation pass and disk (LibriSpeech 960 h: ~11.5 GB at 40 bins); computing fbank in
the loader (``task_args.num_workers`` processes) costs CPU time per epoch instead. Speed perturbation works
as with a store: every factor adds a copy of each utterance (ids ``sp0.9-<utt>``), so an epoch's batches
stay a function of the trainer's generator; SpecAugment is applied in the training step as for any source.

Frame counts for length bucketing come from the audio headers (``soundfile.info``), not from decoding.
Utterances that cannot be used (empty or out-of-vocabulary transcripts, unreadable headers) are counted by
kind at construction, as ``data_prep.features`` does; audio that fails later is raised as ``AudioError``
naming the file, and skipped and counted in training (``skipped``), like a truncated store.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import soundfile as sf
from torch.utils.data import Dataset

from data_prep.audio import AudioError, read_audio_with_rate
from data_prep.batch_sampler import SkippedUtterances, read_items
from data_prep.features import FeatureConfig, compute_features
from data_prep.kaldi_dir import read_data_dir
from data_prep.speech_dataset import SpeechBatch, collate_speech
from data_prep.speed_perturb import perturbed_utt_id, speed_perturb
from data_prep.stored_speech_dataset import EncodedLabels
from data_prep.vocab import CharVocab, OutOfVocabularyError


def is_data_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` is a Kaldi data dir (it has a ``wav.scp``)."""
    return (Path(path) / "wav.scp").is_file()


def _frames(samples: int, cfg: FeatureConfig) -> int:
    """Frames of ``samples`` as ``compute_features`` makes them (no padding at the edges)."""
    return (
        0
        if samples < cfg.frame_length_samples
        else 1 + (samples - cfg.frame_length_samples) // cfg.frame_shift_samples
    )


def _unusable(text: str, vocab: CharVocab, wav_path: Path) -> str | None:
    """The kind of problem that rules an utterance out before training (as data_prep.features counts them)."""
    if not text:
        return "empty_transcript"
    try:
        vocab.encode(text)
    except OutOfVocabularyError:
        return "oov_transcript"
    if not wav_path.is_file():
        return "missing_audio"
    try:
        sf.info(str(wav_path))
    except (RuntimeError, OSError, sf.LibsndfileError):
        return "corrupt_audio"
    return None


class OnTheFlyFeatureDataset(Dataset):
    """Items ``utt_id``, ``features`` [T, F] (computed from audio), ``labels`` [L], ``text`` of a data dir."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        cfg: FeatureConfig,
        encode: Callable[[str], list[int]],
        speed_factors: Sequence[float] = (),
        vocab: CharVocab | None = None,
    ) -> None:
        self.data_dir, self.cfg, self.encode = Path(data_dir), cfg, encode
        vocab = vocab or CharVocab.default()
        self.vocab = vocab
        self.problems: dict[str, list[str]] = {}
        self.utt_ids: list[str] = []
        self.texts: list[str] = []
        self.paths: list[Path] = []
        self.factors: list[float] = []
        self._lengths: list[int] = []
        duplicates: dict[str, str] = {}
        for utt in read_data_dir(self.data_dir, duplicates=duplicates):
            text = vocab.normalize(utt.text)
            kind = _unusable(text, vocab, utt.wav_path)
            if kind:
                self.problems.setdefault(kind, []).append(utt.utt_id)
                continue
            info = sf.info(str(utt.wav_path))
            samples = (
                info.frames
                if info.samplerate == cfg.sample_rate
                else math.ceil(info.frames * cfg.sample_rate / info.samplerate)
            )
            for factor in (1.0, *speed_factors):
                frames = _frames(math.ceil(samples / factor) if factor != 1.0 else samples, cfg)
                if frames < 1:
                    self.problems.setdefault("too_short_audio", []).append(utt.utt_id)
                    continue
                self.utt_ids.append(utt.utt_id if factor == 1.0 else perturbed_utt_id(utt.utt_id, factor))
                self.texts.append(text)
                self.paths.append(utt.wav_path)
                self.factors.append(factor)
                self._lengths.append(frames)
        if duplicates:
            self.problems["duplicate_utt_id"] = sorted(duplicates)
        self.rows = list(range(len(self.utt_ids)))
        self.labels = EncodedLabels(self.texts, encode)
        self.skipped: SkippedUtterances | None = None
        self.cache = {"vocab": vocab.to_dict(), "problems": self.problems, "feature_config": cfg.to_dict()}

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __getitem__(self, index: int) -> dict:
        wave, _ = read_audio_with_rate(self.paths[index], self.cfg.sample_rate, allow_upsampling=False)
        if self.factors[index] != 1.0:
            wave = speed_perturb(wave, self.cfg.sample_rate, self.factors[index])
        return {
            "utt_id": self.utt_ids[index],
            "features": compute_features(wave, self.cfg),
            "labels": self.labels[index],
            "text": self.texts[index],
        }

    @property
    def feature_dim(self) -> int:
        return self.cfg.num_bins

    def frame_lengths(self) -> list[int]:
        return list(self._lengths)

    def subset(self, indices: Sequence[int]) -> OnTheFlyFeatureDataset:
        """The items at ``indices`` (in that order); nothing is re-read."""
        part = object.__new__(OnTheFlyFeatureDataset)
        part.__dict__.update(self.__dict__)
        for name in ("utt_ids", "texts", "paths", "factors", "_lengths"):
            setattr(part, name, [getattr(self, name)[i] for i in indices])
        part.rows = list(range(len(part.utt_ids)))
        part.labels = EncodedLabels(part.texts, self.encode)
        return part

    def collate(self, indices: Sequence[int]) -> SpeechBatch:
        """The padded batch of ``indices``; with ``skipped`` set, audio that fails is left out and counted
        (see :func:`data_prep.batch_sampler.read_items`)."""
        return collate_speech(
            read_items(self.__getitem__, indices, self.utt_ids, self.skipped, (AudioError, ValueError))
        )
