#!/usr/bin/env bash
# DSD on Flickr8k, the paper's setting (Sec. 4.3, Table 5): NeuralTalk on fixed VGG-16 fc7 features,
# Dense 19 epochs (LR 1e-2) -> Sparse 80% 10 epochs (1e-3) -> Re-dense 6 epochs (1e-4), and the LLR baseline.
# Needs the archives you downloaded (nothing is fetched): Flickr8k_Dataset.zip and Karpathy's
# caption_datasets.zip (or dataset_flickr8k.json) in --archives DIR; torchvision and the VGG-16 weights.
# Stages (Kaldi style, each leaves its result on disk; 0 and 1 leave a .done marker and are skipped when
#   it is there, training stages resume from their checkpoints):
#   0 prepare (checksums, safe extraction)  1 image features  2 dense  3 sparse/re-dense  4 LLR  5 results + figures
# Usage: egs/flickr8k/run.sh --archives DIR [--stage N] [--stop-stage M] [--config conf/train.yaml]
#        [--exp exp] [--data data] [--images-archive FILE] [--captions FILE] [--images-sha256 HEX]
#        [--captions-sha256 HEX] [--encoder vgg16|resnet50|small_cnn] [--encoder-checkpoint FILE]
#        [--threads N] [--set key=value] [--init-from CHECKPOINT]
#        [--ngpu N] [--nnodes M --node-rank R --master-addr HOST [--master-port P]]  (training through torchrun)
#   --init-from: start from a trained dense model, as the paper started from a trained NeuralTalk: a dsd-seq
#   phase1-end.pt of this config (e.g. an earlier run's exp/dsd/checkpoints/phase1-end.pt); stage 2 then
#   trains nothing and stages 3-4 (DSD, LLR) continue from it.
set -euo pipefail
. "$(dirname "$0")/../common/stages.sh"  # absolute, log, done_with, the training stages

stage=0
stop_stage=5
config=conf/train.yaml
exp=exp
data=data
archives=
images_archive=
captions=
images_sha256=
captions_sha256=
encoder=vgg16
encoder_checkpoint=
threads=0
init_from=  # a trained dense model (phase1-end.pt) replacing stage 2
train_args=()
launch_args=()  # --ngpu/--nnodes/... for the training stages

# Paths given on the command line are relative to where run.sh was called (even one spelt like a default,
# e.g. --data data); the defaults are relative to the recipe folder.

while [ $# -gt 0 ]; do
  case "$1" in
    --archives) archives=$(absolute "$2"); shift 2 ;;
    --images-archive) images_archive=$(absolute "$2"); shift 2 ;;
    --captions) captions=$(absolute "$2"); shift 2 ;;
    --images-sha256) images_sha256="$2"; shift 2 ;;
    --captions-sha256) captions_sha256="$2"; shift 2 ;;
    --encoder) encoder="$2"; shift 2 ;;
    --encoder-checkpoint) encoder_checkpoint=$(absolute "$2"); shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --init-from) init_from=$(absolute "$2"); shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) common_option "$1" "${2-}"; shift 2 ;;  # --stage --stop-stage --config --exp --data --set --ngpu ...
  esac
done

case "$encoder" in
  vgg16|resnet50|small_cnn) ;;
  *) echo "run.sh: --encoder '$encoder'; accepted: vgg16 (the paper's), resnet50, small_cnn" >&2; exit 2 ;;
esac

cd "$(dirname "$0")"
python=${PYTHON:-python3}
die() { echo "run.sh: $*" >&2; exit 1; }
[ -z "$init_from" ] || [ -f "$init_from" ] \
  || die "--init-from $init_from not found; give a phase1-end.pt of a dense run of this config"
dataset=$data/corpus/dataset_flickr8k.json
features=$data/feats/$encoder.pt
# Paths set verbatim (--set-str): any character in $data is safe.
train_args+=(--set-str "task_args.dataset=$dataset" --set-str "task_args.features=$features")

if in_stages 0 && ! { [ -f "$data/corpus/.done" ] && [ -f "$dataset" ]; }; then
  [ -n "$images_archive" ] || images_archive=${archives:+$archives/Flickr8k_Dataset.zip}
  if [ -z "$captions" ] && [ -n "$archives" ]; then
    captions=$archives/caption_datasets.zip
    [ -f "$captions" ] || [ ! -f "$archives/dataset_flickr8k.json" ] || captions=$archives/dataset_flickr8k.json
  fi
  [ -n "$images_archive" ] && [ -n "$captions" ] \
    || die "stage 0 needs --archives DIR (holding Flickr8k_Dataset.zip and caption_datasets.zip) or --images-archive and --captions"
  [ -f "$images_archive" ] || die "$images_archive not found; download Flickr8k_Dataset.zip (the Flickr8k image archive) there"
  [ -f "$captions" ] || die "$captions not found; download Karpathy's caption_datasets.zip (it holds dataset_flickr8k.json) there"
fi

# Check the encoder before the long stages, so a missing torchvision or missing weights fail in seconds.
if in_stages 1 && [ ! -f "$data/feats/$encoder.done" ]; then
  if [ "$encoder" = small_cnn ]; then
    [ -n "$encoder_checkpoint" ] && [ -f "$encoder_checkpoint" ] \
      || die "--encoder small_cnn needs --encoder-checkpoint FILE (made by python -m data_prep.images.small_cnn_encoder); it was trained on synthetic shapes, so use it for smoke tests only"
  else
    "$python" - "$encoder" "$encoder_checkpoint" <<'PY' || exit 1
import importlib.util
import sys

from data_prep.images.torchvision_encoders import WEIGHT_FILES, _weights_path

name, weights = sys.argv[1], sys.argv[2] or None
if importlib.util.find_spec("torchvision") is None:
    sys.exit(f"run.sh: the {name} encoder needs torchvision: pip install -e '.[vision]' "
             "(or, for a smoke test only, --encoder small_cnn --encoder-checkpoint FILE)")
path = _weights_path(name, weights)
if not path.is_file():
    sys.exit(f"run.sh: {name} weights not found at {path}; download https://download.pytorch.org/models/"
             f"{WEIGHT_FILES[name]} there, or pass --encoder-checkpoint FILE")
PY
  fi
fi

if in_stages 0; then
  marker=$data/corpus/.done
  if [ -f "$marker" ] && [ -f "$dataset" ]; then
    log 0 "already prepared ($marker; delete it to prepare again)"
  else
    log 0 "verify and extract $images_archive and $captions into $data/corpus"
    [ -n "$images_sha256" ] || echo "note: no --images-sha256 given; compare the sha256 printed below with the published one"
    [ -n "$captions_sha256" ] || echo "note: no --captions-sha256 given; $(basename "$captions") is not checked against a known checksum"
    rm -f "$marker"
    "$python" -m data_prep.corpora.flickr --corpus flickr8k --images-archive "$images_archive" --captions "$captions" \
      --out "$data/corpus" ${images_sha256:+--images-sha256 "$images_sha256"} \
      ${captions_sha256:+--captions-sha256 "$captions_sha256"}
    touch "$marker"
  fi
fi

if in_stages 1; then
  marker=$data/feats/$encoder.done
  if [ -f "$marker" ] && [ -f "$features" ]; then
    log 1 "features already cached ($features; delete $marker to extract again)"
  else
    log 1 "$encoder features of every image in $dataset -> $features"
    rm -f "$marker"
    "$python" -m data_prep.images.image_features --dataset "$dataset" --encoder "$encoder" \
      ${encoder_checkpoint:+--encoder-checkpoint "$encoder_checkpoint"} --out "$features" --threads "$threads"
    touch "$marker"
  fi
fi

dsd_training_stages 2  # dense, later DSD phases, LLR baseline: stages 2-4

if in_stages 5; then
  log 5 "results table (BLEU-1..4 per phase, like Table 5) and example captions per phase"
  dsd_seq report "$exp" --paper table5  # results.md/json, report.md (with the paper's Table 5) and figures/
  caption_examples
  export_models 5 caption
fi
