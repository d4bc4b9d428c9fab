"""The flat module names of ``models`` before its subpackages, forwarded to their new homes.

Configs (``task: models.speech_task:build_task``) and exported model packages (``inference:
models.speech_recognizer:from_package``) written before keep working: the old name loads the module at its
new path (see :mod:`data_prep.renamed`, which does the forwarding).
"""

from __future__ import annotations

SPEECH = [
    "ctc",
    "ctc_beam_search",
    "ctc_decoding",
    "ctc_lm_decoder",
    "deepspeech1",
    "deepspeech2",
    "deepspeech2_table8",
    "lengths",
    "rnn_by_direction",
    "shared_input_birnn",
    "spec_augment",
    "speech_recognizer",
    "speech_task",
    "transducer",
    "transducer_loss",
    "units_guard",
]
CAPTIONING = ("caption_task", "image_captioner", "neuraltalk")

#: old name -> new name
MODELS_RENAMED: dict[str, str] = {
    **{f"models.{name}": f"models.speech.{name}" for name in SPEECH},
    **{f"models.{name}": f"models.captioning.{name}" for name in CAPTIONING},
}
