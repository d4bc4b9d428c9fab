#!/usr/bin/env bash
# DSD on the open-vocabulary synthetic speech corpus (data_prep.corpora.synth_speech_open): 1,000 content words
# in sentence frames, spoken by 1,100 speakers (an espeak-ng English voice with its pitch, rate, intonation and
# room or channel) under noise. dev and test speakers are never heard in training; test_far holds out whole
# voice families, an accent, a large hall and a telephone band (like LibriSpeech's test-other).
# Every phase ends at convergence. Budget: docs/recipes.md says what was measured.
# Stages (Kaldi style, each leaves its result on disk):
#   0 corpus   1 features   2 dense   3 sparse/re-dense phases   4 LLR baseline   5 results table + figures,
#   export of the final and the sparse model to exp/model/ (with demo WAVs and the command that transcribes them)
#   6 (only when asked: --stage 6 --stop-stage 6) DSD vs LLR vs the final-LR control over --seeds N seeds, t-tests
# Re-running is safe: data stages with a .done marker holding the same parameters are skipped (others are
# redone from scratch); training stages resume from their newest readable checkpoint, on the same data.
# Usage: egs/synth_speech_open/run.sh [--stage N] [--stop-stage M] [--config conf/train_sgd.yaml] [--exp exp]
#        [--num-train N] [--num-dev N] [--num-test N] [--num-test-far N] [--speakers N] [--vocabulary N]
#        [--seed S] [--jobs J] [--seeds N]
#        [--units char|bpe|unigram] [--vocab-size N] [--speed-perturb "0.9,1.1"]
#        [--ngpu N] [--nnodes M --node-rank R --master-addr HOST [--master-port P]]  (training through torchrun)
set -euo pipefail
config=conf/train_sgd.yaml
num_train=20000
num_dev=400
num_test=600
num_test_far=600  # the far test split: unheard voice families, accent, hall and telephone (--num-test-far)
speakers=1000  # training speakers (--speakers); dev and test have 40 and 60 others
corpus_module=data_prep.corpora.synth_speech_open
corpus_tag=open
vocabulary=1000  # content words (--vocabulary)
. "$(dirname "$0")/../common/synth_speech_recipe.sh" "$@"
