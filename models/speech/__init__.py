"""Speech recognition: acoustic models, CTC and transducer objectives, decoding, the task and the tool.

Recipes name the task as ``task: models.speech.speech_task:build_task``. The groups below run from the
networks to the tool that transcribes files: the task builds on the first two, the tool on the task.
One module a line:

Networks
    ``deepspeech1``        DeepSpeech 1 (Hannun et al. 2014) at the sizes of the DSD paper's Table 6
    ``shared_input_birnn`` DeepSpeech 1's bidirectional layer with one input matrix for both directions
    ``deepspeech2``        DeepSpeech 2 (Amodei et al. 2016): 2-D convolutions, bidirectional RNNs, CTC
    ``rnn_by_direction``   a one-layer RNN over packed frames, run padded a direction at a time (fast on the CPU)
    ``deepspeech2_table8`` the 67M-parameter DeepSpeech 2 of the DSD paper's Table 8, layer by layer
    ``transducer``         an RNN transducer on DeepSpeech 2's encoder: predictor, joiner, greedy decoding
    ``spec_augment``       SpecAugment frequency and time masks on training batches
    ``lengths``            utterance lengths of a padded batch and the valid-frame mask

Objectives and decoding
    ``ctc``                CTC feasibility, loss and greedy decoding (blank = 0)
    ``transducer_loss``    the transducer loss: warp-rnnt on CUDA when installed, else torchaudio
    ``ctc_beam_search``    CTC prefix beam search without a language model
    ``ctc_lm_decoder``     CTC beam search with an n-gram word LM (torchaudio's flashlight decoder)
    ``ctc_decoding``       which of greedy, beam or LM decoding a run uses (``task_args.decoding``)
    ``units_guard``        the output units a model was trained with, kept in checkpoints, checked on load

Task
    ``speech_task``        the speech-recognition task (CTC or transducer): feature stores in, WER/CER out
                           (scored by ``dsd_seq.experiments.score``)

Tool (read from an exported package, see ``dsd_seq.export``)
    ``speech_recognizer``  transcribes audio files or waves: features, acoustic model, decoding, long files in pieces
"""
