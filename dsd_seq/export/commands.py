"""What ``dsd-seq export``, ``transcribe`` and ``caption`` do (``dsd_seq.cli`` parses their options).

Output lines are ``<name> <text>`` (Kaldi's ``text`` format, so ``dsd-seq score`` reads them) or JSON
lines. A batch of inputs goes on past a bad one: its error goes to stderr naming the file, the count of
failures is printed at the end and the exit status is 1 if any failed.
"""

from __future__ import annotations

import json
import sys
import time

from tqdm.auto import tqdm

from dsd_seq.export.exporter import export_run
from dsd_seq.export.inputs import AUDIO_SUFFIXES, IMAGE_SUFFIXES, collect_inputs
from dsd_seq.export.loading import load_model


def export_command(args) -> int:
    phase = None if args.final else args.phase
    summary = export_run(
        args.run_dir, args.out, phase, args.best_dev, args.compressed, args.fp16, args.format or ()
    )
    print("\n".join(summary.lines()))
    return 0


def _emit(out, name: str, text: str | None, error: str | None, jsonl: bool, extra: dict) -> None:
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        if jsonl:
            out.write(json.dumps({"name": name, "error": error, **extra}) + "\n")
        return
    out.write(
        json.dumps({"name": name, "text": text, **extra}) + "\n"
        if jsonl
        else f"{name} {text}".rstrip() + "\n"
    )
    out.flush()


def _unsafe_names(inputs: list[tuple[str, object]], jsonl: bool) -> dict[str, str]:
    """name -> why it cannot start a ``<name> <text>`` line: a name with whitespace would split into
    name and text wrongly (a newline would even add a line), so ``dsd-seq score`` could not read it back.
    JSON lines carry any name."""
    if jsonl:
        return {}
    return {
        name: f"{path}: its name {name!r} holds whitespace, which a '<name> <text>' line cannot carry; "
        "rename the file, or use --jsonl"
        for name, path in inputs
        if not name or any(c.isspace() for c in name)
    }


def _finish(total: int, failed: int, started: float, audio_seconds: float | None = None) -> int:
    took = time.perf_counter() - started
    speed = f", real-time factor {took / audio_seconds:.3f}" if audio_seconds else ""
    print(f"{total - failed} of {total} done, {failed} failed ({took:.1f} s{speed})", file=sys.stderr)
    return 1 if failed else 0


def transcribe_command(args) -> int:
    recognizer = load_model(args.model, args.device)
    if not hasattr(recognizer, "transcribe_each"):
        raise ValueError(f"{args.model}: not a speech model; use `dsd-seq caption` for captioners")
    recognizer.with_decoding(args.decoding, args.beam_size, args.lm)
    if args.chunk_seconds is not None:
        recognizer.with_chunk_seconds(args.chunk_seconds)
    inputs = collect_inputs(args.inputs, AUDIO_SUFFIXES)
    started, failed, audio = time.perf_counter(), 0, 0.0
    unsafe = _unsafe_names(inputs, args.jsonl)
    for name in unsafe:
        _emit(sys.stdout, name, None, unsafe[name], args.jsonl, {})
    failed, total, inputs = len(unsafe), len(inputs), [(n, p) for n, p in inputs if n not in unsafe]
    results = recognizer.transcribe_each([path for _, path in inputs], args.batch_size)
    bar = tqdm(total=len(inputs), unit="file", disable=len(inputs) < 10 or args.quiet, file=sys.stderr)
    for (name, path), result in zip(inputs, results, strict=True):
        failed += result.error is not None
        audio += result.audio_seconds
        extra = {"file": str(path), "audio_seconds": round(result.audio_seconds, 3),
                 "decode_seconds": round(result.decode_seconds, 4)}  # fmt: skip
        _emit(sys.stdout, name, result.text, result.error, args.jsonl, extra)
        bar.update()
    bar.close()
    return _finish(total, failed, started, audio)


def caption_command(args) -> int:
    captioner = load_model(args.model, args.device)
    if not hasattr(captioner, "caption_each"):
        raise ValueError(f"{args.model}: not a captioning model; use `dsd-seq transcribe` for speech models")
    if args.encoder_weights:
        captioner.encoder(args.encoder_weights)
    inputs = collect_inputs(args.inputs, IMAGE_SUFFIXES, keep_suffix=True)
    started = time.perf_counter()
    unsafe = _unsafe_names(inputs, args.jsonl)
    for name in unsafe:
        _emit(sys.stdout, name, None, unsafe[name], args.jsonl, {})
    failed, total, inputs = len(unsafe), len(inputs), [(n, p) for n, p in inputs if n not in unsafe]
    results = captioner.caption_each([path for _, path in inputs], args.beam)
    for (name, path), result in zip(inputs, results, strict=True):
        failed += result.error is not None
        _emit(sys.stdout, name, result.text, result.error, args.jsonl, {"file": str(path)})
    return _finish(total, failed, started)
