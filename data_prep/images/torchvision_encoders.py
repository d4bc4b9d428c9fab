"""torchvision image encoders: VGG-16 fc7 (the paper's, Sec. 4.3) and ResNet-50 (pooled) features.

torchvision is an optional extra (``pip install dsd-seq[vision]``) and weights are never downloaded
here: they must be on disk, either at ``weights`` or in torch hub's cache, so a run never depends on the
network. Each failure says what to install or where to put the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

#: torchvision's ImageNet weight files (the names torch hub caches them under).
WEIGHT_FILES = {"vgg16": "vgg16-397923af.pth", "resnet50": "resnet50-11ad3fa6.pth"}
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _weights_path(name: str, weights: str | Path | None) -> Path:
    if weights is not None:
        return Path(weights)
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    return hub / WEIGHT_FILES[name]


def load_torchvision_encoder(name: str, weights: str | Path | None = None):
    """A function [PIL images] -> [N, D] features (VGG-16: fc7 after ReLU, 4096-d; ResNet-50: 2048-d)."""
    try:
        import torchvision
    except ImportError:
        raise ImportError(
            f"the {name} encoder needs torchvision: pip install 'dsd-seq[vision]' (torchvision==0.29.*), "
            "or use --encoder small_cnn"
        ) from None
    path = _weights_path(name, weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"{name} weights not found at {path}; download https://download.pytorch.org/models/"
            f"{WEIGHT_FILES[name]} there (or pass --encoder-checkpoint FILE), or use --encoder small_cnn"
        )
    model = getattr(torchvision.models, name)(weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    if name == "vgg16":
        model.classifier = model.classifier[:5]  # fc6, ReLU, dropout, fc7, ReLU: the fc7 activations
    else:
        model.fc = torch.nn.Identity()
    mean, std = torch.tensor(_MEAN).view(3, 1, 1), torch.tensor(_STD).view(3, 1, 1)

    def encode(images) -> torch.Tensor:
        batch = []
        for image in images:
            x = torchvision.transforms.functional.pil_to_tensor(image.convert("RGB").resize((224, 224)))
            batch.append((x.float() / 255.0 - mean) / std)
        with torch.no_grad():
            return model(torch.stack(batch))

    return encode
