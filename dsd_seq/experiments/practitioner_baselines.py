"""Against the model a practitioner would otherwise ship: the early-stopped dense model.

Whoever trains a dense model keeps its best dev epoch, not the one the loss stopped falling at. So
beside the paper's rows (each arm's final model against the dense model it continued), a comparison
sets each arm, final and dev-selected (the best dev epoch of its last phase, ``phaseN-best.pt``), against
the dense phase's dev-selected epoch, with the test its design calls for (:mod:`dsd_seq.experiments.units`);
with ``train.average`` the last phase's averaged model (checkpoint averaging) is a row too.
Test scores at those epochs were recorded by the runs; the epochs were chosen on dev alone.
"""

from __future__ import annotations

from typing import Any

from dsd_seq.experiments.report import other_model_score
from dsd_seq.experiments.significance import Sample
from dsd_seq.experiments.units import against_reference, between_arms, by_unit, describe_unit


def _other(key: str):
    """A reader of a record's phase: the score of that phase's other model ``key`` (``best``, ``average``)."""

    def read(record: dict[str, Any], phase: int, split: str, metric: str) -> float | None:
        phases = record["phases"]
        return other_model_score(phases[phase], key, split, metric) if phase < len(phases) else None

    return read


_best, _averaged = _other("best"), _other("average")


def _final(record: dict[str, Any], phase: int, split: str, metric: str) -> float | None:
    phases = record["phases"]
    return phases[phase]["metrics"].get(split, {}).get(metric) if phase < len(phases) else None


def _last_epoch(record: dict[str, Any], phase: int, split: str, metric: str) -> float | None:
    """The phase's last epoch's score: its ``metrics``, or ``last`` when it handed on its best epoch."""
    phases = record["phases"]
    handed_best = phase < len(phases) and isinstance(phases[phase].get("last"), dict)
    return (_other("last") if handed_best else _final)(record, phase, split, metric)


def build_practitioner_rows(
    by_kind: dict[str, list[dict[str, Any]]],
    kinds: dict[str, str],
    design: str,
    split: str,
    metric: str,
    higher: bool,
) -> dict[str, Any] | None:
    """The section as a JSON-able dict; None for records written before runs kept their best epochs."""
    dsd = by_kind["dsd"]
    if not any(_best(r, 0, split, metric) is not None for r in dsd):
        return None
    last = -1  # each run's own final phase (a method's arm may have more phases than DSD)
    records = [r for kind in kinds for r in by_kind.get(kind, [])]
    early = {u: vs[0] for u, vs in by_unit(dsd, design, lambda r: _best(r, 0, split, metric)).items()}
    dense_last = {
        u: vs[0] for u, vs in by_unit(dsd, design, lambda r: _last_epoch(r, 0, split, metric)).items()
    }
    epochs = sorted({r["phases"][0]["best"]["epoch"] for r in dsd if _best(r, 0, split, metric) is not None})
    monitor = next(r["phases"][0]["best"]["monitor"] for r in dsd if _best(r, 0, split, metric) is not None)

    def arm(kind: str, selected: bool | str) -> dict[Any, list[float]]:
        read = _averaged if selected == "average" else _best if selected else _final
        return by_unit(by_kind.get(kind, []), design, lambda r: read(r, last, split, metric))

    rules = sorted(
        {r["phases"][last]["average"]["rule"] for r in dsd if _averaged(r, last, split, metric) is not None}
    )
    models = [("Early-stopped dense", list(early.values())), ("Dense, last epoch", list(dense_last.values()))]
    comparisons = []
    for kind, label in kinds.items():
        variants = [(False, label), (True, f"{label} (dev-selected)")]
        if rules:  # train.average: the averaged model of the last phase
            variants.append(("average", f"{label} (average {', '.join(rules)})"))
        for selected, name in variants:
            values = arm(kind, selected)
            if not values:
                continue
            models.append((name, [v for vs in values.values() for v in vs]))
            comparisons.append(against_reference(name, values, "Early-stopped dense", early, higher, design))
    if "llr" in kinds and arm("dsd", True) and arm("llr", True):
        comparisons.append(
            between_arms(
                "DSD (dev-selected)", arm("dsd", True), f"{kinds['llr']} (dev-selected)", arm("llr", True),
                higher, design,
            )
        )  # fmt: skip
    return {
        "monitor": monitor,
        "dense_best_epochs": epochs,
        "unit": describe_unit(records, design),
        "models": [
            {"model": name, "mean": Sample(tuple(v)).mean, "std": Sample(tuple(v)).std, "n": len(v)}
            for name, v in models
        ],
        "comparisons": [c.to_dict() for c in comparisons],
    }


def practitioner_markdown(section: dict[str, Any] | None, name: str, direction: str, fmt) -> list[str]:
    """The section's markdown lines (none for records without best epochs); ``fmt`` formats numbers."""
    if section is None:
        return []
    epochs = section["dense_best_epochs"]
    span = str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
    lines = [
        "",
        "## Against the early-stopped dense model (the model a practitioner would otherwise ship)",
        "",
        f"The early-stopped dense model is the dense phase's epoch with the best {section['monitor']} "
        f"(epoch {span} of the dense phase); an arm's dev-selected model is the best {section['monitor']} "
        "epoch of its last phase. Test scores at those epochs; nothing was chosen on test. "
        f"{section['unit'][0].upper()}{section['unit'][1:]}.",
        "",
        f"| Model | {name} mean ± std | n |",
        "|---|---|---|",
    ]
    for model in section["models"]:
        lines.append(f"| {model['model']} | {fmt['mean_std'](model['mean'], model['std'])} | {model['n']} |")
    lines += [
        "",
        "| Comparison | Mean ± std | Baseline | n | Abs. improvement | t | df | p-value | Test |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in section["comparisons"]:
        lines.append(
            f"| {c['method']} vs {c['baseline']} | {fmt['mean_std'](c['method_mean'], c['method_std'])} "
            f"| {fmt['mean_std'](c['baseline_mean'], c['baseline_std'])} | {c['method_n']} / {c['baseline_n']} "
            f"| {fmt['number'](c['improvement'], '+.2f')} | {fmt['number'](c['t'], '.3f')} "
            f"| {fmt['number'](c['df'], '.1f')} | {fmt['number'](c['p_value'], '.4f')} | {c['test']} |"
        )
    lines += ["", f"Improvement is positive when the first model is better ({direction})."]
    return lines
