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

from data_prep.corpora.archive import ArchiveError, download_with_checksum, extract_archive


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


# --- links judged by where they really lead (the CVE-2025-4517 class) ---------------------------------


def _sym(name, target):
    return ({"name": name, "type": tarfile.SYMTYPE, "linkname": target}, None)


def _dir(name):
    return ({"name": name, "type": tarfile.DIRTYPE}, None)


def _file(name, data=b"pwned"):
    return ({"name": name}, data)


def _path_max_chain(through_short_links: bool):
    """The CVE-2025-4517 pattern: short links to folders with 247-character names, so the real path of
    the last link is longer than PATH_MAX and a resolver that gives up there judges its ``..`` lexically.
    The deep link is named through the short links (as in the published exploit) or by its real path."""
    long_name, letters, path = "d" * 247, "abcdefghijklmnop", ""
    members = []
    for letter in letters:
        members += [_dir(f"{path}{long_name}"), _sym(f"{path}{letter}", long_name)]
        path += f"{long_name}/"
    deep = ("/".join(letters) + "/" if through_short_links else path) + "l" * 254
    members.append(_sym(deep, "../" * len(letters)))  # back to the root, through the real (long) path
    members.append(_sym("escape", deep + "/.."))  # one level above the root
    if through_short_links:
        members.append(_file("escape/outside.txt"))  # the published exploit's last step
    return members


HOSTILE_TARS = {
    "chain longer than PATH_MAX": (_path_max_chain(through_short_links=True), "through the link 'a'"),
    "chain longer than PATH_MAX, real names": (
        _path_max_chain(through_short_links=False),
        "'escape' is a link to .* which points outside",
    ),
    "chain that looks inside lexically": (
        [_dir("a/b"), _sym("a/b/up", "../.."), _sym("a/b/l2", "up/.."), _file("ok.txt")],
        "'a/b/l2' is a link to 'up/..', which points outside",
    ),
    "chain that looks inside lexically, then a file through it": (
        [_dir("a/b"), _sym("a/b/up", "../.."), _sym("a/b/l2", "up/.."), _file("a/b/l2/outside.txt")],
        "through the link 'a/b/l2'",
    ),
    "link to the root, then a file through it": (
        [_sym("here", "."), _file("here/x.txt")],
        "through the link",
    ),
    "link through a link, then up": (
        [_dir("sub"), _sym("l", "sub"), _sym("sub2", "l/../.."), _file("ok.txt")],
        "outside",
    ),
    "absolute link at the end of a chain": (
        [_sym("a", "b"), _sym("b", "/etc")],
        "outside",
    ),
    "hard link through a symlink": (
        [
            _file("data/x.txt", b"x"),
            _sym("alias", "data"),
            ({"name": "h", "type": tarfile.LNKTYPE, "linkname": "alias/x.txt"}, None),
        ],
        "not a file extracted earlier",
    ),
    "hard link to a file outside": (
        [({"name": "h", "type": tarfile.LNKTYPE, "linkname": "/etc/passwd"}, None)],
        "points outside",
    ),
    "links in a loop": ([_sym("a", "b"), _sym("b", "a")], "cannot be proved"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_link_chains_are_refused_before_anything_is_written(tmp_path, case):
    members, message = HOSTILE_TARS[case]
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT) as tf:
        for fields, data in members:
            info = tarfile.TarInfo(fields["name"])
            for key, value in fields.items():
                if key != "name":
                    setattr(info, key, value)
            info.size = len(data) if data is not None else 0
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    work = tmp_path / "work"
    out = work / "out"
    with pytest.raises(ArchiveError, match=message):
        extract_archive(archive, out)
    assert not list(out.iterdir())
    assert sorted(p.name for p in work.iterdir()) == ["out"]  # nothing beside the target either


def test_links_that_stay_inside_are_extracted_and_files_are_never_written_through_them(tmp_path):
    archive = _tar(
        tmp_path / "ok.tar.gz",
        [
            _file("data/v1/a.txt", b"hello"),
            _sym("data/latest", "v1"),
            _sym("current", "data/latest"),  # a chain, inside all along
            _sym("data/v1/back", "../latest/a.txt"),
            ({"name": "copy.txt", "type": tarfile.LNKTYPE, "linkname": "data/v1/a.txt"}, None),
        ],
    )
    out = extract_archive(archive, tmp_path / "out")
    assert (out / "current" / "a.txt").read_bytes() == b"hello"
    assert (out / "data" / "v1" / "back").read_bytes() == b"hello"
    assert (out / "copy.txt").read_bytes() == b"hello"
    (out / "copy.txt").write_bytes(b"changed")  # a hard link is extracted as its own copy
    assert (out / "data" / "v1" / "a.txt").read_bytes() == b"hello"


def test_a_link_already_in_the_target_is_never_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(outside)  # left by someone else, pointing out
    tar = _tar(tmp_path / "t.tar.gz", [_file("sub/evil.txt")])
    with pytest.raises(ArchiveError, match="through the link"):
        extract_archive(tar, out)
    zip_path = tmp_path / "z.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("sub/evil.txt", b"pwned")
    with pytest.raises(ArchiveError, match="through the link"):
        extract_archive(zip_path, out)
    chain = _tar(tmp_path / "c.tar.gz", [_sym("x", "sub/..")])
    with pytest.raises(ArchiveError, match="outside|cannot be proved"):
        extract_archive(chain, out)
    assert not list(outside.iterdir())


def test_a_member_replacing_an_existing_file_or_link_does_not_follow_it(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").symlink_to(outside)  # a file member of that name replaces the link, not its target
    extract_archive(_tar(tmp_path / "t.tar.gz", [_file("a.txt", b"new")]), out)
    assert not (out / "a.txt").is_symlink() and (out / "a.txt").read_bytes() == b"new"
    assert outside.read_bytes() == b"keep"


def test_a_zip_with_a_damaged_central_directory_or_member_is_an_archive_error(tmp_path):
    import zipfile

    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", "hello " * 200)
    data = bytearray(good.read_bytes())
    directory = data.rfind(b"PK\x01\x02")
    damaged = tmp_path / "directory.zip"
    damaged.write_bytes(bytes(data[:directory] + b"XX" + data[directory + 2 :]))
    member = tmp_path / "member.zip"
    body = bytearray(data)
    body[40:60] = b"\xff" * 20  # inside the deflated data of a.txt
    member.write_bytes(bytes(body))
    for archive in (damaged, member):
        with pytest.raises(ArchiveError, match=f"{archive.name}: cannot be extracted"):
            extract_archive(archive, tmp_path / archive.stem)
