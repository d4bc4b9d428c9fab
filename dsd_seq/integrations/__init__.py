"""DSD inside the training loops people already use. Each module imports its framework, so import the one
you need (``dsd_seq.integrations.lightning``, ``dsd_seq.integrations.huggingface``); ``import dsd_seq``
imports neither. They build on :mod:`dsd_seq.core` only."""
