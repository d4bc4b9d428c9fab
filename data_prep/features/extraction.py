"""Acoustic features and the feature stage: audio + transcripts of a Kaldi data dir -> a feature store
(:mod:`data_prep.features.store`; ``python -m data_prep.features --help``).

Features are computed once and stored because training reads every utterance every epoch, and DSD runs
several phases of epochs (DeepSpeech1 Table 7 trains 250 epochs in five phases). Utterances that cannot be
used (bad audio, empty or out-of-vocabulary transcripts) are skipped and counted by kind, so one broken file
does not stop a run; but if too many are bad the data is probably wrong, and the store refuses to build.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchaudio
from tqdm import tqdm

from data_prep.audio.audio_io import AudioError, read_audio_with_rate
from data_prep.audio.speed_perturb import parse_speed_factors, perturbed_utt_id, speed_perturb
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.features.store import STORAGES, FeatureStoreWriter
from data_prep.text.vocab import CharVocab, OutOfVocabularyError
from dsd_seq.safe_io import write_atomic

FEATURE_KINDS = ("fbank", "logmel")
NORMALIZE_KINDS = ("utterance", "none")
MAX_EXAMPLES = 5


class DataQualityError(ValueError):
    """Too large a fraction of a data dir's utterances could not be used."""


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes frames. Defaults: 40 Kaldi fbank bins, 25 ms windows every 10 ms, at 16 kHz."""

    kind: str = "fbank"  # "fbank" (Kaldi-compatible) or "logmel" (torchaudio MelSpectrogram, log)
    num_bins: int = 40  # mel filterbank channels = feature dimension
    sample_rate: int = 16000  # audio is resampled to this rate
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    normalize: str = "utterance"  # "utterance": zero mean, unit variance per bin per utterance; "none"

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"FeatureConfig.kind: {self.kind!r} is not one of {', '.join(FEATURE_KINDS)}")
        if self.normalize not in NORMALIZE_KINDS:
            raise ValueError(
                f"FeatureConfig.normalize: {self.normalize!r} is not one of {', '.join(NORMALIZE_KINDS)}"
            )
        if not isinstance(self.num_bins, int) or not 1 <= self.num_bins <= 512:
            raise ValueError(f"FeatureConfig.num_bins: {self.num_bins!r}; accepted: an integer in 1..512")
        if not isinstance(self.sample_rate, int) or self.sample_rate < 1000:
            raise ValueError(
                f"FeatureConfig.sample_rate: {self.sample_rate!r}; accepted: an integer >= 1000 (Hz)"
            )
        if not self.frame_length_ms > 0 or not self.frame_shift_ms > 0:
            raise ValueError(
                "FeatureConfig.frame_length_ms/frame_shift_ms: "
                f"{self.frame_length_ms!r}/{self.frame_shift_ms!r}; accepted: positive milliseconds"
            )

    @property
    def frame_length_samples(self) -> int:
        return int(round(self.sample_rate * self.frame_length_ms / 1000))

    @property
    def frame_shift_samples(self) -> int:
        return int(round(self.sample_rate * self.frame_shift_ms / 1000))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"FeatureConfig: unknown keys {unknown}; accepted: {sorted(known)}")
        return cls(**data)


@functools.lru_cache(maxsize=8)
def _mel_transform(cfg: FeatureConfig) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.frame_length_samples,
        win_length=cfg.frame_length_samples,
        hop_length=cfg.frame_shift_samples,
        n_mels=cfg.num_bins,
        center=False,
    )


def compute_features(wave: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Float32 ``[frames, num_bins]`` features of a mono wave at ``cfg.sample_rate``.

    Raises ValueError if the wave is shorter than one frame.
    """
    wave = wave.reshape(-1).to(torch.float32)
    if wave.numel() < cfg.frame_length_samples:
        raise ValueError(
            f"audio of {wave.numel()} samples is shorter than one {cfg.frame_length_ms} ms frame "
            f"({cfg.frame_length_samples} samples)"
        )
    if cfg.kind == "fbank":
        feats = torchaudio.compliance.kaldi.fbank(
            wave.unsqueeze(0),
            num_mel_bins=cfg.num_bins,
            sample_frequency=cfg.sample_rate,
            frame_length=cfg.frame_length_ms,
            frame_shift=cfg.frame_shift_ms,
            dither=0.0,
            energy_floor=0.0,
        )
    else:
        feats = torch.log(_mel_transform(cfg)(wave) + 1e-6).transpose(0, 1)
    if cfg.normalize == "utterance":
        feats = (feats - feats.mean(dim=0, keepdim=True)) / (
            feats.std(dim=0, keepdim=True, unbiased=False) + 1e-5
        )
    return feats.contiguous().to(torch.float32)


@dataclass
class ExtractionReport:
    """What went into a feature store and what was skipped, by kind, with example utterances."""

    data_dir: Path
    out_path: Path | None
    num_utterances: int
    num_kept: int
    num_frames: int
    problems: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # kind -> [(utt_id, message)]
    resampled: list[tuple[str, int]] = field(default_factory=list)  # kept, resampled from (utt_id, Hz)

    @property
    def num_bad(self) -> int:
        return self.num_utterances - self.num_kept

    @property
    def bad_fraction(self) -> float:
        return self.num_bad / self.num_utterances if self.num_utterances else 0.0

    def summary(self) -> str:
        hours = self.num_frames * 0.01 / 3600
        lines = [
            f"{self.data_dir}: kept {self.num_kept} of {self.num_utterances} utterances "
            f"({self.num_frames} frames, ~{hours:.2f} h at 10 ms), skipped {self.num_bad} "
            f"({100 * self.bad_fraction:.1f}%)"
        ]
        for kind, items in sorted(self.problems.items()):
            examples = ", ".join(utt for utt, _ in items[:MAX_EXAMPLES])
            lines.append(f"  {kind}: {len(items)} (e.g. {examples})")
            lines.append(f"    first: {items[0][1]}")
        if self.resampled:
            examples = ", ".join(f"{utt} ({rate} Hz)" for utt, rate in self.resampled[:MAX_EXAMPLES])
            lines.append(f"  resampled, kept: {len(self.resampled)} (e.g. {examples})")
        if self.out_path is not None:
            lines.append(f"  store: {self.out_path}; all problems: {problems_path(self.out_path)}")
        return "\n".join(lines)


def problems_path(out_path: str | os.PathLike) -> Path:
    return Path(f"{out_path}.problems.json")


def build_feature_store(
    data_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    cfg: FeatureConfig,
    vocab: CharVocab,
    max_bad_fraction: float = 0.1,
    progress: bool = True,
    speed_factors: tuple[float, ...] = (),
    storage: str = "numpy",
) -> ExtractionReport:
    """Features of every usable utterance of ``data_dir`` into the store directory ``out_path``
    (:mod:`data_prep.features.store`, written by Lhotse's ``storage`` writer as they are computed).

    Also writes ``<out_path>.problems.json`` (kind -> [{utt_id, message}]), even when the bad fraction
    exceeds ``max_bad_fraction`` and DataQualityError is raised (then no store is written).
    ``speed_factors`` (e.g. (0.9, 1.1), training data only) add a speed-perturbed copy of every utterance.
    """
    data_dir, out_path = Path(data_dir), Path(out_path)
    duplicates: dict[str, str] = {}
    utterances = read_data_dir(data_dir, duplicates=duplicates)
    problems: dict[str, list[tuple[str, str]]] = {}
    resampled: list[tuple[str, int]] = []
    if duplicates:
        problems["duplicate_utt_id"] = sorted(duplicates.items())
    num_frames = 0
    writer = FeatureStoreWriter(out_path, storage)

    def skip(kind: str, utt_id: str, message: str) -> None:
        problems.setdefault(kind, []).append((utt_id, message))

    for utt in tqdm(utterances, desc=f"features {data_dir.name}", unit="utt", disable=not progress):
        text = vocab.normalize(utt.text)
        if not text:
            skip("empty_transcript", utt.utt_id, f"{data_dir / 'text'}: {utt.utt_id} has an empty transcript")
            continue
        try:
            ids = vocab.encode(text)
        except OutOfVocabularyError as err:
            skip("oov_transcript", utt.utt_id, f"{data_dir / 'text'}: {utt.utt_id}: {err}")
            continue
        try:
            wave, file_rate = read_audio_with_rate(utt.wav_path, cfg.sample_rate, allow_upsampling=False)
        except AudioError as err:
            skip(err.kind, utt.utt_id, f"{utt.utt_id}: {err}")
            continue
        copies = [(utt.utt_id, wave)]
        copies += [
            (perturbed_utt_id(utt.utt_id, f), speed_perturb(wave, cfg.sample_rate, f)) for f in speed_factors
        ]
        for utt_id, copy in copies:
            try:
                feats = compute_features(copy, cfg)
            except ValueError as err:
                skip("too_short_audio", utt_id, f"{utt_id}: {utt.wav_path}: {err}")
                continue
            if len(ids) > feats.shape[0]:  # no CTC model can emit more labels than there are frames
                skip(
                    "transcript_longer_than_audio",
                    utt_id,
                    f"{utt_id}: {len(ids)} characters for {feats.shape[0]} frames of {utt.wav_path}; "
                    "the transcript probably belongs to another recording",
                )
                continue
            if utt_id == utt.utt_id and file_rate != cfg.sample_rate:
                resampled.append((utt_id, file_rate))
            num_frames += feats.shape[0]
            writer.add(utt_id, text, feats)

    report = ExtractionReport(
        data_dir=data_dir,
        out_path=out_path,
        num_utterances=(len(utterances) + len(duplicates)) * (1 + len(speed_factors)),  # copies count
        num_kept=len(writer.utt_ids),
        num_frames=num_frames,
        problems=problems,
        resampled=resampled,
    )
    problems_json = {
        kind: [{"utt_id": u, "message": m} for u, m in items] for kind, items in sorted(problems.items())
    }
    write_atomic(problems_path(out_path), json.dumps(problems_json, indent=1).encode("utf-8"))
    if not utterances or report.bad_fraction > max_bad_fraction:
        writer.abort()
    if not utterances:
        raise DataQualityError(
            f"{data_dir}: the data dir lists no utterances; re-run the stage that prepares it"
        )
    if report.bad_fraction > max_bad_fraction:
        report.out_path = None
        raise DataQualityError(
            f"{data_dir}: {report.num_bad} of {report.num_utterances} utterances unusable "
            f"({100 * report.bad_fraction:.1f}% > max_bad_fraction {100 * max_bad_fraction:.1f}%); "
            f"no store written.\n{report.summary()}\n"
            f"Full list: {problems_path(out_path)}. Fix the data, or if these losses are expected "
            "pass a higher --max-bad-fraction (max_bad_fraction=...)."
        )
    metadata = {
        "feature_config": cfg.to_dict(),
        "speed_factors": list(speed_factors),
        "vocab": vocab.to_dict(),
        "problems": {kind: [u for u, _ in items] for kind, items in sorted(problems.items())},
        "resampled": [u for u, _ in resampled],
    }
    writer.commit(**metadata)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.features",
        description="Write the features of a Kaldi data dir into a feature store (a directory).",
    )
    parser.add_argument("--data-dir", required=True, help="Kaldi data dir (wav.scp, text, utt2spk)")
    parser.add_argument("--out", required=True, help="the store directory to write")
    parser.add_argument(
        "--storage",
        default="numpy",
        choices=sorted(STORAGES),
        help="Lhotse writer: numpy (lossless float32, the default) or lilcom (~4.4x smaller, lossy)",
    )
    parser.add_argument(  # the flag of before the one store: it wrote a lilcom store
        "--store", dest="storage", action="store_const", const="lilcom", help=argparse.SUPPRESS
    )
    parser.add_argument("--kind", default="fbank", choices=FEATURE_KINDS, help="feature kind")
    parser.add_argument("--num-bins", type=int, default=40, help="mel bins (feature dimension)")
    parser.add_argument("--normalize", default="utterance", choices=NORMALIZE_KINDS, help="normalisation")
    parser.add_argument(
        "--max-bad-fraction", type=float, default=0.1, help="fail above this unusable fraction"
    )
    parser.add_argument(
        "--speed-perturb",
        default="",
        help="extra copies at these speeds, e.g. '0.9,1.1' (training data only; ids sp0.9-<utt>)",
    )
    args = parser.parse_args(argv)
    cfg = FeatureConfig(kind=args.kind, num_bins=args.num_bins, normalize=args.normalize)
    try:
        report = build_feature_store(
            args.data_dir,
            args.out,
            cfg,
            CharVocab.default(),
            args.max_bad_fraction,
            speed_factors=parse_speed_factors(args.speed_perturb),
            storage=args.storage,
        )
    except (DataQualityError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
