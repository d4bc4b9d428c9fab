"""An epoch's batches as a lazy sequence: index lists in memory, each batch read and padded on access.

Why lazy: the trainer takes ``task.train_batches(generator, epoch)``, keeps every ``world``-th batch for
its rank (``distributed.shard`` slices the sequence) and indexes ``batches[i]`` from its resume position.
Holding only the batches' index lists (a few bytes per utterance) keeps memory independent of the corpus,
and because slicing returns another lazy sequence each rank reads the features of its own batches only.

The order comes from :mod:`data_prep.batching.bucketing` (length buckets under a frame budget, SortaGrad's sorted
first epoch) or :func:`data_prep.batching.speech_dataset.length_sorted_batches`, a pure function of the epoch's
generator; the trainer's checkpoint holds (phase, epoch, step), so resume reads exactly the same batches.

Bad data: ``load`` may drop an utterance whose features cannot be read (a truncated chunk file) and count
it in a :class:`SkippedUtterances`, which raises the read error once more than its limit are dropped (with
workers, each worker process counts its own share).

Loader workers (``num_workers`` > 0): a ``torch.utils.data.DataLoader`` over the remaining batches reads
ahead in worker processes (``prefetch_factor`` batches each) with pinned memory, while the trainer still
indexes in order; an out-of-order index restarts it there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch.utils.data import DataLoader, Dataset


class TooManyUnreadableError(ValueError):
    """More training utterances failed at read time than ``task_args.max_bad_fraction`` allows."""


class SkippedUtterances:
    """Counts utterances dropped at read time; raises once more than ``limit`` are dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.names: list[str] = []

    def skip(self, error: Exception, name: str) -> None:
        self.names.append(name)
        print(f"warning: skipped an unreadable training utterance: {error}", flush=True)
        if len(self.names) > self.limit:
            raise TooManyUnreadableError(
                f"{error} ({len(self.names)} unreadable training utterances, more than the {self.limit} allowed "
                f"by task_args.max_bad_fraction; e.g. {self.names[:5]})"
            ) from error


def read_items(
    read: Callable[[int], dict],
    indices: Sequence[int],
    names: Sequence[str],
    skipped: SkippedUtterances | None,
    errors: tuple[type[Exception], ...],
) -> list[dict]:
    """``read(i)`` of every index; with ``skipped``, those raising one of ``errors`` are left out and
    counted (evaluation passes None: nothing is skipped). A batch with nothing readable raises."""
    items, last_error = [], None
    for i in indices:
        try:
            items.append(read(i))
        except errors as err:
            if skipped is None:
                raise
            skipped.skip(err, names[i])
            last_error = err
    if not items:
        raise TooManyUnreadableError(
            f"no utterance of a batch of {len(indices)} can be read, e.g.: {last_error}"
        )
    return items


class LazyBatches(Sequence):
    """``load(indices)`` of each index list, computed when the batch is asked for (``load`` must be
    picklable when ``num_workers`` > 0: a bound method of a dataset is)."""

    def __init__(
        self,
        index_batches: Sequence[Sequence[int]],
        load: Callable[[Sequence[int]], Any],
        *,
        num_workers: int = 0,
        prefetch_factor: int = 2,
        pin_memory: bool = False,
    ) -> None:
        self.index_batches = list(index_batches)
        self.load = load
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self._iterator: Any = None
        self._next = -1

    def __len__(self) -> int:
        return len(self.index_batches)

    def __getitem__(self, item):
        if isinstance(item, slice):  # a rank's share: still lazy, same loader settings
            return LazyBatches(
                self.index_batches[item],
                self.load,
                num_workers=self.num_workers,
                prefetch_factor=self.prefetch_factor,
                pin_memory=self.pin_memory,
            )
        if item < 0:
            item += len(self)
        if not 0 <= item < len(self):
            raise IndexError(f"batch {item} of an epoch of {len(self)} batches")
        if self.num_workers == 0:
            return self.load(self.index_batches[item])
        if self._iterator is None or item != self._next:
            self._iterator = iter(self._loader(item))
        self._next = item + 1
        return next(self._iterator)

    def _loader(self, start: int) -> DataLoader:
        return DataLoader(
            _BatchesFrom(self, start),
            batch_size=None,  # items are whole batches already
            num_workers=self.num_workers,
            prefetch_factor=self.prefetch_factor,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )


class _BatchesFrom(Dataset):
    """The batches of ``batches`` from ``start`` on, read in the main process's order by workers."""

    def __init__(self, batches: LazyBatches, start: int) -> None:
        self.index_batches = batches.index_batches[start:]
        self.load = batches.load

    def __len__(self) -> int:
        return len(self.index_batches)

    def __getitem__(self, item: int) -> Any:
        return self.load(self.index_batches[item])
