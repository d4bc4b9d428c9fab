"""Batches for training and scoring speech models: the one speech dataset (any feature store), padding,
and an epoch's batches as lazy index lists. Imports ``features``, ``text`` and ``audio`` of ``data_prep``.
One module a line:

    ``speech_dataset``   the speech dataset over a feature store, and padding items into a batch
    ``batch_sampler``    an epoch's batches as a lazy sequence: index lists, read when asked for
    ``bucketing``        batches by a frame budget from duration buckets; SortaGrad's length order
"""
