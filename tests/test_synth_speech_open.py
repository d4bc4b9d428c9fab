"""The open-vocabulary corpus: text, held-out voices and conditions, and augmentations on real espeak audio."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.corpora.espeak import EspeakSynthesizer
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.corpora.synth_speech_open import (
    CONDITIONS,
    CRASHING_VARIANTS,
    OpenSpeechConfig,
    apply_condition,
    band_limit,
    generate_corpus,
    normalize_word,
    plan_corpus,
    reverberate,
    split_voices,
    voice_family,
    word_list,
)
from data_prep.text.vocab import CharVocab

TINY = OpenSpeechConfig(num_train=10, num_dev=4, num_test=6, seed=3, shard_size=4, jobs=2)
RATE = 16000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """A real espeak utterance at 16 kHz followed by half a second of silence (where reverberation shows)."""
    import torch
    import torchaudio

    wave, rate = EspeakSynthesizer().synthesize("the weather report was quite different", voice="en-us+m3")
    wave = torchaudio.functional.resample(torch.from_numpy(wave), rate, RATE).numpy().astype(np.float64)
    return np.concatenate([wave, np.zeros(RATE // 2)])


def band_energy(wave: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1 / RATE)
    return float(spectrum[(freqs >= low_hz) & (freqs < high_hz)].sum())


def test_words_are_thousands_distinct_and_in_the_character_vocabulary():
    words, probs = word_list(OpenSpeechConfig(vocabulary=3000))
    assert len(words) == len(set(words)) == 3000 and probs.shape == (3000,)
    assert abs(probs.sum() - 1) < 1e-9 and probs[0] > probs[-1]  # frequent words are drawn more often
    vocab = CharVocab.default()
    plans = plan_corpus(replace(TINY, vocabulary=3000, num_train=3000, num_dev=0, num_test=0))
    distinct = {w for p in plans for w in p.text.split()}
    assert len(distinct) > 2000
    assert all(not vocab.unknown_chars(p.text) and p.text == CharVocab.normalize(p.text) for p in plans)


def test_normalize_word_folds_accents_and_keeps_apostrophes():
    assert normalize_word("Café") == "cafe"
    assert normalize_word("Don\u2019t") == "don't"
    assert normalize_word("'tis-2") == "tis"


def test_dev_and_test_voices_are_never_heard_in_training():
    voices = split_voices(OpenSpeechConfig())
    families = {s: {voice_family(v) for v in voices[s]["variants"]} for s in voices}
    assert not families["train"] & families["dev"]
    assert not families["train"] & families["test"]
    assert not families["dev"] & families["test"]
    assert not set(CRASHING_VARIANTS) & {v for s in voices for v in voices[s]["variants"]}
    own_dev = set(voices["dev"]["accents"]) - set(voices["train"]["accents"])
    own_test = set(voices["test"]["accents"]) - set(voices["train"]["accents"])
    assert len(own_dev) == len(own_test) == 1 and own_dev != own_test
    assert len(voices["train"]["variants"]) > 50  # most voices train


def test_plans_are_deterministic_and_keep_held_out_conditions_out_of_training():
    cfg = replace(TINY, num_train=300, num_dev=100, num_test=200)
    plans = plan_corpus(cfg)
    assert plans == plan_corpus(cfg)
    assert [p.text for p in plan_corpus(replace(cfg, seed=4))] != [p.text for p in plans]
    heard = {s: {p.condition for p in plans if p.split == s} for s in ("train", "dev", "test")}
    assert heard == {s: {c for c, splits in CONDITIONS.items() if s in splits} for s in heard}
    assert "hall" not in heard["train"] and "telephone" not in heard["train"] | heard["dev"]
    for p in plans:
        assert (p.rt60_s > 0) == (p.condition in ("room", "hall"))
        assert (p.cutoff_hz > 0) == (p.condition == "lowpass")


def test_reverberation_fills_the_silence_after_speech_more_in_a_hall(speech):
    tail = slice(speech.size - RATE // 2 + RATE // 20, None)  # from 50 ms after the speech ends
    rng = np.random.default_rng(0)
    room, hall = reverberate(speech, 0.3, RATE, rng), reverberate(speech, 1.0, RATE, rng)
    for wet in (room, hall):
        assert wet.size == speech.size
        assert np.isclose(np.mean(wet**2), np.mean(speech**2))  # same level
    energy = [float(np.mean(x[tail] ** 2)) for x in (speech, room, hall)]
    assert energy[0] == 0 and 0 < energy[1] < energy[2] / 3


def test_band_limits_remove_what_they_say(speech):
    low = band_limit(speech, RATE, 0.0, 4000.0)
    assert band_energy(low, 4400, 8000) < 1e-4 * band_energy(speech, 4400, 8000)
    assert band_energy(low, 100, 3600) > 0.95 * band_energy(speech, 100, 3600)
    plan = next(p for p in plan_corpus(replace(TINY, num_test=200)) if p.condition == "telephone")
    plan = replace(plan, snr_db=200.0)  # no audible noise: the channel alone
    phone = apply_condition(plan, speech, RATE)
    kept = band_energy(phone, 500, 3200) / band_energy(speech, 500, 3200)
    # above the band: down by more than 20 dB (the 8 kHz resampling's images leak a little)
    assert band_energy(phone, 3700, 8000) < 1e-2 * kept * band_energy(speech, 3700, 8000)
    assert band_energy(phone, 0, 200) < 1e-2 * kept * band_energy(speech, 0, 200)


def test_noise_is_added_at_the_planned_snr(speech):
    plan = next(p for p in plan_corpus(TINY) if p.condition == "clean")
    for snr in (5.0, 20.0):
        noisy = apply_condition(replace(plan, snr_db=snr), speech, RATE).astype(np.float64)
        scale = float(noisy @ speech / (speech @ speech))  # a peak limit may have scaled both
        noise = noisy - scale * speech
        measured = 10 * np.log10(np.mean((scale * speech) ** 2) / np.mean(noise**2))
        assert abs(measured - snr) < 0.5


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    """The same config generated with 2 jobs and with 1: everything must come out identical."""
    a, b = tmp_path_factory.mktemp("open_a"), tmp_path_factory.mktemp("open_b")
    generate_corpus(a, TINY, progress=False)
    generate_corpus(b, replace(TINY, jobs=1), progress=False)
    return a, b


def test_same_seed_gives_identical_audio_whatever_the_jobs(corpora):
    a, b = corpora
    for split, count in (("train", 10), ("dev", 4), ("test", 6)):
        utts = read_data_dir(a / "data" / split)
        assert len(utts) == count
        for u in utts:
            assert sf.info(str(u.wav_path)).samplerate == RATE
            assert u.wav_path.read_bytes() == (b / "wav" / split / u.wav_path.name).read_bytes()
        assert (a / "data" / split / "text").read_text() == (b / "data" / split / "text").read_text()
