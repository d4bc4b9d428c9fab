"""A ctypes driver for libespeak-ng, the speech synthesiser behind the built-in synthetic speech corpus.

Why ctypes and not a subprocess: the PyPI package ``espeakng_loader`` ships the shared library and its
data (no system install needed), and calling the library in-process synthesises at about 500x real time,
fast enough to make thousands of utterances in seconds. The library keeps global state, so one process
has one synthesiser: calls are serialised with a lock and the library is initialised once per process
(each worker of a ``multiprocessing.Pool`` gets its own copy).
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 0x02
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE = 1
ESPEAK_PITCH = 3
ESPEAK_RANGE = 4  # pitch range: 0 monotone, 50 normal, 100 lively intonation
EE_OK = 0

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded or refused a request."""


def _data_path() -> Path:
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


def list_variants() -> list[str]:
    """Names of the voice variants shipped with espeak-ng (``m3``, ``f1``, ``klatt``...), sorted.

    A variant changes the speaker (pitch range, formants, breathiness); combined with an accent it gives a
    voice such as ``en-us+m3``. Sorted so that seeded splits of variants do not depend on directory order.
    """
    variant_dir = _data_path() / "voices" / "!v"
    if not variant_dir.is_dir():
        raise EspeakError(f"espeak-ng voice variants not found at {variant_dir}; reinstall espeakng-loader")
    return sorted(p.name for p in variant_dir.iterdir() if p.is_file())


def list_english_accents() -> list[str]:
    """English accent voice names present in the shipped data (``en``, ``en-us``, ``en-gb-x-rp``...).

    ``en-shaw`` (the Shavian alphabet) is left out: it is a script, not an accent.
    """
    accent_dir = _data_path() / "lang" / "gmw"
    names = sorted(p.name.lower() for p in accent_dir.iterdir() if p.name.lower().startswith("en"))
    return [n for n in names if n != "en-shaw"]


class _Library:
    """The process-global libespeak-ng handle; created once per process."""

    def __init__(self) -> None:
        import espeakng_loader

        lib_path = espeakng_loader.get_library_path()
        try:
            self.lib = ctypes.CDLL(lib_path)
        except OSError as err:
            raise EspeakError(
                f"cannot load libespeak-ng from {lib_path}: {err}; reinstall espeakng-loader"
            ) from err
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None

        data = str(_data_path()).encode()
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 500, data, 0)
        if self.sample_rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {self.sample_rate}) with data at {data!r}")
        self.chunks: list[np.ndarray] = []
        # Kept as an attribute so the C callback is not garbage-collected while the library holds it.
        self.callback = _SYNTH_CALLBACK(self._on_samples)
        lib.espeak_SetSynthCallback(self.callback)

    def _on_samples(self, wav, num_samples, events) -> int:
        if wav and num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0


_LOCK = threading.Lock()
_LIBRARY: _Library | None = None
_LIBRARY_PID: int | None = None


def _library() -> _Library:
    global _LIBRARY, _LIBRARY_PID
    if _LIBRARY is None or os.getpid() != _LIBRARY_PID:
        _LIBRARY = _Library()
        _LIBRARY_PID = os.getpid()
    return _LIBRARY


class EspeakSynthesizer:
    """Text to 16-bit speech through libespeak-ng, returned as float32 in [-1, 1].

    Reproducibility: ``seed`` fixes espeak's random generator, but the library also keeps a pitch-flutter
    phase in a C static variable that no API resets, so the samples depend on what this process synthesised
    before. The same sequence of calls in a fresh process gives the same samples; ``synth_speech`` relies on
    that by synthesising fixed shards of utterances, each in a fresh worker process.
    """

    def __init__(self) -> None:
        with _LOCK:
            self.sample_rate = _library().sample_rate

    def synthesize(
        self,
        text: str,
        voice: str = "en-us+m3",
        rate_wpm: int = 175,
        pitch: int = 50,
        seed: int = 0,
        pitch_range: int | None = None,
    ) -> tuple[np.ndarray, int]:
        """Speak ``text`` with ``voice`` (accent+variant) at ``rate_wpm`` words/minute and ``pitch`` (0-100).

        ``pitch_range`` (0-100) sets the intonation, from monotone to lively; None leaves the process's
        current setting (espeak's default until a call sets one).

        Most variants add random jitter and breath noise; ``seed`` seeds espeak's generator before each call
        so that the same arguments give the same samples (a reproducible corpus).
        """
        if not text.strip():
            raise ValueError("espeak: cannot synthesise empty text")
        with _LOCK:
            lib = _library()
            if lib.lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
                raise EspeakError(
                    f"espeak: unknown voice {voice!r}; use an accent from list_english_accents() "
                    f"and a variant from list_variants(), e.g. 'en-us+m3'"
                )
            lib.lib.espeak_SetParameter(ESPEAK_RATE, int(rate_wpm), 0)
            lib.lib.espeak_SetParameter(ESPEAK_PITCH, int(pitch), 0)
            if pitch_range is not None:
                lib.lib.espeak_SetParameter(ESPEAK_RANGE, int(pitch_range), 0)
            encoded = text.encode("utf-8")
            buffer = ctypes.create_string_buffer(encoded)
            lib.chunks = []
            lib.lib.espeak_ng_SetRandSeed(int(seed))
            status = lib.lib.espeak_Synth(
                buffer, len(encoded) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None
            )
            chunks, lib.chunks = lib.chunks, []
            if status != EE_OK:
                raise EspeakError(
                    f"espeak_Synth failed with status {status} for text {text!r}, voice {voice!r}"
                )
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return samples.astype(np.float32) / 32768.0, lib.sample_rate
