"""The run machinery around :mod:`dsd_seq.core`: the ``Task`` protocol a model family implements, the
trainer's phase -> epoch -> step loop, checkpoints, the typed run config, torchrun and mixed precision,
and the metrics log."""
