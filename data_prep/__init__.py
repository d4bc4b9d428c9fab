"""Data preparation: corpora -> Kaldi-style data dirs -> features and token ids -> batches.

Modules, in the order of the flow: ``synth_speech`` (the built-in espeak-ng corpus, via ``espeak``),
``kaldi_dir`` (wav.scp/text/utt2spk/spk2utt), ``audio`` (reading/writing wavs), ``vocab`` (characters),
``features`` (fbank/log-mel and the feature cache), ``speech_dataset`` (Dataset, collate, batching).
"""
