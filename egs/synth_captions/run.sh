#!/usr/bin/env bash
# DSD on the built-in synthetic captioning set (NeuralTalk on frozen small-CNN features; the paper's Sec. 4.3).
# Stages (Kaldi style, each leaves its result on disk):
#   0 corpus   1 encoder + features   2 dense   3 sparse/re-dense phases   4 LLR baseline   5 results, figures + examples
# Usage: egs/synth_captions/run.sh [--stage N] [--stop-stage M] [--config conf/train.yaml] [--exp exp]
#        [--data data] [--num-train N] [--num-val N] [--num-test N] [--encoder-images N] [--encoder-epochs N]
#        [--ngpu N] [--nnodes M --node-rank R --master-addr HOST [--master-port P]]  (training through torchrun)
set -euo pipefail
. "$(dirname "$0")/../common/stages.sh"  # absolute, log, done_with, the training stages

stage=0
stop_stage=5
config=conf/train.yaml
exp=exp
data=data
num_train=4000
num_val=300
num_test=500
encoder_images=2000
encoder_epochs=6
seed=0
train_args=()
launch_args=()  # --ngpu/--nnodes/... for the training stages

while [ $# -gt 0 ]; do
  case "$1" in
    --num-train) num_train="$2"; shift 2 ;;
    --num-val) num_val="$2"; shift 2 ;;
    --num-test) num_test="$2"; shift 2 ;;
    --encoder-images) encoder_images="$2"; shift 2 ;;
    --encoder-epochs) encoder_epochs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) common_option "$1" "${2-}"; shift 2 ;;  # --stage --stop-stage --config --exp --data --set --ngpu ...
  esac
done

cd "$(dirname "$0")"
python=${PYTHON:-python3}
# Paths set verbatim (--set-str): any character in $data is safe.
train_args+=(--set-str "task_args.dataset=$data/corpus/dataset_synth.json" --set-str "task_args.features=$data/feats/small_cnn.pt")

if in_stages 0; then
  log 0 "synthesise the captioning set into $data/corpus"
  "$python" -m data_prep.corpora.synth_captions --out "$data/corpus" --num-train "$num_train" \
    --num-val "$num_val" --num-test "$num_test" --seed "$seed"
fi

if in_stages 1; then
  log 1 "pretrain the small CNN on per-cell shape/colour/size labels, freeze it, cache features in $data/feats"
  "$python" -m data_prep.images.small_cnn_encoder --out "$data/feats/encoder.pt" --num-images "$encoder_images" \
    --epochs "$encoder_epochs" --seed "$seed" --threads 2
  "$python" -m data_prep.images.image_features --dataset "$data/corpus/dataset_synth.json" \
    --encoder small_cnn --encoder-checkpoint "$data/feats/encoder.pt" --out "$data/feats/small_cnn.pt" --threads 2
fi

dsd_training_stages 2  # dense, later DSD phases, LLR baseline: stages 2-4

if in_stages 5; then
  log 5 "results table (BLEU-1..4 per phase, like Table 5) and example captions per phase"
  dsd_seq report "$exp"  # results.md/json, report.md and figures/
  caption_examples
  # three test images (with object/colour pairs never seen in training) as demo images
  mapfile -t demo < <("$python" -c "import json,sys; print('\n'.join(sys.argv[2] + '/' + im['filename'] for im in [i for i in json.load(open(sys.argv[1]))['images'] if i['split'] == 'test'][:3]))" "$data/corpus/dataset_synth.json" "$data/corpus/images")
  export_models 5 caption "${demo[@]}"
fi
