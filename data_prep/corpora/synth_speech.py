"""The built-in synthetic speech corpus: command phrases and digit strings spoken by espeak-ng voices.

Why: a speech corpus that anyone can make in seconds, offline, with no licence, large enough to train a
small CTC model to a meaningful WER, so every recipe and test has real audio. Test speakers are unseen:
utterances are split BY VOICE VARIANT (the speaker: m3, f1, klatt...), so train, dev and test variants are
three disjoint sets (dev has its own held-out variants, so model selection never sees test voices). Every
split uses all English accents (en, en-us, en-gb-x-rp, en-029...), with random rate, pitch and intonation,
a quiet or small room or a low-pass channel (``acoustic_conditions``), and additive white or pink noise at a
random SNR, so the model is not tied to one clean voice set.

Reproducibility: everything random is drawn per utterance from ``numpy.random.default_rng([seed, split,
index])``. espeak-ng keeps a pitch-flutter phase in a C static variable, so its samples depend on the
calls made before in the same process; utterances are therefore synthesised in fixed shards of
``shard_size``, each in a fresh worker process forked from a clean server, which makes the audio identical
for a given seed and shard size whatever the number of jobs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio
from tqdm import tqdm

from data_prep.audio.audio_io import write_audio
from data_prep.corpora.acoustic_conditions import CONDITION_NAMES, apply_condition, draw_condition_parameters
from data_prep.corpora.espeak import EspeakSynthesizer, list_english_accents, list_variants
from data_prep.corpora.kaldi_dir import Utterance, write_data_dir

SPLITS = ("train", "dev", "test")
VERBS = ("push", "pull", "move", "lift", "drop", "find", "take")
COLOURS = ("red", "green", "blue", "white", "black", "yellow")
OBJECTS = ("cup", "box", "lamp", "ball", "chair", "book")
PLURALS = {
    "cup": "cups",
    "box": "boxes",
    "lamp": "lamps",
    "ball": "balls",
    "chair": "chairs",
    "book": "books",
}
DIRECTIONS = ("left", "right", "up", "down")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COUNTS = DIGITS[2:]


@dataclass(frozen=True)
class SynthSpeechConfig:
    """Size, randomness and voices of the synthetic corpus."""

    num_train: int = 2000
    num_dev: int = 200
    num_test: int = 300
    seed: int = 0
    sample_rate: int = 16000  # espeak speaks at 22,050 Hz; resampled to this
    noise_snr_db: tuple[float, float] = (15.0, 35.0)  # uniform range of the signal-to-noise ratio
    rate_wpm: tuple[int, int] = (130, 230)  # uniform range of the speaking rate, words per minute
    pitch: tuple[int, int] = (25, 75)  # uniform range of espeak's base pitch (0-100)
    pitch_range: tuple[int, int] = (30, 80)  # uniform range of espeak's intonation (0 monotone, 50 normal)
    conditions: tuple[str, ...] = ("clean", "room", "lowpass")  # acoustic_conditions, one drawn per utterance
    digit_fraction: float = 0.3  # share of digit strings; the rest are command phrases
    digits_per_string: tuple[int, int] = (3, 7)
    accents: tuple[str, ...] | None = None  # None: every English accent shipped (list_english_accents)
    variants: tuple[str, ...] | None = None  # None: every variant shipped (list_variants) without spaces
    dev_variant_fraction: float = 0.1  # share of variants held out for dev only
    test_variant_fraction: float = 0.2  # share of variants held out for test only
    shard_size: int = 50  # utterances synthesised in one fresh process (see the module docstring)
    jobs: int = 2  # worker processes

    def __post_init__(self) -> None:
        for name in ("num_train", "num_dev", "num_test"):
            if getattr(self, name) < 0:
                raise ValueError(f"SynthSpeechConfig.{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("noise_snr_db", "rate_wpm", "pitch", "pitch_range", "digits_per_string"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"SynthSpeechConfig.{name}: ({lo}, {hi}) is not a (low, high) range")
        if not 0 <= self.digit_fraction <= 1:
            raise ValueError(f"SynthSpeechConfig.digit_fraction: {self.digit_fraction}; accepted: 0..1")
        if (
            self.dev_variant_fraction <= 0
            or self.test_variant_fraction <= 0
            or (self.dev_variant_fraction + self.test_variant_fraction >= 1)
        ):
            raise ValueError(
                "SynthSpeechConfig.dev_variant_fraction/test_variant_fraction: "
                "each must be > 0 and their sum < 1"
            )
        if self.shard_size < 1 or self.jobs < 1:
            raise ValueError("SynthSpeechConfig.shard_size and .jobs must be >= 1")
        unknown = [c for c in self.conditions if c not in CONDITION_NAMES]
        if not self.conditions or unknown:
            raise ValueError(
                f"SynthSpeechConfig.conditions: {list(self.conditions)}; accepted: some of {list(CONDITION_NAMES)}"
            )


@dataclass(frozen=True)
class UtterancePlan:
    """Everything needed to synthesise one utterance, drawn in the parent so workers need no randomness."""

    utt_id: str
    split: str
    text: str
    voice: str  # accent+variant, the speaker id
    rate_wpm: int
    pitch: int
    snr_db: float
    noise_kind: str
    seed: int
    pitch_range: int  # espeak's intonation, 0 monotone .. 100 lively
    condition: str  # acoustic_conditions.CONDITION_NAMES: clean, room, lowpass (hall, telephone)
    rt60_s: float  # reverberation time of "room" and "hall"; 0 otherwise
    cutoff_hz: float  # the low-pass cut-off of "lowpass"; 0 otherwise


def split_variants(cfg: SynthSpeechConfig) -> dict[str, list[str]]:
    """Disjoint voice variants per split, chosen by a seeded shuffle of the sorted variant names."""
    variants = (
        list(cfg.variants) if cfg.variants is not None else [v for v in list_variants() if " " not in v]
    )
    variants = sorted(variants)
    if len(variants) < 3:
        raise ValueError(f"synth_speech: need at least 3 voice variants to split, got {variants}")
    rng = np.random.default_rng([cfg.seed, 7919])
    shuffled = [variants[i] for i in rng.permutation(len(variants))]
    n_test = max(1, round(cfg.test_variant_fraction * len(variants)))
    n_dev = max(1, round(cfg.dev_variant_fraction * len(variants)))
    return {
        "test": sorted(shuffled[:n_test]),
        "dev": sorted(shuffled[n_test : n_test + n_dev]),
        "train": sorted(shuffled[n_test + n_dev :]),
    }


def random_sentence(
    rng: np.random.Generator, digit_fraction: float, digits_per_string: tuple[int, int]
) -> str:
    """A digit string ("three one four nine") or a command ("push two red boxes to the blue lamp")."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if rng.random() < digit_fraction:
        n = int(rng.integers(digits_per_string[0], digits_per_string[1] + 1))
        return " ".join(pick(DIGITS) for _ in range(n))
    form = int(rng.integers(4))
    verb, colour, obj = pick(VERBS), pick(COLOURS), pick(OBJECTS)
    if form == 0:
        words = [verb, "the", colour, obj]
    elif form == 1:
        words = [verb, "the", obj, pick(DIRECTIONS)]
    elif form == 2:
        words = [verb, pick(COUNTS), colour, PLURALS[obj]]
    else:
        words = [verb, "the", colour, obj, pick(DIRECTIONS)]
    if form in (0, 2) and rng.random() < 0.4:
        words += ["to", "the", pick(COLOURS), pick(OBJECTS)]
    return " ".join(words)


def plan_corpus(cfg: SynthSpeechConfig) -> list[UtterancePlan]:
    """Every utterance of every split, deterministic given ``cfg`` (no set or hash ordering involved)."""
    accents = sorted(cfg.accents) if cfg.accents is not None else list_english_accents()
    variants = split_variants(cfg)
    counts = {"train": cfg.num_train, "dev": cfg.num_dev, "test": cfg.num_test}
    plans = []
    for split_code, split in enumerate(SPLITS):
        for index in range(counts[split]):
            rng = np.random.default_rng([cfg.seed, split_code, index])
            text = random_sentence(rng, cfg.digit_fraction, cfg.digits_per_string)
            accent = accents[int(rng.integers(len(accents)))]
            variant = variants[split][int(rng.integers(len(variants[split])))]
            rate_wpm = int(rng.integers(cfg.rate_wpm[0], cfg.rate_wpm[1] + 1))
            pitch = int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1))
            snr_db = float(rng.uniform(*cfg.noise_snr_db))
            noise_kind = ("white", "pink")[int(rng.integers(2))]
            seed = int(rng.integers(2**31 - 1))
            pitch_range = int(rng.integers(cfg.pitch_range[0], cfg.pitch_range[1] + 1))
            condition = cfg.conditions[int(rng.integers(len(cfg.conditions)))]
            rt60_s, cutoff_hz = draw_condition_parameters(condition, rng)
            plans.append(
                UtterancePlan(
                    utt_id=f"synth-{split}-{index:06d}",
                    split=split,
                    text=text,
                    voice=f"{accent}+{variant}",
                    rate_wpm=rate_wpm,
                    pitch=pitch,
                    snr_db=snr_db,
                    noise_kind=noise_kind,
                    seed=seed,
                    pitch_range=pitch_range,
                    condition=condition,
                    rt60_s=rt60_s,
                    cutoff_hz=cutoff_hz,
                )
            )
    return plans


def synthesise_shard(args: tuple[list[UtterancePlan], str, int]) -> list[tuple[str, int]]:
    """Worker: speak, resample, apply the room or channel and the noise, write; returns (utt_id, samples)."""
    plans, wav_root, sample_rate = args
    torch.set_num_threads(1)
    synth = EspeakSynthesizer()
    # One Resample module per worker: it builds its sinc kernel once instead of once per utterance.
    resample = torchaudio.transforms.Resample(synth.sample_rate, sample_rate)
    done = []
    for plan in plans:
        wave, rate = synth.synthesize(
            plan.text,
            voice=plan.voice,
            rate_wpm=plan.rate_wpm,
            pitch=plan.pitch,
            seed=plan.seed,
            pitch_range=plan.pitch_range,
        )
        if wave.size == 0:
            raise RuntimeError(f"espeak produced no audio for {plan.utt_id} ({plan.voice}: {plan.text!r})")
        if rate != sample_rate:
            with torch.no_grad():
                wave = resample(torch.from_numpy(wave)).numpy()
        audio = apply_condition(plan, wave, sample_rate)
        write_audio(Path(wav_root) / plan.split / f"{plan.utt_id}.wav", audio, sample_rate)
        done.append((plan.utt_id, int(audio.size)))
    return done


def _pool_context(preload: str) -> multiprocessing.context.BaseContext:
    """Fresh workers forked from a clean server (``preload`` imported), so none inherits espeak state."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([preload])
    return ctx


def write_corpus(
    out_dir: str | os.PathLike,
    plans: list[UtterancePlan],
    synthesise_shard: Callable[[tuple[list, str, int]], list[tuple[str, int]]],
    cfg: Any,
    info: dict,
    name: str,
    progress: bool = True,
    splits: tuple[str, ...] = SPLITS,
) -> dict[str, Path]:
    """Synthesise ``plans`` in fixed shards and write the wavs, the Kaldi data dirs and ``corpus.json``.

    ``synthesise_shard`` is a module-level worker taking ``(plans, wav_root, sample_rate)``; its module is
    preloaded in the fork server. ``cfg`` is a dataclass with ``shard_size``, ``jobs`` and ``sample_rate``,
    saved in ``corpus.json`` with ``info`` and the hours per split. A plan's Kaldi speaker is its
    ``speaker`` where it has one, else its voice. Shared by the synthetic corpora.
    """
    out = Path(out_dir).absolute()
    wav_root = out / "wav"
    shards = [plans[i : i + cfg.shard_size] for i in range(0, len(plans), cfg.shard_size)]
    num_samples: dict[str, int] = {}
    start = time.perf_counter()
    if shards:
        with (
            ProcessPoolExecutor(
                cfg.jobs, _pool_context(synthesise_shard.__module__), max_tasks_per_child=1
            ) as pool,
            tqdm(total=len(plans), desc=name, unit="utt", disable=not progress) as bar,
        ):
            futures = [pool.submit(synthesise_shard, (s, str(wav_root), cfg.sample_rate)) for s in shards]
            for shard, future in zip(shards, futures, strict=True):
                try:
                    done = future.result()
                except BrokenProcessPool as err:  # a worker died (espeak crashed): say which utterances
                    raise RuntimeError(
                        f"{name}: a synthesis worker died in the shard {shard[0].utt_id}..{shard[-1].utt_id} "
                        f"(voices {sorted({p.voice for p in shard})}); synthesise them one by one to find it"
                    ) from err
                num_samples.update(done)
                bar.update(len(done))
    seconds = time.perf_counter() - start

    data_dirs = {}
    for split in splits:
        utts = [
            Utterance(p.utt_id, wav_root / split / f"{p.utt_id}.wav", p.text, getattr(p, "speaker", p.voice))
            for p in plans
            if p.split == split
        ]
        data_dirs[split] = write_data_dir(out / "data" / split, utts)
    hours = {
        split: sum(num_samples[p.utt_id] for p in plans if p.split == split) / cfg.sample_rate / 3600
        for split in splits
    }
    info = {
        "config": dataclasses.asdict(cfg),
        **info,
        "hours": hours,
        "num_utterances": {split: sum(p.split == split for p in plans) for split in splits},
    }
    (out / "corpus.json").write_text(json.dumps(info, indent=1, sort_keys=True), encoding="utf-8")
    if progress:
        total_h = sum(hours.values())
        print(
            f"{name}: {len(plans)} utterances ({total_h:.2f} h of audio) in {seconds:.1f} s "
            f"({len(plans) / max(seconds, 1e-9):.0f} utt/s, {cfg.jobs} jobs) -> {out}",
            file=sys.stderr,
        )
    return data_dirs


def generate_corpus(
    out_dir: str | os.PathLike, cfg: SynthSpeechConfig, progress: bool = True
) -> dict[str, Path]:
    """Write ``out_dir/wav/<split>/<utt_id>.wav`` and Kaldi data dirs ``out_dir/data/<split>``.

    Returns split -> data dir. Also writes ``out_dir/corpus.json`` (config, voice split, hours per split).
    Workers come from a multiprocessing fork server, so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    info = {"variants": split_variants(cfg)}
    return write_corpus(out_dir, plan_corpus(cfg), synthesise_shard, cfg, info, "synth speech", progress)


def main(argv: list[str] | None = None) -> int:
    defaults = SynthSpeechConfig()
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.corpora.synth_speech",
        description="Generate the built-in espeak-ng speech corpus.",
    )
    parser.add_argument("--out", required=True, help="output dir (wav/ and data/{train,dev,test} inside)")
    parser.add_argument("--num-train", type=int, default=defaults.num_train, help="training utterances")
    parser.add_argument("--num-dev", type=int, default=defaults.num_dev, help="dev utterances (own voices)")
    parser.add_argument(
        "--num-test", type=int, default=defaults.num_test, help="test utterances (unseen voices)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of every random choice")
    parser.add_argument("--jobs", type=int, default=defaults.jobs, help="worker processes")
    args = parser.parse_args(argv)
    cfg = SynthSpeechConfig(
        num_train=args.num_train, num_dev=args.num_dev, num_test=args.num_test, seed=args.seed, jobs=args.jobs
    )
    dirs = generate_corpus(args.out, cfg)
    for split, path in dirs.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    # Run the imported module's main, so that workers unpickle data_prep.corpora.synth_speech functions (preloaded
    # in the fork server) rather than this file's. Each worker also re-runs the main module as __mp_main__;
    # by name (python -m) that would import data_prep.corpora.synth_speech a second time and runpy warns, so the
    # workers are pointed at the file instead (no spec), whose body only defines functions.
    __spec__ = None
    from data_prep.corpora.synth_speech import main as _main

    sys.exit(_main())
