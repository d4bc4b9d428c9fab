"""Checksummed, safe extraction of user-downloaded archives (tar and zip).

Why: corpus archives come from the network; a crafted archive can write outside the target folder
(absolute paths, ``..``, links pointing out). tar members go through Python's ``data`` filter, which
refuses all of these; zip members are checked by hand, as zipfile has no such filter.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from pathlib import Path


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the target folder, or the archive fails its checksum."""


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: str | Path, expected: str | None) -> str:
    """Returns the file's sha256; raises if ``expected`` is given and differs."""
    actual = sha256(path)
    if expected and actual != expected.lower():
        raise UnsafeArchiveError(
            f"{path}: sha256 {actual} differs from the expected {expected}; the download is incomplete or "
            "not the official file: download it again"
        )
    return actual


def extract(archive: str | Path, target: str | Path) -> Path:
    """Extract ``archive`` (.zip, .tar, .tar.gz, ...) into ``target``, refusing unsafe members."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                name = info.filename
                dest = (root / name).resolve()
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                if (
                    name.startswith(("/", "\\"))
                    or ".." in Path(name).parts
                    or not dest.is_relative_to(root)
                    or is_link
                ):
                    raise UnsafeArchiveError(
                        f"{archive}: member {name!r} is unsafe (absolute, '..' or a link); not extracted"
                    )
            z.extractall(root)
        return target
    try:
        with tarfile.open(archive) as t:
            for member in t.getmembers():  # the data filter would silently strip a leading '/': refuse it
                if member.name.startswith(("/", "\\")):
                    raise UnsafeArchiveError(
                        f"{archive}: member {member.name!r} is unsafe (absolute); not extracted"
                    )
            t.extractall(root, filter="data")
    except tarfile.FilterError as err:
        raise UnsafeArchiveError(
            f"{archive}: member {err.tarinfo.name!r} is unsafe ({err}); not extracted"
        ) from None
    except tarfile.ReadError as err:
        raise UnsafeArchiveError(f"{archive} is neither a zip nor a tar archive ({err})") from None
    return target
