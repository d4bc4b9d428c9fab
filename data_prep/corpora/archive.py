"""Safe download and extraction of corpus archives.

Why: corpora come as tar/zip files from mirrors we do not control. A crafted archive can write outside
the target folder (absolute paths, ``..``, symlinks or hard links pointing out, chains of links, device
files), and a truncated or swapped download would otherwise be prepared and trained on for days. So every
member is checked before anything is written, links by where they really lead, files are written only into
real folders and never through a link, and a download
is used only once its sha256 matches; a partial download (``<dest>.part``) is resumed where the server
allows it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

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


MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS: a chain longer than this is not followed by the kernel either


def _parts(name: str) -> tuple[str, ...]:
    return tuple(part for part in name.split("/") if part not in ("", "."))


class _Target:
    """The target folder as the archive will leave it: what each path is (folder, file or link), from the
    members seen so far and, below them, from the disk.

    Why a model instead of ``os.path.realpath``: links are judged by following them here, one component at
    a time, including links made earlier by the same archive and links already in the target, so a chain
    whose real path is longer than PATH_MAX (where realpath gives up and reads the rest lexically: the
    CVE-2025-4517 hole of Python's ``data`` filter before 3.11.13) is judged like any other.
    """

    def __init__(self, archive: Path, root: Path):
        self.archive, self.root = archive, root
        self.kinds: dict[tuple[str, ...], str] = {}  # "dir", "file" or "link"
        self.links: dict[tuple[str, ...], str] = {}  # link path -> its target as stored
        self.new_folders: set[tuple[str, ...]] = {()} if not any(root.iterdir()) else set()

    def kind(self, parts: tuple[str, ...]) -> str | None:
        if parts not in self.kinds:
            if parts[:-1] in self.new_folders:  # nothing below a folder this archive creates is on disk yet
                return None
            try:
                mode = os.lstat(self.root.joinpath(*parts)).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as err:  # e.g. a name too long to look up: what is there cannot be checked
                raise ArchiveError(
                    f"{self.archive}: cannot check {'/'.join(parts)!r} in {self.root} ({err.strerror}); "
                    "refusing to extract"
                ) from None
            if stat.S_ISLNK(mode):
                self.links[parts] = os.readlink(self.root.joinpath(*parts))
            self.kinds[parts] = "link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode) else "file"
        return self.kinds[parts]

    def refuse(self, name: str, why: str) -> ArchiveError:
        return ArchiveError(f"{self.archive}: member {name!r} {why}; refusing to extract")

    def resolve(self, link: tuple[str, ...]) -> tuple[str, ...]:
        """Where the link at ``link`` really leads, relative to the root; raises if it leaves the root or
        cannot be followed to the end."""
        name, target = "/".join(link), self.links[link]
        if target.startswith("/"):
            raise self.refuse(name, f"is a link to {target!r}, which points outside the target")
        resolved: list[str] = list(link[:-1])
        pending = target.split("/")
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise self.refuse(name, f"is a link to {target!r}, which points outside the target")
                resolved.pop()
                continue
            candidate = (*resolved, part)
            if self.kind(candidate) != "link":
                resolved.append(part)
                continue
            hops += 1
            inner = self.links[candidate]
            if hops > MAX_LINK_HOPS:
                raise self.refuse(
                    name,
                    f"is a link to {target!r} that cannot be proved to stay inside the target (more than {MAX_LINK_HOPS} links deep, or a loop)",
                )
            if inner.startswith("/"):
                raise self.refuse(
                    name,
                    f"is a link to {target!r}, which points outside the target (through {'/'.join(candidate)!r} -> {inner!r})",
                )
            pending = inner.split("/") + pending
        return tuple(resolved)

    def add(self, name: str, kind: str, link: str | None = None) -> tuple[str, ...]:
        """Record a member; refuse one that would be written through a link or over a folder."""
        parts = _parts(name)
        for depth in range(1, len(parts)):
            prefix = parts[:depth]
            found = self.kind(prefix)
            if found == "link":
                raise self.refuse(name, f"would be written through the link {'/'.join(prefix)!r}")
            if found == "file":
                raise self.refuse(name, f"lies below {'/'.join(prefix)!r}, which is a file")
            if found is None:
                self.new_folders.add(prefix)
            self.kinds[prefix] = "dir"
        if not parts:
            return parts
        found = self.kind(parts)
        if found == "dir" and kind != "dir":
            raise self.refuse(name, "would replace a folder")
        if found in (None, "link") and kind == "dir":
            self.new_folders.add(parts)
        self.kinds[parts] = kind
        self.links.pop(parts, None)
        if link is not None:
            self.links[parts] = link
        return parts

    def check_links(self) -> None:
        for link in list(self.links):
            if self.kinds.get(link) == "link":
                self.resolve(link)


def _real_folder(root: Path, parts: tuple[str, ...]) -> Path:
    """``root/parts`` as a folder made of real folders only (created as needed), never through a link."""
    path = root
    for part in parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            path.mkdir()
            continue
        if not stat.S_ISDIR(mode):  # the plan refuses this; checked again here, where it matters
            raise ArchiveError(
                f"{path} is not a real folder (a link or a file); refusing to write through it"
            )
    return path


def _clear(path: Path) -> None:
    """Remove a file or link at ``path`` (not what a link points to), so the new member replaces it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise ArchiveError(f"{path} is a folder; refusing to replace it with a file or link")
    path.unlink()


def _write_file(root: Path, parts: tuple[str, ...], source: BinaryIO, mode: int = 0o644) -> None:
    path = _real_folder(root, parts[:-1]) / parts[-1]
    _clear(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    with os.fdopen(os.open(path, flags, (mode & 0o755) | 0o600), "wb") as f:
        shutil.copyfileobj(source, f, CHUNK)


def _extract_tar(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        plan = _Target(archive, target)
        files: dict[tuple[str, ...], tarfile.TarInfo] = {}  # regular files so far, for hard links
        steps = []
        for member in members:
            _check_name(archive, member.name)
            if member.isdev() or member.isfifo():
                raise plan.refuse(member.name, "is a device or fifo")
            if member.isreg():
                files[plan.add(member.name, "file")] = member
                steps.append((member, member))
            elif member.isdir():
                steps.append((member, plan.add(member.name, "dir")))
            elif member.issym():
                if not member.linkname:
                    raise plan.refuse(member.name, "is a link to nothing")
                plan.add(member.name, "link", member.linkname)
                steps.append((member, None))
            elif member.islnk():
                source = _parts(member.linkname)
                if member.linkname.startswith("/") or ".." in source:
                    raise plan.refuse(
                        member.name, f"is a hard link to {member.linkname!r}, which points outside the target"
                    )
                if source not in files or plan.kinds.get(source) != "file":
                    raise plan.refuse(
                        member.name,
                        f"is a hard link to {member.linkname!r}, which is not a file extracted earlier",
                    )
                files[plan.add(member.name, "file")] = files[source]
                steps.append((member, files[source]))
            else:
                raise plan.refuse(member.name, f"has an unsupported type {member.type!r}")
        plan.check_links()  # on the final tree: writes never follow links, so only where they end matters
        for member, what in steps:
            parts = _parts(member.name)
            if not parts:
                continue
            if member.isdir():
                path = _real_folder(target, parts[:-1]) / parts[-1]
                if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
                    _clear(path)
                _real_folder(target, parts)
            elif member.issym():
                path = _real_folder(target, parts[:-1]) / parts[-1]
                _clear(path)
                os.symlink(member.linkname, path)
            else:
                with tf.extractfile(what) as source:
                    _write_file(target, parts, source, what.mode)


def _extract_zip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        plan = _Target(archive, target)
        for info in zf.infolist():
            _check_name(archive, info.filename)
            mode = (info.external_attr >> 16) & 0o170000
            if mode and mode not in (0o100000, 0o040000):  # only regular files and folders
                raise ArchiveError(
                    f"{archive}: member {info.filename!r} is not a plain file (mode {oct(mode)}); "
                    "refusing to extract"
                )
            plan.add(info.filename, "dir" if info.is_dir() else "file")
        plan.check_links()
        for info in zf.infolist():
            parts = _parts(info.filename)
            if info.is_dir():
                _real_folder(target, parts)
            elif parts:
                with zf.open(info) as source:
                    _write_file(target, parts, source)


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract a .tar(.gz/.bz2/.xz) or .zip into ``target`` after checking every member.

    Raises ArchiveError (nothing written) if any member has an absolute path, ``..``, is a device/fifo,
    is a link that really leads outside ``target`` (followed through the links before it, also those
    already in ``target``; a chain that cannot be followed to its end is refused too), would be written
    through a link, or is a hard link to anything but a file earlier in the archive (extracted as a copy).
    Files are created with ``O_NOFOLLOW`` in folders checked to be real, and never run through Python's
    tarfile extraction, so the safety does not depend on the Python version.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        try:
            _extract_zip(archive, target)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as err:
            # a damaged central directory or member, or a compression zipfile cannot read
            raise ArchiveError(f"{archive}: cannot be extracted ({err}); re-download it") from None
        return target
    try:
        _extract_tar(archive, target)
    except (tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"{archive}: cannot be extracted ({err}); re-download it") from err
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
