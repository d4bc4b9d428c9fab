"""SpecAugment masks training features within each utterance's own frames, and does nothing when off."""

import pytest
import torch

from models.speech.spec_augment import SpecAugmentConfig, spec_augment

ON = SpecAugmentConfig(freq_masks=2, freq_mask_bins=8, time_masks=2, time_mask_frames=10)


def _batch():
    features = torch.randn(3, 50, 40) + 5.0  # no value is 0 before masking
    lengths = torch.tensor([50, 30, 12])
    for b, length in enumerate(lengths.tolist()):
        features[b, length:] = 0.0
    return features, lengths


def test_off_by_default_returns_the_features_unchanged():
    features, lengths = _batch()
    assert not SpecAugmentConfig().enabled
    assert spec_augment(features, lengths, SpecAugmentConfig()) is features


def test_masks_zero_whole_bins_and_frames_inside_each_utterance_only():
    torch.manual_seed(0)
    features, lengths = _batch()
    out = spec_augment(features, lengths, ON)
    masked = out == 0
    assert masked.any()
    for b, length in enumerate(lengths.tolist()):
        inside = masked[b, :length]
        assert torch.equal(out[b, length:], features[b, length:])  # padding untouched
        full_bins = inside.all(dim=0)
        full_frames = inside.all(dim=1)
        # every masked value lies in a wholly masked bin or frame
        assert torch.equal(inside, full_bins.unsqueeze(0) | full_frames.unsqueeze(1))
        assert int(full_frames.sum()) <= 2 * 10 and int(full_bins.sum()) <= 2 * 8


def test_input_is_left_unchanged_and_masks_follow_the_global_seed():
    features, lengths = _batch()
    before = features.clone()
    torch.manual_seed(3)
    first = spec_augment(features, lengths, ON)
    torch.manual_seed(3)
    assert torch.equal(first, spec_augment(features, lengths, ON))
    assert torch.equal(features, before)


@pytest.mark.parametrize("key, value", [("freq_masks", -1), ("time_mask_max_fraction", 0.0)])
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"spec_augment.{key}"):
        SpecAugmentConfig(**{key: value})
