"""Wall time of a built-in recipe, stage by stage, and the main metric of every phase it reaches.

The budget (issues 2 and 3) is 10 minutes on the 2-core machine for each whole default recipe.
Run: python benchmarks/recipe_walltime.py [--recipe synth_speech|synth_captions] [--workdir DIR]
     [--markdown RESULTS.md] [-- extra run.sh arguments]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

EGS = Path(__file__).resolve().parents[1] / "egs"
STAGES = {
    "synth_speech": ["corpus", "features", "dense", "sparse/re-dense", "LLR baseline", "report"],
    "synth_captions": [
        "corpus",
        "encoder+features",
        "dense",
        "sparse/re-dense",
        "LLR baseline",
        "report+examples",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=sorted(STAGES), default="synth_speech")
    parser.add_argument("--workdir", type=Path, help="where data/ and exp/ go (default: a temporary folder)")
    parser.add_argument("--markdown", help="append the stage times as a markdown table to this file")
    parser.add_argument("extra", nargs="*", help="arguments passed to run.sh, after --")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"dsd-seq-{args.recipe}-"))
    common = ["--data", str(workdir / "data"), "--exp", str(workdir / "exp"), *args.extra]
    seconds = []
    for stage, name in enumerate(STAGES[args.recipe]):
        start = time.perf_counter()
        command = [
            "bash",
            str(EGS / args.recipe / "run.sh"),
            "--stage",
            str(stage),
            "--stop-stage",
            str(stage),
        ]
        subprocess.run([*command, *common], check=True, stdout=sys.stderr)
        seconds.append(time.perf_counter() - start)
        print(f"stage {stage} {name:18s} {seconds[-1]:7.1f} s", flush=True)
    print(f"total {sum(seconds):7.1f} s ({sum(seconds) / 60:.1f} min) in {workdir}")
    table = json.loads((workdir / "exp" / "results.json").read_text())
    print((workdir / "exp" / "results.md").read_text())
    scores = []
    for row in table["rows"]:
        value = row["metrics"][table["main_split"]][table["metric"]]
        print(f"{row['run']:4s} {row['label']:12s} {table['main_split']} {table['metric']} {value:.2f}")
        scores.append(f"{row['run']} {row['label']} {value:.2f}")
    rows = [
        [f"{stage} {name}", f"{s:.1f}"]
        for stage, (name, s) in enumerate(zip(STAGES[args.recipe], seconds, strict=True))
    ]
    rows.append(["**total**", f"**{sum(seconds):.0f} ({sum(seconds) / 60:.1f} min)**"])
    title = f"Recipe {args.recipe} end to end ({table['main_split']} {table['metric']}: {'; '.join(scores)})"
    if args.markdown:
        from workloads import append_markdown, machine

        append_markdown(args.markdown, f"{title}: {machine(torch.device('cpu'))}", ["stage", "seconds"], rows)


if __name__ == "__main__":
    main()
