"""Corpora: each script downloads, verifies or synthesises one corpus and writes Kaldi-style data dirs
(speech) or a Karpathy split file (captions), the formats every later stage reads. Imports ``audio`` and
``text`` of ``data_prep``. One module a line:

Speech
    ``synth_speech``         the built-in corpus: command phrases and digit strings spoken by espeak-ng voices
    ``synth_speech_open``    open-vocabulary sentences by unseen speakers; test_far: unheard voices and rooms
    ``acoustic_conditions``  the synthetic corpora's noise, rooms and channels
    ``espeak``               a ctypes driver for libespeak-ng, the synthesiser behind ``synth_speech``
    ``librispeech``          LibriSpeech and Mini LibriSpeech: download, verify, extract, data dirs
    ``wsj``                  WSJ0 and WSJ1 from your own LDC copy: si284, dev93, eval92 data dirs
    ``kaldi_dir``            Kaldi-style data dirs: ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``

Captions
    ``synth_captions``       the built-in caption set: 64x64 images of shapes, five captions each
    ``flickr``               Flickr8k / Flickr30k / COCO from archives you downloaded
    ``karpathy``             Karpathy's caption split files and their word vocabulary

Shared by the corpus scripts
    ``archive``              checksummed downloads and safe extraction of corpus archives
    ``exit_status``          a corpus script's expected errors as ``error: ...`` and exit status 1
"""
