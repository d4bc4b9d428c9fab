#!/usr/bin/env bash
# DSD on Wall Street Journal, the paper's speech setting (Sec. 4.4): train on si284, dev93 for
# development, eval92 for test. The LDC corpora are licensed: give your copies with --wsj0 and --wsj1.
# Configs: conf/ds1_table7.yaml (DeepSpeech 1, Table 7) and conf/ds2_table9.yaml (DeepSpeech 2, Table 9).
# Stages (Kaldi style; data stages leave a .done marker and are skipped when it holds the same
#   parameters, training stages resume from their checkpoints):
#   0 audio + data dirs  1 features  2 dense  3 sparse/re-dense  4 LLR  5 dense baseline  6 decode+score
#   7 results, and the models to use exported to exp/model/
# Stage 5 runs only with --baseline-schedule S: a dense-only run of S from scratch (e.g. the paper's
# 150-epoch DeepSpeech 1 baseline); it is decoded and scored beside the others.
# Usage: egs/wsj/run.sh --wsj0 DIR --wsj1 DIR [--config conf/ds1_table7.yaml] [--stage N] [--stop-stage M]
#        [--exp exp] [--data data] [--num-bins 161] [--jobs J] [--baseline-schedule S] [--set key=value]
#        [--ngpu N] [--nnodes M --node-rank R --master-addr HOST [--master-port P]]  (training through torchrun)
set -euo pipefail
. "$(dirname "$0")/../common/stages.sh"  # absolute, log, done_with, the training stages

stage=0
stop_stage=7
config=conf/ds1_table7.yaml
exp=exp
data=data
wsj0=
wsj1=
num_bins=161
jobs=4
baseline_schedule=
paper_table=auto  # the paper's table shown beside the results: table7 (DS1), table9 (DS2), none; auto from --config
train_args=()
launch_args=()  # --ngpu/--nnodes/... for the training stages

while [ $# -gt 0 ]; do
  case "$1" in
    --wsj0) wsj0=$(absolute "$2"); shift 2 ;;
    --wsj1) wsj1=$(absolute "$2"); shift 2 ;;
    --num-bins) num_bins="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --baseline-schedule) baseline_schedule="$2"; shift 2 ;;
    --paper-table) paper_table="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) common_option "$1" "${2-}"; shift 2 ;;  # --stage --stop-stage --config --exp --data --set --ngpu ...
  esac
done

cd "$(dirname "$0")"
python=${PYTHON:-python3}
# the sets of the paper's WSJ setting, under the split names the configs use
declare -A sets=([train]=train_si284 [dev]=test_dev93 [test]=test_eval92)
feature_storage=lilcom  # compact stores (~4.4x smaller than float32; lossy below the features' noise)
for split in train dev test; do train_args+=(--set-str "task_args.data.$split=$(feature_path "$split")"); done
data_marker="$data/feats/.done"  # training runs resume only on these features

if in_stages 0; then
  params="wsj0=$wsj0 wsj1=$wsj1"
  if done_with "$data/corpus/.done" "$params"; then
    log 0 "audio and data dirs done already ($data/corpus/.done)"
  else
    [ -n "$wsj0" ] && [ -n "$wsj1" ] || { echo "run.sh: stage 0 needs --wsj0 DIR and --wsj1 DIR (your LDC93S6B and LDC94S13B copies)" >&2; exit 1; }
    log 0 "convert si284, dev93, eval92 audio to wav and write data dirs into $data/corpus"
    rm -f "$data/corpus/.done"  # converted files are kept: each was written atomically
    "$python" -m data_prep.corpora.wsj --wsj0 "$wsj0" --wsj1 "$wsj1" --out "$data/corpus" --jobs "$jobs" \
      --sets "${sets[train]}" "${sets[dev]}" "${sets[test]}"
    echo "$params" > "$data/corpus/.done"
  fi
fi

if in_stages 1; then
  speech_features 1 "$data/corpus/.done" "$data/corpus/data/${sets[train]}" "$data/corpus/data/${sets[dev]}" \
    "$data/corpus/data/${sets[test]}"
fi

dsd_training_stages 2  # dense, later DSD phases, LLR baseline: stages 2-4

runs=(dsd llr)
if [ -n "$baseline_schedule" ]; then runs+=(dense); fi
if in_stages 5 && [ -n "$baseline_schedule" ]; then
  log 5 "dense baseline $baseline_schedule from scratch -> $exp/dense"
  same_data dense
  dsd_seq train "${launch_args[@]}" --config "$config" --exp-dir "$exp/dense" --dense-only --schedule "$baseline_schedule" \
    --resume "${train_args[@]}"
fi

if in_stages 6; then
  for run in "${runs[@]}"; do
    last=$(final_checkpoint "$run")
    log 6 "decode dev93 and eval92 with $last -> $exp/$run/decode_{dev,test}/ (ref.txt, hyp.txt, wer.txt, cer.txt)"
    "$python" "$local_tools/decode_speech.py" --config "$config" --checkpoint "$last" --split dev --split test \
      --out-dir "$exp/$run" "${train_args[@]}"
  done
fi

if in_stages 7; then
  log 7 "results table, report and figures"
  if [ "$paper_table" = auto ]; then
    case "$(basename "$config")" in ds1_table7*) paper_table=table7 ;; ds2_table9*) paper_table=table9 ;; *) paper_table=none ;; esac
  fi
  paper_args=()
  [ "$paper_table" = none ] || paper_args=(--paper "$paper_table")
  dsd_seq report "$exp" "${paper_args[@]}"  # results.md/json, report.md (with the paper's table) and figures/
  [ -z "$baseline_schedule" ] || echo "dense baseline ($baseline_schedule): $(cat "$exp/dense/decode_test/wer.txt" | head -n 1)"
  # the model to use: the final DSD model and the compressed sparse one, three eval92 files to try it on
  mapfile -t demo < <(head -n 3 "$data/corpus/data/${sets[test]}/wav.scp" | cut -d' ' -f2-)
  export_models 7 transcribe "${demo[@]}"
fi
