"""A harder synthetic speech corpus: open-vocabulary English sentences in many voices, rooms and channels.

Why: the built-in corpus (``synth_speech``: a 40-word command grammar) is fitted to a training loss near
zero and a test WER of a few percent, so it cannot show what DSD does to a converged model that overfits
(Han et al. 2017, Sec. 4 and 6). This one is sized to make a small DeepSpeech 2 overfit on a 2-core CPU:

- Text: sentences from a small grammar of function-word frames whose content slots are filled from the
  most frequent English words that the PyPI package ``wordfreq`` ships (2,000 by default: about as many
  distinct words in training; 1,000 or 3,000 changed a small model's dev WER by under 5 points),
  normalised to DeepSpeech's characters (a-z, space, apostrophe). Offline, no licence question.
- Voices: every English accent espeak-ng ships, combined with every voice variant, at a range of speaking
  rates, pitches and intonations (pitch range) wider than ``synth_speech``'s. Dev and test hold out voice
  FAMILIES (``klatt``..``klatt6``, ``m1``..``m8`` are one family each) and one accent each, so their
  speakers are never heard in training.
- Conditions: additive white or pink noise at a random SNR; a small room (synthetic exponentially
  decaying impulse response, RT60 0.15-0.45 s) or a low-pass channel in training; a large hall (RT60
  0.6-0.9 s) that only dev and test hear, and a telephone band (300-3,400 Hz at 8 kHz) that only test
  hears.

Reproducibility: as in ``synth_speech`` (whose sharding this reuses), every random choice is drawn per
utterance from ``numpy.random.default_rng([seed, split, index])`` and shards are synthesised in fresh
processes, so the audio is identical for a given seed and shard size whatever the number of jobs.
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchaudio

from data_prep.audio.audio_io import write_audio
from data_prep.corpora.espeak import EspeakSynthesizer, list_english_accents, list_variants
from data_prep.corpora.synth_speech import SPLITS, UtterancePlan, add_noise, write_corpus

# Condition -> splits that hear it. "hall" and "telephone" are never heard in training.
CONDITIONS = {
    "clean": ("train", "dev", "test"),  # noise only
    "room": ("train", "dev", "test"),  # small-room reverberation
    "lowpass": ("train",),  # a low-pass channel (cut-off 3.5-6 kHz)
    "hall": ("dev", "test"),  # large-hall reverberation, longer than any training room
    "telephone": ("test",),  # telephone band, 300-3,400 Hz, through 8 kHz sampling
}
# libespeak-ng (espeakng-loader 0.2.4) crashes (SIGSEGV) on these variants at a low base pitch with a wide
# pitch range, which this corpus draws; measured over pitch 5-95, range 5-100, 110-290 wpm.
CRASHING_VARIANTS = ("Demonic", "rob")
ROOM_RT60_S = (0.15, 0.45)
HALL_RT60_S = (0.6, 0.9)
LOWPASS_HZ = (3500.0, 6000.0)
TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_RATE = 8000

# Sentence frames: "_" is a content slot filled from the frequency list; other words are kept as they are.
FRAMES = (
    "the _ _ the _",
    "the _ of the _ was _",
    "a _ _ is _ than the _",
    "i _ that the _ _",
    "we _ to _ a _ _",
    "they _ _ with their _",
    "she will _ the _ _",
    "he _ _ in the _",
    "there is a _ _ in the _",
    "do you _ the _ _",
    "my _ _ _ and _",
    "our _ _ for the _ _",
    "it was _ _ to _",
    "this _ _ not _ _",
    "_ _ and _ _",
    "_ the _ _ _",
    "if you _ the _ it _",
    "when the _ _ we _",
    "you can _ _ _ at the _",
    "what _ _ the _ _",
    "his _ _ on a _ _",
    "her _ has _ _",
    "_ _ _ from the _ _",
    "all the _ _ are _",
)


@dataclass(frozen=True)
class OpenSpeechConfig:
    """Size, text, voices and conditions of the open-vocabulary corpus."""

    num_train: int = 4000  # 1.9 h: a 1.3M-weight DeepSpeech 2 overfits it (see docs/recipes.md)
    num_dev: int = 300
    num_test: int = 400
    seed: int = 0
    sample_rate: int = 16000
    vocabulary: int = 2000  # content words: the most frequent English words after the function words
    function_words: int = 100  # the most frequent words, left out of the content slots
    word_weight_power: float = 1.0  # a slot word's probability ~ frequency**power (0: uniform)
    noise_snr_db: tuple[float, float] = (12.0, 35.0)
    rate_wpm: tuple[int, int] = (130, 230)
    pitch: tuple[int, int] = (25, 75)
    pitch_range: tuple[int, int] = (30, 80)  # espeak's intonation: 0 monotone, 50 normal
    dev_family_fraction: float = 0.1  # share of voice variants (whole families) held out for dev
    test_family_fraction: float = 0.15  # ... and for test
    held_out_accents: int = 1  # accents heard only in dev, and other ones only in test
    shard_size: int = 50
    jobs: int = 2
    conditions: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(CONDITIONS))

    def __post_init__(self) -> None:
        for name in ("num_train", "num_dev", "num_test"):
            if getattr(self, name) < 0:
                raise ValueError(f"OpenSpeechConfig.{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("noise_snr_db", "rate_wpm", "pitch", "pitch_range"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"OpenSpeechConfig.{name}: ({lo}, {hi}) is not a (low, high) range")
        if self.vocabulary < 100:
            raise ValueError(f"OpenSpeechConfig.vocabulary: at least 100 words, got {self.vocabulary}")
        if self.dev_family_fraction <= 0 or self.test_family_fraction <= 0:
            raise ValueError("OpenSpeechConfig.dev_family_fraction/test_family_fraction must be > 0")
        if self.dev_family_fraction + self.test_family_fraction >= 0.8:
            raise ValueError(
                "OpenSpeechConfig: dev + test family fractions must leave training 20% of voices"
            )
        if self.shard_size < 1 or self.jobs < 1:
            raise ValueError("OpenSpeechConfig.shard_size and .jobs must be >= 1")
        for split in SPLITS:
            if not any(split in splits for splits in self.conditions.values()):
                raise ValueError(f"OpenSpeechConfig.conditions: no condition for the {split} split")


@dataclass(frozen=True)
class OpenUtterancePlan(UtterancePlan):
    """An utterance of the open corpus: the base plan plus intonation and the acoustic condition."""

    pitch_range: int
    condition: str
    rt60_s: float  # reverberation time of "room" and "hall"; 0 otherwise
    cutoff_hz: float  # the low-pass cut-off of "lowpass"; 0 otherwise


def normalize_word(word: str) -> str:
    """A word in DeepSpeech's characters (a-z and apostrophe): accents folded, anything else dropped."""
    folded = (
        unicodedata.normalize("NFKD", word.lower().replace("\u2019", "'")).encode("ascii", "ignore").decode()
    )
    return re.sub(r"[^a-z']", "", folded).strip("'")


def word_list(cfg: OpenSpeechConfig) -> tuple[list[str], np.ndarray]:
    """The content words (in frequency order, normalised, distinct) and their slot probabilities."""
    from wordfreq import top_n_list, word_frequency

    frame_words = {w for frame in FRAMES for w in frame.split() if w != "_"}
    words: list[str] = []
    seen = set(frame_words)
    candidates = top_n_list("en", 4 * (cfg.vocabulary + cfg.function_words))
    for rank, raw in enumerate(candidates):
        word = normalize_word(raw)
        if rank < cfg.function_words or len(word) < 2 or word in seen:
            continue
        seen.add(word)
        words.append(word)
        if len(words) == cfg.vocabulary:
            break
    if len(words) < cfg.vocabulary:
        raise ValueError(f"wordfreq ships only {len(words)} usable English words; lower vocabulary")
    freq = np.array([word_frequency(w, "en") for w in words], dtype=np.float64)
    weights = np.maximum(freq, 1e-12) ** cfg.word_weight_power
    return words, weights / weights.sum()


def random_sentence(rng: np.random.Generator, words: list[str], probs: np.ndarray) -> str:
    """A frame with its slots filled: "the heavy seemed the market" (grammar-shaped, not meaningful)."""
    frame = FRAMES[int(rng.integers(len(FRAMES)))].split()
    fills = iter(rng.choice(len(words), size=frame.count("_"), p=probs))
    return " ".join(words[next(fills)] if w == "_" else w for w in frame)


def voice_family(variant: str) -> str:
    """``klatt3`` -> ``klatt``, ``Gene2`` -> ``gene``, ``m5`` -> ``m``: variants that sound alike."""
    return re.sub(r"\d+$", "", variant).lower()


def split_voices(cfg: OpenSpeechConfig) -> dict[str, dict[str, list[str]]]:
    """Per split, disjoint accents and voice variants; variants are held out by whole family.

    Families are shuffled with the seed and given to test, then dev, until each has its share of the
    variants; the rest train. One (``held_out_accents``) accent is dev's only, another test's only.
    """
    variants = sorted(v for v in list_variants() if " " not in v and v not in CRASHING_VARIANTS)
    families = sorted({voice_family(v) for v in variants})
    rng = np.random.default_rng([cfg.seed, 7919])
    order = [families[i] for i in rng.permutation(len(families))]
    chosen: dict[str, list[str]] = {"test": [], "dev": [], "train": []}
    want = {"test": cfg.test_family_fraction * len(variants), "dev": cfg.dev_family_fraction * len(variants)}
    split = "test"
    for family in order:
        members = [v for v in variants if voice_family(v) == family]
        if split != "train" and len(chosen[split]) + len(members) > want[split] + 2:
            chosen["train"] += members  # too big a family for the held-out share: it trains
            continue
        chosen[split] += members
        if split != "train" and len(chosen[split]) >= want[split]:
            split = "dev" if split == "test" else "train"
    accents = list_english_accents()
    shuffled = [accents[i] for i in rng.permutation(len(accents))]
    n = cfg.held_out_accents
    own = {"test": shuffled[:n], "dev": shuffled[n : 2 * n], "train": shuffled[2 * n :]}
    # dev and test speak their own accent and the training ones, always through their own variants
    return {
        "train": {"variants": sorted(chosen["train"]), "accents": sorted(own["train"])},
        "dev": {"variants": sorted(chosen["dev"]), "accents": sorted(own["dev"] + own["train"])},
        "test": {"variants": sorted(chosen["test"]), "accents": sorted(own["test"] + own["train"])},
    }


def plan_corpus(cfg: OpenSpeechConfig) -> list[OpenUtterancePlan]:
    """Every utterance of every split, deterministic given ``cfg``."""
    words, probs = word_list(cfg)
    voices = split_voices(cfg)
    counts = {"train": cfg.num_train, "dev": cfg.num_dev, "test": cfg.num_test}
    plans = []
    for split_code, split in enumerate(SPLITS):
        conditions = [c for c, splits in cfg.conditions.items() if split in splits]
        accents, variants = voices[split]["accents"], voices[split]["variants"]
        for index in range(counts[split]):
            rng = np.random.default_rng([cfg.seed, split_code, index])
            text = random_sentence(rng, words, probs)
            accent = accents[int(rng.integers(len(accents)))]
            variant = variants[int(rng.integers(len(variants)))]
            condition = conditions[int(rng.integers(len(conditions)))]
            rt60 = {"room": ROOM_RT60_S, "hall": HALL_RT60_S}.get(condition)
            plans.append(
                OpenUtterancePlan(
                    utt_id=f"open-{split}-{index:06d}",
                    split=split,
                    text=text,
                    voice=f"{accent}+{variant}",
                    rate_wpm=int(rng.integers(cfg.rate_wpm[0], cfg.rate_wpm[1] + 1)),
                    pitch=int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1)),
                    snr_db=float(rng.uniform(*cfg.noise_snr_db)),
                    noise_kind=("white", "pink")[int(rng.integers(2))],
                    seed=int(rng.integers(2**31 - 1)),
                    pitch_range=int(rng.integers(cfg.pitch_range[0], cfg.pitch_range[1] + 1)),
                    condition=condition,
                    rt60_s=float(rng.uniform(*rt60)) if rt60 else 0.0,
                    cutoff_hz=float(rng.uniform(*LOWPASS_HZ)) if condition == "lowpass" else 0.0,
                )
            )
    return plans


def room_impulse_response(rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: a direct path, then Gaussian reflections decaying by 60 dB over ``rt60_s``."""
    n = max(2, int(rt60_s * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)  # ln(1000): -60 dB at t = rt60
    tail[: int(0.002 * sample_rate)] = 0.0  # the first reflections arrive after the direct sound
    tail *= 0.5 / np.sqrt(np.sum(tail**2))  # the reverberant energy a quarter of the direct sound's
    tail[0] = 1.0
    return tail


def reverberate(wave: np.ndarray, rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``wave`` in a synthetic room (FFT convolution), cut to its length, at its RMS level."""
    ir = room_impulse_response(rt60_s, sample_rate, rng)
    size = 1 << (wave.size + ir.size - 2).bit_length()
    wet = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(ir, size), size)[: wave.size]
    return wet * np.sqrt(np.mean(wave**2) / max(float(np.mean(wet**2)), 1e-20))


def band_limit(wave: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Keep ``low_hz``-``high_hz``: an FFT mask with raised-cosine edges 10% of the band wide."""
    size = 1 << max(wave.size - 1, 1).bit_length()
    spectrum = np.fft.rfft(wave, size)
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    edge = 0.1 * (high_hz - low_hz)

    def ramp(x: np.ndarray) -> np.ndarray:  # 0 below -edge/2, 1 above +edge/2
        return 0.5 + 0.5 * np.sin(np.pi * np.clip(x / edge, -0.5, 0.5))

    gain = ramp(high_hz - freqs) * (ramp(freqs - low_hz) if low_hz > 0 else 1.0)
    return np.fft.irfft(spectrum * gain, size)[: wave.size]


def apply_condition(plan: OpenUtterancePlan, wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The plan's room or channel, then its noise (noise is added after, as a microphone would hear it)."""
    rng = np.random.default_rng([plan.seed, 2])
    wave = wave.astype(np.float64)
    if plan.condition in ("room", "hall"):
        wave = reverberate(wave, plan.rt60_s, sample_rate, rng)
    elif plan.condition == "lowpass":
        wave = band_limit(wave, sample_rate, 0.0, plan.cutoff_hz)
    elif plan.condition == "telephone":
        narrow = torchaudio.functional.resample(torch.from_numpy(wave), sample_rate, TELEPHONE_RATE)
        narrow = band_limit(narrow.numpy(), TELEPHONE_RATE, *TELEPHONE_BAND_HZ)
        wave = torchaudio.functional.resample(torch.from_numpy(narrow), TELEPHONE_RATE, sample_rate).numpy()
    elif plan.condition != "clean":
        raise ValueError(
            f"synth_speech_open: unknown condition {plan.condition!r}; known: {list(CONDITIONS)}"
        )
    return add_noise(wave, plan.snr_db, plan.noise_kind, np.random.default_rng([plan.seed, 1]))


def _synthesise_shard(args: tuple[list[OpenUtterancePlan], str, int]) -> list[tuple[str, int]]:
    """Worker: speak, resample, apply the condition and noise, write; returns (utt_id, samples)."""
    plans, wav_root, sample_rate = args
    torch.set_num_threads(1)
    synth = EspeakSynthesizer()
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


def generate_corpus(out_dir: str | Path, cfg: OpenSpeechConfig, progress: bool = True) -> dict[str, Path]:
    """Write ``out_dir/wav/<split>/*.wav``, Kaldi data dirs ``out_dir/data/<split>`` and ``corpus.json``.

    ``corpus.json`` also records the voice split, the conditions per split and the distinct words per
    split. Needs the ``if __name__ == "__main__":`` guard in a calling script (a fork server).
    """
    plans = plan_corpus(cfg)
    words = {s: sorted({w for p in plans if p.split == s for w in p.text.split()}) for s in SPLITS}
    info = {
        "voices": split_voices(cfg),
        "distinct_words": {s: len(words[s]) for s in SPLITS},
        "unseen_word_share": {
            s: len(set(words[s]) - set(words["train"])) / max(len(words[s]), 1) for s in ("dev", "test")
        },
        "conditions_heard": {s: [c for c, sp in cfg.conditions.items() if s in sp] for s in SPLITS},
    }
    return write_corpus(out_dir, plans, _synthesise_shard, cfg, info, "synth speech open", progress)


def main(argv: list[str] | None = None) -> int:
    defaults = OpenSpeechConfig()
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.corpora.synth_speech_open",
        description="Generate the open-vocabulary espeak-ng corpus (held-out voices and conditions).",
    )
    parser.add_argument("--out", required=True, help="output dir (wav/ and data/{train,dev,test} inside)")
    parser.add_argument("--num-train", type=int, default=defaults.num_train, help="training utterances")
    parser.add_argument("--num-dev", type=int, default=defaults.num_dev, help="dev utterances")
    parser.add_argument("--num-test", type=int, default=defaults.num_test, help="test utterances")
    parser.add_argument("--vocabulary", type=int, default=defaults.vocabulary, help="content words")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of every random choice")
    parser.add_argument("--jobs", type=int, default=defaults.jobs, help="worker processes")
    args = parser.parse_args(argv)
    cfg = OpenSpeechConfig(
        num_train=args.num_train,
        num_dev=args.num_dev,
        num_test=args.num_test,
        vocabulary=args.vocabulary,
        seed=args.seed,
        jobs=args.jobs,
    )
    for split, path in generate_corpus(args.out, cfg).items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    # As in synth_speech: run the imported module's main so workers unpickle this module's functions.
    __spec__ = None
    from data_prep.corpora.synth_speech_open import main as _main

    sys.exit(_main())
