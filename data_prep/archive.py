"""Safe download and extraction of corpus archives.

Why: corpora come as tar/zip files from mirrors we do not control. A crafted archive can write outside
the target folder (absolute paths, ``..``, symlinks or hard links pointing out, device files), and a
truncated or swapped download would otherwise be prepared and trained on for days. So every member is
checked before anything is written (tar uses Python's ``data`` extraction filter on top), and a download
is used only once its sha256 matches; a partial download (``<dest>.part``) is resumed where the server
allows it.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive member that would escape the target folder, or a download whose checksum differs."""


def sha256_of(path: str | os.PathLike) -> str:
    return digest_of(path, "sha256")


def digest_of(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file (``sha256``, or ``md5`` where a corpus publishes only that, e.g. OpenSLR 31)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str | None) -> str:
    """The file's sha256; raises ArchiveError if ``expected`` is given and differs."""
    actual = sha256_of(path)
    if expected and actual != expected.lower():
        raise ArchiveError(
            f"{path}: sha256 {actual} differs from the expected {expected}; the download is incomplete or "
            "not the official file: download it again"
        )
    return actual


def _check_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in path.parts:
        raise ArchiveError(f"{archive}: member {name!r} contains '..'; refusing to extract")


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> None:
    _check_name(archive, member.name)
    if member.isdev() or member.isfifo():
        raise ArchiveError(f"{archive}: member {member.name!r} is a device or fifo; refusing to extract")
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        # a symlink resolves from its own folder, a hard link from the archive root
        base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
        resolved: list[str] = []
        for part in (base / link).parts if not link.is_absolute() else ("/",):
            if part == "/":
                resolved = [".."]
                break
            if part == "..":
                if not resolved:
                    resolved = [".."]
                    break
                resolved.pop()
            elif part != ".":
                resolved.append(part)
        if resolved[:1] == [".."]:
            raise ArchiveError(
                f"{archive}: link {member.name!r} -> {member.linkname!r} points outside the target; "
                "refusing to extract"
            )


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract a .tar(.gz/.bz2/.xz) or .zip into ``target`` after checking every member.

    Raises ArchiveError (nothing written) if any member has an absolute path, ``..``, a link leading
    outside ``target``, or is a device/fifo.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_name(archive, info.filename)
                mode = (info.external_attr >> 16) & 0o170000
                if mode and mode not in (0o100000, 0o040000):  # only regular files and folders
                    raise ArchiveError(
                        f"{archive}: member {info.filename!r} is not a plain file (mode {oct(mode)}); "
                        "refusing to extract"
                    )
            zf.extractall(target)
        return target
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_tar_member(archive, member)
            tf.extractall(target, members=members, filter="data")
    except tarfile.TarError as err:  # includes the 'data' filter's own refusals
        raise ArchiveError(f"{archive}: cannot be extracted safely ({err}); re-download it") from err
    return target


def download_with_checksum(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    *,
    md5: str | None = None,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` and return it only if its sha256 (or, given instead, md5) matches.

    An existing ``dest`` with the right checksum is reused. The bytes go to ``<dest>.part`` first (resumed
    with an HTTP Range request when it exists and the server honours it) and are renamed into place only
    after verification, so ``dest`` never holds an unverified file. md5 is accepted only because some
    corpora publish nothing else; it detects damaged downloads, not deliberate substitution.
    """
    if (sha256 is None) == (md5 is None):
        raise ValueError("download_with_checksum: give exactly one of sha256= and md5=")
    algorithm, expected = ("sha256", sha256) if sha256 is not None else ("md5", md5)
    expected = expected.lower()
    dest = Path(dest)
    if dest.is_file() and digest_of(dest, algorithm) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if offset and digest_of(part, algorithm) == expected:  # complete, but the rename was interrupted
        os.replace(part, dest)
        return dest
    request = urllib.request.Request(url)
    if offset and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:  # 416: the .part is as long as the file (or longer), yet wrong
            raise
        part.unlink()
        return download_with_checksum(url, dest, sha256, md5=md5, progress=progress)
    with response:
        resumed = offset and getattr(response, "status", None) == 206
        size = response.headers.get("Content-Length")
        with (
            open(part, "ab" if resumed else "wb") as f,
            tqdm(total=int(size) + (offset if resumed else 0) if size else None, initial=offset if resumed else 0,
                 desc=dest.name, unit="B", unit_scale=True,
                 disable=not progress) as bar,
        ):  # fmt: skip
            for chunk in iter(lambda: response.read(CHUNK), b""):
                f.write(chunk)
                bar.update(len(chunk))
    actual = digest_of(part, algorithm)
    if actual != expected:
        part.unlink()
        raise ArchiveError(
            f"{url}: downloaded file has {algorithm} {actual}, expected {expected}; it was deleted. Try "
            "again, or check that the URL and the checksum in the recipe belong together"
        )
    os.replace(part, dest)
    return dest
