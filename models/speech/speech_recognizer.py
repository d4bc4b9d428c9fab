"""A trained speech model as a tool: audio files (or waves) in, text out. The inference side of
``models.speech.speech_task`` for ``dsd-seq export`` / ``transcribe`` and ``dsd_seq.load_model``.

Audio goes through the same reading and features as the training data (``data_prep.audio.audio_io``,
``data_prep.features.extraction``), so a file transcribed here gets the words the evaluation path decodes for it.
Files longer than ``chunk_seconds`` are cut into pieces decoded one by one (joined with a space), so a
long recording never needs the whole utterance's activations in memory; each piece is normalised on its
own, as an utterance of that length would be.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data_prep.audio.audio_io import AudioError, read_audio_with_rate
from data_prep.features.extraction import FeatureConfig, compute_features
from data_prep.text.subword_units import SentencePieceVocab
from data_prep.text.vocab import CharVocab
from dsd_seq.export.deployment import DeploymentError, DeploymentGraph
from dsd_seq.export.manifest_schema import build_within_weights
from dsd_seq.training.config import from_dict
from models.input_errors import InputError, texts_or_raise
from models.speech.ctc_decoding import DecodingConfig, ctc_text_decoder
from models.speech.deepspeech2 import DeepSpeech2
from models.speech.speech_task import SpeechTaskConfig, build_model, split_metadata
from models.speech.transducer import Transducer
from models.speech.units_guard import attach_units

UNITS_FILE = "units.model"
LEXICON_FILE = "lexicon.txt"


def describe(task_args: dict, model_state: dict) -> tuple[dict, dict[str, Any]]:
    """What inference needs, from the run's task_args: the feature config and characters (from the train
    feature store), the SentencePiece model, the decoding config and the training words (the LM lexicon)."""
    config = from_dict(SpeechTaskConfig, task_args, "task_args")
    cache = split_metadata(config.data["train"], config)  # a store or a data dir
    words = sorted({w for text in cache["texts"] for w in text.split()})
    settings = {
        "model": config.model,
        "model_args": config.model_args,
        "feature_config": cache["feature_config"],
        "units": "char" if config.units == "char" else "sentencepiece",
        "char_vocab": cache["vocab"],
        "decoding": dataclasses.asdict(config.decoding),
    }
    assets: dict[str, Any] = {LEXICON_FILE: ("\n".join(words) + "\n").encode("utf-8")}
    if config.units != "char":
        assets[UNITS_FILE] = Path(config.units)
    return settings, assets


def from_package(
    settings: dict, weights: dict, assets: dict[str, Any], device: str = "cpu"
) -> SpeechRecognizer:
    features = FeatureConfig.from_dict(settings["feature_config"])
    if settings["units"] == "char":
        vocab: CharVocab | SentencePieceVocab = CharVocab.from_dict(settings["char_vocab"])
    else:
        source = assets[UNITS_FILE]
        vocab = SentencePieceVocab(
            source if isinstance(source, bytes) else Path(source).read_bytes(), str(source)
        )
    lexicon = assets.get(LEXICON_FILE, b"")
    lexicon = lexicon if isinstance(lexicon, bytes) else Path(lexicon).read_bytes()
    model = build_within_weights(
        lambda: build_model(settings["model"], settings["model_args"], features.num_bins, len(vocab)), weights
    )
    attach_units(model, list(vocab.symbols))
    model.load_state_dict(weights)
    decoding = DecodingConfig(**settings["decoding"])
    return SpeechRecognizer(model, features, vocab, decoding, lexicon.decode("utf-8").split(), device)


@dataclass
class Transcript:
    name: str
    text: str | None  # None when the input failed
    error: str | None = None
    audio_seconds: float = 0.0
    decode_seconds: float = 0.0


class SpeechRecognizer:
    sample_rate: int

    def __init__(self, model, features: FeatureConfig, vocab, decoding: DecodingConfig, lexicon: list[str],
                 device: str = "cpu", chunk_seconds: float = 30.0):  # fmt: skip
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.features = features
        self.sample_rate = features.sample_rate
        self.vocab = vocab
        self.decoding = decoding
        self.lexicon = lexicon
        self.chunk_seconds = chunk_seconds
        self.transducer = isinstance(model, Transducer)

    def with_chunk_seconds(self, seconds: float):
        """Cut files longer than ``seconds`` into pieces decoded separately (bounds the memory a file needs)."""
        shortest = self.features.frame_length_samples / self.sample_rate
        if not seconds >= shortest:
            raise ValueError(
                f"chunk seconds must be at least one feature frame ({shortest:g} s), got {seconds}; "
                "pieces of a few seconds or more keep words whole"
            )
        self.chunk_seconds = float(seconds)
        return self

    def with_decoding(self, mode: str | None = None, beam_size: int | None = None, lm: str | None = None):
        """This recogniser with another decoding (greedy, beam, lm) than the one it was trained with."""
        changes = {k: v for k, v in (("mode", mode), ("beam_size", beam_size), ("lm", lm)) if v is not None}
        self.decoding = dataclasses.replace(self.decoding, **changes)
        return self

    def transcribe(
        self, items: Iterable[str | Path | np.ndarray | torch.Tensor], batch_size: int = 16
    ) -> list[str]:
        """Texts of audio files, or of mono waves at ``self.sample_rate``; raises InputError on a bad one."""
        return texts_or_raise(self.transcribe_each(items, batch_size))

    def transcribe_each(self, items: Iterable, batch_size: int = 16) -> Iterator[Transcript]:
        """One Transcript per input, in order; a bad input gives one with ``error`` set (the rest go on)."""
        items = list(items)
        for start in range(0, len(items), batch_size):
            yield from self._batch(items[start : start + batch_size])

    def _load(self, item, index: int) -> tuple[str, torch.Tensor]:
        if isinstance(item, (str, Path)):
            name = str(item)
            try:
                wave, _ = read_audio_with_rate(item, self.sample_rate, allow_upsampling=False)
            except AudioError as err:
                raise InputError(str(err)) from None
        else:
            name = f"wave #{index}"
            wave = torch.as_tensor(np.asarray(item, dtype=np.float32)).reshape(-1)
        if wave.numel() and not bool(torch.isfinite(wave).all()):
            raise InputError(f"{name}: the audio holds NaN or infinite samples (corrupt); skipped")
        if wave.numel() and float(wave.abs().max()) == 0.0:
            raise InputError(f"{name}: the audio is silent (every sample is 0); nothing to transcribe")
        return name, wave

    def _batch(self, items: list) -> Iterator[Transcript]:
        started = time.perf_counter()
        results: list[Transcript] = []
        pieces: list[tuple[int, torch.Tensor]] = []  # (result index, features)
        chunk = int(self.chunk_seconds * self.sample_rate)
        for index, item in enumerate(items):
            name = str(item) if isinstance(item, (str, Path)) else f"wave #{index}"
            try:
                name, wave = self._load(item, index)
                feats = [compute_features(wave[s : s + chunk], self.features)
                         for s in range(0, max(wave.numel(), 1), chunk)
                         if s == 0 or wave.numel() - s >= self.features.frame_length_samples]  # fmt: skip
                if not all(bool(torch.isfinite(f).all()) for f in feats):  # e.g. samples of 1e38 overflow
                    raise InputError(
                        f"{name}: its features are not finite (samples far outside [-1, 1] overflow the "
                        "filterbank): corrupt or not normalised audio; skipped"
                    )
            except (InputError, ValueError) as err:
                message = str(err) if str(err).startswith(name) else f"{name}: {err}"
                results.append(Transcript(name, None, message))
                continue
            results.append(Transcript(name, "", audio_seconds=wave.numel() / self.sample_rate))
            pieces += [(len(results) - 1, f) for f in feats]
        for index, text in self._decode_pieces(pieces, results):
            result = results[index]
            result.text = f"{result.text} {text}".strip() if result.text else text
        elapsed = time.perf_counter() - started
        total = sum(r.audio_seconds for r in results) or 1.0
        for result in results:
            result.decode_seconds = (
                elapsed * result.audio_seconds / total
            )  # the batch's time, shared by length
            yield result

    def deployment_graphs(self) -> list[DeploymentGraph]:
        """The acoustic model, ``features[B, T, bins]`` and ``feature_lengths[B]`` (int64) in,
        ``log_probs[B, T', classes]`` and ``output_lengths[B]`` out, for ``dsd-seq export --format``.
        Features (``data_prep.features.extraction`` with the manifest's feature config, one utterance normalised
        on its own) and CTC decoding stay outside the graph."""
        if self.transducer:
            raise DeploymentError(
                "an RNN-T does not export: its greedy decoding is a Python loop whose length depends on "
                "the symbols emitted; use the package (dsd_seq.load_model) instead"
            )
        unsupported = {}
        if any(isinstance(m, DeepSpeech2) for m in self.model.modules()):
            unsupported["onnx"] = (
                "DeepSpeech 2's recurrent stack runs on PackedSequence (pack_padded_sequence), whose "
                "batch sizes per frame depend on the lengths; torch's ONNX exporters refuse it. Use "
                "--format torchscript (it keeps the packing)"
            )
        bins = self.features.num_bins
        generator = torch.Generator().manual_seed(0)

        def batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            features = torch.randn(len(lengths), max(lengths), bins, generator=generator)
            return features, torch.tensor(lengths, dtype=torch.int64)

        return [
            DeploymentGraph(
                name="acoustic_model",
                module=self.model.cpu().eval(),
                example=batch([64, 41]),  # two lengths: padding and masking are traced
                check=batch([23, 97, 60]),  # another batch size and lengths
                input_names=["features", "feature_lengths"],
                output_names=["log_probs", "output_lengths"],
                dynamic_axes={
                    "features": {0: "batch", 1: "frames"},
                    "feature_lengths": {0: "batch"},
                    "log_probs": {0: "batch", 1: "output_frames"},
                    "output_lengths": {0: "batch"},
                },
                unsupported=unsupported,
                description="features -> per-frame log-probabilities over the units (CTC; blank = 0)",
            )
        ]

    def _decode_pieces(
        self, pieces: list[tuple[int, torch.Tensor]], results: list[Transcript]
    ) -> Iterator[tuple[int, str]]:
        """(result index, text) per piece: the batch at once, or, if that runs out of memory, file by
        file, so that only a file too large to decode even alone fails (named, with what to try)."""
        if not pieces:
            return
        try:
            texts = self._decode([f for _, f in pieces])
        except (torch.OutOfMemoryError, MemoryError):
            self._release_memory()
            if len({index for index, _ in pieces}) == 1:
                texts = None
            else:
                for index in dict.fromkeys(index for index, _ in pieces):
                    yield from self._decode_pieces([p for p in pieces if p[0] == index], results)
                return
        if texts is None:
            index = pieces[0][0]
            result = results[index]
            result.text, result.error = (
                None,
                (
                    f"{result.name}: decoding ran out of memory on {self.device} "
                    f"({len(pieces)} piece(s) of at most {self.chunk_seconds:g} s); "
                    "try a smaller --chunk-seconds, --batch-size 1 or another --device"
                ),
            )
            return
        yield from ((index, text) for (index, _), text in zip(pieces, texts, strict=True))

    def _release_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @torch.no_grad()
    def _decode(self, feats: list[torch.Tensor]) -> list[str]:
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(self.device)
        lengths = lengths.to(self.device)
        if self.transducer:
            return [self.vocab.decode(s) for s in self.model.greedy_decode(padded, lengths)]
        decode = ctc_text_decoder(self.decoding, self.vocab, self.lexicon)
        return decode(*self.model(padded, lengths))
