"""Data preparation: corpora -> Kaldi-style data dirs -> feature stores and token ids -> batches.

Of the project it imports only ``dsd_seq.safe_io`` (atomic writes, checked loading). Modules that a recipe
runs as a stage are scripts too (``python -m data_prep.features.extraction --help``). Its subpackages, in
layers, lowest first; a subpackage imports only itself and the layers below it (``tests/test_layout.py``):

    ``audio``        audio files, resampling, speed perturbation, NIST SPHERE          (layer 1)
    ``text``         characters, SentencePiece subword units, a word n-gram LM         (layer 1)
    ``corpora``      corpus scripts: download or synthesise -> Kaldi data dirs, Karpathy split files (2)
    ``features``     speech features: a data dir into one on-disk store, read on demand (layer 3)
    ``batching``     the one speech dataset over a store, padding, length-bucketed lazy batches (4)
    ``images``       fixed CNN image features of a caption corpus, cached               (layer 4)

and one module:

    ``renamed``             the flat module names of before, forwarded to their new homes
"""

from data_prep.renamed import DATA_PREP_RENAMED, install_renamed

install_renamed("data_prep", DATA_PREP_RENAMED)
