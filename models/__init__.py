"""Speech models trained with DSD and their CTC task.

DeepSpeech 1 (Hannun et al. 2014; DSD paper, Table 6) and DeepSpeech 2 (Amodei et al. 2016) map feature frames
to per-frame log-probabilities over characters (blank = 0); `ctc` turns those into a loss and a greedy
transcript, which :mod:`dsd_seq.experiments.score` scores into WER/CER.
"""

from models.ctc import (
    CTCInfeasibleError,
    ctc_loss,
    greedy_decode,
    infeasible_utterances,
    min_ctc_frames,
)
from models.deepspeech1 import DeepSpeech1, DeepSpeech1Config
from models.deepspeech2 import DeepSpeech2, DeepSpeech2Config
from models.shared_input_birnn import SharedInputBiRNN

__all__ = [
    "CTCInfeasibleError",
    "DeepSpeech1",
    "DeepSpeech1Config",
    "DeepSpeech2",
    "DeepSpeech2Config",
    "SharedInputBiRNN",
    "ctc_loss",
    "greedy_decode",
    "infeasible_utterances",
    "min_ctc_frames",
]
