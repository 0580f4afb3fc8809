"""Check an output file before any request is sent, so a run never ends unable to write.

``check_target`` refuses, with one line each: a name that is not ``.csv`` /
``.jsonl``; a folder that does not exist or cannot be written; a name too long
for the file system; a target that is a folder, a symlink, a FIFO, a device or
a read-only file; and a target that is one of the files the command reads or
keeps (the dataset, the run store and its ``-wal`` / ``-shm`` companions).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from core.errors import ExportError
from core.export import export_format

COMPANIONS = ("", "-wal", "-shm", "-journal")
"""A SQLite file's own files: writing over any of them damages the store."""


def check_target(value: str | Path, protected: Mapping[str, Path | None] | None = None) -> Path:
    """The output path, checked; ``protected`` names files it must not be (``"run store"``)."""
    out = Path(value).expanduser()
    try:
        info = os.lstat(out)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    except OSError as exc:
        raise ExportError(f"{out}: {exc.strerror or exc}") from None
    kind = None if info is None else _kind(info.st_mode)
    if kind is not None:
        raise ExportError(f"{out} is {kind}, not a file fanout will replace; choose another name")
    export_format(out)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"{out}: folder {folder} does not exist")
    for what, path in (protected or {}).items():
        if path is not None and _same(out, path, what == "run store"):
            raise ExportError(
                f"{out} is the {what}; writing it would destroy it: choose another name"
            )
    if info is not None and (not info.st_mode & 0o222 or not os.access(out, os.W_OK)):
        # (root may write anything; a file without write bits is read-only on purpose)
        raise ExportError(f"{out} is read-only; choose another name or change its permissions")
    _probe(out, folder)
    return out


def _kind(mode: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def _same(out: Path, other: Path, with_companions: bool) -> bool:
    names = [other.expanduser()]
    if with_companions:
        names = [Path(f"{other.expanduser()}{suffix}") for suffix in COMPANIONS]
    target = out.resolve()
    return any(target == name.resolve() for name in names)


def _probe(out: Path, folder: Path) -> None:
    """Create (and remove) a file of the target's name length in its folder: a folder
    that cannot be written or a name too long fails now, not after the run."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"{out}: cannot write in folder {folder} (permission denied)")
    probe = folder / ("." + "f" * max(1, len(out.name) - 1))
    if probe.exists():
        return
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        reason = "the name is too long" if exc.errno == 36 else (exc.strerror or str(exc))
        raise ExportError(f"{out}: cannot write there ({reason})") from None
    os.close(fd)
    probe.unlink(missing_ok=True)
