"""A DeepSpeech 2 + CTC training step on CUDA makes no CPU<->GPU synchronisation in this repository's code.

With the lengths and labels kept on the CPU (where torch's packing and CTC read them), the only
synchronisations left are torch's own: ``pack_padded_sequence`` copying its sort order to the GPU and the
CUDA CTC kernel copying its target offsets. ``torch.cuda.set_sync_debug_mode("warn")`` reports every
synchronisation as a warning attributed to the Python line that caused it; none may come from ``models/``.
"""

import warnings
from pathlib import Path

import pytest
import torch

from models.speech.ctc import ctc_loss
from models.speech.deepspeech2 import DeepSpeech2, DeepSpeech2Config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
MODELS = str(Path(__file__).resolve().parents[1] / "models")


@pytest.mark.parametrize("orientation", ["time_freq", "freq_time"])
def test_deepspeech2_ctc_step_has_no_synchronisation_in_our_code(orientation):
    torch.manual_seed(0)
    config = DeepSpeech2Config(num_features=40, rnn_hidden=64, rnn_layers=2)
    model = DeepSpeech2(config, conv_orientation=orientation).cuda()
    features = torch.randn(4, 120, 40, device="cuda")
    feature_lengths = torch.tensor([120, 100, 90, 60])  # CPU, like the labels: the packing needs them there
    labels = torch.randint(1, 29, (4, 12))
    label_lengths = torch.full((4,), 12)
    ctc_loss(*model(features, feature_lengths), labels, label_lengths).backward()  # warm-up (cuDNN plans)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            log_probs, lengths = model(features, feature_lengths)
            loss = ctc_loss(log_probs, lengths, labels, label_lengths)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message).lower()]
    ours = [where for where in syncs if where.startswith(MODELS)]
    assert ours == [], f"synchronisations in models/: {ours} (all: {syncs})"
    assert lengths.device.type == "cpu" and torch.isfinite(loss)
