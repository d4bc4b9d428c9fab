"""The experiment desk on top of training: ``compare`` (a schedule and its baselines over seeds), the run
store, Welch t-tests, results tables, reports and figures, and Kaldi-style WER scoring of text files."""
