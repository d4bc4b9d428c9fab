"""Speech features: fbank/log-mel frames of a Kaldi data dir, written once into an on-disk store (Lhotse's
writers: lossless numpy files by default, compact lilcom for the large corpora), or computed from the audio
on each read. Either way a split is one source the one speech dataset reads. Imports ``audio``, ``text``
and ``corpora`` (``kaldi_dir``) of ``data_prep``. One module a line:

    ``extraction``      fbank/log-mel features and the feature stage: a data dir into a store
                        (``python -m data_prep.features --help``)
    ``store``           the on-disk store: a Lhotse feature file or folder plus a checked manifest
    ``onthefly``        the store's on-the-fly option: a Kaldi data dir, features computed on each read
    ``sources``         a split's features by the path a config names: a store, a data dir, or refused
    ``learn_units``     the stage that learns SentencePiece units from a training store's transcripts
"""
