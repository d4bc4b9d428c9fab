"""A small word bigram language model in ARPA format, estimated from transcripts.

Why: the LM decoder (:mod:`models.speech.ctc_lm_decoder`) reads ARPA files, and a recipe or a test needs an LM
without KenLM's ``lmplz`` being installed. Absolute discounting (D = 0.5, Ney et al. 1994) with backoff to
the unigrams; good enough for small closed-vocabulary corpora. For real corpora build a KenLM model.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from dsd_seq.safe_io import write_atomic

DISCOUNT = 0.5


def write_bigram_arpa(texts: Iterable[str], out_path: str | Path) -> Path:
    """Estimate a bigram model from ``texts`` (one sentence each) and write it as an ARPA file."""
    sentences = [["<s>", *t.split(), "</s>"] for t in texts if t.split()]
    if not sentences:
        raise ValueError("write_bigram_arpa: no non-empty transcript to estimate a language model from")
    unigrams = Counter(w for s in sentences for w in s[1:])
    history = Counter(w for s in sentences for w in s[:-1])
    bigrams = Counter(pair for s in sentences for pair in zip(s, s[1:], strict=False))
    total = sum(unigrams.values())
    followers = Counter(w1 for w1, _ in bigrams)
    lines = ["", "\\data\\", f"ngram 1={len(unigrams) + 1}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    for word in ["<s>", *sorted(unigrams)]:
        prob = f"{math.log10(unigrams[word] / total):.6f}" if word != "<s>" else "-99"
        backoff = DISCOUNT * followers[word] / history[word] if history[word] else 0.0
        lines.append(f"{prob}\t{word}" + (f"\t{math.log10(backoff):.6f}" if backoff else ""))
    lines += ["", "\\2-grams:"]
    for (w1, w2), count in sorted(bigrams.items()):
        lines.append(f"{math.log10((count - DISCOUNT) / history[w1]):.6f}\t{w1} {w2}")
    lines += ["", "\\end\\", ""]
    out_path = Path(out_path)
    write_atomic(out_path, "\n".join(lines).encode("utf-8"))
    return out_path


def main(argv: list[str] | None = None) -> int:
    """``python -m data_prep.text.ngram_lm --text DATA_DIR/text --out LM.arpa``: a recipe's LM stage."""
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.text.ngram_lm",
        description="Write a word bigram LM (ARPA) from a Kaldi text file (<utt-id> <words>) or plain lines.",
    )
    parser.add_argument("--text", type=Path, required=True, help="a Kaldi data dir's text file")
    parser.add_argument("--out", type=Path, required=True, help="the ARPA file to write")
    parser.add_argument("--plain", action="store_true", help="the lines are sentences, with no utterance id")
    args = parser.parse_args(argv)
    try:
        lines = args.text.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        print(f"error: {args.text}: cannot read the transcripts ({err.strerror})", file=sys.stderr)
        return 1
    texts = [line if args.plain else line.partition(" ")[2] for line in lines]
    try:
        write_bigram_arpa(texts, args.out)
    except ValueError as err:
        print(f"error: {args.text}: {err}", file=sys.stderr)
        return 1
    print(f"{args.out}: bigram LM from {len(texts)} transcripts of {args.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
