"""The open-vocabulary corpus: text, unseen speakers, the far test split, and augmentations on real audio."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.corpora.acoustic_conditions import apply_condition, band_limit, reverberate
from data_prep.corpora.espeak import EspeakSynthesizer
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.corpora.synth_speech_open import (
    CONDITIONS,
    CRASHING_VARIANTS,
    OpenSpeechConfig,
    generate_corpus,
    normalize_word,
    plan_corpus,
    plan_speakers,
    split_voices,
    voice_family,
    word_list,
)
from data_prep.text.vocab import CharVocab

TINY = OpenSpeechConfig(
    num_train=10, num_dev=4, num_test=6, num_test_far=4, seed=3, shard_size=4, jobs=2,
    train_speakers=5, dev_speakers=2, test_speakers=3,
)  # fmt: skip
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


def identities(plans, split):
    """The (accent, variant, pitch, rate) of every utterance of ``split``: who a listener hears."""
    return {(*p.voice.split("+"), p.pitch, p.rate_wpm) for p in plans if p.split == split}


def test_no_dev_or_test_speaker_is_ever_heard_in_training():
    cfg = replace(TINY, num_train=4000, num_dev=400, num_test=600, num_test_far=0,
                  train_speakers=300, dev_speakers=30, test_speakers=40)  # fmt: skip
    plans = plan_corpus(cfg)
    train = identities(plans, "train")
    for split in ("dev", "test"):
        assert identities(plans, split) and not identities(plans, split) & train
    assert not identities(plans, "dev") & identities(plans, "test")
    # ... yet they are speakers of the trained kind: voice families and accents heard in training
    families = {
        s: {voice_family(p.voice.split("+")[1]) for p in plans if p.split == s} for s in ("train", "test")
    }
    assert families["test"] <= families["train"]
    # a speaker keeps their voice, pitch, rate, intonation and room; the Kaldi speaker is theirs
    by_speaker = {}
    for p in plans:
        if p.split != "test_far":
            by_speaker.setdefault(p.speaker, set()).add(
                (p.voice, p.pitch, p.rate_wpm, p.pitch_range, p.condition, p.rt60_s)
            )
            assert p.utt_id.startswith(p.speaker + "-") and p.speaker.startswith(p.split)
    assert all(len(v) == 1 for v in by_speaker.values())
    assert len([s for s in by_speaker if s.startswith("train")]) == 300  # every speaker talks


def test_speakers_are_distinct_and_drawn_in_a_fixed_order():
    speakers = plan_speakers(OpenSpeechConfig())
    everyone = [spk for split in speakers.values() for spk in split]
    assert len({spk.identity for spk in everyone}) == len(everyone) == 1000 + 40 + 60
    # more training speakers keep the dev and test speakers (they are dealt first)
    more = plan_speakers(replace(OpenSpeechConfig(), train_speakers=1500))
    assert more["test"] == speakers["test"] and more["dev"] == speakers["dev"]
    with pytest.raises(ValueError, match="too many"):
        plan_speakers(replace(OpenSpeechConfig(), train_speakers=10**6))


def test_test_far_voices_accent_and_conditions_are_never_heard_elsewhere():
    voices = split_voices(OpenSpeechConfig())
    families = {s: {voice_family(v) for v in voices[s]["variants"]} for s in voices}
    assert not families["train"] & families["test_far"]
    assert not set(CRASHING_VARIANTS) & {v for s in voices for v in voices[s]["variants"]}
    own = set(voices["test_far"]["accents"]) - set(voices["train"]["accents"])
    assert len(own) == 1 and set(voices["train"]["accents"]) < set(voices["test_far"]["accents"])
    assert len(voices["train"]["variants"]) > 50  # most voices train
    cfg = replace(TINY, num_train=300, num_dev=100, num_test=100, num_test_far=200)
    plans, voices = plan_corpus(cfg), split_voices(cfg)
    near_accents = {p.voice.split("+")[0] for p in plans if p.split != "test_far"}
    assert near_accents <= set(voices["train"]["accents"])
    for p in plans:
        if p.split == "test_far":
            assert p.voice.split("+")[1] in voices["test_far"]["variants"]


def test_plans_are_deterministic_and_keep_held_out_conditions_out_of_training():
    cfg = replace(TINY, num_train=300, num_dev=100, num_test=100, num_test_far=200, train_speakers=60)
    plans = plan_corpus(cfg)
    assert plans == plan_corpus(cfg)
    assert [p.text for p in plan_corpus(replace(cfg, seed=4))] != [p.text for p in plans]
    heard = {s: {p.condition for p in plans if p.split == s} for s in ("train", "test_far")}
    assert heard == {s: {c for c, splits in CONDITIONS.items() if s in splits} for s in heard}
    near = {p.condition for p in plans if p.split != "test_far"}
    assert not near & {"hall", "telephone"}
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
    plan = next(p for p in plan_corpus(replace(TINY, num_test_far=200)) if p.condition == "telephone")
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
    for split, count in (("train", 10), ("dev", 4), ("test", 6), ("test_far", 4)):
        utts = read_data_dir(a / "data" / split)
        assert len(utts) == count
        for u in utts:
            assert sf.info(str(u.wav_path)).samplerate == RATE
            assert u.wav_path.read_bytes() == (b / "wav" / split / u.wav_path.name).read_bytes()
        assert (a / "data" / split / "text").read_text() == (b / "data" / split / "text").read_text()


def test_the_written_corpus_keeps_test_speakers_out_of_training(corpora):
    a, _ = corpora
    speakers = {s: {u.speaker for u in read_data_dir(a / "data" / s)} for s in ("train", "dev", "test")}
    assert not speakers["test"] & speakers["train"] and not speakers["dev"] & speakers["train"]
    info = json.loads((a / "corpus.json").read_text())
    who = {
        s: {(x["accent"], x["variant"], x["pitch"], x["rate_wpm"]) for x in info["speakers"][s]}
        for s in speakers
    }
    assert not who["test"] & who["train"] and len(who["train"]) == TINY.train_speakers
    assert {"hall", "telephone"} & set(info["conditions_heard"]["test_far"])
    assert not {"hall", "telephone"} & set(info["conditions_heard"]["train"])
