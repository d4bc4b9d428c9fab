"""Flickr8k preparation on a tiny archive in the real layout, and safe extraction of crafted archives."""

import io
import json
import tarfile
import zipfile

import pytest
from PIL import Image

from data_prep.corpora.archive import ArchiveError, extract_archive, sha256_of
from data_prep.corpora.flickr import prepare
from data_prep.corpora.karpathy import load_karpathy


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="JPEG")
    return buf.getvalue()


def test_prepare_flickr8k_from_the_real_archive_layout(tmp_path):
    images = tmp_path / "Flickr8k_Dataset.zip"
    with zipfile.ZipFile(images, "w") as z:
        for name in ("1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg"):
            z.writestr(f"Flicker8k_Dataset/{name}", _jpeg())
    dataset = {"dataset": "flickr8k", "images": [
        {"filename": "1000268201_693b08cb0e.jpg", "imgid": 0, "split": "train", "sentids": [0],
         "sentences": [{"tokens": ["a", "child", "in", "pink"], "raw": "A child in pink .", "imgid": 0, "sentid": 0}]},
        {"filename": "1001773457_577c3a7d70.jpg", "imgid": 1, "split": "test", "sentids": [1],
         "sentences": [{"tokens": ["a", "black", "dog"], "raw": "A black dog .", "imgid": 1, "sentid": 1}]},
    ]}  # fmt: skip
    captions = tmp_path / "caption_datasets.zip"
    with zipfile.ZipFile(captions, "w") as z:
        z.writestr("dataset_flickr8k.json", json.dumps(dataset))
    path = prepare("flickr8k", images, captions, tmp_path / "out", images_sha256=sha256_of(images))
    data = load_karpathy(path)
    assert [im.path.is_file() for im in data.images] == [True, True]
    with pytest.raises(ArchiveError, match="sha256"):
        prepare("flickr8k", images, captions, tmp_path / "out2", images_sha256="0" * 64)


@pytest.mark.parametrize("name", ["/etc/evil", "../evil", "a/../../evil"])
def test_zip_with_path_outside_the_target_is_refused(tmp_path, name):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(ArchiveError, match="refusing to extract"):
        extract_archive(archive, tmp_path / "target")
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
def test_tar_with_member_or_link_outside_the_target_is_refused(tmp_path, kind):
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as t:
        info = tarfile.TarInfo({"absolute": "/tmp/evil", "dotdot": "../evil", "symlink": "link"}[kind])
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            t.addfile(info)
        else:
            info.size = 1
            t.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArchiveError, match="refusing to extract"):
        extract_archive(archive, tmp_path / "target")
    assert not (tmp_path / "evil").exists()


def test_the_command_names_a_refused_archive_in_one_line(tmp_path, capsys):
    from data_prep.corpora.flickr import main

    archive = tmp_path / "Flickr8k_Dataset.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(zipfile.ZipInfo("../evil.jpg"), b"x")
    captions = tmp_path / "dataset_flickr8k.json"
    captions.write_text(json.dumps({"images": []}))
    argv = ["--images-archive", str(archive), "--captions", str(captions), "--out", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "refusing to extract" in err and "Traceback" not in err
    assert not (tmp_path / "evil.jpg").exists()
