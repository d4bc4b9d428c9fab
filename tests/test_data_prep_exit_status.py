"""A corpus script stopped by a missing corpus says what and where in one line and exits 1; an error it
does not expect is a bug and keeps its traceback."""

import pytest

from data_prep.corpora import librispeech, wsj
from data_prep.corpora.exit_status import exit_status


def test_the_wsj_script_names_a_missing_disc_folder_and_exits_1(tmp_path, capsys):
    status = wsj.main(
        ["--wsj0", str(tmp_path / "none0"), "--wsj1", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert status == 1
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path / 'none0'}: not a folder; pass the folders holding the WSJ0 and WSJ1 discs\n"
    )


def test_the_librispeech_script_names_the_subset_to_fetch_first_and_exits_1(tmp_path, capsys):
    status = librispeech.main(["prepare", "--corpus", str(tmp_path), "--split", "train=train-clean-5",
                               "--out", str(tmp_path / "data")])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1 and err.startswith(f"error: {tmp_path / 'LibriSpeech' / 'train-clean-5'}: ")
    assert "fetch --subsets train-clean-5" in err and err.count("\n") == 1


def test_work_that_returns_is_status_0_and_an_unexpected_error_propagates(capsys):
    assert exit_status(lambda: None, (OSError,)) == 0
    with pytest.raises(KeyError):
        exit_status(lambda: {}["missing"], (OSError, ValueError))
    assert capsys.readouterr().err == ""
