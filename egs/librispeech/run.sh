#!/usr/bin/env bash
# DSD for DeepSpeech 2 on LibriSpeech (OpenSLR 12), or on Mini LibriSpeech (OpenSLR 31) with --mini.
# Downloads the archives (resumable, checked against the published checksums), extracts them safely and
# trains Dense -> Sparse -> Re-dense with the LLR baseline, then decodes and scores dev and test.
# Stages (Kaldi style, each leaves its result on disk; data stages leave a .done marker and are skipped
#   when it holds the same parameters, training stages resume from their checkpoints):
#   0 download+extract  1 data dirs  2 features (+ SentencePiece units with --units bpe|unigram)  3 dense
#   4 sparse/re-dense  5 LLR  6 decode+score  7 results, and the models to use exported to exp/model/
# Usage: egs/librispeech/run.sh [--mini] [--stage N] [--stop-stage M] [--config conf/train.yaml] [--exp exp]
#        [--data data] [--train "train-clean-100 ..."] [--dev "dev-clean"] [--test "test-clean"]
#        [--mirror URL] [--sha256 SUBSET=HEX] [--num-bins N] [--set key=value]
#        [--units char|bpe|unigram] [--vocab-size N]
#        [--ngpu N] [--nnodes M --node-rank R --master-addr HOST [--master-port P]]  (training through torchrun)
set -euo pipefail
. "$(dirname "$0")/../common/stages.sh"  # absolute, log, done_with, the training stages

stage=0
stop_stage=7
config=conf/train.yaml
exp=exp
data=data
train_sets="train-clean-100"
dev_sets="dev-clean"
test_sets="test-clean"
mirror=https://www.openslr.org
num_bins=40
sha256s=()    # SUBSET=HEX: check this sha256 instead of the published checksum (e.g. a re-packed mirror)
units=char          # output units; bpe|unigram train SentencePiece on the training transcripts in stage 2
vocab_size=256      # SentencePiece pieces (with --units bpe|unigram)
train_args=()
launch_args=()      # --ngpu/--nnodes/... for the training stages

while [ $# -gt 0 ]; do
  case "$1" in
    --mini) train_sets="train-clean-5"; dev_sets="dev-clean-2"; test_sets="test-clean"; config=conf/mini.yaml; shift ;;
    --train) train_sets="$2"; shift 2 ;;
    --dev) dev_sets="$2"; shift 2 ;;
    --test) test_sets="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --sha256) sha256s+=(--sha256 "$2"); shift 2 ;;
    --num-bins) num_bins="$2"; shift 2 ;;
    --units) units="$2"; shift 2 ;;
    --vocab-size) vocab_size="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) common_option "$1" "${2-}"; shift 2 ;;  # --stage --stop-stage --config --exp --data --set --ngpu ...
  esac
done

cd "$(dirname "$0")"
python=${PYTHON:-python3}
feature_storage=lilcom  # compact stores (~4.4x smaller than float32; lossy below the features' noise)
for split in train dev test; do train_args+=(--set-str "task_args.data.$split=$(feature_path "$split")"); done
data_marker="$data/feats/.done"  # training runs resume only on these features
lang="$data/lang_${units}${vocab_size}"
units_args "$lang"

if in_stages 0; then
  log 0 "download $train_sets $dev_sets $test_sets from $mirror (checksums verified), extract into $data/corpus"
  # shellcheck disable=SC2086  # one argument per subset
  "$python" -m data_prep.corpora.librispeech fetch --subsets $train_sets $dev_sets $test_sets --dest "$data/downloads" \
    --corpus "$data/corpus" --mirror "$mirror" "${sha256s[@]+"${sha256s[@]}"}"
fi

data_params="train=$train_sets dev=$dev_sets test=$test_sets"
if in_stages 1; then
  if done_with "$data/kaldi/.done" "$data_params"; then
    log 1 "data dirs done already ($data/kaldi/.done)"
  else
    log 1 "Kaldi data dirs ($data_params) into $data/kaldi"
    rm -rf "$data/kaldi"
    join() { echo "$*" | tr ' ' ','; }
    # shellcheck disable=SC2086
    "$python" -m data_prep.corpora.librispeech prepare --corpus "$data/corpus" --out "$data/kaldi" \
      --split "train=$(join $train_sets)" --split "dev=$(join $dev_sets)" --split "test=$(join $test_sets)"
    echo "$data_params" > "$data/kaldi/.done"
  fi
fi

if in_stages 2; then
  speech_features 2 "$data/kaldi/.done" "$data/kaldi/"{train,dev,test}
  subword_units 2 "$lang" "$data/feats"
fi

dsd_training_stages 3  # dense, later DSD phases, LLR baseline: stages 3-5

if in_stages 6; then
  phases=$(dsd_seq schedule --config "$config" --count "${train_args[@]}")
  for run in dsd llr; do
    log 6 "decode dev and test with $run's final model -> $exp/$run/decode_<split>/{ref,hyp}.txt, scored (wer.txt, cer.txt)"
    "$python" "$local_tools/decode_speech.py" --config "$config" --checkpoint "$exp/$run/checkpoints/phase$phases-end.pt" \
      --split dev --split test --out-dir "$exp/$run" "${train_args[@]}"
  done
fi

if in_stages 7; then
  log 7 "results table, report and figures"
  dsd_seq report "$exp"  # results.md/json, report.md and figures/
  # the model to use: the final DSD model and the compressed sparse one, three test files to try it on
  mapfile -t demo < <(head -n 3 "$data/kaldi/test/wav.scp" | cut -d' ' -f2-)
  export_models 7 transcribe "${demo[@]}"
fi
