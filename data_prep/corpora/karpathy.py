"""Reader of Karpathy's caption split files (``dataset_flickr8k.json``, ``dataset_flickr30k.json``,
``dataset_coco.json``) and the word vocabulary built from them.

Why this format: NeuralTalk (the model of the paper's Sec. 4.3) was trained on these files, and they fix
the train/val/test images everyone reports on (Flickr8k: 6,000/1,000/1,000). The built-in synthetic set
(:mod:`data_prep.corpora.synth_captions`) is written in the same layout, so one reader serves both.

Data problems are skipped and counted, never silently dropped: an empty caption is left out (the image
keeps its others); an image left with no caption is left out. A structural problem (a missing field) is an
error naming the image, since it means the file is not a Karpathy split file.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
#: Karpathy's split names -> the task's split names; "restval" (COCO) joins training as in NeuralTalk.
SPLIT_NAMES = {"train": "train", "restval": "train", "val": "dev", "test": "test"}


class KarpathyFormatError(ValueError):
    """The file is not a Karpathy split file: the message names the image and the missing field."""


@dataclass
class CaptionImage:
    image_id: str  # unique within the file: "<filepath>/<filename>"
    path: Path  # the image file (may not exist: checked when features are extracted)
    split: str  # train | dev | test
    captions: list[list[str]]  # tokenised reference captions


@dataclass
class KarpathyData:
    images: list[CaptionImage]
    problems: dict[str, int] = field(default_factory=dict)  # kind -> count
    examples: dict[str, list[str]] = field(default_factory=dict)  # kind -> a few items

    def split(self, name: str) -> list[CaptionImage]:
        return [im for im in self.images if im.split == name]


def _tokens(sentence: dict) -> list[str]:
    if isinstance(sentence.get("tokens"), list):
        return [str(t).lower() for t in sentence["tokens"] if str(t).strip()]
    raw = str(sentence.get("raw", ""))
    return "".join(c if c.isalnum() or c in " '" else " " for c in raw.lower()).split()


def load_karpathy(json_path: str | Path, image_root: str | Path | None = None) -> KarpathyData:
    """Read a split file. Image paths are ``image_root / filepath / filename`` (``filepath`` is COCO's
    ``train2014``/``val2014``; Flickr has none); ``image_root`` defaults to the JSON's folder ``images``."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise FileNotFoundError(
            f"{json_path} does not exist; prepare the corpus first (see the recipe's stage 0)"
        )
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise KarpathyFormatError(f"{json_path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise KarpathyFormatError(
            f"{json_path}: expected an object with an 'images' list (Karpathy split file)"
        )
    root = Path(image_root) if image_root is not None else json_path.parent / "images"
    out = KarpathyData(images=[])
    seen: set[str] = set()

    def problem(kind: str, item: str) -> None:
        out.problems[kind] = out.problems.get(kind, 0) + 1
        out.examples.setdefault(kind, [])
        if len(out.examples[kind]) < 5:
            out.examples[kind].append(item)

    for index, entry in enumerate(data["images"]):
        name = entry.get("filename") if isinstance(entry, dict) else None
        where = f"{json_path}: image #{index}" + (f" ({name})" if name else "")
        for key in ("filename", "split", "sentences"):
            if not isinstance(entry, dict) or key not in entry:
                raise KarpathyFormatError(
                    f"{where} has no '{key}' field; is this a Karpathy dataset_*.json file?"
                )
        if entry["split"] not in SPLIT_NAMES:
            raise KarpathyFormatError(f"{where}: split {entry['split']!r}; accepted: {sorted(SPLIT_NAMES)}")
        if not isinstance(entry["sentences"], list):
            raise KarpathyFormatError(
                f"{where}: 'sentences' must be a list of {{'tokens': [...], 'raw': ...}}"
            )
        image_id = f"{entry.get('filepath', '')}/{name}".lstrip("/")
        if image_id in seen:
            problem("duplicate_image", image_id)
            continue
        seen.add(image_id)
        captions = []
        for sentence in entry["sentences"]:
            if not isinstance(sentence, dict) or ("tokens" not in sentence and "raw" not in sentence):
                raise KarpathyFormatError(f"{where}: a sentence has neither 'tokens' nor 'raw'")
            tokens = _tokens(sentence)
            if tokens:
                captions.append(tokens)
            else:
                problem("empty_caption", image_id)
        if not captions:
            problem("image_without_captions", image_id)
            continue
        path = root / entry.get("filepath", "") / name
        out.images.append(CaptionImage(image_id, path, SPLIT_NAMES[entry["split"]], captions))
    return out


@dataclass(frozen=True)
class WordVocab:
    """Words by index: 0 <pad>, 1 <bos>, 2 <eos>, 3 <unk>, then words by falling count (ties by spelling,
    so the order never depends on hashing)."""

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.words[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"WordVocab: the first words must be {SPECIALS}")
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.words)})

    @classmethod
    def build(cls, captions: list[list[str]], min_count: int = 5) -> WordVocab:
        """NeuralTalk keeps words seen at least ``min_count`` times in training (5 on Flickr8k)."""
        counts = Counter(t for caption in captions for t in caption)
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
            key=lambda w: (-counts[w], w),
        )
        return cls((*SPECIALS, *kept))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list[str], max_length: int) -> tuple[list[int], bool]:
        """Word ids of at most ``max_length`` words (unknown words -> <unk>) and whether it was cut."""
        ids = [self._index.get(t, 3) for t in tokens]
        return ids[:max_length], len(ids) > max_length

    def decode(self, ids: list[int]) -> list[str]:
        out = []
        for i in ids:
            if i == 2:
                break
            if i > 2:
                out.append(self.words[i])
        return out

    def to_list(self) -> list[str]:
        return list(self.words)
