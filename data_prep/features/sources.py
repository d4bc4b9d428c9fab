"""A split's features by the path a config names: a store directory, or a Kaldi data dir read on the fly.

``task_args.data`` names one path a split. Both kinds answer the same questions (ids, transcripts, frame
counts, ``manifest``, ``read``), so the speech dataset never asks which it has. A ``.pt`` file is a
whole-split cache of before the one store: it is refused with the command that writes its store.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from data_prep.features.extraction import FeatureConfig
from data_prep.features.onthefly import OnTheFlyFeatures, is_data_dir
from data_prep.features.store import FeatureStore, FeatureStoreError, rebuild_hint

FeatureSource = FeatureStore | OnTheFlyFeatures


def open_features(
    path: str | os.PathLike, on_the_fly: FeatureConfig | None = None, speed_factors: Sequence[float] = ()
) -> FeatureSource:
    """The store at ``path``, or a Kaldi data dir whose features are computed as ``on_the_fly`` says
    (default :class:`FeatureConfig`), with a copy of each utterance per speed factor."""
    path = Path(path)
    if is_data_dir(path):
        return OnTheFlyFeatures(path, on_the_fly or FeatureConfig(), speed_factors)
    if path.is_file() and path.suffix == ".pt":
        store = path.with_suffix("")
        if (store / "manifest.json").is_file():
            fix = f"name the store {store} the feature stage wrote instead"
        else:
            fix = rebuild_hint(store).replace("rebuild it", "write its store") + ", and name that directory"
        raise FeatureStoreError(
            f"{path}: a whole-split feature cache (torch.save), which is no longer read: every split's features "
            f"are a store directory now; {fix} in task_args.data"
        )
    return FeatureStore(path)
