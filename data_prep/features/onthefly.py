"""A Kaldi data dir read as a feature store: features computed from the audio on each read, no files.

Why: a written store costs a preparation pass and disk (LibriSpeech 960 h: ~11.5 GB at 40 bins); computing
fbank in the loader (``task_args.num_workers`` processes) costs CPU time per epoch instead. It is the store's
on-the-fly option, not another dataset: :class:`OnTheFlyFeatures` answers what
:class:`~data_prep.features.store.FeatureStore` answers (ids, transcripts, frame counts, ``manifest``,
``read``), and the one speech dataset reads either. Speed perturbation works as with a written store:
every factor adds a copy of each utterance (ids ``sp0.9-<utt>``), so an epoch's batches stay a function of
the trainer's generator; SpecAugment is applied in the training step as for any source.

Frame counts for length bucketing come from the audio headers (``soundfile.info``), not from decoding.
Utterances that cannot be used (empty or out-of-vocabulary transcripts, unreadable headers) are counted by
kind at construction, as ``data_prep.features.extraction`` does; audio that fails later is raised as
``AudioError`` naming the file, and skipped and counted in training, like a truncated store.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from data_prep.audio.audio_io import AudioError, read_audio_with_rate
from data_prep.audio.speed_perturb import perturbed_utt_id, speed_perturb
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.features.extraction import FeatureConfig, compute_features
from data_prep.text.vocab import CharVocab, OutOfVocabularyError


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
    """The kind of problem that rules an utterance out before training (as data_prep.features.extraction counts them)."""
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


class OnTheFlyFeatures:
    """A Kaldi data dir as a feature store: ``utt_ids``, ``texts``, ``num_frames`` from the transcripts and
    audio headers, ``read(index)`` computing the features (``[T, F]`` float32) from the audio."""

    #: what a failed read raises (the speech dataset skips and counts these in training)
    read_errors: tuple[type[Exception], ...] = (AudioError, ValueError)

    def __init__(
        self, data_dir: str | os.PathLike, cfg: FeatureConfig, speed_factors: Sequence[float] = ()
    ) -> None:
        self.data_dir, self.cfg = Path(data_dir), cfg
        vocab = CharVocab.default()
        problems: dict[str, list[str]] = {}
        self.utt_ids: list[str] = []
        self.texts: list[str] = []
        self.paths: list[Path] = []
        self.factors: list[float] = []
        lengths: list[int] = []
        duplicates: dict[str, str] = {}
        for utt in read_data_dir(self.data_dir, duplicates=duplicates):
            text = vocab.normalize(utt.text)
            kind = _unusable(text, vocab, utt.wav_path)
            if kind:
                problems.setdefault(kind, []).append(utt.utt_id)
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
                    problems.setdefault("too_short_audio", []).append(utt.utt_id)
                    continue
                self.utt_ids.append(utt.utt_id if factor == 1.0 else perturbed_utt_id(utt.utt_id, factor))
                self.texts.append(text)
                self.paths.append(utt.wav_path)
                self.factors.append(factor)
                lengths.append(frames)
        if duplicates:
            problems["duplicate_utt_id"] = sorted(duplicates)
        self.num_frames = np.asarray(lengths, dtype=np.int64)
        self.num_features = cfg.num_bins
        #: what a store's manifest says besides its lists: vocabulary, problems, feature config
        self.manifest = {
            "vocab": vocab.to_dict(),
            "problems": problems,
            "feature_config": cfg.to_dict(),
            "texts": self.texts,
        }

    def __len__(self) -> int:
        return len(self.utt_ids)

    def read(self, index: int) -> torch.Tensor:
        wave, _ = read_audio_with_rate(self.paths[index], self.cfg.sample_rate, allow_upsampling=False)
        if self.factors[index] != 1.0:
            wave = speed_perturb(wave, self.cfg.sample_rate, self.factors[index])
        return compute_features(wave, self.cfg)
