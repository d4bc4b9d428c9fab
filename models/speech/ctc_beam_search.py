"""CTC prefix beam search (Graves 2012, Sec. 7.4; Hannun et al. 2014) without a language model.

Why our own: greedy (best path) decoding, which the paper scores, picks the likeliest frame path; the
prefix search sums every path that collapses to the same label sequence, so it finds the likeliest
*sequence* when enough prefixes are kept. Small and pure PyTorch/Python, so it runs wherever the model does;
an n-gram language model is :mod:`models.speech.ctc_lm_decoder`'s job.

Each prefix carries two log probabilities: of the paths ending in a blank and of those ending in its last
label. A repeated label extends a prefix only after a blank; otherwise it merges into the same prefix.
"""

from __future__ import annotations

import math

from torch import Tensor

_NEG_INF = -math.inf


def _logadd(*values: float) -> float:
    top = max(values)
    if top == _NEG_INF:
        return _NEG_INF
    return top + math.log(sum(math.exp(v - top) for v in values))


def _adder(beams: dict[tuple[int, ...], list[float]]):
    """``add(prefix, p_blank, p_label)``: log-add path probabilities into ``beams[prefix]``."""

    def add(prefix: tuple[int, ...], p_blank: float, p_label: float) -> None:
        if p_blank == p_label == _NEG_INF:  # no path reaches it (e.g. a repeat with no blank between)
            return
        entry = beams.setdefault(prefix, [_NEG_INF, _NEG_INF])
        entry[0], entry[1] = _logadd(entry[0], p_blank), _logadd(entry[1], p_label)

    return add


def prefix_beam_search(
    log_probs: Tensor, beam_size: int = 8, blank: int = 0
) -> list[tuple[tuple[int, ...], float]]:
    """The best ``beam_size`` label sequences of one utterance's ``log_probs[T, C]``, with their log
    probabilities (summed over every path that collapses to them), best first.

    At each frame only the ``beam_size`` likeliest labels (and the blank) extend a prefix.
    """
    if beam_size < 1:
        raise ValueError(f"prefix_beam_search: beam_size must be >= 1, got {beam_size}")
    if log_probs.dim() != 2:
        raise ValueError(f"prefix_beam_search: log_probs must be [T, C], got {tuple(log_probs.shape)}")
    frames = log_probs.detach().float().cpu()
    num_labels = frames.shape[1]
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG_INF)}  # prefix -> (blank, label)
    for frame in frames:
        candidates = frame.topk(min(beam_size, num_labels)).indices.tolist()
        row = frame.tolist()
        nxt: dict[tuple[int, ...], list[float]] = {}
        add = _adder(nxt)
        for prefix, (p_b, p_nb) in beams.items():
            add(prefix, _logadd(p_b, p_nb) + row[blank], _NEG_INF)
            last = prefix[-1] if prefix else None
            for c in candidates:
                if c == blank:
                    continue
                if c == last:
                    add(prefix, _NEG_INF, p_nb + row[c])  # the label continues: same prefix
                    add(prefix + (c,), _NEG_INF, p_b + row[c])  # a new label after a blank
                else:
                    add(prefix + (c,), _NEG_INF, _logadd(p_b, p_nb) + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: (-_logadd(*kv[1]), kv[0]))[:beam_size]
        beams = {prefix: (p[0], p[1]) for prefix, p in ranked}
    ranked = sorted(beams.items(), key=lambda kv: (-_logadd(*kv[1]), kv[0]))
    return [(prefix, _logadd(*p)) for prefix, p in ranked]


def beam_decode(
    log_probs: Tensor, output_lengths: Tensor, beam_size: int = 8, blank: int = 0
) -> list[list[int]]:
    """The best label sequence of each utterance of ``log_probs[B, T, C]`` (cf. ``ctc.greedy_decode``)."""
    return [
        list(prefix_beam_search(lp[:length], beam_size, blank)[0][0])
        for lp, length in zip(log_probs, output_lengths.cpu().tolist(), strict=True)
    ]
