# The stages of the two synthetic speech recipes (egs/synth_speech, egs/synth_speech_open), which differ
# only in the corpus module, its sizes, its extra test split and the default config. Sourced by their
# run.sh, after they set
#   config num_train num_dev num_test corpus_module corpus_tag vocabulary (the last two may be empty),
#   and, for a corpus with a far test split (test_far), num_test_far and speakers (else leave them unset),
# with the recipe's arguments:   . "$(dirname "$0")/../common/synth_speech_recipe.sh" "$@"
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/stages.sh"  # absolute, log, done_with, the training stages

stage=0
stop_stage=5
exp=exp
data=data
seed=0
jobs=2
seeds=5
units=char          # output units; bpe|unigram train SentencePiece on the training transcripts in stage 1
vocab_size=100      # SentencePiece pieces (with --units bpe|unigram)
speed_perturb=""    # e.g. "0.9,1.1": speed-perturbed copies of the training utterances (stage 1)
# vocabulary: distinct words, for corpora that take --vocabulary (empty: the corpus has none);
# corpus_tag: first word of the corpus stage's .done marker, telling corpora apart. Both set by the recipe.
train_args=()  # extra `dsd-seq train` arguments, e.g. --set train.seed=1
launch_args=()  # --ngpu/--nnodes/... for the training stages

while [ $# -gt 0 ]; do
  case "$1" in
    --num-train) num_train="$2"; shift 2 ;;
    --num-dev) num_dev="$2"; shift 2 ;;
    --num-test) num_test="$2"; shift 2 ;;
    --num-test-far|--speakers)
      [ -n "${num_test_far:-}" ] || { echo "run.sh: this corpus takes no $1 (see --help)" >&2; exit 2; }
      if [ "$1" = --speakers ]; then speakers="$2"; else num_test_far="$2"; fi; shift 2 ;;
    --vocabulary)
      [ -n "$vocabulary" ] || { echo "run.sh: this corpus takes no --vocabulary (see --help)" >&2; exit 2; }
      vocabulary="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --units) units="$2"; shift 2 ;;
    --vocab-size) vocab_size="$2"; shift 2 ;;
    --speed-perturb) speed_perturb="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;  # the header comment
    *) common_option "$1" "${2-}"; shift 2 ;;  # --stage --stop-stage --config --exp --data --set --ngpu ...
  esac
done

cd "$(dirname "$0")"
python=${PYTHON:-python3}
# The feature stores (lossless numpy: the default storage), set verbatim (--set-str): any character in
# $data is safe.
splits=(train dev test ${num_test_far:+test_far})
for split in "${splits[@]}"; do train_args+=(--set-str "task_args.data.$split=$(feature_path "$split")"); done
data_marker="$data/feats/.done"  # training runs resume only on these features
lang="$data/lang_${units}${vocab_size}"
units_args "$lang"

corpus_args=(--num-train "$num_train" --num-dev "$num_dev" --num-test "$num_test")
[ -z "$vocabulary" ] || corpus_args+=(--vocabulary "$vocabulary")
[ -z "${num_test_far:-}" ] || corpus_args+=(--num-test-far "$num_test_far" --speakers "$speakers")
corpus_params="${corpus_tag:+$corpus_tag }num_train=$num_train num_dev=$num_dev num_test=$num_test"
corpus_params+="${num_test_far:+ num_test_far=$num_test_far speakers=$speakers}"
corpus_params+="${vocabulary:+ vocabulary=$vocabulary} seed=$seed"
if in_stages 0; then
  if done_with "$data/corpus/.done" "$corpus_params"; then
    log 0 "corpus done already ($data/corpus/.done)"
  else
    log 0 "synthesise the corpus into $data/corpus"
    rm -rf "$data/corpus"  # an interrupted or differently sized earlier attempt
    "$python" -m "$corpus_module" --out "$data/corpus" "${corpus_args[@]}" --seed "$seed" --jobs "$jobs"
    echo "$corpus_params" > "$data/corpus/.done"
  fi
fi

if in_stages 1; then
  speech_features 1 "$data/corpus/.done" "${splits[@]/#/$data/corpus/data/}"
  subword_units 1 "$lang" "$data/feats"
fi

dsd_training_stages 2  # dense, later DSD phases, LLR baseline: stages 2-4

if in_stages 5; then
  log 5 "results table, report and figures"
  dsd_seq report "$exp"
  # the model to use: three test utterances (voices never heard in training) as demo WAVs
  mapfile -t demo < <(head -n 3 "$data/corpus/data/test/wav.scp" | cut -d' ' -f2-)
  export_models 5 transcribe "${demo[@]}"
  if [ -n "${num_test_far:-}" ]; then
    # Greedy decoding is the results table's; here the final DSD and LLR models with a word bigram LM of
    # the training transcripts (torchaudio's flashlight decoder, beam 8, LM weight 0.5)
    log 5 "LM decoding of test and test_far -> $exp/{dsd,llr}/lm/decode_<split>/ (wer.txt)"
    "$python" -m data_prep.text.ngram_lm --text "$data/corpus/data/train/text" --out "$data/lang_lm/bigram.arpa"
    for run in dsd llr; do
      "$python" "$local_tools/decode_speech.py" --config "$config" --checkpoint "$(final_checkpoint "$run")" \
        --split test --split test_far --out-dir "$exp/$run/lm" "${train_args[@]}" \
        --set-str task_args.decoding.mode=lm --set-str "task_args.decoding.lm=$(absolute "$data/lang_lm/bigram.arpa")"
    done
  fi
fi

if in_stages 6; then
  log 6 "DSD, LLR and the final-LR control over $seeds seeds (resumable) -> $exp/compare"
  dsd_seq compare --config "$config" --seeds "$seeds" --out "$exp/compare" "${train_args[@]}"
fi
