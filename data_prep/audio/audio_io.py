"""Reading and writing audio with soundfile, with errors that say which file and what to do.

soundfile (libsndfile) rather than ``torchaudio.load``: torchaudio 2.11 needs the separate torchcodec
package to load audio. Audio comes back as mono float32 at the sample rate the features expect.

Sample rates: audio recorded at a higher rate than the features need is resampled (nothing is lost but
the band the features ignore anyway). Audio at a lower rate is refused (``low_sample_rate``): upsampling
cannot restore the missing band, so its features would differ from the rest of the corpus without any
error; for a narrow-band corpus, compute the features at its own rate instead. Resampling keeps its
memory bounded whatever the rate (:mod:`data_prep.audio.resampling`); a rate it cannot approximate closely
enough (a header saying 2 GHz) is refused (``odd_sample_rate``).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from data_prep.audio.resampling import SampleRateError, resample


class AudioError(ValueError):
    """An audio file cannot be used: missing, unreadable, empty or holding NaN/inf samples.

    ``kind`` (``missing_audio``, ``corrupt_audio``, ``empty_audio``, ``truncated_audio``,
    ``nonfinite_audio``, ``low_sample_rate``, ``odd_sample_rate``) lets the feature cache count problems by kind.
    """

    def __init__(self, path: str | os.PathLike, reason: str, kind: str = "corrupt_audio") -> None:
        self.path = Path(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")


def read_audio(path: str | os.PathLike, sample_rate: int) -> torch.Tensor:
    """Mono float32 1-D tensor at ``sample_rate`` (channels averaged, resampled if the file differs)."""
    return read_audio_with_rate(path, sample_rate)[0]


def read_audio_with_rate(
    path: str | os.PathLike, sample_rate: int, allow_upsampling: bool = True
) -> tuple[torch.Tensor, int]:
    """:func:`read_audio`, also returning the file's own rate. With ``allow_upsampling=False`` a file
    below ``sample_rate`` raises AudioError (``low_sample_rate``, see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(
            path, "file not found; check the path in wav.scp or re-run data preparation", "missing_audio"
        )
    if path.stat().st_size == 0:
        raise AudioError(path, "file is 0 bytes; re-create the file or drop the utterance", "empty_audio")
    missing = _missing_wav_bytes(path)
    if missing:
        raise AudioError(
            path,
            f"WAV file is truncated ({missing} bytes of its data chunk are missing); re-create or "
            "re-download it",
            "truncated_audio",
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
    if file_rate < sample_rate and not allow_upsampling:
        raise AudioError(
            path,
            f"sampled at {file_rate} Hz, below the features' {sample_rate} Hz; upsampling cannot restore the "
            "missing band: drop it, or compute features at the lower rate for the whole corpus",
            "low_sample_rate",
        )
    wave = torch.from_numpy(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]).contiguous()
    if file_rate != sample_rate:
        try:
            wave = resample(wave, file_rate, sample_rate)
        except SampleRateError as err:
            raise AudioError(path, f"{err}; or drop the utterance", "odd_sample_rate") from None
    return wave, int(file_rate)


def _missing_wav_bytes(path: Path) -> int:
    """Bytes the ``data`` chunk of a RIFF/WAV file declares but the file lacks (0 if complete or not WAV).

    libsndfile reads a cut-off WAV without complaint, returning fewer samples; the transcript, though,
    still covers the whole utterance, so such a file would train CTC on misaligned labels.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                return max(0, offset + 8 + chunk_size - size) if chunk_size != 0xFFFFFFFF else 0
            offset += 8 + chunk_size + (chunk_size & 1)
    return 0


def write_audio(path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write mono audio in [-1, 1] as 16-bit PCM wav (values outside are clipped)."""
    data = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    data = np.clip(data.astype(np.float32).reshape(-1), -1.0, 1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sample_rate, subtype="PCM_16", format="WAV")
