"""The run machinery around :mod:`dsd_seq.core`: the ``Task`` protocol a model family implements, the
trainer's phase -> epoch -> step loop, checkpoints, the typed run config, torchrun and mixed precision,
and the metrics log. One module a line:

A run
    ``run``             ``train_run``/``TrainRequest``: build the task and trainer, write config.yaml, train
    ``task``            the ``Task`` protocol and ``build_task`` (``module:factory`` from the config)
    ``config``          the typed run config from YAML, its fingerprint and diff
    ``launch``          several processes through torchrun, for one or many nodes
    ``run_lock``        one process per run folder

The loop
    ``trainer``         ``Trainer``: phase -> epoch -> step
    ``position``        where a run is: the next step, a converging phase's plateau
    ``epoch_order``     an epoch's index over the run and the seed of its batch order
    ``step``            one optimizer step under the DSD constraint
    ``pre_step_copy``   the weights before a step, put back when the step made them non-finite
    ``optimizer``       the optimizer ``train.optimizer`` names
    ``precision``       fp32, bf16 or fp16 autocast and the gradient scaler
    ``nonfinite_guard`` when skipped (NaN/inf) steps mean the run is not training
    ``stop_request``    Ctrl-C or SIGTERM: finish the step, checkpoint, return
    ``training_error``  ``TrainingError``: the run cannot go on
    ``evaluation``      scoring at epoch and phase ends, on rank 0, and the convergence bookkeeping
    ``dev_selection``   each phase's kept epoch: its monitor, and what a phase hands on (last or best)
    ``distributed``     torchrun's process group, rank helpers and agreement checks

Checkpoints and results
    ``trainer_state``   the trainer's checkpoint side: state_dict, save, load, resume
    ``checkpoint``      the random generators' states and whether a checkpoint may continue a run
    ``checkpoint_dir``  the checkpoint folder: names, rotation, links, the newest readable file
    ``phase_completion`` finish a phase end that a crash cut short
    ``checkpoint_average`` the rules and arithmetic of averaging a phase's last or best N epochs
    ``average_run``     ``dsd-seq average``: one averaged checkpoint from a finished run's kept epochs
    ``results``         one row per finished phase in ``results.json``
    ``provenance``      the versions and git commit a run trains with, named in each phase row
    ``metrics_log``     metrics to JSON lines and TensorBoard
"""
