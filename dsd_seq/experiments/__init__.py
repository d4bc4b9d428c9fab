"""The experiment desk on top of training: ``compare`` (a schedule and its baselines over seeds), the run
store, Welch t-tests, results tables, reports and figures, and WER/CER scoring (of a task's transcripts in
memory, or of Kaldi text files as compute-wer does)."""
