#!/usr/bin/env bash
# DSD on the built-in synthetic speech corpus (espeak-ng voices; test voices never heard in training).
# Takes 6 min 23 s on an idle 2-core CPU. Stages (Kaldi style, each leaves its result on disk):
#   0 corpus   1 features   2 dense   3 sparse/re-dense phases   4 LLR baseline   5 results table + figures,
#   export of the final and the sparse model to exp/model/ (with demo WAVs and the command that transcribes them)
#   6 (only when asked: --stage 6 --stop-stage 6) DSD vs LLR vs the final-LR control over --seeds N seeds, t-tests
# Re-running is safe: data stages with a .done marker holding the same parameters are skipped (others are
# redone from scratch); training stages resume from their newest readable checkpoint, on the same data.
# Usage: egs/synth_speech/run.sh [--stage N] [--stop-stage M] [--config conf/train.yaml] [--exp exp]
#        [--num-train N] [--num-dev N] [--num-test N] [--seed S] [--jobs J] [--seeds N]
#        [--units char|bpe|unigram] [--vocab-size N] [--speed-perturb "0.9,1.1"]
#        [--ngpu N] [--nnodes M --node-rank R --master-addr HOST [--master-port P]]  (training through torchrun)
set -euo pipefail
config=conf/train.yaml
num_train=2000
num_dev=200
num_test=300
corpus_module=data_prep.corpora.synth_speech
corpus_tag=
vocabulary=  # this corpus has no --vocabulary
. "$(dirname "$0")/../common/synth_speech_recipe.sh" "$@"
