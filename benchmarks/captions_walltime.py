"""Wall time of the built-in captioning recipe, stage by stage, and the BLEU-4 it reaches per phase.

The budget (issue 3) is 10 minutes on the 2-core machine for the whole default recipe.
Run: python benchmarks/captions_walltime.py [--workdir DIR] [-- extra run.sh arguments]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "synth_captions"
STAGES = ["corpus", "encoder+features", "dense", "sparse/re-dense", "LLR baseline", "report+examples"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where data/ and exp/ go (default: a temporary folder)")
    parser.add_argument("extra", nargs="*", help="arguments passed to run.sh, after --")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dsd-seq-captions-"))
    common = ["--data", str(workdir / "data"), "--exp", str(workdir / "exp"), *args.extra]
    seconds = []
    for stage, name in enumerate(STAGES):
        start = time.perf_counter()
        command = ["bash", str(RECIPE / "run.sh"), "--stage", str(stage), "--stop-stage", str(stage), *common]
        subprocess.run(command, check=True, stdout=sys.stderr)
        seconds.append(time.perf_counter() - start)
        print(f"stage {stage} {name:18s} {seconds[-1]:7.1f} s", flush=True)
    print(f"total {sum(seconds):7.1f} s ({sum(seconds) / 60:.1f} min) in {workdir}")
    table = json.loads((workdir / "exp" / "results.json").read_text())
    print((workdir / "exp" / "results.md").read_text())
    for row in table["rows"]:
        print(f"{row['run']:4s} {row['label']:12s} test BLEU-4 {row['metrics']['test']['bleu4']:.2f}")


if __name__ == "__main__":
    main()
