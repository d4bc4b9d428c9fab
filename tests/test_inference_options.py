"""transcribe's and caption's options: a bad value is a one-line error naming the option, before any
model is loaded (the model argument below does not even exist)."""

import pytest

from dsd_seq.cli import main


@pytest.mark.parametrize(
    ("command", "option", "value", "message"),
    [
        ("transcribe", "--device", "meta", "not meta"),
        ("transcribe", "--device", "cuda:7", "CUDA"),
        ("transcribe", "--device", "nonsense", "not a device"),
        ("transcribe", "--chunk-seconds", "inf", "finite number of seconds"),
        ("transcribe", "--chunk-seconds", "0", "above 0"),
        ("transcribe", "--chunk-seconds", "nan", "finite number of seconds"),
        ("transcribe", "--batch-size", "0", "outside 1..4096"),
        ("transcribe", "--batch-size", "-3", "outside 1..4096"),
        ("transcribe", "--beam-size", "100000", "outside 1..1000"),
        ("caption", "--beam", "-1", "outside 1..1000"),
        ("caption", "--beam", "0", "outside 1..1000"),
        ("caption", "--device", "meta", "not meta"),
    ],
)
def test_bad_option_values_name_the_option(tmp_path, capsys, command, option, value, message):
    with pytest.raises(SystemExit) as stop:
        main([command, str(tmp_path / "no-model"), str(tmp_path / "x.wav"), option, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"argument {option}" in err[-1] and message in err[-1] and "Traceback" not in "\n".join(err)
