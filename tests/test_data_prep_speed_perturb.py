"""Speed perturbation: copies at 0.9x/1.1x speed are added to a feature cache under sp<factor>- ids, their
lengths scale by 1/factor, and the CLI takes the factors."""

import pytest
import torch

from data_prep.audio.speed_perturb import parse_speed_factors, perturbed_utt_id, speed_perturb
from data_prep.corpora.synth_speech import SynthSpeechConfig, generate_corpus
from data_prep.features.extraction import FeatureConfig, build_feature_store, main
from data_prep.features.store import FeatureStore
from data_prep.text.vocab import CharVocab


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    cfg = SynthSpeechConfig(num_train=3, num_dev=1, num_test=1, seed=2, jobs=1)
    return generate_corpus(out, cfg, progress=False)["train"]


def test_speed_changes_length_by_the_inverse_factor():
    wave = torch.sin(torch.arange(16000) * 2 * torch.pi * 440 / 16000)
    for factor in (0.9, 1.1):
        out = speed_perturb(wave, 16000, factor)
        assert abs(out.numel() - 16000 / factor) <= 2
    # pitch moves with speed: the 440 Hz tone played 1.1x faster peaks near 484 Hz
    spectrum = torch.fft.rfft(speed_perturb(wave, 16000, 1.1)).abs()
    peak_hz = int(spectrum.argmax()) * 16000 / (2 * (spectrum.numel() - 1))
    assert abs(peak_hz - 484) < 5


def test_factors_parse_and_are_checked():
    assert parse_speed_factors("0.9,1.0, 1.1") == (0.9, 1.1)
    assert parse_speed_factors("") == ()
    assert perturbed_utt_id("u1", 0.9) == "sp0.9-u1"
    with pytest.raises(ValueError, match=r"\[0.5, 2.0\]"):
        parse_speed_factors("3")
    with pytest.raises(ValueError, match="expected numbers"):
        parse_speed_factors("fast")


def test_store_holds_originals_and_perturbed_copies(train_dir, tmp_path):
    plain = build_feature_store(
        train_dir, tmp_path / "plain", FeatureConfig(), CharVocab.default(), progress=False
    )
    report = build_feature_store(
        train_dir,
        tmp_path / "sp",
        FeatureConfig(),
        CharVocab.default(),
        progress=False,
        speed_factors=(0.9, 1.1),
    )
    assert report.num_kept == 3 * plain.num_kept and report.bad_fraction == 0
    store = FeatureStore(tmp_path / "sp")
    originals = FeatureStore(tmp_path / "plain")
    assert store.manifest["speed_factors"] == [0.9, 1.1]
    by_id = {utt: store.read(i) for i, utt in enumerate(store.utt_ids)}
    for i, (utt, text) in enumerate(zip(originals.utt_ids, originals.texts, strict=True)):
        feats = originals.read(i)
        assert torch.equal(by_id[utt], feats)
        for factor in (0.9, 1.1):
            copy = by_id[f"sp{factor}-{utt}"]
            assert abs(copy.shape[0] - feats.shape[0] / factor) <= 2
        index = store.utt_ids.index(f"sp0.9-{utt}")
        assert store.texts[index] == text


def test_cli_speed_perturb_option(train_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--data-dir", str(train_dir), "--out", str(out), "--speed-perturb", "0.9,1.1"]) == 0
    assert "kept 9 of 9 utterances" in capsys.readouterr().out
    assert sum(u.startswith("sp1.1-") for u in FeatureStore(out).utt_ids) == 3
