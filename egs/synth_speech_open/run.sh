#!/usr/bin/env bash
# DSD on the open-vocabulary synthetic speech corpus (data_prep.synth_speech_open): about 2,000 English words,
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
. "$(dirname "$0")/../common/stages.sh"  # absolute, log, done_with, the training stages

stage=0
stop_stage=5
config=conf/train_sgd.yaml
exp=exp
data=data
num_train=4000
num_dev=300
num_test=400
vocabulary=2000
seed=0
jobs=2
seeds=5
units=char          # output units; bpe|unigram train SentencePiece on the training transcripts in stage 1
vocab_size=100      # SentencePiece pieces (with --units bpe|unigram)
speed_perturb=""    # e.g. "0.9,1.1": speed-perturbed copies of the training utterances (stage 1)
train_args=()  # extra `dsd-seq train` arguments, e.g. --set train.seed=1
launch_args=()  # --ngpu/--nnodes/... for the training stages

while [ $# -gt 0 ]; do
  case "$1" in
    --num-train) num_train="$2"; shift 2 ;;
    --num-dev) num_dev="$2"; shift 2 ;;
    --num-test) num_test="$2"; shift 2 ;;
    --vocabulary) vocabulary="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --units) units="$2"; shift 2 ;;
    --vocab-size) vocab_size="$2"; shift 2 ;;
    --speed-perturb) speed_perturb="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) common_option "$1" "${2-}"; shift 2 ;;  # --stage --stop-stage --config --exp --data --set --ngpu ...
  esac
done

cd "$(dirname "$0")"
python=${PYTHON:-python3}
# The feature caches, set verbatim (--set-str): any character in $data is safe.
for split in train dev test; do train_args+=(--set-str "task_args.data.$split=$data/feats/$split.pt"); done
data_marker="$data/feats/.done"  # training runs resume only on these features
lang="$data/lang_${units}${vocab_size}"
units_args "$lang"

corpus_params="open num_train=$num_train num_dev=$num_dev num_test=$num_test vocabulary=$vocabulary seed=$seed"
if in_stages 0; then
  if done_with "$data/corpus/.done" "$corpus_params"; then
    log 0 "corpus done already ($data/corpus/.done)"
  else
    log 0 "synthesise the corpus into $data/corpus"
    rm -rf "$data/corpus"  # an interrupted or differently sized earlier attempt
    "$python" -m data_prep.synth_speech_open --out "$data/corpus" --num-train "$num_train" \
      --num-dev "$num_dev" --num-test "$num_test" --vocabulary "$vocabulary" --seed "$seed" --jobs "$jobs"
    echo "$corpus_params" > "$data/corpus/.done"
  fi
fi

if in_stages 1; then
  speech_features 1 "$data/corpus/.done" "$data/corpus/data/"{train,dev,test}
  subword_units 1 "$lang" "$data/feats"
fi

dsd_training_stages 2  # dense, later DSD phases, LLR baseline: stages 2-4

if in_stages 5; then
  log 5 "results table, report and figures"
  dsd_seq report "$exp"
  # the model to use: three test utterances (voices and conditions never heard in training) as demo WAVs
  mapfile -t demo < <(head -n 3 "$data/corpus/data/test/wav.scp" | cut -d' ' -f2-)
  export_models 5 transcribe "${demo[@]}"
fi

if in_stages 6; then
  log 6 "DSD, LLR and the final-LR control over $seeds seeds (resumable) -> $exp/compare"
  dsd_seq compare --config "$config" --seeds "$seeds" --out "$exp/compare" "${train_args[@]}"
fi
