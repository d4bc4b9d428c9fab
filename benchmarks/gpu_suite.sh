#!/usr/bin/env bash
# GPU verification in one command, for one H100/H200 (about 3-5 minutes; well under 8):
#   1. tests on CUDA: tests/test_gpu.py (cuDNN flat weights kept, pruned weights zero under AMP), and the
#      DDP/AMP tests (tests/test_distributed.py runs 2 gloo ranks on the CPU; NCCL needs 2 GPUs)
#   2. mask overhead, masked step / dense step and nn.utils.prune / dense: DeepSpeech 2 3x512 and 5x1024,
#      NeuralTalk 256 and 512, fp32 (and DS2 3x512 in bf16)
#   3. thresholds and masks for the 67M-parameter DeepSpeech 2, on the GPU and on the CPU
#   4. training throughput of the 67M DeepSpeech 2 in fp32, bf16 and fp16, with the loader's share
#   5. the transducer loss on CUDA: warp-rnnt (extra [gpu], if installed) against torchaudio's rnnt_loss
#   6. our DeepSpeech 2 against the peer reference (deepspeech.pytorch's architecture) in fp32, bf16 and
#      fp16, both conv orientations (which one cuDNN prefers), and frames/s of the 67M model per batch size
# Results: markdown tables in $1/gpu.md (default benchmarks/results/), test output in $1/tests.log.
# Needs torch only for the benchmarks; the tests need pytest (and PyYAML, tqdm, NumPy for the trainer).
# Usage (from the repository root): bash benchmarks/gpu_suite.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:-benchmarks/results}" && cd "${1:-benchmarks/results}" && pwd)
md="$out/gpu.md"
python=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
failed=0
step() { echo "== $*" >&2; }

{
  echo "# GPU results, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)."
  echo "Command: \`bash benchmarks/gpu_suite.sh\`. Ratios are medians measured in one run, variants interleaved."
  echo
} > "$md"

step "1. tests on CUDA"
if "$python" -c "import pytest" 2>/dev/null; then
  tests=(tests/test_gpu.py tests/test_gpu_step_syncs.py) note=""
  if "$python" -c "import yaml, tqdm, numpy" 2>/dev/null; then
    tests+=(tests/test_precision.py tests/test_distributed.py)
  else
    note=" (PyYAML/tqdm/NumPy missing: the trainer tests test_precision.py, test_distributed.py not run)"
  fi
  "$python" -m pytest -q -rs -p no:cacheprovider "${tests[@]}" 2>&1 | tee "$out/tests.log" | tail -15
  [ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
  echo "Tests (${tests[*]}): $(tail -1 "$out/tests.log")$note" >> "$md"
  echo >> "$md"
else
  echo "pytest missing: no tests run" | tee "$out/tests.log"
  echo "Tests: not run (no pytest on this machine)" >> "$md"
fi

cd benchmarks
run() { "$python" "$@" --markdown "$md" || failed=1; }
step "2. mask overhead"
run mask_overhead.py --device cuda --model ds2 --hidden 512 --layers 3 --batch 32 --frames 400 --steps 100
run mask_overhead.py --device cuda --model ds2 --hidden 512 --layers 3 --batch 32 --frames 400 --steps 30 --precision bf16
run mask_overhead.py --device cuda --model ds2 --hidden 1024 --layers 5 --batch 32 --frames 400 --steps 60
run mask_overhead.py --device cuda --model neuraltalk --hidden 256 --batch 100 --frames 16 --steps 30
run mask_overhead.py --device cuda --model neuraltalk --hidden 512 --batch 100 --frames 16 --steps 30
step "3. thresholds (67M DeepSpeech 2)"
run thresholds.py --device cuda
run thresholds.py --device cpu --threads 4
step "4. throughput (67M DeepSpeech 2)"
run throughput.py --device cuda --precision fp32,bf16,fp16 --batch 32 --steps 20
step "5. transducer loss: warp-rnnt (if installed) against torchaudio's rnnt_loss"
run decoding_and_transducer_loss.py --device cuda
step "6. peer reference, conv orientation, batch size sweep"
run peer_reference.py --device cuda --precision fp32,bf16,fp16 --batch 32 --frames 400 --rounds 20 \
  --warmup 3 --batch-sweep 16,32,64,128
echo "results: $md (tests: $out/tests.log)"
exit $failed
