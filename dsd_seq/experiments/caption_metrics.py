"""The captioning field's metrics beside the paper's BLEU: CIDEr-D, ROUGE-L and (where Java runs) METEOR.

Captioning results have been reported with the COCO caption evaluation since neuraltalk2; CIDEr-D is the
metric self-critical training optimises. The scorers are ``pycocoevalcap``'s own (the maintained pip
package of coco-caption): its CIDEr (which is CIDEr-D: Gaussian length penalty, sigma 6, clipped n-gram
counts, x10), ROUGE-L (beta 1.2, the mean of sentence scores) and METEOR 1.5 (a Java program). Its PTB
tokenizer is Java too; :mod:`ptb_caption_tokenizer` gives the same tokens in Python, so CIDEr-D and
ROUGE-L need no Java. As in coco-caption, CIDEr-D's document frequencies come from the references of the
split being scored, so a split's CIDEr-D is not the mean of its parts'.

BLEU-1..4 stay nltk's on the split file's tokens (:mod:`bleu`, the paper's Table 5 columns), so they do not
move. Every score is on 0-100 (coco-caption's CIDEr-D 1.17 is 117 here), as captioning tables print them.

METEOR starts a 2 GB Java process (about 10 s, once per scorer), so it is a choice: ``off``, ``auto``
(scored where ``java`` is on PATH, otherwise skipped and said so) or ``on`` (an error without Java).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from dsd_seq.experiments.bleu import corpus_bleu_1_to_4
from dsd_seq.experiments.ptb_caption_tokenizer import tokenize_caption

#: every caption metric's key, in the order tables print them; all are higher-is-better
CAPTION_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider_d")
METEOR_CHOICES = ("off", "auto", "on")
NO_JAVA = (
    "METEOR skipped: no Java runtime ('java' is not on PATH); install one (e.g. apt install "
    "default-jre-headless) to score it. BLEU, ROUGE-L and CIDEr-D need no Java."
)


class MeteorUnavailable(ValueError):
    """METEOR could not be scored here; the message says why and what to install."""


def meteor_skip_reason(choice: str) -> str | None:
    """Why METEOR will not be scored with ``choice`` (None: it will); raises for ``on`` without Java."""
    if choice not in METEOR_CHOICES:
        raise ValueError(f"meteor must be one of {', '.join(METEOR_CHOICES)}, got {choice!r}")
    if choice == "off":
        return "METEOR off (meteor: auto or on scores it; it starts a 2 GB Java process)"
    if shutil.which("java") is None:
        if choice == "on":
            raise MeteorUnavailable(NO_JAVA.replace("METEOR skipped", "meteor: on, but METEOR cannot run"))
        return NO_JAVA
    return None


class MeteorScorer:
    """One METEOR 1.5 Java process, started on first use and reused (its start is the slow part)."""

    def __init__(self) -> None:
        self._meteor = None

    def score(self, references: dict[int, list[str]], hypotheses: dict[int, list[str]]) -> float:
        try:
            if self._meteor is None:
                from pycocoevalcap.meteor.meteor import Meteor

                self._meteor = Meteor()
            value, _ = self._meteor.compute_score(references, hypotheses)
        except (OSError, ValueError) as err:  # java missing or the process died (no score line came)
            self._meteor = None
            raise MeteorUnavailable(
                f"METEOR failed: its Java process gave no score ({err}); a run can resume with "
                "task_args.meteor: off, and dsd-seq score with --meteor off"
            ) from None
        return 100.0 * float(value)


def coco_caption_scores(
    references: Sequence[Sequence[str]],
    hypotheses: Sequence[str],
    meteor: MeteorScorer | None = None,
) -> dict[str, float]:
    """CIDEr-D and ROUGE-L (and METEOR with a ``meteor`` scorer) of raw captions: ``references[i]`` the
    reference texts of image i, ``hypotheses[i]`` its caption; both are PTB-tokenised here."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if len(references) != len(hypotheses):
        raise ValueError(
            f"caption metrics: {len(references)} reference sets for {len(hypotheses)} hypotheses"
        )
    if not hypotheses:
        raise ValueError("caption metrics: no hypotheses to score")
    refs = {i: [" ".join(tokenize_caption(r)) for r in rs] for i, rs in enumerate(references)}
    hyps = {i: [" ".join(tokenize_caption(h))] for i, h in enumerate(hypotheses)}
    for i, texts in refs.items():
        if not any(texts):
            raise ValueError(f"caption metrics: image #{i} has no non-empty reference")
    scores = {
        "rouge_l": 100.0 * float(Rouge().compute_score(refs, hyps)[0]),
        "cider_d": 100.0 * float(Cider().compute_score(refs, hyps)[0]),
    }
    if meteor is not None:
        scores["meteor"] = meteor.score(refs, hyps)
    return scores


def caption_scores(
    references: Sequence[Sequence[Sequence[str]]],
    hypotheses: Sequence[Sequence[str]],
    meteor: MeteorScorer | None = None,
    reference_texts: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """BLEU-1..4 (nltk, on these tokens), CIDEr-D, ROUGE-L and, with a scorer, METEOR of tokenised captions;
    the keys of :data:`CAPTION_METRICS`, on 0-100. The COCO metrics score the PTB tokens of
    ``reference_texts`` (the raw sentences, as coco-caption) where given, else of the same words."""
    bleu = corpus_bleu_1_to_4([list(map(list, r)) for r in references], [list(h) for h in hypotheses])
    texts = reference_texts or [[" ".join(r) for r in refs] for refs in references]
    coco = coco_caption_scores(texts, [" ".join(h) for h in hypotheses], meteor)
    scores = bleu | coco
    return {key: scores[key] for key in CAPTION_METRICS if key in scores}
