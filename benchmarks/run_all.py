"""Run the CPU benchmarks in sequence and collect their tables in one markdown file.

Our DeepSpeech 2 against the peer reference (1 and 2 threads, batches without and with padding), mask overhead (DeepSpeech 2 and NeuralTalk), thresholds for the 67M DeepSpeech 2, CPU training throughput
at a small size, then (unless --skip-recipes) both built-in recipes end to end. The GPU figures come from
benchmarks/gpu_suite.sh.
Run: python benchmarks/run_all.py [--out benchmarks/RESULTS-cpu.md] [--skip-recipes]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU_RUNS = (
    ("peer_reference.py", "--threads", "1,2", "--rounds", "16", "--spread", "0"),
    ("peer_reference.py", "--threads", "1,2", "--rounds", "16", "--spread", "0.1"),
    ("mask_overhead.py", "--model", "ds2", "--hidden", "256", "--layers", "3", "--batch", "16", "--frames", "300"),
    ("mask_overhead.py", "--model", "neuraltalk", "--hidden", "256", "--batch", "100", "--frames", "16"),
    ("thresholds.py",),
    ("decoding_and_transducer_loss.py",),
    ("caption_metrics_cost.py",),
    ("throughput.py", "--hidden", "192", "--layers", "3", "--batch", "16", "--min-seconds", "1",
     "--max-seconds", "4", "--steps", "10", "--precision", "fp32,bf16"),
)  # fmt: skip
RECIPE_RUNS = (
    ("recipe_walltime.py", "--recipe", "synth_speech"),
    ("recipe_walltime.py", "--recipe", "synth_captions"),
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS-cpu.md")
    parser.add_argument("--skip-recipes", action="store_true", help="only the short benchmarks")
    args = parser.parse_args()
    args.out.write_text(
        f"# CPU results, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        "Command: `python benchmarks/run_all.py`. Ratios are medians measured in one run, variants interleaved.\n\n"
    )
    for script, *options in CPU_RUNS + (() if args.skip_recipes else RECIPE_RUNS):
        print(f"== {script} {' '.join(options)}", flush=True)
        subprocess.run(
            [sys.executable, str(HERE / script), *options, "--markdown", str(args.out)], check=True
        )
    print(f"results: {args.out}")
