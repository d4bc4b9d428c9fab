# Shared pieces of the recipes, sourced by every egs/<corpus>/run.sh before it parses its options:
#   . "$(dirname "$0")/../common/stages.sh"
# (Kaldi's recipes share utils/ and steps/ the same way.) The functions read the recipe's variables when
# they are called: python, config, exp, train_args and launch_args (arrays), data_marker (the .done
# file of the features a training run depends on; empty where a recipe has none) and init_from (a dense
# phase1-end.pt replacing the dense stage, where a recipe takes --init-from; empty otherwise).
# shellcheck shell=bash

# The recipes' Python tools (decoding, caption examples), run as scripts: egs/common/local/*.py.
local_tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/local"

# absolute PATH: paths given on the command line are relative to where run.sh was called.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

dsd_seq() { "$python" -m dsd_seq.cli "$@"; }
log() { echo "[$(date +%H:%M:%S)] stage $1: $2"; }

# done_with MARKER PARAMS: true if the stage finished with these parameters (MARKER written on success).
done_with() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# common_option OPTION VALUE: the options every recipe takes (--stage, --stop-stage, --config, --exp,
# --data, --set and the torchrun ones below); anything else stops the recipe. Used as the last case of
# each recipe's option loop:  *) common_option "$1" "${2-}"; shift 2 ;;
common_option() {
  case "$1" in
    --stage|--stop-stage|--config|--exp|--data|--set|--ngpu|--nnodes|--node-rank|--master-addr|--master-port)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "run.sh: $1 needs a value (see --help)" >&2; exit 2; } ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  case "$1" in
    --stage) stage="$2" ;;
    --stop-stage) stop_stage="$2" ;;
    --config) config=$(absolute "$2") ;;
    --exp) exp=$(absolute "$2") ;;
    --data) data=$(absolute "$2") ;;
    --set) train_args+=(--set "$2") ;;
    *) launch_option "$1" "$2" ;;
  esac
}

# launch_option OPTION VALUE: the recipes' --ngpu N (one process per GPU), --nnodes M, --node-rank R,
# --master-addr HOST and --master-port P, passed to `dsd-seq train`, which relaunches through torchrun.
launch_option() {
  case "$1" in
    --ngpu) launch_args+=(--nproc-per-node "$2") ;;
    *) launch_args+=("$1" "$2") ;;
  esac
}

# same_data RUN: a training run resumes only on the features it started with (recorded in RUN/.data).
same_data() {
  [ -n "${data_marker:-}" ] || return 0
  local marker="$exp/$1/.data" want
  want=$(cat "$data_marker")
  if [ -f "$marker" ] && [ "$(cat "$marker")" != "$want" ]; then
    echo "run.sh: $exp/$1 was trained on other data ($(cat "$marker")); use a new --exp or delete it" >&2
    exit 1
  fi
  mkdir -p "$exp/$1" && echo "$want" > "$marker"
}

# in_stages N: true if stage N is between --stage and --stop-stage.
in_stages() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

# final_checkpoint RUN: the last phase's end checkpoint of $exp/RUN (the model a recipe decodes).
final_checkpoint() { ls "$exp/$1/checkpoints"/phase*-end.pt | sort -V | tail -n 1; }

# feature_path SPLIT: where speech_features puts SPLIT's features: the store $data/feats/SPLIT/ (read on
# demand, memory per process independent of the corpus).
feature_path() { echo "$data/feats/$1"; }

# speech_features STAGE SOURCE_MARKER TRAIN_DIR DEV_DIR TEST_DIR [MORE_DIR ...]: fbank features of Kaldi data
# dirs into the stores $(feature_path {train,dev,test}) (a further test split, e.g. test_far, into the store
# named after its directory) ($num_bins bins, default 40; $speed_perturb copies of the
# training set; written by Lhotse's $feature_storage writer: numpy, lossless, by default; the large corpora
# set lilcom), redone only when the source (its .done marker) or these parameters change.
speech_features() {
  local stage_no=$1 source=$2 bins=${num_bins:-40} perturb=${speed_perturb:-} storage=${feature_storage:-numpy}
  local params store_option=(--storage "$storage")
  # lilcom stores were the only stores before, marked "store": their markers stay valid
  local marker=" storage=$storage"; [ "$storage" != lilcom ] || marker=" store"
  params="$(cat "$source" 2>/dev/null || true) features=fbank$bins${perturb:+ speed_perturb=$perturb}$marker"
  if done_with "$data/feats/.done" "$params"; then
    log "$stage_no" "features done already ($data/feats/.done)"
    return 0
  fi
  log "$stage_no" "fbank features ($bins bins) into $data/feats ($storage stores)"
  rm -rf "$data/feats"
  "$python" -m data_prep.features --data-dir "$3" --out "$(feature_path train)" --num-bins "$bins" \
    --speed-perturb "$perturb" "${store_option[@]}"
  "$python" -m data_prep.features --data-dir "$4" --out "$(feature_path dev)" --num-bins "$bins" \
    "${store_option[@]}"
  "$python" -m data_prep.features --data-dir "$5" --out "$(feature_path test)" --num-bins "$bins" \
    "${store_option[@]}"
  local more
  for more in "${@:6}"; do
    "$python" -m data_prep.features --data-dir "$more" --out "$(feature_path "$(basename "$more")")" \
      --num-bins "$bins" "${store_option[@]}"
  done
  echo "$params" > "$data/feats/.done"
}

# dsd_training_stages FIRST: stage FIRST trains the dense phase, FIRST+1 the later DSD phases and FIRST+2
# the LLR baseline, each when it lies between --stage and --stop-stage.
dsd_training_stages() {
  if in_stages "$1"; then train_dense "$1"; fi
  if in_stages $(($1 + 1)); then train_dsd_phases $(($1 + 1)); fi
  if in_stages $(($1 + 2)); then train_llr $(($1 + 2)); fi
}

# caption_examples: example captions of every DSD phase and of the LLR baseline's final model, side by
# side, into $exp/examples.md (the captioning recipes' report stage).
caption_examples() {
  local phases labels label phase=1 checkpoints=()
  phases=$(dsd_seq schedule --config "$config" --count "${train_args[@]}")
  labels=$("$python" -c "import json,sys; print(' '.join(r['label'].replace(' ', '_') for r in json.load(open(sys.argv[1]))['phases']))" "$exp/dsd/results.json")
  for label in $labels; do
    local file=$exp/dsd/checkpoints/phase$phase-end.pt
    [ "$phase" -gt 1 ] || [ -z "${init_from:-}" ] || file=$init_from  # the dense model given
    checkpoints+=(--checkpoint "$label=$file"); phase=$((phase + 1))
  done
  checkpoints+=(--checkpoint "LLR=$exp/llr/checkpoints/phase$phases-end.pt")
  "$python" "$local_tools/caption_examples.py" --config "$config" "${checkpoints[@]}" --out "$exp/examples.md" "${train_args[@]}"
}

# train_dense STAGE: the schedule's first (dense) phase into $exp/dsd. The training stages run the plan
# `dsd-seq compare` follows for each seed (dsd_seq.experiments.compare.plan_seed), for the config's seed.
# With --init-from the dense model is that file: nothing is trained, the later stages start from it.
train_dense() {
  if [ -n "${init_from:-}" ]; then
    log "$1" "dense training skipped: the dense model is --init-from $init_from"
    return 0
  fi
  log "$1" "dense training (phase 1) -> $exp/dsd"
  same_data dsd
  dsd_seq plan-run dense "${launch_args[@]}" --config "$config" --exp "$exp" "${train_args[@]}"
}

# train_dsd_phases STAGE: every later phase (sparse, re-dense, ...) into $exp/dsd.
train_dsd_phases() {
  log "$1" "DSD's later phases (sparse, re-dense, ...) -> $exp/dsd"
  same_data dsd
  local init=(); [ -z "${init_from:-}" ] || init=(--init-from "$init_from")
  dsd_seq plan-run dsd "${launch_args[@]}" "${init[@]}" --config "$config" --exp "$exp" "${train_args[@]}"
}

# train_llr STAGE: the LLR baseline (same epochs and learning rates, no pruning) from the dense phase.
train_llr() {
  log "$1" "LLR baseline (same epochs and learning rates, no pruning) from the dense phase -> $exp/llr"
  same_data llr
  local init=(); [ -z "${init_from:-}" ] || init=(--init-from "$init_from")
  dsd_seq plan-run llr "${launch_args[@]}" "${init[@]}" --config "$config" --exp "$exp" "${train_args[@]}"
}

# subword_units STAGE LANG FEATS_DIR: SentencePiece units ($units, $vocab_size) from the training
# transcripts of $(feature_path train) into LANG/units.model; nothing for characters.
subword_units() {
  [ "$units" != char ] || return 0
  local lang=$2 feats=$3
  if done_with "$lang/.done" "$(cat "$feats/.done")"; then
    log "$1" "$units units done already ($lang)"
  else
    log "$1" "SentencePiece $units units ($vocab_size) from the training transcripts into $lang"
    rm -rf "$lang" && mkdir -p "$lang"
    "$python" -m data_prep.features.learn_units --store "$(feature_path train)" --type "$units" \
      --vocab-size "$vocab_size" --out "$lang/units.model"
    cat "$feats/.done" > "$lang/.done"
  fi
}

# units_args LANG: the training option selecting the units (checked here, before any stage runs).
units_args() {
  case "$units" in
    char) ;;
    bpe|unigram) train_args+=(--set-str "task_args.units=$1/units.model") ;;
    *) echo "run.sh: --units '$units': accepted char, bpe, unigram" >&2; exit 2 ;;
  esac
}

# export_models STAGE transcribe|caption EXAMPLE...: the final DSD model into $exp/model/dsd and the last
# sparse phase's model, compressed (nonzeros + bitmask), into $exp/model/sparse; then prints the command
# that runs it on EXAMPLE files (copied to $exp/model/demo/).
export_models() {
  local stage_no=$1 verb=$2 sparse
  shift 2
  log "$stage_no" "export the final DSD model -> $exp/model/dsd, the sparse one (compressed) -> $exp/model/sparse"
  dsd_seq export "$exp/dsd" --final --out "$exp/model/dsd"
  sparse=$("$python" -c "import json,sys; print(max((r['phase'] + 1 for r in json.load(open(sys.argv[1]))['phases'] if r['kind'] == 'sparse'), default=''))" "$exp/dsd/results.json")
  [ -z "$sparse" ] || dsd_seq export "$exp/dsd" --phase "$sparse" --compressed --out "$exp/model/sparse"
  local target="YOUR_FILE"
  if [ $# -gt 0 ]; then mkdir -p "$exp/model/demo" && cp "$@" "$exp/model/demo/" && target=$(absolute "$exp/model/demo"); fi
  echo "Try the trained model on your own files${1:+ (or these demo ones)}:"
  printf '  dsd-seq %s %q %q\n' "$verb" "$(absolute "$exp/model/dsd")" "$target"
}
