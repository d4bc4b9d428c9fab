"""Settings used only at evaluation are checked before the first step, and a resumed run accepts new
values for them (saying what changed) while still refusing changes that alter training."""

import pytest

from dsd_seq.core.schedule import Schedule
from dsd_seq.safe_io import CheckpointError
from dsd_seq.training.config import load_config
from dsd_seq.training.task import build_task
from dsd_seq.training.trainer import Trainer
from tests.test_models_speech_task import TINY_DS2
from tests.test_models_speech_task_options import caches  # noqa: F401 (a fixture)


def _trainer(exp, caches, *extra):  # noqa: F811
    config = load_config(
        None,
        ["task=models.speech.speech_task:build_task", "schedule=D2:1e-3", "train.progress=false",
         "train.tensorboard=false", "train.eval_splits=[dev]", *extra],
    )  # fmt: skip
    config.task_args.update(data=caches, model_args=TINY_DS2)
    return Trainer(build_task(config.task, config.task_args), Schedule.parse("D2:1e-3"), config, exp)


def test_a_missing_language_model_stops_the_run_before_the_first_step(tmp_path, caches):  # noqa: F811
    lm = tmp_path / "missing.arpa"
    trainer = _trainer(tmp_path / "exp", caches, "task_args.decoding={mode: lm, lm: " + str(lm) + "}")
    with pytest.raises(ValueError, match=r"task_args.decoding.lm|flashlight"):
        trainer.run()
    assert not (tmp_path / "exp" / "checkpoints").exists()  # no epoch was trained first


def test_resume_accepts_evaluation_settings_and_says_so(tmp_path, caches, capsys):  # noqa: F811
    _trainer(tmp_path / "exp", caches).run(stop_after_steps=1)
    changed = ["task_args.eval_batch_size=3", "task_args.decoding={mode: beam, beam_size: 2}"]
    resumed = _trainer(tmp_path / "exp", caches, *changed)
    resumed.run(resume=True, stop_after_steps=1)
    out = capsys.readouterr()
    message = out.out + out.err
    assert "settings changed since" in message
    assert (
        "task_args.eval_batch_size: None -> 3" in message
        and "task_args.decoding.mode: None -> 'beam'" in message
    )
    with pytest.raises(CheckpointError, match="task_args.batch_size: None -> 2"):
        _trainer(tmp_path / "exp", caches, "task_args.batch_size=2").run(resume=True)
