"""Data preparation: corpora -> Kaldi-style data dirs -> features and token ids -> batches.

Of the project it imports only ``dsd_seq.safe_io`` (atomic writes, checked loading). Modules that a recipe
runs as a stage are scripts too (``python -m data_prep.features --help``). One module a line:

Speech corpora
    ``synth_speech``         the built-in corpus: command phrases and digit strings spoken by espeak-ng voices
    ``synth_speech_open``    a harder one: open-vocabulary sentences, held-out voices, rooms and channels
    ``espeak``               a ctypes driver for libespeak-ng, the synthesiser behind ``synth_speech``
    ``librispeech``          LibriSpeech and Mini LibriSpeech: download, verify, extract, data dirs
    ``wsj``                  WSJ0 and WSJ1 from your own LDC copy: si284, dev93, eval92 data dirs
    ``sphere``               NIST SPHERE audio (WSJ's ``.wv1``): read uncompressed PCM, convert to WAV
    ``archive``              checksummed downloads and safe extraction of corpus archives
    ``exit_status``          a corpus script's expected errors as ``error: ...`` and exit status 1

Speech data
    ``kaldi_dir``            Kaldi-style data dirs: ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``
    ``audio``                reading and writing audio, with errors naming the file
    ``resampling``           resampling with bounded memory whatever the rate (a close fraction, small kernel)
    ``speed_perturb``        Kaldi-style speed perturbation: extra training copies at other speeds
    ``features``             fbank/log-mel features and the feature cache (one ``torch.save`` file a split)
    ``feature_cache``        the one on-disk convention of both feature caches (kind, version, rebuild hint)
    ``feature_store``        features on disk (Lhotse lilcom-chunky + manifest), read on demand
    ``onthefly_features``    features computed from audio in the loader: a Kaldi data dir without a store
    ``vocab``                DeepSpeech's character vocabulary: blank, space, apostrophe, a-z
    ``subword_units``        SentencePiece units (BPE or unigram), an alternative to characters
    ``ngram_lm``             a small word bigram LM in ARPA format, for LM decoding
    ``speech_dataset``       a Dataset over a feature cache, padding and collation into batches
    ``stored_speech_dataset`` the same Dataset over a feature store, reading each item from disk
    ``batch_sampler``        an epoch's batches as a lazy sequence: index lists, read when asked for
    ``bucketing``            batches by a frame budget from duration buckets; SortaGrad's length order

Captioning corpora and image features
    ``synth_captions``       the built-in caption set: 64x64 images of shapes, five captions each
    ``flickr``               Flickr8k / Flickr30k / COCO from archives you downloaded
    ``karpathy``             Karpathy's caption split files and their word vocabulary
    ``image_features``       fixed CNN image features, extracted once and cached
    ``small_cnn_encoder``    the built-in recipe's small CNN, pretrained on shape labels, then frozen
    ``torchvision_encoders`` VGG-16 fc7 (the paper's) and ResNet-50 features through torchvision
"""
