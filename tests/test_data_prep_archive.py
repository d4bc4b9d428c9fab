"""Archive extraction refuses members that escape the target; downloads are used only when verified."""

import functools
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from data_prep.archive import ArchiveError, download_with_checksum, extract_archive


def _tar(path, members):
    """members: (TarInfo kwargs, bytes or None)."""
    with tarfile.open(path, "w:gz") as tf:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_a_plain_tar_is_extracted_with_its_inner_links(tmp_path):
    archive = _tar(
        tmp_path / "ok.tar.gz",
        [
            ({"name": "corpus/a.txt"}, b"hello"),
            ({"name": "corpus/b.txt", "type": tarfile.SYMTYPE, "linkname": "a.txt"}, None),
        ],
    )
    out = extract_archive(archive, tmp_path / "out")
    assert (out / "corpus" / "a.txt").read_bytes() == b"hello"
    assert (out / "corpus" / "b.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ({"name": "/etc/evil"}, "absolute path"),
        ({"name": "corpus/../../evil"}, r"contains '\.\.'"),
        ({"name": "corpus/link", "type": tarfile.SYMTYPE, "linkname": "../../etc/passwd"}, "points outside"),
        ({"name": "corpus/abs", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "points outside"),
        ({"name": "corpus/hard", "type": tarfile.LNKTYPE, "linkname": "../outside"}, "points outside"),
        ({"name": "corpus/dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "device"),
    ],
)
def test_a_crafted_tar_is_refused_before_anything_is_written(tmp_path, member, message):
    data = b"x" if member.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else None
    archive = _tar(tmp_path / "evil.tar.gz", [({"name": "corpus/good.txt"}, b"ok"), (member, data)])
    with pytest.raises(ArchiveError, match=message):
        extract_archive(archive, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("../evil.txt", 0o100644, r"'\.\.'"),
        ("/tmp/evil.txt", 0o100644, "absolute"),
        ("ln", 0o120777, "plain"),
    ],
)
def test_a_crafted_zip_is_refused(tmp_path, name, mode, message):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good.txt", b"ok")
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        zf.writestr(info, b"/etc/passwd")
    with pytest.raises(ArchiveError, match=message):
        extract_archive(archive, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


def test_a_plain_zip_is_extracted(tmp_path):
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("corpus/a.txt", b"hello")
    assert (extract_archive(archive, tmp_path / "out") / "corpus" / "a.txt").read_bytes() == b"hello"


def test_download_is_used_only_when_its_checksum_matches(tmp_path):
    source = tmp_path / "corpus.tar.gz"
    source.write_bytes(b"corpus bytes" * 1000)
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = download_with_checksum(source.as_uri(), tmp_path / "dl" / "corpus.tar.gz", good)
    assert dest.read_bytes() == source.read_bytes()
    with pytest.raises(ArchiveError, match="expected 0000"):
        download_with_checksum(source.as_uri(), tmp_path / "dl2" / "corpus.tar.gz", "0" * 64)
    assert not list((tmp_path / "dl2").iterdir())  # neither the file nor its .part


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files honouring ``Range: bytes=N-`` as a real mirror does: 206 with the rest, 416 past the end."""

    requests: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        RangeHandler.requests.append(self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return self.send_error(404)
        data = path.read_bytes()
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        if start >= len(data) and start:
            return self.send_error(416)
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def mirror(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    payload = bytes(range(256)) * 400
    (served / "c.bin").write_bytes(payload)
    handler = functools.partial(RangeHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    RangeHandler.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}", payload
    server.shutdown()


def test_download_over_http_resumes_a_partial_file(mirror, tmp_path):
    url, payload = mirror
    dest = tmp_path / "dl" / "c.bin"
    dest.parent.mkdir()
    (dest.parent / "c.bin.part").write_bytes(payload[:1000])  # an earlier, interrupted download
    download_with_checksum(f"{url}/c.bin", dest, hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert RangeHandler.requests == ["bytes=1000-"]  # only the missing part was fetched


def test_a_complete_part_file_is_used_without_downloading_again(mirror, tmp_path):
    url, payload = mirror
    dest = tmp_path / "dl" / "c.bin"
    dest.parent.mkdir()
    (dest.parent / "c.bin.part").write_bytes(payload)  # killed after the last byte, before the rename
    download_with_checksum(f"{url}/missing.bin", dest, hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload and RangeHandler.requests == []


def test_a_full_length_but_wrong_part_file_is_downloaded_again(mirror, tmp_path):
    url, payload = mirror
    dest = tmp_path / "dl" / "c.bin"
    dest.parent.mkdir()
    (dest.parent / "c.bin.part").write_bytes(b"x" * len(payload))  # the server answers 416 to its Range
    download_with_checksum(f"{url}/c.bin", dest, hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert RangeHandler.requests == [f"bytes={len(payload)}-", ""]
