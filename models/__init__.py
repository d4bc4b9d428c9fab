"""The models DSD trains and the tasks that train and score them: speech recognisers and an image captioner.

Each task module builds its model and data from ``task_args`` and implements ``dsd_seq.training.task.Task``;
recipes name it in their config as ``task: models.speech.speech_task:build_task``. Two families, each a
subpackage from its networks to its task and its inference tool; neither imports the other, and both may
import the shared module below them (``tests/test_layout.py``):

    ``speech``         DeepSpeech 1 and 2, Table 8's DS2, the transducer, CTC decoding, the speech task
    ``captioning``     NeuralTalk, the captioning task, the captioner tool

and its modules:

    ``input_errors``   ``InputError``: the bad input both inference tools name, and their texts-or-raise step
    ``renamed``        the flat module names of before the subpackages, forwarded to their new homes
"""

from data_prep.renamed import install_renamed
from models.renamed import MODELS_RENAMED
from models.speech.ctc import (
    CTCInfeasibleError,
    ctc_loss,
    greedy_decode,
    infeasible_utterances,
    min_ctc_frames,
)
from models.speech.deepspeech1 import DeepSpeech1, DeepSpeech1Config
from models.speech.deepspeech2 import DeepSpeech2, DeepSpeech2Config
from models.speech.shared_input_birnn import SharedInputBiRNN

install_renamed("models", MODELS_RENAMED)

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
