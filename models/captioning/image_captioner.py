"""A trained captioner as a tool: image files in, captions out. The inference side of
``models.captioning.caption_task`` for ``dsd-seq export`` / ``caption`` and ``dsd_seq.load_model``.

The captioner was trained on cached features of a fixed encoder (the paper's Sec. 4.3); the package
names that encoder: the built-in small CNN travels inside it (``encoder.pt``); a torchvision encoder
(VGG-16, ResNet-50) is named with the path its weights were read from, since those files are large and
licensed separately (``weights`` can be passed to point at another copy).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from data_prep.images.image_features import load_feature_cache
from dsd_seq.export.deployment import DeploymentGraph
from dsd_seq.export.manifest_schema import build_within_weights
from dsd_seq.training.config import from_dict
from models.captioning.caption_task import CaptionTaskConfig
from models.captioning.neuraltalk import EOS, NeuralTalk, NeuralTalkConfig
from models.input_errors import InputError, texts_or_raise

ENCODER_FILE = "encoder.pt"


def describe(task_args: dict, model_state: dict) -> tuple[dict, dict[str, Any]]:
    """The NeuralTalk config and words (from the weights), decoding settings and the image encoder
    (from the description the feature cache recorded, e.g. ``small_cnn (data/feats/encoder.pt)``)."""
    config = from_dict(CaptionTaskConfig, task_args, "task_args")
    words = bytes(model_state["vocab_bytes"].tolist()).decode("utf-8").split("\n")
    model_config = NeuralTalkConfig(
        feature_dim=int(model_state["image_proj.weight"].shape[1]), vocab_size=len(words), **config.model_args
    )
    description = load_feature_cache(config.features)["encoder"]
    match = re.fullmatch(r"(\w+) \((.*)\)", description)
    name, source = match.groups() if match else (description, "")
    assets: dict[str, Any] = {}
    encoder = {"name": name, "description": description}
    if name == "small_cnn":
        assets[ENCODER_FILE] = Path(source)
    elif name in ("vgg16", "resnet50"):
        encoder["weights"] = None if source == "torch hub cache" else str(Path(source).resolve())
    settings = {
        "model_config": dataclasses.asdict(model_config),
        "words": words,
        "max_length": config.max_length,
        "beam_size": config.beam_size,
        "length_penalty": config.length_penalty,
        "encoder": encoder,
    }
    return settings, assets


def from_package(
    settings: dict, weights: dict, assets: dict[str, Any], device: str = "cpu"
) -> ImageCaptioner:
    model = build_within_weights(
        lambda: NeuralTalk(NeuralTalkConfig(**settings["model_config"]), settings["words"]), weights
    )
    model.load_state_dict(weights)
    return ImageCaptioner(model, settings, assets.get(ENCODER_FILE), device)


@dataclass
class Caption:
    name: str
    text: str | None  # None when the input failed
    error: str | None = None


class ImageCaptioner:
    def __init__(self, model: NeuralTalk, settings: dict, encoder_file: Path | None, device: str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.settings = settings
        self.encoder_file = encoder_file
        self._encode = None

    def encoder(self, weights: str | Path | None = None):
        """The function [PIL images] -> [N, D] features the captioner was trained on."""
        if self._encode is None:
            from data_prep.images.image_features import build_encoder

            spec = self.settings["encoder"]
            if spec["name"] == "small_cnn":
                self._encode, _ = build_encoder("small_cnn", weights or self.encoder_file)
            elif spec["name"] in ("vgg16", "resnet50"):
                self._encode, _ = build_encoder(spec["name"], weights or spec.get("weights"))
            else:
                raise InputError(
                    f"this captioner was trained on features of {spec['description']!r}, an encoder dsd-seq "
                    "cannot rebuild; caption feature vectors with caption_features() instead"
                )
        return self._encode

    def caption(self, items: Iterable[str | Path | Image.Image], beam_size: int | None = None) -> list[str]:
        """Captions of image files or PIL images; raises InputError on one that cannot be read."""
        return texts_or_raise(self.caption_each(items, beam_size))

    def caption_each(
        self, items: Iterable, beam_size: int | None = None, batch_size: int = 64
    ) -> Iterator[Caption]:
        items = list(items)
        for start in range(0, len(items), batch_size):
            results, images = [], []
            for index, item in enumerate(items[start : start + batch_size]):
                name = str(item) if isinstance(item, (str, Path)) else f"image #{start + index}"
                try:
                    images.append(item.convert("RGB") if isinstance(item, Image.Image) else _open(item))
                    results.append(Caption(name, ""))
                except InputError as err:
                    results.append(Caption(name, None, str(err)))
            if images:
                with torch.no_grad():
                    feats = self.encoder()(images).float()
                texts = iter(self.caption_features(feats, beam_size))
                for result in results:
                    if result.error is None:
                        result.text = next(texts)
            yield from results

    def deployment_graphs(self) -> list[DeploymentGraph]:
        """NeuralTalk's decoder for ``dsd-seq export --format``: ``decoder_start`` (image features ->
        log-probs of the first word and the LSTM state) and ``decoder_step`` (one word and the state ->
        log-probs of the next word and the new state). The search over words (greedy or beam) and the
        image encoder stay outside the graphs."""
        model = self.model.cpu().eval()
        config = model.config
        generator = torch.Generator().manual_seed(0)

        def state(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
            shape = (config.layers, batch, config.hidden)
            return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)

        def words(batch: int) -> torch.Tensor:
            return torch.randint(3, config.vocab_size, (batch,), generator=generator)

        def image(batch: int) -> torch.Tensor:
            return torch.randn(batch, config.feature_dim, generator=generator)

        state_axes = {name: {1: "batch"} for name in ("h", "c", "h_out", "c_out")}
        return [
            DeploymentGraph(
                name="decoder_start",
                module=DecoderStart(model),
                example=(image(2),),
                check=(image(5),),
                input_names=["image_features"],
                output_names=["log_probs", "h_out", "c_out"],
                dynamic_axes={"image_features": {0: "batch"}, "log_probs": {0: "batch"}, **state_axes},
                description="image features [B, D] -> log-probs of the first word [B, V], LSTM state",
            ),
            DeploymentGraph(
                name="decoder_step",
                module=DecoderStep(model),
                example=(words(2), *state(2)),
                check=(words(5), *state(5)),
                input_names=["word", "h", "c"],
                output_names=["log_probs", "h_out", "c_out"],
                dynamic_axes={"word": {0: "batch"}, "log_probs": {0: "batch"}, **state_axes},
                description="word ids [B] (int64) and LSTM state [layers, B, hidden] x 2 -> next-word "
                "log-probs [B, V] and the new state",
            ),
        ]

    @torch.no_grad()
    def caption_features(self, features: torch.Tensor, beam_size: int | None = None) -> list[str]:
        """Captions of encoder features [N, D], decoded as CaptionTask.caption decodes them."""
        beam = beam_size or self.settings["beam_size"]
        max_length = self.settings["max_length"]
        feats = features.to(self.device)
        if beam == 1:
            ids = self.model.greedy(feats, max_length)
        else:
            ids = [
                self.model.beam_search(f, beam, max_length, self.settings["length_penalty"]) for f in feats
            ]
        words = self.model.words
        return [" ".join(words[i] for i in [*seq, EOS][:-1] if i > 2) for seq in ids]


#: the most pixels an input image may claim (about 7000 x 7000): its header is read before its pixels, so
#: a small file claiming 20000 x 20000 (a decompression bomb, or a GIF's huge logical screen) is refused
#: before gigabytes are allocated for it
MAX_IMAGE_PIXELS = 50_000_000


def _open(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise InputError(
                        f"{path}: the image claims {width} x {height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS:,} accepted (a decompression bomb?); resize it; skipped"
                    )
                return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputError(f"{path}: refused as a decompression bomb ({err}); skipped") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise InputError(
            f"{path}: Pillow cannot read this image ({err}); convert it to PNG or JPEG"
        ) from None


class DecoderStart(nn.Module):
    """NeuralTalk's first step as a graph of tensors: image features -> (log-probs, h, c)."""

    def __init__(self, model: NeuralTalk):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, (h, c) = self.model.start(features)
        return logits.log_softmax(-1), h, c


class DecoderStep(nn.Module):
    """One NeuralTalk decoder step as a graph of tensors: (word, h, c) -> (log-probs, h, c)."""

    def __init__(self, model: NeuralTalk):
        super().__init__()
        self.model = model

    def forward(
        self, word: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, (h, c) = self.model.step(word.unsqueeze(1), (h, c))
        return logits.log_softmax(-1), h, c
