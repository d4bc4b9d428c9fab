"""A tiny NeuralTalk on the built-in captioning set (small CNN encoder pretrained briefly), exported
dense and compressed at 80%: `dsd-seq caption` on the image files, from a package alone, equals what the
evaluation path (cached features + CaptionTask.caption) decodes; `dsd-seq score --bleu` scores its output
as the task's evaluation does, and agrees with sacrebleu where both apply."""

import json
import shutil

import pytest
import torch
from PIL import Image

from data_prep.corpora.synth_captions import SynthCaptionsConfig
from dsd_seq.cli import main
from dsd_seq.experiments.caption_files import CaptionScoreError, score_caption_file
from dsd_seq.export import load_model
from dsd_seq.export.sparse_storage import expand_state
from dsd_seq.safe_io import load_safely
from models.captioning.caption_task import build_task
from tests.caption_fixtures import train_tiny_captioner


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_caption")
    corpus = SynthCaptionsConfig(num_train=40, num_val=6, num_test=8, seed=2)
    dataset, conf = train_tiny_captioner(
        root, corpus, pretrain_images=64, model_args="{embed_dim: 16, hidden: 16}", batch_size=16,
        schedule="D2:1e-2,S1@0.8:1e-3",
    )  # fmt: skip
    assert (
        main(["export", str(root / "exp"), "--phase", "2", "--compressed", "--out", str(root / "sparse")])
        == 0
    )
    return root, dataset, conf


def test_captions_of_image_files_equal_the_evaluation_path_from_a_package_alone(trained, tmp_path, capsys):
    root, dataset, _ = trained
    state = load_safely(root / "exp" / "checkpoints" / "phase2-end.pt")
    task = build_task(**state["config"]["task_args"])
    task.model.load_state_dict(state["model"])
    images, hyps = task.caption("test", torch.device("cpu"))
    expected = {im.image_id: " ".join(h) for im, h in zip(images, hyps, strict=True)}
    restored = expand_state(load_safely(root / "sparse" / "weights.pt")["model"])
    assert all(torch.equal(restored[k], v) for k, v in state["model"].items())
    # the package without the corpus, the encoder or the run; images as PNG and as BMP
    package = shutil.copytree(root / "sparse", tmp_path / "model")
    (tmp_path / "png").mkdir()
    (tmp_path / "bmp").mkdir()
    for im in images:
        shutil.copy(im.path, tmp_path / "png" / im.path.name)
        Image.open(im.path).save(tmp_path / "bmp" / im.path.name, format="BMP")  # BMP content, .png name
    hidden = root.with_name(root.name + "-hidden")
    root.rename(hidden)
    try:
        capsys.readouterr()
        assert main(["caption", str(package), str(tmp_path / "png")]) == 0
        png = capsys.readouterr().out
        bmp = load_model(package).caption(sorted((tmp_path / "bmp").iterdir()))
    finally:
        hidden.rename(root)
    got = dict(line.split(" ", 1) if " " in line else (line, "") for line in png.splitlines())
    assert got == expected and any(expected.values())
    assert bmp == [expected[name] for name in sorted(expected)]
    # scoring the printed file gives the task's own scores on the split, every metric
    (tmp_path / "hyp.txt").write_text(png)
    scored = score_caption_file(tmp_path / "hyp.txt", dataset, "test", meteor="off")
    own = task.evaluate("test", torch.device("cpu"))
    assert scored[0] == " ".join(f"BLEU-{n} {own[f'bleu{n}']:.2f}" for n in range(1, 5))
    assert scored[1] == f"ROUGE-L {own['rouge_l']:.2f} CIDEr-D {own['cider_d']:.2f}"
    assert scored[2].startswith("METEOR off")
    assert "scored 8 images" in scored[4] and "brevity penalty" in scored[3]


def test_an_unreadable_image_is_named_and_the_batch_goes_on(trained, tmp_path, capsys):
    root, dataset, _ = trained
    first = next((root / "corpus" / "images").iterdir())
    shutil.copy(first, tmp_path / "ok.png")
    (tmp_path / "broken.png").write_text("not an image")
    capsys.readouterr()
    assert (
        main(["caption", str(root / "sparse"), str(tmp_path / "ok.png"), str(tmp_path / "broken.png")]) == 1
    )
    out, err = capsys.readouterr()
    assert out.startswith("ok.png") and f"{tmp_path / 'broken.png'}: Pillow cannot read" in err
    assert "1 of 2 done, 1 failed" in err


def _karpathy(path, images):
    entries = [{"filename": name, "split": "test", "sentences": [{"tokens": r.split()} for r in refs]}
               for name, refs in images.items()]  # fmt: skip
    path.write_text(json.dumps({"images": entries}))


def test_bleu_file_scoring_agrees_with_sacrebleu_and_names_missing_images(tmp_path, capsys):
    sacrebleu = pytest.importorskip("sacrebleu", reason="sacrebleu (the dev extra) cross-checks BLEU")
    refs = {"a.jpg": ["a red circle on the left of a blue square", "the red ring sits beside a square"],
            "b.jpg": ["two green squares near the top edge", "a pair of green boxes at the top"],
            "c.jpg": ["a small yellow triangle in the middle", "one tiny yellow triangle in the centre"]}  # fmt: skip
    hyps = {"a.jpg": "a red circle beside a blue square", "b.jpg": "two green boxes at the top edge",
            "c.jpg": "a yellow triangle in the middle of it"}  # fmt: skip
    _karpathy(tmp_path / "dataset.json", refs)
    (tmp_path / "hyp.txt").write_text("".join(f"{k} {v}\n" for k, v in hyps.items()))
    capsys.readouterr()
    assert (
        main(
            ["score", "--bleu", "--hyp", str(tmp_path / "hyp.txt"), "--refs", str(tmp_path / "dataset.json")]
        )
        == 0
    )
    out = capsys.readouterr().out
    names = sorted(hyps)
    expected = sacrebleu.corpus_bleu([hyps[n] for n in names], [[refs[n][i] for n in names] for i in range(2)],
                                     tokenize="none", smooth_method="none")  # fmt: skip
    assert f"BLEU-4 {expected.score:.2f}" in out and f"brevity penalty {expected.bp:.4f}" in out
    assert "scored 3 images" in out and "smoothing: nltk method1" in out
    (tmp_path / "short.txt").write_text("a.jpg a red circle\nz.jpg something\n")
    with pytest.raises(CaptionScoreError, match=r"not in split 'test'.*z\.jpg"):
        score_caption_file(tmp_path / "short.txt", tmp_path / "dataset.json")
    (tmp_path / "short.txt").write_text("a.jpg a red circle\n")
    with pytest.raises(CaptionScoreError, match=r"no caption for 2 image\(s\).*b\.jpg"):
        score_caption_file(tmp_path / "short.txt", tmp_path / "dataset.json")


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (its data is one short row: a bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _gif_with_screen(width: int, height: int) -> bytes:
    """A GIF with a 1 x 1 image on a huge logical screen."""
    import struct

    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00" + b"\0\0\0\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    return screen + image + b"\x3b"


def test_decompression_bombs_are_named_and_skipped_and_the_rest_captioned(trained, tmp_path, capsys):
    root, _, _ = trained
    shutil.copy(next((root / "corpus" / "images").iterdir()), tmp_path / "ok.png")
    (tmp_path / "bomb.png").write_bytes(_png_claiming(20000, 20000))
    (tmp_path / "screen.gif").write_bytes(_gif_with_screen(65000, 65000))
    (tmp_path / "large.png").write_bytes(_png_claiming(9000, 9000))  # under Pillow's limit, over ours
    assert (tmp_path / "bomb.png").stat().st_size < 200
    capsys.readouterr()
    assert main(["caption", str(root / "sparse"), str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == ["ok.png"]
    for name in ("bomb.png", "screen.gif"):  # Pillow's own limit
        assert f"{tmp_path / name}: refused as a decompression bomb" in err
    assert f"{tmp_path / 'large.png'}: the image claims 9000 x 9000 pixels" in err
    assert "Traceback" not in err
    assert "1 of 4 done, 3 failed" in err
