"""Audio: reading and writing files, resampling, speed perturbation, NIST SPHERE. Imports nothing else of
``data_prep``. One module a line:

    ``audio_io``        reading and writing audio, with errors naming the file
    ``resampling``      resampling with bounded memory whatever the rate (a close fraction, small kernel)
    ``speed_perturb``   Kaldi-style speed perturbation: extra training copies at other speeds
    ``sphere``          NIST SPHERE audio (WSJ's ``.wv1``): read uncompressed PCM, convert to WAV
"""
