"""metrics.jsonl after a crash: a torn last line is skipped with a warning (and cut before the next
append), a damaged line before it is an error naming file and line."""

import json

import pytest

from dsd_seq.training.metrics_log import MetricsLog, MetricsLogError, read_metrics


def _log(path, n):
    log = MetricsLog(path.parent, tensorboard=False)
    for step in range(n):
        log.log("train", step, loss=1.0 / (step + 1))
    log.close()


@pytest.mark.parametrize("torn", [b'{"event": "train", "st', b'{"event": "tr\xc3', b"[1, 2"])
def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path, torn):
    path = tmp_path / "metrics.jsonl"
    _log(path, 3)
    with path.open("ab") as f:
        f.write(torn)
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:4: skipped a torn last line"):
        records = read_metrics(path)
    assert [r["step"] for r in records] == [0, 1, 2]


def test_a_damaged_middle_line_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _log(path, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"event": "train", "step": 1, "lo\n'
    path.write_bytes(b"".join(lines))
    with pytest.raises(MetricsLogError, match=r"metrics\.jsonl:2: not a metrics record"):
        read_metrics(path)
    path.write_bytes(lines[0] + b"42\n" + lines[2])
    with pytest.raises(MetricsLogError, match=r"metrics\.jsonl:2: .*JSON int, not an object"):
        read_metrics(path)


def test_appending_after_a_crash_cuts_the_torn_line_instead_of_gluing_onto_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _log(path, 2)
    with path.open("ab") as f:
        f.write(b'{"event": "train", "step": 2, "lo')  # the crash
    _log(path, 1)  # the resumed run appends
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [0, 1, 0]
    assert [r["step"] for r in read_metrics(path)] == [0, 1, 0]
    only_torn = tmp_path / "b" / "metrics.jsonl"
    only_torn.parent.mkdir()
    only_torn.write_bytes(b'{"event"')
    _log(only_torn, 1)
    assert [r["step"] for r in read_metrics(only_torn)] == [0]
