"""Open-vocabulary English sentences in many voices, rooms and channels, with unseen speakers to test on.

Why: the built-in corpus (``synth_speech``: a 40-word command grammar) is fitted to a few percent test WER,
so it cannot show what DSD does to a converged model on open text. This one is sized so that a small
DeepSpeech 2 converges on a 2-core CPU near the regime where speech recognisers are judged (test WER about
30% greedy on speakers never heard in training, lower with an LM; docs/recipes.md has the measurements),
and keeps a harder, far held-out test beside it, as LibriSpeech has test-clean and test-other:

- Text: sentences from a small grammar of function-word frames whose content slots are filled from the
  most frequent English words that the PyPI package ``wordfreq`` ships (``vocabulary`` of them), normalised
  to DeepSpeech's characters (a-z, space, apostrophe). Offline, no licence question.
- Speakers: a speaker is an English accent of espeak-ng with a voice variant, a base pitch, a speaking rate,
  an intonation (pitch range) and a room or channel, fixed for all their utterances. ``train``, ``dev`` and
  ``test`` draw from disjoint sets of speakers: no dev or test speaker's (accent, variant, pitch, rate) is
  ever heard in training, though their voice families and accents are (a new speaker of a known kind).
- Conditions: additive white or pink noise at a random SNR per utterance; a speaker's room is quiet, a small
  room (synthetic exponentially decaying impulse response, RT60 0.15-0.45 s) or a low-pass channel.
- ``test_far``: whole voice FAMILIES (``klatt``..``klatt6``, ``m1``..``m8`` are one family each) and one
  accent that no other split hears, each utterance with its own pitch, rate and intonation from wider
  ranges, in a large hall (RT60 0.6-0.9 s) or a telephone band (300-3,400 Hz at 8 kHz) that no other split
  hears, besides the quiet and small rooms: speech of a kind never heard in training.

Reproducibility: as in ``synth_speech`` (whose sharding this reuses), every random choice is drawn per
utterance from ``numpy.random.default_rng([seed, split, index])`` (the speakers from their own generator)
and shards are synthesised in fresh processes, so the audio is identical for a given seed and shard size
whatever the number of jobs.
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from data_prep.corpora.acoustic_conditions import draw_condition_parameters
from data_prep.corpora.espeak import list_english_accents, list_variants
from data_prep.corpora.synth_speech import UtterancePlan, synthesise_shard, write_corpus

SPLITS = ("train", "dev", "test", "test_far")
NEAR_SPLITS = ("train", "dev", "test")  # speakers of the trained voice families and accents
# Condition -> splits that hear it. "hall" and "telephone" are heard only in test_far.
CONDITIONS = {
    "clean": SPLITS,  # noise only
    "room": SPLITS,  # small-room reverberation
    "lowpass": NEAR_SPLITS,  # a low-pass channel (cut-off 3.5-6 kHz)
    "hall": ("test_far",),  # large-hall reverberation, longer than any training room
    "telephone": ("test_far",),  # telephone band, 300-3,400 Hz, through 8 kHz sampling
}
# libespeak-ng (espeakng-loader 0.2.4) crashes (SIGSEGV) on these variants at a low base pitch with a wide
# pitch range, which this corpus draws; measured over pitch 5-95, range 5-100, 110-290 wpm.
CRASHING_VARIANTS = ("Demonic", "rob")

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
    """Size, text, speakers and conditions of the open-vocabulary corpus."""

    num_train: int = 20000  # 9.1 h; the default sizes are what docs/recipes.md measured
    num_dev: int = 400
    num_test: int = 600
    num_test_far: int = 600
    seed: int = 0
    sample_rate: int = 16000
    vocabulary: int = 1000  # content words: the most frequent English words after the function words
    function_words: int = 100  # the most frequent words, left out of the content slots
    word_weight_power: float = 1.0  # a slot word's probability ~ frequency**power (0: uniform)
    noise_snr_db: tuple[float, float] = (12.0, 35.0)
    # A near speaker's pitch, rate and intonation: a value on each grid (low, high, step)
    speaker_pitch: tuple[int, int, int] = (30, 70, 5)
    speaker_rate_wpm: tuple[int, int, int] = (140, 220, 10)
    speaker_pitch_range: tuple[int, int, int] = (30, 70, 10)
    train_speakers: int = 1000
    dev_speakers: int = 40
    test_speakers: int = 60
    # test_far: every utterance its own pitch, rate and intonation, from these (wider) ranges
    far_rate_wpm: tuple[int, int] = (130, 230)
    far_pitch: tuple[int, int] = (25, 75)
    far_pitch_range: tuple[int, int] = (30, 80)
    far_family_fraction: float = 0.15  # share of voice variants (whole families) heard only in test_far
    far_accents: int = 1  # accents heard only in test_far
    shard_size: int = 50
    jobs: int = 2
    conditions: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(CONDITIONS))

    def __post_init__(self) -> None:
        for name in ("num_train", "num_dev", "num_test", "num_test_far"):
            if getattr(self, name) < 0:
                raise ValueError(f"OpenSpeechConfig.{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("noise_snr_db", "far_rate_wpm", "far_pitch", "far_pitch_range"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"OpenSpeechConfig.{name}: ({lo}, {hi}) is not a (low, high) range")
        for name in ("speaker_pitch", "speaker_rate_wpm", "speaker_pitch_range"):
            lo, hi, step = getattr(self, name)
            if lo > hi or step < 1:
                raise ValueError(
                    f"OpenSpeechConfig.{name}: ({lo}, {hi}, {step}) is not a (low, high, step>0) grid"
                )
        for name, count in (
            ("train_speakers", self.num_train),
            ("dev_speakers", self.num_dev),
            ("test_speakers", self.num_test),
        ):
            if getattr(self, name) < 1 and count > 0:
                raise ValueError(f"OpenSpeechConfig.{name}: at least 1 speaker, got {getattr(self, name)}")
        if self.vocabulary < 100:
            raise ValueError(f"OpenSpeechConfig.vocabulary: at least 100 words, got {self.vocabulary}")
        if not 0 < self.far_family_fraction <= 0.5:
            raise ValueError(
                f"OpenSpeechConfig.far_family_fraction: in (0, 0.5] (training keeps the rest), "
                f"got {self.far_family_fraction}"
            )
        if self.far_accents < 1:
            raise ValueError(f"OpenSpeechConfig.far_accents: at least 1, got {self.far_accents}")
        if self.shard_size < 1 or self.jobs < 1:
            raise ValueError("OpenSpeechConfig.shard_size and .jobs must be >= 1")
        for split in SPLITS:
            if not any(split in splits for splits in self.conditions.values()):
                raise ValueError(f"OpenSpeechConfig.conditions: no condition for the {split} split")


@dataclass(frozen=True)
class Speaker:
    """A speaker of the near splits: one voice with its pitch, rate, intonation and room, kept throughout."""

    speaker_id: str
    accent: str
    variant: str
    pitch: int
    rate_wpm: int
    pitch_range: int
    condition: str
    rt60_s: float
    cutoff_hz: float

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def identity(self) -> tuple[str, str, int, int]:
        """What makes two speakers the same person to a listener: voice, variant, pitch and rate."""
        return (self.accent, self.variant, self.pitch, self.rate_wpm)


@dataclass(frozen=True)
class OpenUtterancePlan(UtterancePlan):
    """An utterance of the open corpus: the base plan plus its Kaldi speaker."""

    speaker: str  # a near speaker's id, or test_far's voice (every test_far utterance is its own speaker)


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
    """The voices of the near splits (``train``: dev and test speakers use them too) and of ``test_far``.

    Families are shuffled with the seed and given to test_far until it has its share of the variants;
    the rest are the near splits'. ``far_accents`` accents are test_far's alone; test_far also speaks
    the near accents, always through its own variants.
    """
    variants = sorted(v for v in list_variants() if " " not in v and v not in CRASHING_VARIANTS)
    families = sorted({voice_family(v) for v in variants})
    rng = np.random.default_rng([cfg.seed, 7919])
    order = [families[i] for i in rng.permutation(len(families))]
    far: list[str] = []
    near: list[str] = []
    want = cfg.far_family_fraction * len(variants)
    for family in order:
        members = [v for v in variants if voice_family(v) == family]
        if len(far) >= want or len(far) + len(members) > want + 2:
            near += members  # the share is full, or too big a family for it: it trains
        else:
            far += members
    accents = list_english_accents()
    shuffled = [accents[i] for i in rng.permutation(len(accents))]
    own_far, near_accents = shuffled[: cfg.far_accents], shuffled[cfg.far_accents :]
    return {
        "train": {"variants": sorted(near), "accents": sorted(near_accents)},
        "test_far": {"variants": sorted(far), "accents": sorted(own_far + near_accents)},
    }


def _grid(low_high_step: tuple[int, int, int]) -> list[int]:
    low, high, step = low_high_step
    return list(range(low, high + 1, step))


def plan_speakers(cfg: OpenSpeechConfig) -> dict[str, list[Speaker]]:
    """Disjoint speakers for train, dev and test: no two share an (accent, variant, pitch, rate).

    Drawn from the near voices and the grids until there are enough distinct identities, then dealt to
    test, dev and train in the order drawn (so a larger ``train_speakers`` keeps the test speakers).
    """
    voices = split_voices(cfg)["train"]
    accents, variants = voices["accents"], voices["variants"]
    pitches, rates, ranges = (
        _grid(cfg.speaker_pitch),
        _grid(cfg.speaker_rate_wpm),
        _grid(cfg.speaker_pitch_range),
    )
    wanted = {"test": cfg.test_speakers, "dev": cfg.dev_speakers, "train": cfg.train_speakers}
    total = sum(wanted.values())
    if total > len(accents) * len(variants) * len(pitches) * len(rates) // 2:
        raise ValueError(
            f"OpenSpeechConfig: {total} speakers is too many for the voices and grids "
            f"({len(accents)} accents x {len(variants)} variants x {len(pitches)} pitches x {len(rates)} rates); "
            "ask for fewer speakers or finer grids"
        )
    conditions = [c for c, splits in cfg.conditions.items() if all(s in splits for s in NEAR_SPLITS)]
    rng = np.random.default_rng([cfg.seed, 104729])
    seen: set[tuple[str, str, int, int]] = set()
    drawn: list[Speaker] = []
    while len(drawn) < total:
        accent = accents[int(rng.integers(len(accents)))]
        variant = variants[int(rng.integers(len(variants)))]
        pitch = pitches[int(rng.integers(len(pitches)))]
        rate = rates[int(rng.integers(len(rates)))]
        pitch_range = ranges[int(rng.integers(len(ranges)))]
        condition = conditions[int(rng.integers(len(conditions)))]
        rt60, cutoff = draw_condition_parameters(condition, rng)
        if (accent, variant, pitch, rate) in seen:
            continue
        seen.add((accent, variant, pitch, rate))
        drawn.append(Speaker("", accent, variant, pitch, rate, pitch_range, condition, rt60, cutoff))
    out: dict[str, list[Speaker]] = {}
    start = 0
    for split in ("test", "dev", "train"):
        chosen = drawn[start : start + wanted[split]]
        start += wanted[split]
        out[split] = [replace(spk, speaker_id=f"{split}{i:04d}") for i, spk in enumerate(chosen)]
    return {split: out[split] for split in NEAR_SPLITS}


def plan_corpus(cfg: OpenSpeechConfig) -> list[OpenUtterancePlan]:
    """Every utterance of every split, deterministic given ``cfg``."""
    words, probs = word_list(cfg)
    speakers = plan_speakers(cfg)
    far = split_voices(cfg)["test_far"]
    counts = {"train": cfg.num_train, "dev": cfg.num_dev, "test": cfg.num_test, "test_far": cfg.num_test_far}
    far_conditions = [c for c, splits in cfg.conditions.items() if "test_far" in splits]
    plans = []
    for split_code, split in enumerate(SPLITS):
        for index in range(counts[split]):
            rng = np.random.default_rng([cfg.seed, split_code, index])
            text = random_sentence(rng, words, probs)
            snr_db = float(rng.uniform(*cfg.noise_snr_db))
            noise_kind = ("white", "pink")[int(rng.integers(2))]
            seed = int(rng.integers(2**31 - 1))
            utt_id = f"open-{split}-{index:06d}"
            if split != "test_far":  # a near speaker: voice, pitch, rate, intonation and room are theirs
                spk = speakers[split][int(rng.integers(len(speakers[split])))]
                utt_id = f"{spk.speaker_id}-{utt_id}"  # Kaldi sorts a speaker's utterances together
                voice, speaker, condition = spk.voice, spk.speaker_id, spk.condition
                rate, pitch, pitch_range = spk.rate_wpm, spk.pitch, spk.pitch_range
                rt60, cutoff = spk.rt60_s, spk.cutoff_hz
            else:  # test_far: every utterance its own voice, pitch, rate, intonation and condition
                accent = far["accents"][int(rng.integers(len(far["accents"])))]
                variant = far["variants"][int(rng.integers(len(far["variants"])))]
                condition = far_conditions[int(rng.integers(len(far_conditions)))]
                rate = int(rng.integers(cfg.far_rate_wpm[0], cfg.far_rate_wpm[1] + 1))
                pitch = int(rng.integers(cfg.far_pitch[0], cfg.far_pitch[1] + 1))
                pitch_range = int(rng.integers(cfg.far_pitch_range[0], cfg.far_pitch_range[1] + 1))
                rt60, cutoff = draw_condition_parameters(condition, rng)
                voice = speaker = f"{accent}+{variant}"
            plans.append(
                OpenUtterancePlan(
                    utt_id=utt_id,
                    split=split,
                    text=text,
                    voice=voice,
                    rate_wpm=rate,
                    pitch=pitch,
                    snr_db=snr_db,
                    noise_kind=noise_kind,
                    seed=seed,
                    pitch_range=pitch_range,
                    condition=condition,
                    rt60_s=rt60,
                    cutoff_hz=cutoff,
                    speaker=speaker,
                )
            )
    return plans


def generate_corpus(out_dir: str | Path, cfg: OpenSpeechConfig, progress: bool = True) -> dict[str, Path]:
    """Write ``out_dir/wav/<split>/*.wav``, Kaldi data dirs ``out_dir/data/<split>`` and ``corpus.json``.

    ``corpus.json`` also records the voice split, the conditions per split and the distinct words per
    split. Needs the ``if __name__ == "__main__":`` guard in a calling script (a fork server).
    """
    plans = plan_corpus(cfg)
    words = {s: sorted({w for p in plans if p.split == s for w in p.text.split()}) for s in SPLITS}
    info = {
        "voices": split_voices(cfg),
        "speakers": {split: [asdict(spk) for spk in spks] for split, spks in plan_speakers(cfg).items()},
        "distinct_words": {s: len(words[s]) for s in SPLITS},
        "unseen_word_share": {
            s: len(set(words[s]) - set(words["train"])) / max(len(words[s]), 1) for s in SPLITS[1:]
        },
        "conditions_heard": {s: sorted({p.condition for p in plans if p.split == s}) for s in SPLITS},
    }
    return write_corpus(out_dir, plans, synthesise_shard, cfg, info, "synth speech open", progress, SPLITS)


def main(argv: list[str] | None = None) -> int:
    defaults = OpenSpeechConfig()
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.corpora.synth_speech_open",
        description="Generate the open-vocabulary espeak-ng corpus (unseen speakers; test_far: unheard voices).",
    )
    parser.add_argument(
        "--out", required=True, help="output dir (wav/ and data/{train,dev,test,test_far} inside)"
    )
    parser.add_argument("--num-train", type=int, default=defaults.num_train, help="training utterances")
    parser.add_argument("--num-dev", type=int, default=defaults.num_dev, help="dev utterances")
    parser.add_argument("--num-test", type=int, default=defaults.num_test, help="test utterances")
    parser.add_argument(
        "--num-test-far", type=int, default=defaults.num_test_far, help="test_far utterances (unheard voices)"
    )
    parser.add_argument(
        "--speakers",
        type=int,
        default=defaults.train_speakers,
        help="training speakers (voice, pitch, rate, room)",
    )
    parser.add_argument("--vocabulary", type=int, default=defaults.vocabulary, help="content words")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of every random choice")
    parser.add_argument("--jobs", type=int, default=defaults.jobs, help="worker processes")
    args = parser.parse_args(argv)
    cfg = OpenSpeechConfig(
        num_train=args.num_train,
        num_dev=args.num_dev,
        num_test=args.num_test,
        num_test_far=args.num_test_far,
        train_speakers=args.speakers,
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
