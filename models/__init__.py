"""The models DSD trains and the tasks that train and score them: speech recognisers and an image captioner.

Each task module builds its model and data from ``task_args`` and implements ``dsd_seq.training.task.Task``;
recipes name it in their config as ``task: models.speech_task:build_task``. One module a line:

Speech models
    ``deepspeech1``        DeepSpeech 1 (Hannun et al. 2014) at the sizes of the DSD paper's Table 6
    ``shared_input_birnn`` DeepSpeech 1's bidirectional layer with one input matrix for both directions
    ``deepspeech2``        DeepSpeech 2 (Amodei et al. 2016): 2-D convolutions, bidirectional RNNs, CTC
    ``rnn_by_direction``   a one-layer RNN over packed frames, run padded a direction at a time (fast on the CPU)
    ``deepspeech2_table8`` the 67M-parameter DeepSpeech 2 of the DSD paper's Table 8, layer by layer
    ``transducer``         an RNN transducer on DeepSpeech 2's encoder: predictor, joiner, greedy decoding
    ``transducer_loss``    the transducer loss: warp-rnnt on CUDA when installed, else torchaudio
    ``spec_augment``       SpecAugment frequency and time masks on training batches
    ``lengths``            utterance lengths of a padded batch and the valid-frame mask

CTC and decoding
    ``ctc``                CTC feasibility, loss and greedy decoding (blank = 0)
    ``ctc_beam_search``    CTC prefix beam search without a language model
    ``ctc_lm_decoder``     CTC beam search with an n-gram word LM (torchaudio's flashlight decoder)
    ``ctc_decoding``       which of greedy, beam or LM decoding a run uses (``task_args.decoding``)
    ``units_guard``        the output units a model was trained with, kept in checkpoints, checked on load

Speech task
    ``speech_task``        the speech-recognition task (CTC or transducer): feature caches in, WER/CER out
                           (scored by ``dsd_seq.experiments.score``)

Trained models as tools (read from an exported package, see ``dsd_seq.export``)
    ``speech_recognizer``  transcribes audio files or waves: features, acoustic model, decoding, long files in pieces
    ``image_captioner``    captions image files: the package's image encoder, then NeuralTalk's beam search
    ``input_errors``       ``InputError``: the bad input both tools name, and their texts-or-raise step

Captioning
    ``neuraltalk``         NeuralTalk (Karpathy & Fei-Fei 2015), the captioner of the paper's Sec. 4.3
    ``caption_task``       the captioning task: Karpathy split + cached image features in, BLEU out
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
