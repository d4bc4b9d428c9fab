#!/usr/bin/env bash
# DSD on the open-vocabulary synthetic speech corpus (data_prep.corpora.synth_speech_open): about 2,000 English words,
# every espeak-ng English voice, noise, rooms and channels; dev and test voices, accents and conditions
# (a large hall; test also a telephone band) never heard in training. Every phase ends at convergence.
# Budget: about 30 min on 2 idle cores (docs/recipes.md says what was measured).
# Stages (Kaldi style, each leaves its result on disk):
#   0 corpus   1 features   2 dense   3 sparse/re-dense phases   4 LLR baseline   5 results table + figures,
#   export of the final and the sparse model to exp/model/ (with demo WAVs and the command that transcribes them)
#   6 (only when asked: --stage 6 --stop-stage 6) DSD vs LLR vs the final-LR control over --seeds N seeds, t-tests
# Re-running is safe: data stages with a .done marker holding the same parameters are skipped (others are
# redone from scratch); training stages resume from their newest readable checkpoint, on the same data.
# Usage: egs/synth_speech_open/run.sh [--stage N] [--stop-stage M] [--config conf/train_sgd.yaml] [--exp exp]
#        [--num-train N] [--num-dev N] [--num-test N] [--vocabulary N] [--seed S] [--jobs J] [--seeds N]
#        [--units char|bpe|unigram] [--vocab-size N] [--speed-perturb "0.9,1.1"]
#        [--ngpu N] [--nnodes M --node-rank R --master-addr HOST [--master-port P]]  (training through torchrun)
set -euo pipefail
config=conf/train_sgd.yaml
num_train=4000
num_dev=300
num_test=400
corpus_module=data_prep.corpora.synth_speech_open
corpus_tag=open
vocabulary=2000  # distinct words (--vocabulary)
. "$(dirname "$0")/../common/synth_speech_recipe.sh" "$@"
