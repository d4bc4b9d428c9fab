"""Deployment formats: a model's inference graph as TorchScript (``<graph>.ts``) or ONNX (``<graph>.onnx``).

Why: a package's weights need dsd-seq and its model code to run; a TorchScript file runs from C++
(libtorch) or any Python with torch alone, an ONNX file from ONNX Runtime without torch. What goes into
such a file is the tensor part of inference only (for speech the acoustic model, features in, log-probs
out; for captions one decoder step); reading audio, features and decoding stay in Python.

The model family names its graphs (:class:`DeploymentGraph`: a module, an example input to trace,
a second input of another size to check the result on, names and dynamic axes); this module knows no
model. Both formats start from ``torch.jit.trace``: loops that must not be unrolled for the traced
length are written as ``torch.jit.script_if_tracing`` functions by the model (see
``models.speech.shared_input_birnn``). ONNX uses torch's TorchScript-based exporter (``dynamo=False``): the
``torch.export`` one refuses these models (data-dependent length checks, Python loops over frames).

Every exported graph is run on the check input and compared with the eager model; a graph whose
outputs differ by more than ``atol + rtol * |eager|`` (:data:`ATOL`, :data:`RTOL`) is refused rather
than shipped, and the largest difference measured is recorded in the manifest.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

FORMATS = ("torchscript", "onnx")
SUFFIX = {"torchscript": ".ts", "onnx": ".onnx"}
#: the agreement an exported graph must show with the eager model (float32 on CPU). Measured
#: (benchmarks/deployment_formats.py, tests/test_export_deployment.py): 0 for TorchScript (the same
#: kernels), at most 9.5e-7 for ONNX Runtime, so the bound leaves room for other CPUs' kernels
ATOL = 1e-4
RTOL = 1e-4
ONNX_OPSET = 17


class DeploymentError(ValueError):
    """A graph that cannot be exported in a format, or whose export does not reproduce the model."""


@dataclass
class DeploymentGraph:
    """One inference graph of a model, as its family describes it for export."""

    name: str  # the file stem: <name>.ts, <name>.onnx
    module: nn.Module  # in eval mode; tensors in, a tuple of tensors out
    example: tuple[torch.Tensor, ...]  # traced
    check: tuple[torch.Tensor, ...]  # another batch size / length: the export must generalise to it
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    #: formats known not to export, with the reason a person reads (e.g. PackedSequence for ONNX)
    unsupported: dict[str, str] = field(default_factory=dict)
    description: str = ""


def export_graph(graph: DeploymentGraph, fmt: str) -> tuple[bytes, dict]:
    """The file's bytes and its manifest entry (inputs, outputs, the measured difference)."""
    if fmt not in FORMATS:
        raise DeploymentError(f"unknown deployment format {fmt!r}; accepted: {', '.join(FORMATS)}")
    if fmt in graph.unsupported:
        raise DeploymentError(f"{graph.name}: does not export to {fmt}: {graph.unsupported[fmt]}")
    graph.module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values turned into constants
        traced = torch.jit.trace(graph.module, graph.example, check_trace=False)
        if fmt == "torchscript":
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
            data = buffer.getvalue()
            run = _torchscript_runner(data)
        else:
            data = _onnx_bytes(graph, traced)
            run = _onnx_runner(data)
    worst = max(_max_difference(graph, run, inputs) for inputs in (graph.example, graph.check))
    entry = {
        "file": graph.name + SUFFIX[fmt],
        "description": graph.description,
        "inputs": graph.input_names,
        "outputs": graph.output_names,
        "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in graph.dynamic_axes.items()},
        "max_abs_difference": worst,
        "tolerance": {"atol": ATOL, "rtol": RTOL},
        "torch_version": torch.__version__,
    }
    if fmt == "onnx":
        entry["opset"] = ONNX_OPSET
    return data, entry


def _onnx_bytes(graph: DeploymentGraph, traced: torch.jit.ScriptModule) -> bytes:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise DeploymentError(
            "ONNX export needs the onnx package (and onnxruntime to check the result): "
            "pip install 'dsd-seq[onnx]'"
        ) from None
    buffer = io.BytesIO()
    try:
        torch.onnx.export(
            traced,
            graph.example,
            buffer,
            input_names=graph.input_names,
            output_names=graph.output_names,
            dynamic_axes=graph.dynamic_axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    except Exception as err:  # torch raises many types here; the person needs the first line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeploymentError(f"{graph.name}: does not export to onnx: {first}") from None
    return buffer.getvalue()


def _torchscript_runner(data: bytes) -> Callable[..., Sequence[torch.Tensor]]:
    loaded = torch.jit.load(io.BytesIO(data))
    return lambda *inputs: loaded(*inputs)


def _onnx_runner(data: bytes) -> Callable[..., Sequence[torch.Tensor]]:
    try:
        import onnxruntime
    except ImportError:
        raise DeploymentError(
            "checking an ONNX export needs onnxruntime: pip install 'dsd-seq[onnx]'"
        ) from None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*inputs: torch.Tensor) -> list[torch.Tensor]:
        feeds = {n: t.numpy() for n, t in zip(names, inputs, strict=False)}  # unused inputs are dropped
        return [torch.from_numpy(o) for o in session.run(None, feeds)]

    return run


def _max_difference(graph: DeploymentGraph, run, inputs: tuple[torch.Tensor, ...]) -> float:
    with torch.no_grad():
        expected = graph.module(*inputs)
        got = run(*inputs)
    worst = 0.0
    for name, e, g in zip(graph.output_names, expected, got, strict=True):
        if tuple(e.shape) != tuple(g.shape):
            raise DeploymentError(
                f"{graph.name}: the exported graph gives {name} of shape {tuple(g.shape)} where the model gives "
                f"{tuple(e.shape)} (inputs {[tuple(t.shape) for t in inputs]}): it does not generalise from "
                "the traced input; this model cannot be exported in this format"
            )
        difference = (e.double() - g.double()).abs()
        worst = max(worst, float(difference.max()) if difference.numel() else 0.0)
        if not torch.allclose(g.to(e.dtype), e, atol=ATOL, rtol=RTOL):
            raise DeploymentError(
                f"{graph.name}: the exported graph's {name} differs from the model's by up to "
                f"{float(difference.max()):.3g} (tolerance atol={ATOL}, rtol={RTOL}); not written"
            )
    return worst
