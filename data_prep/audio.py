"""Reading and writing audio with soundfile, with errors that say which file and what to do.

soundfile (libsndfile) rather than ``torchaudio.load``: torchaudio 2.11 needs the separate torchcodec
package to load audio. Audio comes back as mono float32 at the sample rate the features expect.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio


class AudioError(ValueError):
    """An audio file cannot be used: missing, unreadable, empty or holding NaN/inf samples.

    ``kind`` (``missing_audio``, ``corrupt_audio``, ``empty_audio``, ``nonfinite_audio``) lets the feature
    cache count problems by kind.
    """

    def __init__(self, path: str | os.PathLike, reason: str, kind: str = "corrupt_audio") -> None:
        self.path = Path(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")


def read_audio(path: str | os.PathLike, sample_rate: int) -> torch.Tensor:
    """Mono float32 1-D tensor at ``sample_rate`` (channels averaged, resampled if the file differs)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(
            path, "file not found; check the path in wav.scp or re-run data preparation", "missing_audio"
        )
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(
            path, f"unreadable or corrupt audio ({err}); re-create or re-download the file", "corrupt_audio"
        ) from err
    if data.shape[0] == 0:
        raise AudioError(
            path, "audio has zero samples; re-create the file or drop the utterance", "empty_audio"
        )
    if not np.isfinite(data).all():
        raise AudioError(
            path,
            "audio holds NaN or infinite samples; re-create the file or drop the utterance",
            "nonfinite_audio",
        )
    wave = torch.from_numpy(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]).contiguous()
    if file_rate != sample_rate:
        wave = torchaudio.functional.resample(wave, file_rate, sample_rate)
    return wave


def write_audio(path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write mono audio in [-1, 1] as 16-bit PCM wav (values outside are clipped)."""
    data = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    data = np.clip(data.astype(np.float32).reshape(-1), -1.0, 1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sample_rate, subtype="PCM_16", format="WAV")
