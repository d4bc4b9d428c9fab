"""WSJ preparation from LDC disc folders: index files, .dot transcripts, SPHERE audio, normalisation."""

import pytest
import soundfile as sf

from data_prep.corpora import wsj
from data_prep.corpora.kaldi_dir import read_data_dir
from tests.corpus_fixtures import synth_utterances, write_wsj_discs


@pytest.mark.parametrize(
    ("dot", "heard"),
    [
        ("[loud_breath] The company's shares [<door_slam] rose ~", "the company's shares rose"),
        ("Profits rose \\,COMMA analysts said \\.PERIOD", "profits rose comma analysts said period"),
        ('"DOUBLE-QUOTE We\'ll see "END-QUOTE .', "double quote we'll see end quote"),
        ("<And> I\\. B\\. M\\. said [/phone_ring] so [phone_ring/]", "and i b m said so"),
        ("*Transportetation* is th:e sh- -ment", "transportetation is the sh ment"),
        ("A short-term %PERCENT gain --DASH maybe", "a short term percent gain dash maybe"),
    ],
)
def test_transcripts_are_normalised_to_spoken_characters(dot, heard):
    assert wsj.normalize_transcript(dot) == heard


def test_index_lines_name_disc_and_path_with_or_without_extension(tmp_path):
    index = tmp_path / "si_et_20.ndx"
    index.write_text(
        ";: comment\n11_14_1:wsj0/si_et_20/440/440c0201\n\n13_16_1: wsj1/si_dt_20/4k0/4k0c0301.wv1\n"
    )
    assert wsj.read_index(index) == [
        ("11-14.1", "wsj0/si_et_20/440/440c0201.wv1"),
        ("13-16.1", "wsj1/si_dt_20/4k0/4k0c0301.wv1"),
    ]


@pytest.fixture(scope="module")
def discs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ldc")
    utts = synth_utterances(root / "synth", 6, 3, 3)
    expected = write_wsj_discs(
        root / "discs", {"train_si284": utts["train"], "test_dev93": utts["dev"], "test_eval92": utts["test"]}
    )
    return root / "discs", expected


def test_prepare_reads_the_disc_layout_into_data_dirs(discs, tmp_path):
    root, expected = discs
    dirs = wsj.prepare(root / "wsj0", root / "wsj1", tmp_path / "out", progress=False)
    assert sorted(dirs) == sorted(wsj.SETS)
    for name, data_dir in dirs.items():
        utts = read_data_dir(data_dir)
        assert {u.utt_id: u.text for u in utts} == expected[name]
        assert all(u.speaker == u.utt_id[:3] for u in utts)
        info = sf.info(str(utts[0].wav_path))
        assert info.samplerate == 16000 and info.format == "WAV"
    # both WSJ0 and WSJ1 contribute to si284, and the upper-cased disc 13-16.1 is read
    assert {u[:2] for u in expected["train_si284"]} == {"00", "01"}


def test_missing_discs_and_audio_are_errors_saying_what_to_pass(discs, tmp_path):
    root, _ = discs
    with pytest.raises(
        wsj.WsjError, match=r"wsj1/doc/indices/h1_p0.ndx not found .* pass the folders holding"
    ):
        wsj.prepare(root / "wsj0", root / "wsj0", tmp_path / "out", sets=["test_dev93"], progress=False)
    with pytest.raises(wsj.WsjError, match="not a folder"):
        wsj.prepare(tmp_path / "nowhere", root / "wsj1", tmp_path / "out", progress=False)
    audio = next((root / "wsj0" / "11-14.1").rglob("*.wv1"))
    moved = audio.with_name("moved.bin")
    audio.rename(moved)
    try:
        with pytest.raises(wsj.WsjError, match=rf"si_et_20.ndx: lists 11-14.1:.*{audio.stem}.*are all discs"):
            wsj.prepare(root / "wsj0", root / "wsj1", tmp_path / "out", sets=["test_eval92"], progress=False)
    finally:
        moved.rename(audio)
