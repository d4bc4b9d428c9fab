"""The subword-units stage: SentencePiece units learned from the transcripts of a training feature store.

It reads the store's manifest, so the units see exactly the normalised transcripts the labels are encoded
from (:mod:`data_prep.text.subword_units` learns and applies them). Speed-perturbed copies repeat every
transcript equally often, so they leave the units unchanged.
"""

from __future__ import annotations

import argparse
import sys

from data_prep.features.sources import open_features
from data_prep.features.store import FeatureStoreError
from data_prep.text.subword_units import UNIT_TYPES, SubwordUnitsError, train_units


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.features.learn_units",
        description="Train SentencePiece units on the transcripts of a training feature store.",
    )
    parser.add_argument(
        "--store", "--cache", required=True, help="the training feature store (python -m data_prep.features)"
    )
    parser.add_argument("--type", default="bpe", choices=UNIT_TYPES, help="SentencePiece model type")
    parser.add_argument("--vocab-size", type=int, default=100, help="number of pieces (blank not counted)")
    parser.add_argument("--out", required=True, help="the .model file to write")
    args = parser.parse_args(argv)
    try:
        texts = open_features(args.store).texts
        vocab = train_units(texts, args.out, args.type, args.vocab_size)
    except (FeatureStoreError, SubwordUnitsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(vocab) - 1} {args.type} units from {len(texts)} transcripts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
