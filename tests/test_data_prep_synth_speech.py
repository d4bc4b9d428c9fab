from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.corpora.espeak import EspeakError, EspeakSynthesizer, list_english_accents, list_variants
from data_prep.corpora.kaldi_dir import read_data_dir
from data_prep.corpora.synth_speech import (
    VERBS,
    SynthSpeechConfig,
    generate_corpus,
    plan_corpus,
    split_variants,
)

TINY = SynthSpeechConfig(num_train=8, num_dev=2, num_test=3, seed=5, shard_size=4, jobs=2)


def test_espeak_speech_is_not_silent_and_grows_with_text():
    synth = EspeakSynthesizer()
    short, rate = synth.synthesize("push")
    long, rate_long = synth.synthesize("push the red cup to the left of the blue box", voice="en-gb-x-rp+f2")
    assert rate == rate_long == 22050
    assert short.dtype == np.float32 and np.abs(short).max() <= 1.0
    for wave in (short, long):
        assert np.sqrt(np.mean(wave**2)) > 0.01
    assert long.size > 3 * short.size


def test_espeak_unknown_voice_says_what_to_use():
    with pytest.raises(EspeakError, match="unknown voice 'xx-nowhere'.*list_variants"):
        EspeakSynthesizer().synthesize("push", voice="xx-nowhere")


def test_shipped_voices_include_english_accents_and_variants():
    assert {"en", "en-us", "en-gb-x-rp"} <= set(list_english_accents())
    assert {"m3", "f1", "klatt"} <= set(list_variants())


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    """The same config generated twice, with 2 jobs and with 1: everything must come out identical."""
    a = tmp_path_factory.mktemp("synth_a")
    b = tmp_path_factory.mktemp("synth_b")
    generate_corpus(a, TINY, progress=False)
    generate_corpus(b, SynthSpeechConfig(**{**TINY.__dict__, "jobs": 1}), progress=False)
    return a, b


def test_corpus_has_kaldi_dirs_with_grammar_transcripts(corpora):
    out, _ = corpora
    counts = {"train": TINY.num_train, "dev": TINY.num_dev, "test": TINY.num_test}
    for split, count in counts.items():
        utts = read_data_dir(out / "data" / split)
        assert len(utts) == count
        for u in utts:
            assert u.wav_path == out / "wav" / split / f"{u.utt_id}.wav"
            info = sf.info(str(u.wav_path))
            assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.frames > 1600
            words = u.text.split()
            assert words and (words[0] in VERBS or all(w.isalpha() for w in words))


def test_same_seed_gives_identical_corpus_whatever_the_jobs(corpora):
    a, b = corpora
    for split in ("train", "dev", "test"):
        for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
            text_a = (a / "data" / split / name).read_text()
            text_b = (b / "data" / split / name).read_text()
            assert text_a.replace(str(a), "") == text_b.replace(str(b), "")
        wavs = sorted((a / "wav" / split).glob("*.wav"))
        assert wavs
        for wav in wavs:
            assert wav.read_bytes() == (b / "wav" / split / wav.name).read_bytes()


def test_another_seed_gives_other_sentences():
    other = SynthSpeechConfig(**{**TINY.__dict__, "seed": 6})
    assert [p.text for p in plan_corpus(other)] != [p.text for p in plan_corpus(TINY)]
    assert split_variants(other) != split_variants(TINY)


def test_test_and_dev_voice_variants_are_never_heard_in_training(corpora):
    out, _ = corpora
    variants = {
        split: {u.speaker.split("+")[1] for u in read_data_dir(out / "data" / split)}
        for split in ("train", "dev", "test")
    }
    assert not variants["train"] & variants["test"]
    assert not variants["train"] & variants["dev"]
    assert not variants["dev"] & variants["test"]
    planned = split_variants(TINY)
    assert set(planned["train"]) | set(planned["dev"]) | set(planned["test"]) == {
        v for v in list_variants() if " " not in v
    }
    for split in variants:
        assert variants[split] <= set(planned[split])


def test_every_split_hears_rooms_channels_and_varied_intonation():
    """The demo's speakers are not all in one quiet booth: rooms, low-pass channels, lively and flat voices."""
    cfg = SynthSpeechConfig(num_train=300, num_dev=60, num_test=90)
    plans = plan_corpus(cfg)
    for split in ("train", "dev", "test"):
        mine = [p for p in plans if p.split == split]
        assert {p.condition for p in mine} == {"clean", "room", "lowpass"}
        assert min(p.pitch_range for p in mine) < 40 and max(p.pitch_range for p in mine) > 70
    for p in plans:
        assert (p.rt60_s > 0) == (p.condition == "room") and (p.cutoff_hz > 0) == (p.condition == "lowpass")
    with pytest.raises(ValueError, match="accepted: some of"):
        SynthSpeechConfig(conditions=("clean", "cathedral"))
