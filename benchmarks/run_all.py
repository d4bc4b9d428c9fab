"""Run every benchmark in sequence: mask overhead, then the speech and captioning recipes' wall time.

Run: python benchmarks/run_all.py
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script, *args in (
        ("mask_overhead.py",),
        ("decoding_and_transducer_loss.py",),
        ("recipe_walltime.py", "--recipe", "synth_speech"),
        ("recipe_walltime.py", "--recipe", "synth_captions"),
    ):
        print(f"== {script} {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *args], check=True)
