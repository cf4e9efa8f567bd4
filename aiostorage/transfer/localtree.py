"""Walking a local folder for ``sync`` and ``cp -r``: every regular file, and every place the walk failed.

``os.walk`` passes over a folder it cannot list without a word; a sync that deletes what the source side
lacks would then delete the objects of that folder. This walk reports every folder it could not list and
every entry it could not stat as a ``ScanError``, so the caller can refuse to delete anything.

Symbolic links are followed by default, as the AWS CLI does: a link to a file uploads the file it points
to, a link to a folder is walked like a folder, and a link back to a folder being walked (a loop) is
reported rather than followed forever. With ``follow_symlinks=False`` every link is skipped.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .._exceptions import InvalidArgument, StorageError

__all__ = ["LocalFile", "ScanError", "TreeScan", "scan_tree"]


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file below the walked folder."""

    path: Path
    relative: str  # posix path below the walked folder
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class ScanError:
    """A file or folder the walk could not read; ``relative`` ends in ``/`` for a folder."""

    path: Path
    relative: str
    error: StorageError


@dataclass(slots=True)
class TreeScan:
    """What a walk found: the files, and what it could not read (empty when the walk was complete)."""

    files: list[LocalFile] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)


def _failure(path: Path, relative: str, what: str, cause: OSError) -> ScanError:
    error = StorageError(f"cannot read {what} {os.fsdecode(path)}: {cause.strerror or cause}")
    error.__cause__ = cause
    return ScanError(path, relative, error)


def scan_tree(folder: Path, *, follow_symlinks: bool = True) -> TreeScan:
    """Every regular file below ``folder``, and every error met on the way (blocking: run it in a thread).

    ``folder`` itself must be a folder (a link to one counts): anything else raises ``InvalidArgument``,
    since an empty result would read as "every file was deleted".
    """
    try:
        top = os.stat(folder)
    except OSError as exc:
        raise InvalidArgument(f"cannot read the folder {os.fsdecode(folder)}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(top.st_mode):
        raise InvalidArgument(f"{os.fsdecode(folder)} is not a folder")
    scan = TreeScan()
    # Each pending folder carries the identities of the folders above it, for loop detection.
    pending: list[tuple[Path, str, frozenset[tuple[int, int]]]] = [(folder, "", frozenset({(top.st_dev, top.st_ino)}))]
    while pending:
        directory, relative_dir, ancestors = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except OSError as exc:
            scan.errors.append(_failure(directory, relative_dir, "the folder", exc))
            continue
        for entry in listed:
            path = Path(entry.path)
            relative = relative_dir + entry.name
            try:
                is_link = entry.is_symlink()
                if is_link and not follow_symlinks:
                    continue
                info = entry.stat(follow_symlinks=True)
            except OSError as exc:
                # A dangling link, or a file removed since the folder was listed.
                scan.errors.append(_failure(path, relative, "the file", exc))
                continue
            if stat.S_ISDIR(info.st_mode):
                identity = (info.st_dev, info.st_ino)
                if identity in ancestors:
                    loop = InvalidArgument(f"{os.fsdecode(path)} is a link to a folder above it (a loop): not followed")
                    scan.errors.append(ScanError(path, relative + "/", loop))
                    continue
                pending.append((path, relative + "/", ancestors | {identity}))
            elif stat.S_ISREG(info.st_mode):
                scan.files.append(LocalFile(path, relative, info.st_size, info.st_mtime))
            else:
                special = InvalidArgument(f"{os.fsdecode(path)} is not a regular file (a FIFO, socket or device)")
                scan.errors.append(ScanError(path, relative, special))
    scan.files.sort(key=lambda file: file.relative)
    return scan
