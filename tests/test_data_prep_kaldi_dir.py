from pathlib import Path

import pytest

from data_prep.corpora.kaldi_dir import DataDirError, Utterance, read_data_dir, write_data_dir


def _utts(tmp_path: Path) -> list[Utterance]:
    return [
        Utterance("u3", tmp_path / "c.wav", "lift the box", "spk2"),
        Utterance("u1", tmp_path / "a.wav", "push the red cup", "spk1"),
        Utterance("u2", tmp_path / "b.wav", "", "spk1"),
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_data_dir(tmp_path / "data" / "train", _utts(tmp_path))


def _rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_write_read_round_trip_sorted_with_empty_transcript(data_dir: Path, tmp_path: Path):
    utts = read_data_dir(data_dir)
    assert [u.utt_id for u in utts] == ["u1", "u2", "u3"]
    assert utts == sorted(_utts(tmp_path), key=lambda u: u.utt_id)
    assert (data_dir / "spk2utt").read_text() == "spk1 u1 u2\nspk2 u3\n"
    assert (data_dir / "wav.scp").read_text().splitlines()[0] == f"u1 {(tmp_path / 'a.wav').absolute()}"


def test_relative_wav_paths_resolve_against_the_working_directory(data_dir: Path, tmp_path, monkeypatch):
    _rewrite(data_dir / "wav.scp", ["u1 a.wav", "u2 b.wav", "u3 c.wav"])
    monkeypatch.chdir(tmp_path)
    assert read_data_dir(data_dir)[0].wav_path.resolve() == (tmp_path / "a.wav").resolve()


@pytest.mark.parametrize("name", ["wav.scp", "text", "utt2spk"])
def test_missing_file_is_named(data_dir: Path, name: str):
    (data_dir / name).unlink()
    with pytest.raises(DataDirError, match=rf"{name}: missing"):
        read_data_dir(data_dir)


def test_duplicate_id_names_file_and_both_lines(data_dir: Path):
    _rewrite(data_dir / "text", ["u1 push", "u2 pull", "u1 again", "u3 lift"])
    with pytest.raises(DataDirError, match=r"text:3: duplicate id 'u1' \(first on line 1\)"):
        read_data_dir(data_dir)


def test_line_without_value_names_file_and_line(data_dir: Path):
    _rewrite(data_dir / "wav.scp", ["u1 /a.wav", "u2", "u3 /c.wav"])
    with pytest.raises(DataDirError, match=r"wav\.scp:2: line for 'u2' has no value"):
        read_data_dir(data_dir)


def test_id_in_wav_scp_but_not_in_text(data_dir: Path):
    _rewrite(data_dir / "text", ["u1 push", "u3 lift"])
    with pytest.raises(DataDirError, match=r"wav\.scp:2: utterance 'u2' is not in text"):
        read_data_dir(data_dir)


def test_id_in_text_but_not_in_wav_scp(data_dir: Path):
    _rewrite(data_dir / "text", ["u1 push", "u2 pull", "u3 lift", "u4 extra"])
    with pytest.raises(DataDirError, match=r"text:4: utterance 'u4' is not in wav\.scp"):
        read_data_dir(data_dir)


def test_spk2utt_disagreeing_with_utt2spk(data_dir: Path):
    _rewrite(data_dir / "spk2utt", ["spk1 u1", "spk2 u2 u3"])
    with pytest.raises(
        DataDirError, match=r"spk2utt:2: lists 'u2' under speaker 'spk2' but utt2spk says 'spk1'"
    ):
        read_data_dir(data_dir)


def test_utterance_missing_from_spk2utt(data_dir: Path):
    _rewrite(data_dir / "spk2utt", ["spk1 u1 u2"])
    with pytest.raises(DataDirError, match=r"utt2spk:3: utterance 'u3' is not listed in spk2utt"):
        read_data_dir(data_dir)


def test_duplicate_ids_are_an_error_unless_collected(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("a /x/a.wav\nb /x/b.wav\nb /x/b2.wav\n")
    (data / "text").write_text("a one\nb two\n")
    (data / "utt2spk").write_text("a s\nb s\n")
    with pytest.raises(DataDirError, match=r"wav.scp:3: duplicate id 'b'"):
        read_data_dir(data)
    duplicates = {}
    assert [u.utt_id for u in read_data_dir(data, duplicates=duplicates)] == ["a"]
    assert list(duplicates) == ["b"] and "wav.scp:3" in duplicates["b"]


@pytest.mark.parametrize("separator", ["\t", " \t ", "  ", "\t\t"])
def test_any_whitespace_separates_the_id_as_in_kaldi(data_dir: Path, tmp_path: Path, separator: str):
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        path = data_dir / name
        lines = path.read_text().splitlines()
        _rewrite(
            path, [separator.join(line.split(" ", 1)) + ("\t" if separator == "\t" else "") for line in lines]
        )
    assert read_data_dir(data_dir) == sorted(_utts(tmp_path), key=lambda u: u.utt_id)


def test_a_speaker_with_a_tab_inside_is_refused(data_dir: Path):
    _rewrite(data_dir / "utt2spk", ["u1 spk1", "u2 spk1\tx", "u3 spk2"])
    with pytest.raises(DataDirError, match=r"utt2spk:2: speaker of 'u2'"):
        read_data_dir(data_dir)


@pytest.mark.parametrize("name", ["text", "wav.scp", "utt2spk", "spk2utt"])
def test_bytes_that_are_not_utf8_name_the_file_and_line(data_dir: Path, name: str):
    path = data_dir / name
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].rstrip(b"\n") + b" caf\xe9\n"  # latin-1 e-acute
    path.write_bytes(b"".join(lines))
    with pytest.raises(DataDirError, match=rf"{name}:2: not UTF-8 \(byte 0xe9 at column \d+\).*iconv"):
        read_data_dir(data_dir)
