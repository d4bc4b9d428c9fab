"""TorchScript and ONNX exports (``dsd-seq export --format``) of the paper-size models: the largest
|exported - eager| difference on the export's own check inputs, file size and export time.

Models at the paper's sizes with random weights (DeepSpeech 1 of Table 6, the 67M DeepSpeech 2 of
Table 8, the DeepSpeech 2 of the workloads, NeuralTalk of Table 5), 161 or 40 feature bins, graphs
exactly as ``dsd-seq export`` builds them (``deployment_graphs()`` of the recogniser / captioner).
Run: ``python benchmarks/deployment_formats.py [--threads 2] [--skip-table8]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import workloads as w  # noqa: E402
from data_prep.features.extraction import FeatureConfig  # noqa: E402
from data_prep.text.vocab import CharVocab  # noqa: E402
from dsd_seq.export.deployment import DeploymentError, export_graph  # noqa: E402
from models.captioning.image_captioner import ImageCaptioner  # noqa: E402
from models.speech.ctc_decoding import DecodingConfig  # noqa: E402
from models.speech.deepspeech1 import DeepSpeech1  # noqa: E402
from models.speech.deepspeech2_table8 import DeepSpeech2Table8  # noqa: E402
from models.speech.speech_recognizer import SpeechRecognizer  # noqa: E402


def recognizer(model, bins: int) -> SpeechRecognizer:
    return SpeechRecognizer(model, FeatureConfig(num_bins=bins), CharVocab.default(), DecodingConfig(), [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-table8", action="store_true", help="leave out the 67M model (slowest)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    formats = ["torchscript"] + (["onnx"] if importlib.util.find_spec("onnxruntime") else [])
    models = {
        "DeepSpeech 1 (Table 6)": lambda: recognizer(DeepSpeech1(), 161),
        "DeepSpeech 2 (workloads)": lambda: recognizer(
            w.deepspeech2(w.PAPER_DS2["rnn_hidden"], w.PAPER_DS2["rnn_layers"]), 40
        ),
        "NeuralTalk (Table 5)": lambda: ImageCaptioner(w.neuraltalk(w.PAPER_NEURALTALK["hidden"]), {}, None),
    }
    if not args.skip_table8:
        models["DeepSpeech 2 67M (Table 8)"] = lambda: recognizer(DeepSpeech2Table8(), 161)
    for label, build in models.items():
        graphs = build().deployment_graphs()
        for graph in graphs:
            for fmt in formats:
                started = time.perf_counter()
                try:
                    data, entry = export_graph(graph, fmt)
                except DeploymentError as err:
                    print(f"{label} {graph.name} {fmt}: not exported: {err}")
                    continue
                took = time.perf_counter() - started
                print(f"{label} {graph.name} {fmt}: max |difference| {entry['max_abs_difference']:.2e}, "
                      f"{len(data) / 1e6:.1f} MB, export + check {took:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
